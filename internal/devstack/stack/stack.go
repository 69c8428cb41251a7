// Package stack runs a SAM template on one machine: it reads template.yaml,
// starts DynamoDB with complete streams, builds the functions and runs them
// as real processes through the Lambda Runtime API, serves the HTTP and
// WebSocket APIs, polls the streams into their functions, and issues
// development tokens that the template's JWT authorizers accept.
package stack

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/cfn"
	"github.com/groupcast/groupcast/internal/cfn/samcheck"
	"github.com/groupcast/groupcast/internal/devstack/dynamo"
	"github.com/groupcast/groupcast/internal/devstack/esm"
	"github.com/groupcast/groupcast/internal/devstack/httpgw"
	"github.com/groupcast/groupcast/internal/devstack/iam"
	"github.com/groupcast/groupcast/internal/devstack/lambdarun"
	"github.com/groupcast/groupcast/internal/devstack/localaws"
	localsqs "github.com/groupcast/groupcast/internal/devstack/sqs"
	"github.com/groupcast/groupcast/internal/devstack/tokens"
	"github.com/groupcast/groupcast/internal/devstack/wsgw"
)

// Options configure a stack. Addresses default to free loopback ports.
type Options struct {
	Template   string            // path to template.yaml
	Parameters map[string]string // parameter overrides

	HTTPAddr, WebSocketAddr, DynamoDBAddr, TokensAddr, SQSAddr string

	// DynamoDBEndpoint points the stack at an external DynamoDB (DynamoDB
	// Local, LocalStack) instead of the embedded one.
	DynamoDBEndpoint string
	// StreamRetention is how long stream records are kept; 0 is DynamoDB's
	// 24 hours. Shorter keeps a long load test's memory down.
	StreamRetention time.Duration

	// IssuerParameter and AudienceParameter name the template parameters
	// that receive the local token issuer's URL and audience (when the
	// template declares them and no override is given).
	IssuerParameter, AudienceParameter string
	Audience                           string

	StackName string
	Region    string
	AccountID string

	// BuildDir holds the function binaries; "" is a temporary directory.
	BuildDir string
	// WebSocketLimits override API Gateway's quotas (zero fields keep them).
	WebSocketLimits wsgw.Limits
	// MaxConcurrency caps instances per function; 0 keeps lambdarun's default.
	MaxConcurrency int
	// Env overrides function environment variables: function logical id
	// -> name -> value, like `sam local invoke --env-vars`.
	Env map[string]map[string]string
	// Only, when set, starts just DynamoDB, the token issuer and this one
	// function (what `devstack invoke` needs); no APIs and no stream polling.
	Only string

	// AdminCredentials sign requests that are allowed everything: for the
	// test harness and developer tools (aws CLI) reaching the local
	// DynamoDB and @connections, never for functions. Empty: random ones,
	// see Stack.AdminCredentials.
	AdminCredentials aws.Credentials

	// Timing, when AWSTiming is set, makes the stack as slow as AWS where
	// it matters to delivery (see timing.go); otherwise it is as fast as
	// it can be.
	Timing Timing
	// PushFaults lets WebSocket clients ask for every @connections POST to
	// them to fail, with the $connect query parameter
	// wsgw.PushFaultParam (500 or 410): for load tests of failing
	// subscribers. Off, the parameter is an ordinary one.
	PushFaults bool

	Logger       *slog.Logger
	FunctionLogs io.Writer // labelled function output; default os.Stderr
	// Progress receives a line per start-up step, one per function as it
	// builds (with its time), and "ready" with the endpoints; nil for none.
	Progress io.Writer

	// DataDir, when set, keeps tables, items, stream records, the stream
	// mappings' positions and the token signing key there across restarts
	// (see persist.go). "" keeps everything in memory. Tokens stay valid
	// only if the token issuer's address (its "iss") stays the same.
	DataDir string
	// Watch rebuilds a function when its source, or a module-local package
	// it imports, changes, and swaps its instances (see watch.go).
	Watch bool
}

