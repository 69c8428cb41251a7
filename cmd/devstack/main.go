// Command devstack runs template.yaml on this machine, with no Docker and no
// AWS account: DynamoDB with complete streams, the functions as real Lambda
// Runtime API processes, the HTTP and WebSocket APIs, the stream mappings
// and a development token issuer.
//
//	go run ./cmd/devstack                    # start the stack
//	go run ./cmd/devstack --watch --data-dir .devstack   # rebuild on change, keep state
//	go run ./cmd/devstack invoke ApiFunction -e events/api-create-group.json
//	go run ./cmd/devstack invoke --stack /tmp/devstack-local.json ApiFunction events/api-get-group.json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/groupcast/groupcast/internal/devstack/lambdarun"
	"github.com/groupcast/groupcast/internal/devstack/localaws"
	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/internal/devstack/wsgw"
	"github.com/groupcast/groupcast/web"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

// params collects repeated --param Key=Value flags.
type params map[string]string

func (p params) String() string { return fmt.Sprint(map[string]string(p)) }
func (p params) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want Key=Value, got %q", v)
	}
	p[k] = val
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "invoke" {
		return invoke(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: devstack [flags]                            run template.yaml locally")
		fmt.Fprintln(stderr, "       devstack invoke <LogicalId> [-e event.json]  invoke one function once")
		fmt.Fprintln(stderr, "       devstack invoke --stack <ready-file> <LogicalId> <event.json>  ... against a running stack")
		fs.PrintDefaults()
	}
	opts, ps := commonFlags(fs)
	host := fs.String("host", "127.0.0.1", "interface to listen on")
	httpPort := fs.Int("http-port", 3000, "HTTP API port")
	wsPort := fs.Int("ws-port", 3001, "WebSocket API and @connections port")
	tokensPort := fs.Int("tokens-port", 3002, "development token issuer port")
	dynamoPort := fs.Int("dynamodb-port", 8000, "DynamoDB (and DynamoDB Streams) port")
	webPort := fs.Int("web-port", 3003, "demo app and browser client port (0: any free port, -1: off)")
	sqsPort := fs.Int("sqs-port", 9324, "SQS port")
	readyFile := fs.String("ready-file", "", "write the endpoints, table names and credentials as JSON to this file once everything accepts connections, for `devstack invoke --stack` (default "+defaultReadyFile("<stack-name>")+")")
	fs.StringVar(&opts.DataDir, "data-dir", "", "keep tables, stream positions and the token signing key in this directory across restarts (default: in memory)")
	fs.BoolVar(&opts.Watch, "watch", false, "rebuild a function when its code or a package of this module it imports changes, and swap its instances (state and sockets stay)")
	fs.BoolVar(&opts.PushFaults, "push-faults", false, "let a WebSocket client ask for every @connections POST to it to fail, with ?"+wsgw.PushFaultParam+"=500 or 410 at connect (load tests: loadgen --failing-connections)")
	verbose := fs.Bool("v", false, "debug logs from the stack itself")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof of the stack process on this address (e.g. 127.0.0.1:6060)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *readyFile == "" {
		*readyFile = defaultReadyFile(opts.StackName)
	}
	opts.Parameters = ps
	addr := func(port int) string { return fmt.Sprintf("%s:%d", *host, port) }
	opts.HTTPAddr, opts.WebSocketAddr, opts.TokensAddr, opts.DynamoDBAddr = addr(*httpPort), addr(*wsPort), addr(*tokensPort), addr(*dynamoPort)
	opts.SQSAddr = addr(*sqsPort)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts.FunctionLogs = stderr
	// Start-up takes minutes on a cold build cache: say what is happening.
	opts.Progress = stderr

	if *pprofAddr != "" {
		// The default mux carries net/http/pprof's handlers.
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				fmt.Fprintln(stderr, "devstack: pprof:", err)
			}
		}()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := stack.Start(ctx, *opts)
	if err != nil {
		return err
	}
	printSummary(stdout, s)
	demoURL := ""
	if *webPort >= 0 {
		closeWeb, u, err := serveWeb(addr(*webPort), s.Endpoints)
		if err != nil {
			s.Close(context.Background())
			return err
		}
		defer closeWeb()
		demoURL = u
		fmt.Fprintf(stdout, "Demo app: %s   (the browser client is served at /client/)\n", demoURL)
	}
	data, _ := json.MarshalIndent(struct {
		stack.Ready
		Demo string `json:"demo,omitempty"`
	}{s.Ready(), demoURL}, "", "  ")
	// 0600: it holds the local admin and function keys.
	if err := os.WriteFile(*readyFile, append(data, '\n'), 0o600); err != nil {
		s.Close(context.Background())
		return fmt.Errorf("ready file: %w", err)
	}
	fmt.Fprintf(stdout, "Ready file: %s   (devstack invoke --stack %[1]s <LogicalId> <event.json>)\n", *readyFile)
	// A stale file would point invoke at ports nothing listens on.
	defer os.Remove(*readyFile)
	<-ctx.Done()
	fmt.Fprintln(stderr, "\ndevstack: shutting down (closing WebSockets with 1001)...")
	// Ten seconds lets every $disconnect run and every function exit
	// cleanly; a second Ctrl-C kills the process at once.
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if fails := s.Failures(); len(fails) > 0 {
		fmt.Fprintf(stderr, "devstack: %d batches went to on-failure destinations this run\n", len(fails))
	}
	return s.Close(shutdownCtx)
}

