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
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/groupcast/groupcast/pkg/cfn"
	"github.com/groupcast/groupcast/pkg/cfn/samcheck"
	"github.com/groupcast/groupcast/pkg/localstack/dynamo"
	"github.com/groupcast/groupcast/pkg/localstack/esm"
	"github.com/groupcast/groupcast/pkg/localstack/httpgw"
	"github.com/groupcast/groupcast/pkg/localstack/lambdarun"
	"github.com/groupcast/groupcast/pkg/localstack/tokens"
	"github.com/groupcast/groupcast/pkg/localstack/wsgw"
)

// Options configure a stack. Addresses default to free loopback ports.
type Options struct {
	Template   string            // path to template.yaml
	Parameters map[string]string // parameter overrides

	HTTPAddr, WebSocketAddr, DynamoDBAddr, TokensAddr string

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

	Logger       *slog.Logger
	FunctionLogs io.Writer // labelled function output; default os.Stderr
}

func (o *Options) setDefaults() {
	if o.Template == "" {
		o.Template = "template.yaml"
	}
	for _, a := range []*string{&o.HTTPAddr, &o.WebSocketAddr, &o.DynamoDBAddr, &o.TokensAddr} {
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
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "000000000000"
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

	log      *slog.Logger
	dynamo   *dynamo.Server
	runtime  *lambdarun.Runtime
	issuer   *tokens.Issuer
	servers  []*http.Server
	ws       []*wsgw.Gateway
	pollers  []*esm.Poller
	closers  []func(context.Context) error
	closeMu  sync.Mutex
	isClosed bool
}

// Start brings the whole template up and returns once every endpoint
// accepts connections. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	opts.setDefaults()
	s := &Stack{log: opts.Logger}
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()

	tmpl, err := cfn.Load(opts.Template)
	if err != nil {
		return nil, err
	}
	repoRoot := tmpl.Dir

	// Listeners first: their addresses are part of what the template's
	// intrinsics resolve to (endpoints, the token issuer).
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		s.closers = append(s.closers, func(context.Context) error { l.Close(); return nil })
		return l, nil
	}
	tokL, err := listen(opts.TokensAddr)
	if err != nil {
		return nil, err
	}
	issuerURL := "http://" + tokL.Addr().String()
	s.issuer, err = tokens.New(tokens.Options{Issuer: issuerURL, Audience: opts.Audience})
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	s.serve(tokL, s.adminHandler())
	s.Endpoints.Tokens = issuerURL + "/token"

	params := map[string]string{}
	if _, ok := tmpl.Parameters[opts.IssuerParameter]; ok {
		params[opts.IssuerParameter] = issuerURL
	}
	if _, ok := tmpl.Parameters[opts.AudienceParameter]; ok {
		params[opts.AudienceParameter] = opts.Audience
	}
	for k, v := range opts.Parameters {
		params[k] = v
	}
	r := newResolver(opts.Region, opts.AccountID)
	pseudo := cfn.Pseudo{Region: opts.Region, AccountID: opts.AccountID, StackName: opts.StackName, Partition: "aws", URLSuffix: "amazonaws.com"}
	cctx, err := cfn.NewContext(tmpl, cfn.Options{
		Parameters: params,
		Pseudo:     pseudo,
		Resources:  r,
	})
	if err != nil {
		return nil, err
	}
	if err := checkSupported(cctx); err != nil {
		return nil, err
	}
	// The same checks the template test runs, so a broken template fails
	// here with every problem named instead of half-starting.
	if err := samcheck.Check(tmpl, samcheck.Options{Parameters: params, Pseudo: pseudo}); err != nil {
		return nil, fmt.Errorf("template %s: %w", opts.Template, err)
	}

	// Names and ids every resource resolves to.
	httpL := map[string]net.Listener{}
	wsL := map[string]net.Listener{}
	var tableIDs, functionIDs []string
	for _, id := range sortedKeys(tmpl.Resources) {
		if on, err := cctx.Enabled(id); err != nil || !on {
			if err != nil {
				return nil, err
			}
			continue
		}
		res := tmpl.Resources[id]
		switch res.Type {
		case "AWS::DynamoDB::Table":
			name, _ := res.Properties["TableName"].(string)
			if name == "" {
				name = opts.StackName + "-" + id
			}
			r.tableNames[id] = name
			tableIDs = append(tableIDs, id)
		case "AWS::Serverless::Function":
			r.functions[id] = id
			if opts.Only == "" || opts.Only == id {
				functionIDs = append(functionIDs, id)
			}
		case "AWS::SQS::Queue":
			r.queues[id] = opts.StackName + "-" + id
		case "AWS::Serverless::HttpApi":
			r.apiIDs[id] = localID(id)
			addr := "127.0.0.1:0"
			if len(httpL) == 0 {
				addr = opts.HTTPAddr
			}
			if httpL[id], err = listen(addr); err != nil {
				return nil, err
			}
			r.apiEndpoint[id] = "http://" + httpL[id].Addr().String()
		case "AWS::ApiGatewayV2::Api":
			r.apiIDs[id] = localID(id)
			addr := "127.0.0.1:0"
			if len(wsL) == 0 {
				addr = opts.WebSocketAddr
			}
			if wsL[id], err = listen(addr); err != nil {
				return nil, err
			}
			r.apiEndpoint[id] = "ws://" + wsL[id].Addr().String()
		}
	}

	// DynamoDB and the tables; stream ARNs exist only after creation.
	s.dynamo, err = dynamo.Start(ctx, dynamo.Options{Addr: opts.DynamoDBAddr, Backend: opts.DynamoDBEndpoint, Region: opts.Region, AccountID: opts.AccountID, Retention: opts.StreamRetention, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("dynamodb: %w", err)
	}
	s.Endpoints.DynamoDB = s.dynamo.URL()
	for _, id := range tableIDs {
		props, err := cctx.Properties(id)
		if err != nil {
			return nil, err
		}
		spec, err := tableSpec(id, r.tableNames[id], props)
		if err != nil {
			return nil, err
		}
		info, err := s.dynamo.CreateTable(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("create table %s: %w", id, err)
		}
		r.streamARNs[id] = info.StreamARN
		s.Tables = append(s.Tables, info.Name)
	}

	// Functions: resolve, build, register.
	var fns []function
	pkgs := map[string]string{}
	for _, id := range functionIDs {
		props, err := cctx.Properties(id)
		if err != nil {
			return nil, err
		}
		f, err := functionPlan(id, tmpl, props)
		if err != nil {
			return nil, err
		}
		for k, v := range f.Env {
			f.Env[k] = r.localizeURL(v)
		}
		// The SDK reads these, so functions reach the local services
		// without any code of theirs knowing about the stack.
		f.Env["AWS_ENDPOINT_URL_DYNAMODB"] = s.dynamo.URL()
		f.Env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = s.dynamo.URL()
		for k, v := range opts.Env[id] {
			f.Env[k] = v
		}
		fns = append(fns, f)
		pkgs[id] = f.Package
	}
	s.runtime, err = lambdarun.New(lambdarun.Options{Logger: opts.Logger, LogWriter: opts.FunctionLogs, Region: opts.Region, AccountID: opts.AccountID})
	if err != nil {
		return nil, err
	}
	bins, err := s.runtime.Build(ctx, lambdarun.BuildSpec{RepoRoot: repoRoot, Functions: pkgs, OutDir: opts.BuildDir})
	if err != nil {
		return nil, err
	}
	for _, f := range fns {
		if err := s.runtime.Register(lambdarun.Function{Name: f.ID, Binary: bins[f.ID], Env: f.Env, Timeout: f.Timeout, MemoryMB: f.MemoryMB, MaxConcurrency: opts.MaxConcurrency}); err != nil {
			return nil, err
		}
		s.Functions = append(s.Functions, f.ID)
	}

	if opts.Only != "" {
		if len(s.Functions) == 0 {
			return nil, fmt.Errorf("the template has no AWS::Serverless::Function %q", opts.Only)
		}
		return s, nil
	}

	// HTTP APIs.
	hapis, err := httpAPIs(cctx, r, fns)
	if err != nil {
		return nil, err
	}
	for _, id := range sortedKeys(hapis) {
		api := hapis[id]
		l := httpL[id]
		if l == nil { // SAM's implicit API
			if l, err = listen(opts.HTTPAddr); err != nil {
				return nil, err
			}
			r.apiEndpoint[id] = "http://" + l.Addr().String()
		}
		api.Config.APIID, api.Config.Region, api.Config.AccountID, api.Config.Logger = r.apiIDs[id], opts.Region, opts.AccountID, opts.Logger
		for _, ja := range api.jwt {
			v, err := newClaimsVerifier(ctx, ja.Issuer, ja.Audience)
			if err != nil {
				return nil, fmt.Errorf("HttpApi %s authorizer %s: %w", id, ja.Name, err)
			}
			s.closers = append(s.closers, v.Close)
			api.Config.Authorizers = append(api.Config.Authorizers, httpgw.JWTAuthorizer{Name: ja.Name, IdentitySource: ja.IdentitySource, Issuer: ja.Issuer, Audience: ja.Audience, Verifier: v})
		}
		gw, err := httpgw.New(api.Config, s.runtime)
		if err != nil {
			return nil, fmt.Errorf("HttpApi %s: %w", id, err)
		}
		s.serve(l, gw)
		for _, rt := range api.Config.Routes {
			s.HTTPRoutes = append(s.HTTPRoutes, fmt.Sprintf("%-6s %-40s -> %s", rt.Method, rt.Path, rt.Function))
		}
		slices.SortFunc(s.HTTPRoutes, func(a, b string) int { return strings.Compare(a[7:], b[7:]) })
		if s.Endpoints.HTTPAPI == "" {
			s.Endpoints.HTTPAPI = r.apiEndpoint[id]
			if st := api.Config.Stage; st != "" && st != httpgw.DefaultStage {
				s.Endpoints.HTTPAPI += "/" + st
			}
		}
	}

	// WebSocket APIs.
	wapis, err := wsAPIs(cctx, r)
	if err != nil {
		return nil, err
	}
	for _, id := range sortedKeys(wapis) {
		api := wapis[id]
		api.Config.Limits, api.Config.Logger = opts.WebSocketLimits, opts.Logger
		gw, err := wsgw.New(api.Config, s.runtime)
		if err != nil {
			return nil, fmt.Errorf("WebSocket API %s: %w", id, err)
		}
		s.ws = append(s.ws, gw)
		s.serve(wsL[id], gw)
		for _, key := range sortedKeys(api.Config.Routes) {
			rt := api.Config.Routes[key]
			s.WSRoutes = append(s.WSRoutes, fmt.Sprintf("%-12s -> %s", key, rt.Function))
		}
		if s.Endpoints.WebSocket == "" {
			s.Endpoints.WebSocket = r.apiEndpoint[id] + "/" + api.Config.Stage
			s.Endpoints.Management = strings.Replace(s.Endpoints.WebSocket, "ws://", "http://", 1)
		}
	}

	// Stream event source mappings.
	maps, err := streamMappings(fns, r)
	if err != nil {
		return nil, err
	}
	for _, m := range maps {
		p, err := esm.Start(ctx, s.dynamo, s.runtime, m, esm.Options{Region: opts.Region, AccountID: opts.AccountID, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("event source mapping %s: %w", m.FunctionName, err)
		}
		s.pollers = append(s.pollers, p)
	}
	return s, nil
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

// Runtime exposes the function runtime (for invocation statistics).
func (s *Stack) Runtime() *lambdarun.Runtime { return s.runtime }

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
	for _, gw := range s.ws {
		errs = append(errs, gw.Shutdown(ctx))
	}
	for _, p := range s.pollers {
		p.Close()
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