func (o *Options) setDefaults() {
	if o.Template == "" {
		o.Template = "template.yaml"
	}
	for _, a := range []*string{&o.HTTPAddr, &o.WebSocketAddr, &o.DynamoDBAddr, &o.TokensAddr, &o.SQSAddr} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	if o.IssuerParameter == "" {
		o.IssuerParameter = "JwtIssuer"
	}
	if o.AudienceParameter == "" {
		o.AudienceParameter = "JwtAudience"
	}
	if o.Audience == "" {
		o.Audience = "local"
	}
	if o.StackName == "" {
		o.StackName = "local"
	}
	if o.Region == "" {
		o.Region = localaws.Region
	}
	if o.AccountID == "" {
		o.AccountID = localaws.AccountID
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FunctionLogs == nil {
		o.FunctionLogs = os.Stderr
	}
}

// Endpoints are where a running stack listens; the JSON form is what
// --ready-file writes.
type Endpoints struct {
	HTTPAPI    string `json:"httpApi"`    // base URL including the stage
	WebSocket  string `json:"webSocket"`  // ws://host:port/stage
	Management string `json:"management"` // @connections base URL
	DynamoDB   string `json:"dynamodb"`
	SQS        string `json:"sqs"`
	Tokens     string `json:"tokens"` // POST here to mint a token
}

// Stack is a running local stack.
type Stack struct {
	Endpoints Endpoints
	// Functions, routes and tables, for the start-up summary.
	Functions  []string
	HTTPRoutes []string
	WSRoutes   []string
	Tables     []string
	Queues     []string

	log     *slog.Logger
	iam     *iam.Registry
	admin   aws.Credentials
	region  string
	account string
	dynamo  *dynamo.Server
	runtime *lambdarun.Runtime
	issuer  *tokens.Issuer
	servers []*http.Server
	ws      []*wsgw.Gateway
	pollers []*esm.Poller
	sqs     *localsqs.Server
	// sqsPollers are the SQS event source mappings.
	sqsPollers []*esm.SQSPoller
	checks     *checkpoints // DataDir only
	watch      *watcher     // Watch only
	ready      Ready
	progress   io.Writer
	stopSave   chan struct{} // stops the checkpoint writer
	closers    []func(context.Context) error
	closeMu    sync.Mutex
	isClosed   bool
}

// Start brings the whole template up and returns once every endpoint
// accepts connections. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	opts.setDefaults()
	b := &builder{opts: opts, s: &Stack{log: opts.Logger}, r: newResolver(opts.Region, opts.AccountID),
		httpL: map[string]net.Listener{}, wsL: map[string]net.Listener{}}
	defer func() {
		if err != nil {
			b.s.Close(context.Background())
		}
	}()
	b.s.region, b.s.account = opts.Region, opts.AccountID
	b.s.progress = opts.Progress
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	b.s.iam = iam.NewRegistry(opts.Region, opts.AccountID, opts.StackName)
	if b.s.admin, err = b.s.iam.AddAdmin(opts.AdminCredentials); err != nil {
		return nil, err
	}
	type step struct {
		say string // progress line; "" for steps that take no time
		run func(context.Context) error
	}
	steps := []step{
		{"", b.loadTemplate},
		{"starting the token issuer", b.startTokenIssuer}, // its URL is a template parameter
		{"", b.startSQS},                                  // queue URLs are intrinsic values
		{"", b.evaluateTemplate},
		{"", b.nameResources},                  // and open the APIs' listeners: endpoints are intrinsic values
		{"starting DynamoDB", b.startDynamoDB}, // stream ARNs exist only after the tables do
		{"", b.createQueues},
		{"", b.startFunctions}, // says how many it builds
	}
	if opts.Only == "" {
		steps = append(steps, step{"starting the HTTP APIs", b.startHTTPAPIs},
			step{"starting the WebSocket APIs", b.startWebSocketAPIs},
			step{"starting the stream mappings", b.startStreamMappings})
	}
	began := time.Now()
	for _, st := range steps {
		if st.say != "" {
			b.say("%s", st.say)
		}
		if err := st.run(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Only != "" && len(b.s.Functions) == 0 {
		return nil, fmt.Errorf("the template has no AWS::Serverless::Function %q", opts.Only)
	}
	if err := b.describeReady(); err != nil {
		return nil, err
	}
	if opts.Watch {
		if err := b.startWatch(ctx, b.bins); err != nil {
			return nil, err
		}
	}
	e := b.s.Endpoints
	if opts.Only == "" {
		b.say("ready in %.1f s: HTTP API %s, WebSocket %s, tokens %s, DynamoDB %s", time.Since(began).Seconds(), e.HTTPAPI, e.WebSocket, e.Tokens, e.DynamoDB)
	} else {
		b.say("ready in %.1f s: %s, tokens %s, DynamoDB %s", time.Since(began).Seconds(), opts.Only, e.Tokens, e.DynamoDB)
	}
	return b.s, nil
}

// say writes one progress line, in loadgen's style: steps unindented, the
// items of a step indented.
func (b *builder) say(format string, args ...any) {
	if b.opts.Progress != nil {
		fmt.Fprintf(b.opts.Progress, format+"\n", args...)
	}
}

// builder carries what the start-up steps learn about the template.
type builder struct {
	opts Options
	s    *Stack
	r    *resolver

	tmpl   *cfn.Template
	cctx   *cfn.Context
	issuer string // the token issuer's base URL

	httpL, wsL                      map[string]net.Listener // by API logical id
	tableIDs, functionIDs, queueIDs []string
	fns                             []function
	bins                            map[string]string // function id -> binary
}

func (b *builder) loadTemplate(context.Context) error {
	var err error
	b.tmpl, err = cfn.Load(b.opts.Template)
	return err
}

// listen opens a listener that Close closes.
func (b *builder) listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	b.s.closers = append(b.s.closers, func(context.Context) error { l.Close(); return nil })
	return l, nil
}

func (b *builder) startTokenIssuer(context.Context) error {
	l, err := b.listen(b.opts.TokensAddr)
	if err != nil {
		return err
	}
	b.issuer = "http://" + l.Addr().String()
	var keyFile string
	if b.opts.DataDir != "" {
		keyFile = filepath.Join(b.opts.DataDir, tokenKeyFile)
	}
	b.s.issuer, err = tokens.New(tokens.Options{Issuer: b.issuer, Audience: b.opts.Audience, KeyFile: keyFile})
	if err != nil {
		return fmt.Errorf("token issuer: %w", err)
	}
	b.s.serve(l, b.s.adminHandler())
	b.s.Endpoints.Tokens = b.issuer + "/token"
	return nil
}

// evaluateTemplate fixes the parameters (the local issuer and audience
// unless overridden) and checks that the stack can run the template.
func (b *builder) evaluateTemplate(context.Context) error {
	params := map[string]string{}
	if _, ok := b.tmpl.Parameters[b.opts.IssuerParameter]; ok {
		params[b.opts.IssuerParameter] = b.issuer
	}
	if _, ok := b.tmpl.Parameters[b.opts.AudienceParameter]; ok {
		params[b.opts.AudienceParameter] = b.opts.Audience
	}
	for k, v := range b.opts.Parameters {
		params[k] = v
	}
	pseudo := cfn.Pseudo{Region: b.opts.Region, AccountID: b.opts.AccountID, StackName: b.opts.StackName, Partition: "aws", URLSuffix: "amazonaws.com"}
	var err error
	b.cctx, err = cfn.NewContext(b.tmpl, cfn.Options{Parameters: params, Pseudo: pseudo, Resources: b.r})
	if err != nil {
		return err
	}
	if err := checkSupported(b.cctx); err != nil {
		return err
	}
	// The same checks the template test runs, so a broken template fails
	// here with every problem named instead of half-starting.
	if err := samcheck.Check(b.tmpl, samcheck.Options{Parameters: params, Pseudo: pseudo}); err != nil {
		return fmt.Errorf("template %s: %w", b.opts.Template, err)
	}
	return nil
}

// nameResources gives every created resource the name or id its Ref and
// Fn::GetAtt resolve to, and opens the APIs' listeners.
func (b *builder) nameResources(context.Context) error {
	opts, r := b.opts, b.r
	for _, id := range slices.Sorted(maps.Keys(b.tmpl.Resources)) {
		on, err := b.cctx.Enabled(id)
		if err != nil {
			return err
		}
		if !on {
			continue
		}
		res := b.tmpl.Resources[id]
		switch res.Type {
		case "AWS::DynamoDB::Table":
			name, _ := res.Properties["TableName"].(string)
			if name == "" {
				name = opts.StackName + "-" + id
			}
			r.tableNames[id] = name
			b.tableIDs = append(b.tableIDs, id)
		case "AWS::Serverless::Function":
			r.functions[id] = id
			if opts.Only == "" || opts.Only == id {
				b.functionIDs = append(b.functionIDs, id)
			}
		case "AWS::SQS::Queue":
			r.queues[id] = queueName(opts.StackName, id, res.Properties)
			b.queueIDs = append(b.queueIDs, id)
		case "AWS::Serverless::HttpApi":
			l, err := b.listen(firstOr(len(b.httpL) == 0, opts.HTTPAddr))
			if err != nil {
				return err
			}
			b.httpL[id], r.apiIDs[id], r.apiEndpoint[id] = l, localID(id), "http://"+l.Addr().String()
		case "AWS::ApiGatewayV2::Api":
			l, err := b.listen(firstOr(len(b.wsL) == 0, opts.WebSocketAddr))
			if err != nil {
				return err
			}
			b.wsL[id], r.apiIDs[id], r.apiEndpoint[id] = l, localID(id), "ws://"+l.Addr().String()
		}
	}
	return nil
}

// firstOr returns addr for the first API of a kind and a free port after.
func firstOr(first bool, addr string) string {
	if first {
		return addr
	}
	return "127.0.0.1:0"
}

func (b *builder) startDynamoDB(ctx context.Context) error {
	s, opts := b.s, b.opts
	var err error
	s.dynamo, err = dynamo.Start(ctx, dynamo.Options{Addr: opts.DynamoDBAddr, Backend: opts.DynamoDBEndpoint, Region: opts.Region, AccountID: opts.AccountID,
		Retention: opts.StreamRetention, Logger: opts.Logger, Auth: s.iam, ClientCredentials: s.admin, DataDir: opts.DataDir})
	if err != nil {
		return fmt.Errorf("dynamodb: %w", err)
	}
	s.Endpoints.DynamoDB = s.dynamo.URL()
	for _, id := range b.tableIDs {
		props, err := b.cctx.Properties(id)
		if err != nil {
			return err
		}
		spec, err := tableSpec(id, b.r.tableNames[id], props)
		if err != nil {
			return err
		}
		info, err := s.dynamo.CreateTable(ctx, spec)
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) && opts.DataDir != "" {
			// Restored from the data directory, with its stream.
			if info.StreamARN, err = b.existingTable(ctx, id, spec); err != nil {
				return err
			}
			info.Name = b.r.tableNames[id]
		} else if errors.As(err, &inUse) {
			// An external DynamoDB keeps its tables across runs, but the
			// stream of a table the stack did not create would be invisible
			// to it; a fresh name keeps the stream and the old data intact.
			return fmt.Errorf("create table %s: table %s already exists at %s; start with another --stack-name (table names are <stack-name>-<LogicalId>) or delete it", id, b.r.tableNames[id], opts.DynamoDBEndpoint)
		}
		if err != nil {
			return fmt.Errorf("create table %s: %w", id, err)
		}
		b.r.streamARNs[id] = info.StreamARN
		s.Tables = append(s.Tables, info.Name)
	}
	return nil
}