// serveWeb serves the demo app and the browser client (package web) on
// addr, telling the demo where the stack's APIs and token issuer are.
func serveWeb(addr string, e stack.Endpoints) (closeFn func(), demoURL string, err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("demo app: %w", err)
	}
	srv := &http.Server{
		Handler: web.Handler(web.Config{HTTPAPI: e.HTTPAPI, WebSocket: e.WebSocket, Tokens: e.Tokens}),
		// Slowloris guard, as the stack's own servers have.
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	return func() { _ = srv.Close() }, "http://" + l.Addr().String() + "/demo/", nil
}

// commonFlags binds the flags shared by the stack and invoke. It returns a
// pointer: the flags write into these options when fs is parsed, so a copy
// taken before parsing would silently drop every value given.
func commonFlags(fs *flag.FlagSet) (*stack.Options, params) {
	ps := params{}
	o := new(stack.Options)
	fs.StringVar(&o.Template, "template", "template.yaml", "SAM template to run")
	fs.Var(ps, "param", "template parameter override Key=Value (repeatable)")
	fs.StringVar(&o.DynamoDBEndpoint, "dynamodb-endpoint", "", "use this DynamoDB endpoint (DynamoDB Local, LocalStack) instead of the embedded one")
	fs.StringVar(&o.BuildDir, "build-dir", "", "where function binaries go (default: a temporary directory)")
	fs.StringVar(&o.Region, "region", localaws.Region, "region reported to functions")
	fs.StringVar(&o.StackName, "stack-name", "local", "AWS::StackName; tables are named <stack-name>-<LogicalId>")
	fs.IntVar(&o.MaxConcurrency, "max-concurrency", 0, "instances per function at most (default 10)")
	fs.DurationVar(&o.WebSocketLimits.IdleTimeout, "ws-idle-timeout", 10*time.Minute, "close WebSockets idle this long (API Gateway: 10 minutes)")
	fs.DurationVar(&o.WebSocketLimits.MaxConnectionAge, "ws-max-age", 2*time.Hour, "close WebSockets after this long (API Gateway: 2 hours)")
	fs.DurationVar(&o.StreamRetention, "stream-retention", 24*time.Hour, "how long DynamoDB stream records are kept")
	// Fixed defaults, so the aws CLI hint and scripts keep working across
	// runs. They are local-only and allowed everything; functions never
	// get them (each signs with its own key, held to its template policies).
	fs.StringVar(&o.AdminCredentials.AccessKeyID, "admin-access-key-id", "AKIADEVSTACKADMIN000", "access key the local DynamoDB and @connections allow everything (for the aws CLI and tools)")
	fs.StringVar(&o.AdminCredentials.SecretAccessKey, "admin-secret-access-key", "devstack-admin-secret", "secret of --admin-access-key-id")
	timingFlags(fs, &o.Timing)
	return o, ps
}

// timingFlags binds the AWS timing profile's flags (shared with loadgen's wording).
func timingFlags(fs *flag.FlagSet, t *stack.Timing) {
	fs.BoolVar(&t.AWS, "aws-timing", false, "AWS timing profile: stream polled every 250 ms (no wake on write), @connections latency and account throttle")
	fs.DurationVar(&t.ConnectionsLatency, "connections-latency", stack.DefaultConnectionsLatency, "with --aws-timing: round trip of each @connections call")
	fs.Float64Var(&t.ConnectionsRPS, "connections-rps", stack.DefaultConnectionsRPS, "with --aws-timing: account @connections rate (API Gateway's account throttle)")
	fs.IntVar(&t.ConnectionsBurst, "connections-burst", stack.DefaultConnectionsBurst, "with --aws-timing: account throttle burst")
}

