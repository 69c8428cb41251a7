// Package httpgw emulates an Amazon API Gateway HTTP API with Lambda proxy
// integrations (payload format 2.0), JWT authorizers and CORS, so the
// functions that deploy behind API Gateway run unchanged on a developer's
// machine.
package httpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/apigwid"
)

// Invoker runs a function with a JSON payload and returns its JSON response.
// A non-nil error means the invocation failed: a function error, a timeout or
// a crash.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// TokenVerifier checks a JWT (signature against the issuer's keys, expiry)
// and returns its claims.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (claims map[string]any, err error)
}

// DefaultStage is the stage HTTP APIs create by default; it is served
// without a path prefix.
const DefaultStage = "$default"

// DefaultRouteKey is the catch-all route used when no other route matches.
const DefaultRouteKey = "$default"

// DefaultIdentitySource is where a JWT authorizer looks for the token unless
// configured otherwise, as in API Gateway.
const DefaultIdentitySource = "$request.header.Authorization"

// MaxPayloadBytes is API Gateway's HTTP API request payload quota (10 MB).
const MaxPayloadBytes = 10 << 20

// MaxLambdaPayloadBytes is Lambda's quota on a synchronous invocation's
// request payload (6 MB): the whole event, so a body well under
// MaxPayloadBytes can still exceed it, for example once base64-encoded.
// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
const MaxLambdaPayloadBytes = 6 << 20

// DefaultIntegrationTimeout is the HTTP API's maximum integration timeout:
// API Gateway gives up on a Lambda integration after 30 seconds.
const DefaultIntegrationTimeout = 30 * time.Second

// Route maps a route key to a function. Path "$default" (with any Method)
// makes it the $default route.
type Route struct {
	Method     string // GET, POST, ... or ANY
	Path       string // /groups/{groupId}/posts, /files/{proxy+} or $default
	Function   string
	Authorizer string // name of a JWTAuthorizer; empty for none
}

// Key returns the route key API Gateway reports, e.g. "POST /groups/{groupId}".
func (r Route) Key() string {
	if r.Path == DefaultRouteKey {
		return DefaultRouteKey
	}
	return strings.ToUpper(r.Method) + " " + r.Path
}

// JWTAuthorizer is an HTTP API JWT authorizer.
type JWTAuthorizer struct {
	Name string
	// IdentitySource is "$request.header.<Name>" or
	// "$request.querystring.<name>"; DefaultIdentitySource when empty.
	IdentitySource string
	Issuer         string
	// Audience lists accepted values of the token's aud (or client_id) claim.
	Audience []string
	Verifier TokenVerifier
}

// CORS is an HTTP API's CORS configuration.
type CORS struct {
	AllowOrigins     []string
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	MaxAge           time.Duration
	AllowCredentials bool
}

// Config describes one HTTP API.
type Config struct {
	APIID     string // e.g. "localhttp1"
	AccountID string // e.g. "123456789012"
	Region    string
	// Stage is the stage name; DefaultStage (or empty) serves without prefix.
	Stage string
	// DomainName is reported in requestContext; the request's Host when empty.
	DomainName  string
	Routes      []Route
	Authorizers []JWTAuthorizer
	CORS        *CORS // nil disables CORS handling
	// IntegrationTimeout bounds each invocation; DefaultIntegrationTimeout when zero.
	IntegrationTimeout time.Duration
	Logger             *slog.Logger
	// Now is the clock for request times; time.Now when nil.
	Now func() time.Time
}

// Gateway is an http.Handler serving one HTTP API.
type Gateway struct {
	cfg         Config
	invoker     Invoker
	router      *router
	authorizers map[string]JWTAuthorizer
	log         *slog.Logger
	now         func() time.Time
}