// startFunctions resolves, builds and registers the functions.
func (b *builder) startFunctions(ctx context.Context) error {
	s, opts := b.s, b.opts
	pkgs := map[string]string{}
	for _, id := range b.functionIDs {
		props, err := b.cctx.Properties(id)
		if err != nil {
			return err
		}
		f, err := functionPlan(id, props)
		if err != nil {
			return err
		}
		// The execution role SAM would create, so the local endpoints can
		// refuse what AWS would.
		stmts, err := iam.SAMFunctionStatements(props, func(v any) (any, error) { return cfn.Resolve(v, b.cctx) })
		if err != nil {
			return fmt.Errorf("function %s: %w", id, err)
		}
		if f.Credentials, err = s.iam.AddFunction(id, stmts); err != nil {
			return fmt.Errorf("function %s: %w", id, err)
		}
		for k, v := range f.Env {
			f.Env[k] = b.r.localizeURL(v)
		}
		// The SDK reads these, so functions reach the local services
		// without any code of theirs knowing about the stack.
		f.Env["AWS_ENDPOINT_URL_DYNAMODB"] = s.dynamo.URL()
		f.Env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = s.dynamo.URL()
		f.Env["AWS_ENDPOINT_URL_SQS"] = s.sqs.URL()
		for k, v := range opts.Env[id] {
			f.Env[k] = v
		}
		b.fns = append(b.fns, f)
		pkgs[id] = f.Package
	}
	var err error
	s.runtime, err = lambdarun.New(lambdarun.Options{Logger: opts.Logger, LogWriter: opts.FunctionLogs, Region: opts.Region, AccountID: opts.AccountID})
	if err != nil {
		return err
	}
	b.say("building %d functions (the first build compiles for a few minutes; later ones reuse Go's cache)", len(pkgs))
	bins, err := s.runtime.Build(ctx, lambdarun.BuildSpec{RepoRoot: b.tmpl.Dir, Functions: pkgs, OutDir: opts.BuildDir, Progress: opts.Progress})
	if err != nil {
		return err
	}
	b.bins = bins
	for _, f := range b.fns {
		if err := s.runtime.Register(lambdarun.Function{Name: f.ID, Binary: bins[f.ID], Env: f.Env, Timeout: f.Timeout, MemoryMB: f.MemoryMB, MaxConcurrency: opts.MaxConcurrency, Credentials: f.Credentials}); err != nil {
			return err
		}
		s.Functions = append(s.Functions, f.ID)
	}
	return nil
}