func printSummary(w io.Writer, s *stack.Stack) {
	e := s.Endpoints
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Groupcast local stack is ready.")
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "  HTTP API\t%s\n", e.HTTPAPI)
	fmt.Fprintf(tw, "  WebSocket\t%s?token=<JWT>\n", e.WebSocket)
	fmt.Fprintf(tw, "  @connections\t%s/@connections/{connectionId}\n", e.Management)
	fmt.Fprintf(tw, "  DynamoDB\t%s   (aws dynamodb scan --table-name %s --endpoint-url %s)\n", e.DynamoDB, strings.Join(s.Tables, ","), e.DynamoDB)
	if len(s.Queues) > 0 {
		fmt.Fprintf(tw, "  SQS\t%s   (aws sqs receive-message --queue-url %s/%s/<name> --endpoint-url %s; queues: %s)\n", e.SQS, e.SQS, s.AccountID(), e.SQS, strings.Join(s.Queues, ", "))
	}
	admin := s.AdminCredentials()
	fmt.Fprintf(tw, "  Admin keys\texport AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s   (the local endpoints check SigV4 and IAM)\n",
		admin.AccessKeyID, admin.SecretAccessKey, s.Region())
	base := strings.TrimSuffix(e.Tokens, "/token")
	fmt.Fprintf(tw, "  Tokens\tPOST %s   JWKS %s\n", e.Tokens, base+"/.well-known/jwks.json")
	fmt.Fprintf(tw, "  On-failure\tGET %s/_devstack/failures   (batches the stream mappings gave up on; also sent to their SQS destinations)\n", base)
	tw.Flush()
	fmt.Fprintf(w, "\nFunctions (real processes, Lambda Runtime API): %s\n", strings.Join(s.Functions, ", "))
	fmt.Fprintln(w, "HTTP routes:")
	for _, r := range s.HTTPRoutes {
		fmt.Fprintln(w, "  "+r)
	}
	fmt.Fprintln(w, "WebSocket routes:")
	for _, r := range s.WSRoutes {
		fmt.Fprintln(w, "  "+r)
	}
	table := "<table>"
	if len(s.Tables) > 0 {
		table = s.Tables[0]
	}
	printTryIt(w, e, s.AdminCredentials(), s.Region(), table)
}

// printTryIt prints the README's "Try it" commands with the stack's real
// endpoints. wscat holds its terminal, so the commands are split by
// terminal; npx needs --yes to install wscat without a prompt; the AWS CLI
// (v1) needs a region and credentials, and the local endpoints check SigV4,
// so only the admin keys work. TestTryItMatchesTheREADME keeps the two equal.
func printTryIt(w io.Writer, e stack.Endpoints, admin aws.Credentials, region, table string) {
	token := fmt.Sprintf(`TOKEN=$(curl -s -XPOST %s -d '{"sub":"alice","name":"Alice"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')`, e.Tokens)
	fmt.Fprintf(w, `
Try it (each terminal in this repository; terminal 1 runs this stack):
  # terminal 2: a WebSocket client (holds the terminal; needs Node.js)
  %[1]s
  npx --yes wscat -c "%[2]s?token=$TOKEN"
  # at wscat's ">" prompt, type:  {"action":"subscribe","groupIds":["public"]}
  # terminal 3: create a public group; terminal 2 receives group.created
  %[1]s
  curl -s -XPOST %[3]s/groups -H "Authorization: Bearer $TOKEN" \
       -d '{"name":"Hikers","description":"Weekend hikes","visibility":"public"}'
  # the AWS CLI against the local endpoints (v1 needs the region and keys)
  export AWS_ACCESS_KEY_ID=%[4]s AWS_SECRET_ACCESS_KEY=%[5]s AWS_DEFAULT_REGION=%[6]s
  aws dynamodb scan --table-name %[7]s --endpoint-url %[8]s --max-items 5

Ctrl-C stops everything.
`, token, e.WebSocket, e.HTTPAPI, admin.AccessKeyID, admin.SecretAccessKey, region, table, e.DynamoDB)
}

// defaultReadyFile is where a stack writes its ready file unless told.
func defaultReadyFile(stackName string) string {
	return filepath.Join(os.TempDir(), "devstack-"+stackName+".json")
}