// New validates cfg and returns a Gateway invoking functions through inv.
func New(cfg Config, inv Invoker) (*Gateway, error) {
	if inv == nil {
		return nil, errors.New("httpgw: nil invoker")
	}
	if cfg.Stage == "" {
		cfg.Stage = DefaultStage
	}
	if strings.Contains(cfg.Stage, "/") {
		return nil, fmt.Errorf("httpgw: stage %q must not contain '/'", cfg.Stage)
	}
	if cfg.IntegrationTimeout <= 0 {
		cfg.IntegrationTimeout = DefaultIntegrationTimeout
	}
	g := &Gateway{
		cfg:         cfg,
		invoker:     inv,
		authorizers: make(map[string]JWTAuthorizer, len(cfg.Authorizers)),
		log:         cfg.Logger,
		now:         cfg.Now,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	for _, a := range cfg.Authorizers {
		if a.Name == "" {
			return nil, errors.New("httpgw: authorizer without a name")
		}
		if a.Verifier == nil {
			return nil, fmt.Errorf("httpgw: authorizer %q has no verifier", a.Name)
		}
		if a.IdentitySource == "" {
			a.IdentitySource = DefaultIdentitySource
		}
		if _, _, err := parseIdentitySource(a.IdentitySource); err != nil {
			return nil, fmt.Errorf("httpgw: authorizer %q: %w", a.Name, err)
		}
		g.authorizers[a.Name] = a
	}
	for _, r := range cfg.Routes {
		if r.Authorizer != "" {
			if _, ok := g.authorizers[r.Authorizer]; !ok {
				return nil, fmt.Errorf("httpgw: route %q uses unknown authorizer %q", r.Key(), r.Authorizer)
			}
		}
		if r.Function == "" {
			return nil, fmt.Errorf("httpgw: route %q has no function", r.Key())
		}
	}
	rt, err := newRouter(cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("httpgw: %w", err)
	}
	g.router = rt
	return g, nil
}

// ServeHTTP handles one request the way API Gateway does: CORS preflight,
// route match, authorizer, integration, response mapping.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	requestID := apigwid.New()
	w.Header().Set("Apigw-Requestid", requestID)

	if g.cfg.CORS != nil && isPreflight(r) {
		g.cfg.CORS.writePreflight(w, r)
		return
	}
	if g.cfg.CORS != nil {
		g.cfg.CORS.addResponseHeaders(w.Header(), r)
	}

	path, ok := g.stripStage(r.URL.EscapedPath())
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}
	route, params, ok := g.router.match(r.Method, path)
	if !ok {
		writeMessage(w, http.StatusNotFound, "Not Found")
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayloadBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeContentLengthExceeded(w)
			return
		}
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}

	var jwtDesc *jwtDescription
	if route.Authorizer != "" {
		claims, err := g.authorize(r, g.authorizers[route.Authorizer])
		if err != nil {
			g.log.InfoContext(r.Context(), "unauthorized", "route", route.Key(), "requestId", requestID, "err", err)
			w.Header().Set("Www-Authenticate", `Bearer error="invalid_token"`)
			writeMessage(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		jwtDesc = &jwtDescription{claims: claims}
	}

	event := g.buildEvent(r, eventInput{
		route:     route,
		params:    params,
		body:      body,
		requestID: requestID,
		at:        start,
		jwt:       jwtDesc,
	})
	payload, err := json.Marshal(event)
	if err != nil {
		g.log.ErrorContext(r.Context(), "encode event", "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if len(payload) > MaxLambdaPayloadBytes {
		// Lambda refuses the invocation and API Gateway answers 413 without
		// the function running.
		g.log.InfoContext(r.Context(), "event exceeds Lambda's payload quota", "route", route.Key(), "requestId", requestID, "bytes", len(payload))
		writeRequestTooLong(w)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.IntegrationTimeout)
	defer cancel()
	out, err := g.invoker.Invoke(ctx, route.Function, payload)
	if err != nil {
		status, msg := http.StatusInternalServerError, "Internal Server Error"
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			// HTTP APIs answer 503 Service Unavailable when the
			// integration does not answer within the integration timeout.
			status, msg = http.StatusServiceUnavailable, "Service Unavailable"
		}
		g.log.ErrorContext(r.Context(), "integration failed", "route", route.Key(), "function", route.Function, "requestId", requestID, "err", err)
		writeMessage(w, status, msg)
		return
	}
	resp, err := parseResponse(out)
	if err != nil {
		g.log.ErrorContext(r.Context(), "malformed integration response", "route", route.Key(), "function", route.Function, "requestId", requestID, "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	resp.write(w, g.cfg.CORS != nil && g.cfg.CORS.allowsOrigin(r.Header.Get("Origin")))
}

// stripStage removes the "/{stage}" prefix of a named stage.
func (g *Gateway) stripStage(p string) (string, bool) {
	if g.cfg.Stage == DefaultStage {
		return p, true
	}
	prefix := "/" + g.cfg.Stage
	switch {
	case p == prefix:
		return "/", true
	case strings.HasPrefix(p, prefix+"/"):
		return p[len(prefix):], true
	}
	return "", false
}

// writeContentLengthExceeded answers a body over MaxPayloadBytes the way
// API Gateway's front door does, with a plain-text 413, as captured in
// https://github.com/koki-develop/lgtm-generator/issues/10.
func writeContentLengthExceeded(w http.ResponseWriter) {
	b := fmt.Sprintf("HTTP content length exceeded %d bytes.", MaxPayloadBytes)
	w.Header().Set("Content-Type", "text; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, b)
}

// requestTooLongBody is API Gateway's answer, byte for byte, when the Lambda
// event exceeds MaxLambdaPayloadBytes (413, x-amzn-errortype
// BadRequestException), as captured in
// https://github.com/koki-develop/lgtm-generator/issues/10.
const requestTooLongBody = `{"message": "Request Too Long"}`

func writeRequestTooLong(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", "BadRequestException")
	w.Header().Set("Content-Length", fmt.Sprint(len(requestTooLongBody)))
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = io.WriteString(w, requestTooLongBody)
}

// writeMessage writes API Gateway's own error shape: {"message":"..."}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