func (b *builder) startHTTPAPIs(ctx context.Context) error {
	s, opts, r := b.s, b.opts, b.r
	apis, err := httpAPIs(b.cctx, r, b.fns)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(apis)) {
		api := apis[id]
		l := b.httpL[id]
		if l == nil { // SAM's implicit API
			if l, err = b.listen(firstOr(len(b.httpL) == 0, opts.HTTPAddr)); err != nil {
				return err
			}
			b.httpL[id], r.apiEndpoint[id] = l, "http://"+l.Addr().String()
		}
		api.Config.APIID, api.Config.Region, api.Config.AccountID, api.Config.Logger = r.apiIDs[id], opts.Region, opts.AccountID, opts.Logger
		for _, ja := range api.jwt {
			v, err := newClaimsVerifier(ctx, ja.Issuer, ja.Audience)
			if err != nil {
				return fmt.Errorf("HttpApi %s authorizer %s: %w", id, ja.Name, err)
			}
			s.closers = append(s.closers, v.Close)
			api.Config.Authorizers = append(api.Config.Authorizers, httpgw.JWTAuthorizer{Name: ja.Name, IdentitySource: ja.IdentitySource, Issuer: ja.Issuer, Audience: ja.Audience, Verifier: v})
		}
		gw, err := httpgw.New(api.Config, s.runtime)
		if err != nil {
			return fmt.Errorf("HttpApi %s: %w", id, err)
		}
		s.serve(l, gw)
		for _, rt := range api.Config.Routes {
			s.HTTPRoutes = append(s.HTTPRoutes, fmt.Sprintf("%-6s %-40s -> %s", rt.Method, rt.Path, rt.Function))
		}
		if s.Endpoints.HTTPAPI == "" {
			s.Endpoints.HTTPAPI = r.apiEndpoint[id]
			if st := api.Config.Stage; st != "" && st != httpgw.DefaultStage {
				s.Endpoints.HTTPAPI += "/" + st
			}
		}
	}
	// By path, then method.
	slices.SortFunc(s.HTTPRoutes, func(a, b string) int { return strings.Compare(a[7:], b[7:]) })
	return nil
}