// invoke runs one function once with an event file, like `sam local invoke`.
func invoke(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts, ps := commonFlags(fs)
	eventFile := fs.String("e", "", "event file (JSON); default: {}")
	stackFile := fs.String("stack", "", "a running stack's ready file: invoke against its tables, token issuer and @connections instead of a new empty stack")
	replace := replacements{}
	fs.Var(&replace, "replace", "OLD=NEW: replace every OLD in the event text with NEW before invoking, e.g. a sample's group id with a real one (repeatable)")
	// Accept `invoke Fn -e file` as well as `invoke -e file Fn`.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	if *eventFile == "" && len(rest) == 1 {
		*eventFile, rest = rest[0], nil
	}
	if id == "" || len(rest) > 0 {
		return errors.New("usage: devstack invoke [--stack ready.json] <LogicalId> [-e] [event.json]")
	}
	payload := []byte("{}")
	if *eventFile != "" {
		var err error
		if payload, err = os.ReadFile(*eventFile); err != nil {
			return err
		}
	}
	payload = replace.apply(payload)
	if !json.Valid(payload) {
		return fmt.Errorf("%s is not valid JSON (after --replace)", *eventFile)
	}
	if *stackFile != "" {
		return invokeAgainst(context.Background(), *stackFile, id, payload, stdout, stderr)
	}
	opts.Parameters = ps
	opts.Only = id
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.FunctionLogs = stderr
	opts.Progress = stderr
	ctx := context.Background()
	s, err := stack.Start(ctx, *opts)
	if err != nil {
		return err
	}
	defer s.Close(ctx)
	return lambdarun.InvokeAndPrint(ctx, s.Runtime(), id, payload, stdout)
}

// replacements are --replace OLD=NEW pairs, applied in order.
type replacements []string

func (r *replacements) String() string { return strings.Join(*r, " ") }
func (r *replacements) Set(v string) error {
	old, _, ok := strings.Cut(v, "=")
	if !ok || old == "" {
		return fmt.Errorf("want OLD=NEW, got %q", v)
	}
	*r = append(*r, v)
	return nil
}

func (r replacements) apply(b []byte) []byte {
	for _, kv := range r {
		old, val, _ := strings.Cut(kv, "=")
		b = bytes.ReplaceAll(b, []byte(old), []byte(val))
	}
	return b
}

// invokeAgainst builds a function and runs it once the way the running
// stack described in its ready file runs it: same environment (its table
// names, DynamoDB, @connections and token issuer) and the stack's own
// credentials for the function, so its IAM policies apply.
func invokeAgainst(ctx context.Context, readyFile, id string, payload []byte, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(readyFile)
	if err != nil {
		return fmt.Errorf("ready file (is the stack running? it writes the file when ready and removes it when it stops): %w", err)
	}
	var r stack.Ready
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("ready file %s: %w", readyFile, err)
	}
	f, ok := r.Functions[id]
	if !ok {
		names := make([]string, 0, len(r.Functions))
		for n := range r.Functions {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("the stack in %s has no function %q (it has %s)", readyFile, id, strings.Join(names, ", "))
	}
	// A stack that has stopped leaves nothing to invoke against; say so
	// rather than let the function time out on a closed port.
	if err := reachable(ctx, r.DynamoDB); err != nil {
		return fmt.Errorf("the stack in %s does not answer at %s (stopped?): %w", readyFile, r.DynamoDB, err)
	}
	rt, err := lambdarun.New(lambdarun.Options{LogWriter: stderr, Region: r.Region, AccountID: r.AccountID})
	if err != nil {
		return err
	}
	defer func() {
		// Time for SIGTERM and the default grace, then kill.
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		rt.Close(closeCtx)
	}()
	bins, err := rt.Build(ctx, lambdarun.BuildSpec{RepoRoot: r.RepoRoot, Functions: map[string]string{id: f.Package}, Progress: stderr})
	if err != nil {
		return err
	}
	fn := lambdarun.Function{Name: id, Binary: bins[id], Env: f.Env, Timeout: time.Duration(f.TimeoutMS) * time.Millisecond, MemoryMB: f.MemoryMB,
		Credentials: aws.Credentials{AccessKeyID: f.Credentials.AccessKeyID, SecretAccessKey: f.Credentials.SecretAccessKey, SessionToken: f.Credentials.SessionToken}}
	if err := rt.Register(fn); err != nil {
		return err
	}
	return lambdarun.InvokeAndPrint(ctx, rt, id, payload, stdout)
}

// reachable checks that something accepts connections at a URL's host.
func reachable(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	// Loopback answers at once; a second covers a busy machine.
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	return c.Close()
}
