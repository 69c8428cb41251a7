// Command devstack runs template.yaml on this machine, with no Docker and no
// AWS account: DynamoDB with complete streams, the functions as real Lambda
// Runtime API processes, the HTTP and WebSocket APIs, the stream mappings
// and a development token issuer.
//
//	go run ./cmd/devstack                    # start the stack
//	go run ./cmd/devstack invoke ApiFunction -e events/api-create-group.json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/lambdarun"
	"github.com/groupcast/groupcast/internal/devstack/stack"
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
		fs.PrintDefaults()
	}
	opts, ps := commonFlags(fs)
	host := fs.String("host", "127.0.0.1", "interface to listen on")
	httpPort := fs.Int("http-port", 3000, "HTTP API port")
	wsPort := fs.Int("ws-port", 3001, "WebSocket API and @connections port")
	tokensPort := fs.Int("tokens-port", 3002, "development token issuer port")
	dynamoPort := fs.Int("dynamodb-port", 8000, "DynamoDB (and DynamoDB Streams) port")
	sqsPort := fs.Int("sqs-port", 9324, "SQS port")
	readyFile := fs.String("ready-file", "", "write the endpoints as JSON to this file once everything accepts connections")
	verbose := fs.Bool("v", false, "debug logs from the stack itself")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof of the stack process on this address (e.g. 127.0.0.1:6060)")
	if err := fs.Parse(args); err != nil {
		return err
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
	if *readyFile != "" {
		data, _ := json.MarshalIndent(s.Endpoints, "", "  ")
		if err := os.WriteFile(*readyFile, append(data, '\n'), 0o644); err != nil {
			s.Close(context.Background())
			return fmt.Errorf("ready file: %w", err)
		}
	}
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
	fs.StringVar(&o.Region, "region", "us-east-1", "region reported to functions")
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
	fmt.Fprintf(w, `
Try it:
  TOKEN=$(curl -s -XPOST %[1]s -d '{"sub":"alice","name":"Alice"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
  npx wscat -c "%[2]s?token=$TOKEN"            # then send {"action":"subscribe","groupIds":["public"]}
  curl -s -XPOST %[3]s/groups -H "Authorization: Bearer $TOKEN" \
       -d '{"name":"Hikers","description":"Weekend hikes","visibility":"public"}'

Ctrl-C stops everything.
`, e.Tokens, e.WebSocket, e.HTTPAPI)
}

// invoke runs one function once with an event file, like `sam local invoke`.
func invoke(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devstack invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts, ps := commonFlags(fs)
	eventFile := fs.String("e", "", "event file (JSON); default: {}")
	// Accept `invoke Fn -e file` as well as `invoke -e file Fn`.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		return errors.New("usage: devstack invoke <LogicalId> [-e event.json]")
	}
	payload := []byte("{}")
	if *eventFile != "" {
		var err error
		if payload, err = os.ReadFile(*eventFile); err != nil {
			return err
		}
		if !json.Valid(payload) {
			return fmt.Errorf("%s is not valid JSON", *eventFile)
		}
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