func (b *builder) startWebSocketAPIs(context.Context) error {
	s := b.s
	apis, err := wsAPIs(b.cctx, b.r)
	if err != nil {
		return err
	}
	timing := b.opts.Timing.management() // one account throttle for every API
	for _, id := range slices.Sorted(maps.Keys(apis)) {
		api := apis[id]
		api.Config.Limits, api.Config.Logger, api.Config.Auth, api.Config.Timing = b.opts.WebSocketLimits, b.opts.Logger, s.iam, timing
		api.Config.PushFaults = b.opts.PushFaults
		gw, err := wsgw.New(api.Config, s.runtime)
		if err != nil {
			return fmt.Errorf("WebSocket API %s: %w", id, err)
		}
		s.ws = append(s.ws, gw)
		s.serve(b.wsL[id], gw)
		for _, key := range slices.Sorted(maps.Keys(api.Config.Routes)) {
			s.WSRoutes = append(s.WSRoutes, fmt.Sprintf("%-12s -> %s", key, api.Config.Routes[key].Function))
		}
		if s.Endpoints.WebSocket == "" {
			s.Endpoints.WebSocket = b.r.apiEndpoint[id] + "/" + api.Config.Stage
			s.Endpoints.Management = strings.Replace(s.Endpoints.WebSocket, "ws://", "http://", 1)
		}
	}
	return nil
}

func (b *builder) startStreamMappings(ctx context.Context) error {
	resources := map[string]map[string]any{}
	for _, id := range b.tmpl.ResourceIDs("AWS::Lambda::EventSourceMapping") {
		on, err := b.cctx.Enabled(id)
		if err != nil {
			return err
		}
		if !on {
			continue
		}
		props, err := b.cctx.Properties(id)
		if err != nil {
			return err
		}
		// FunctionName may be a name (Ref) or an ARN (Fn::GetAtt Arn).
		if fn, _ := props["FunctionName"].(string); fn != "" {
			if name, ok := b.r.functionByARN(fn); ok {
				props["FunctionName"] = name
			}
		}
		resources[id] = props
	}
	maps, err := streamMappings(b.fns, resources)
	if err != nil {
		return err
	}
	if b.opts.DataDir != "" {
		if b.s.checks, err = loadCheckpoints(b.opts.DataDir); err != nil {
			return err
		}
		b.s.stopSave = make(chan struct{})
		go b.s.checks.saveEvery(b.s.stopSave, func(err error) { b.s.log.Error("devstack: save checkpoints", "err", err) })
	}
	for _, m := range maps {
		if err := b.checkStreamAccess(m); err != nil {
			return err
		}
		eo := esm.Options{Region: b.opts.Region, AccountID: b.opts.AccountID, Logger: b.opts.Logger,
			OnFailure: b.sendOnFailure(m.FunctionName), PollInterval: b.opts.Timing.streamPollInterval()}
		if c := b.s.checks; c != nil {
			key := mappingKey(m)
			eo.ResumeAfter = c.get(key)
			eo.OnCheckpoint = func(seq string) { c.set(key, seq) }
		}
		p, err := esm.Start(ctx, b.s.dynamo, b.s.runtime, m, eo)
		if err != nil {
			return fmt.Errorf("event source mapping %s: %w", m.FunctionName, err)
		}
		b.s.pollers = append(b.s.pollers, p)
	}
	return b.startSQSMappings(ctx, resources)
}

// checkStreamAccess refuses a mapping whose function's role may not read
// the stream, as CreateEventSourceMapping does: Lambda polls with the
// function's execution role.
// https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#events-dynamodb-permissions
func (b *builder) checkStreamAccess(m esm.Mapping) error {
	var creds aws.Credentials
	for _, f := range b.fns {
		if f.ID == m.FunctionName {
			creds = f.Credentials
		}
	}
	p, ok := b.s.iam.Principal(creds.AccessKeyID)
	if !ok {
		return fmt.Errorf("event source mapping %s: the function has no credentials", m.FunctionName)
	}
	for _, action := range []string{"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream", "dynamodb:ListStreams"} {
		if err := p.Authorize(action, m.StreamARN); err != nil {
			return fmt.Errorf("event source mapping %s: InvalidParameterValueException: Cannot access stream %s. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM. (%w)", m.FunctionName, m.StreamARN, err)
		}
	}
	return nil
}

// serve runs an HTTP server on l until Close.
func (s *Stack) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
}

// adminHandler serves the token issuer and, beside it, the stack's own
// read-only views: GET /_devstack/failures lists the batches the stream
// mappings sent to their on-failure destinations.
func (s *Stack) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.issuer.Handler())
	mux.HandleFunc("GET /_devstack/failures", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fails := s.Failures()
		if fails == nil {
			fails = []esm.FailureRecord{}
		}
		json.NewEncoder(w).Encode(fails)
	})
	return mux
}

// Mint returns a development token for a user.
func (s *Stack) Mint(sub, name string) (string, error) { return s.issuer.Mint(sub, name) }

// AdminCredentials are the credentials the local endpoints allow
// everything: for test clients and developer tools, never for functions.
func (s *Stack) AdminCredentials() aws.Credentials { return s.admin }

// Region is the region the stack reports and signatures must be scoped to.
func (s *Stack) Region() string { return s.region }

// AccountID is the account in the stack's ARNs and queue URLs.
func (s *Stack) AccountID() string { return s.account }

// Runtime exposes the function runtime (for invocation statistics).
func (s *Stack) Runtime() *lambdarun.Runtime { return s.runtime }

// FaultedPushes counts the @connections POSTs answered with an injected
// fault (Options.PushFaults) so far, over every WebSocket API.
func (s *Stack) FaultedPushes() int64 {
	var n int64
	for _, gw := range s.ws {
		n += gw.FaultedPosts()
	}
	return n
}

// Failures lists the batches the stream mappings gave up on, as their
// OnFailure destinations would have received them.
func (s *Stack) Failures() []esm.FailureRecord {
	var out []esm.FailureRecord
	for _, p := range s.pollers {
		out = append(out, p.Failures()...)
	}
	return out
}

// Close stops everything: WebSockets close with 1001 and their $disconnect
// routes run, then the servers, the pollers and the function processes stop.
func (s *Stack) Close(ctx context.Context) error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.isClosed {
		return nil
	}
	s.isClosed = true
	var errs []error
	if s.watch != nil {
		s.watch.close()
	}
	for _, gw := range s.ws {
		errs = append(errs, gw.Shutdown(ctx))
	}
	for _, p := range s.pollers {
		p.Close()
	}
	for _, p := range s.sqsPollers {
		p.Close()
	}
	if s.checks != nil {
		// The pollers are stopped: these are the final positions.
		close(s.stopSave)
		errs = append(errs, s.checks.save())
	}
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	if s.runtime != nil {
		errs = append(errs, s.runtime.Close(ctx))
	}
	if s.dynamo != nil {
		s.dynamo.Close()
	}
	if s.sqs != nil {
		s.sqs.Close()
	}
	for _, c := range s.closers {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// localID derives a stable API Gateway-style id (10 lowercase characters)
// from a logical id, so local URLs and logs do not change between runs.
func localID(logicalID string) string {
	sum := sha256.Sum256([]byte(logicalID))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:10]
}

// Ready describes a running stack for other processes: what --ready-file
// writes and `devstack invoke --stack` reads. It holds local credentials,
// so it is written readable by its owner only.
type Ready struct {
	Endpoints
	PID       int               `json:"pid"`
	Region    string            `json:"region"`
	AccountID string            `json:"accountId"`
	StackName string            `json:"stackName"`
	Tables    map[string]string `json:"tables"` // logical id -> table name
	Admin     struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	} `json:"adminCredentials"`
	DataDir   string                   `json:"dataDir,omitempty"`
	RepoRoot  string                   `json:"repoRoot"` // where the functions build from
	Functions map[string]ReadyFunction `json:"functions"`
}

// ReadyFunction is how the stack runs a function: a process started with
// this package, environment and credentials behaves as the stack's own.
type ReadyFunction struct {
	Package     string            `json:"package"`
	Env         map[string]string `json:"env"`
	TimeoutMS   int64             `json:"timeoutMs"`
	MemoryMB    int               `json:"memoryMb"`
	Credentials struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken,omitempty"`
	} `json:"credentials"`
}

// Ready returns the description of the running stack.
func (s *Stack) Ready() Ready {
	r := s.ready
	r.Endpoints, r.PID = s.Endpoints, os.Getpid()
	r.Admin.AccessKeyID, r.Admin.SecretAccessKey = s.admin.AccessKeyID, s.admin.SecretAccessKey
	return r
}

func (b *builder) describeReady() error {
	root, err := filepath.Abs(b.tmpl.Dir)
	if err != nil {
		return err
	}
	r := Ready{Region: b.opts.Region, AccountID: b.opts.AccountID, StackName: b.opts.StackName, DataDir: b.opts.DataDir,
		RepoRoot: root, Tables: map[string]string{}, Functions: map[string]ReadyFunction{}}
	for _, id := range b.tableIDs {
		r.Tables[id] = b.r.tableNames[id]
	}
	for _, f := range b.fns {
		rf := ReadyFunction{Package: f.Package, Env: f.Env, TimeoutMS: f.Timeout.Milliseconds(), MemoryMB: f.MemoryMB}
		rf.Credentials.AccessKeyID, rf.Credentials.SecretAccessKey, rf.Credentials.SessionToken = f.Credentials.AccessKeyID, f.Credentials.SecretAccessKey, f.Credentials.SessionToken
		r.Functions[f.ID] = rf
	}
	b.s.ready = r
	return nil
}
