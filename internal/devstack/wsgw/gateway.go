// Package wsgw emulates an Amazon API Gateway WebSocket API with Lambda
// proxy integrations: the REQUEST authorizer and $connect on the handshake,
// route selection for messages, two-way route responses, $disconnect, API
// Gateway's limits, and the @connections management API that functions use
// to push messages to clients.
package wsgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/iam"
)

// Invoker runs a function with a JSON payload and returns its JSON response.
// A non-nil error means the invocation failed: a function error, a timeout or
// a crash.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// Route keys API Gateway reserves.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// DefaultRouteSelectionExpression is the expression most WebSocket APIs use.
const DefaultRouteSelectionExpression = "$request.body.action"

// Route is a route's Lambda proxy integration.
type Route struct {
	Function string
	// TwoWay is set when the route has a route response: the function's
	// response body is then sent back to the client.
	TwoWay bool
}

// Authorizer is a REQUEST Lambda authorizer on $connect.
type Authorizer struct {
	Function string
	// IdentitySources lists where the identity is read, e.g.
	// "route.request.querystring.token" or "route.request.header.Auth".
	// When one is missing or empty the handshake fails with 401 without
	// invoking the authorizer, as in API Gateway.
	IdentitySources []string
}

// Limits are API Gateway's WebSocket quotas; zero fields take the default.
type Limits struct {
	MaxMessageBytes  int64         // 128 KiB
	MaxFrameBytes    int64         // 32 KiB
	IdleTimeout      time.Duration // 10 minutes
	MaxConnectionAge time.Duration // 2 hours
	// SendQueueLength bounds the messages queued for one client.
	SendQueueLength int
	// IntegrationTimeout bounds each invocation (29 s in API Gateway).
	IntegrationTimeout time.Duration
}

// Defaults are API Gateway's quotas.
const (
	DefaultMaxMessageBytes    = 128 << 10
	DefaultMaxFrameBytes      = 32 << 10
	DefaultIdleTimeout        = 10 * time.Minute
	DefaultMaxConnectionAge   = 2 * time.Hour
	DefaultIntegrationTimeout = 29 * time.Second
	// DefaultSendQueueLength: API Gateway does not publish its per-client
	// buffer, only that a full one makes @connections answer 429. 128
	// messages absorb a fan-out burst to a client that reads a little late,
	// while a client that stopped reading costs at most 128 × 128 KiB =
	// 16 MiB before posters are told to back off.
	DefaultSendQueueLength = 128
)

func (l Limits) withDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConnectionAge <= 0 {
		l.MaxConnectionAge = DefaultMaxConnectionAge
	}
	if l.SendQueueLength <= 0 {
		l.SendQueueLength = DefaultSendQueueLength
	}
	if l.IntegrationTimeout <= 0 {
		l.IntegrationTimeout = DefaultIntegrationTimeout
	}
	return l
}

// Config describes one WebSocket API stage.
type Config struct {
	Stage     string // e.g. "dev"; the API is served at /{Stage}
	APIID     string
	Region    string
	AccountID string
	// DomainName is reported in requestContext; the handshake's Host when
	// empty, so a function that builds its callback URL from domainName and
	// stage reaches this gateway.
	DomainName               string
	RouteSelectionExpression string // DefaultRouteSelectionExpression when empty
	Routes                   map[string]Route
	Authorizer               *Authorizer
	Limits                   Limits
	Logger                   *slog.Logger
	// Auth verifies the SigV4 signature of every @connections call and
	// names its caller, whose policies must allow
	// execute-api:ManageConnections, as with API Gateway. Required.
	Auth Authenticator
	// Timing adds AWS's @connections round trip and account throttle
	// (timing.go); zero for none.
	Timing Timing
	// PushFaults lets a client ask, at connect time, for every @connections
	// POST to it to fail (faults.go). Local stack only, off by default.
	PushFaults bool
}

// Authenticator verifies a request's SigV4 signature and returns its
// caller (the local stack's iam.Registry).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte, service string) (*iam.Principal, error)
}

var stageName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Gateway serves the WebSocket endpoint and its management API. It is an
// http.Handler; Shutdown closes every connection.
type Gateway struct {
	cfg       Config
	limits    Limits
	inv       Invoker
	log       *slog.Logger
	bodyPath  []string // route selection expression as a JSON path
	mux       *http.ServeMux
	baseCtx   context.Context // outlives requests: $disconnect runs after them
	cancelAll context.CancelFunc

	faulted atomic.Int64 // POSTs answered with an injected fault

	mu           sync.Mutex
	conns        map[string]*connection
	shuttingDown bool
	wg           sync.WaitGroup // one per connection until its $disconnect ran
}

// New validates cfg and returns a Gateway invoking functions through inv.
func New(cfg Config, inv Invoker) (*Gateway, error) {
	if inv == nil {
		return nil, errors.New("wsgw: nil invoker")
	}
	if !stageName.MatchString(cfg.Stage) {
		return nil, fmt.Errorf("wsgw: invalid stage name %q", cfg.Stage)
	}
	if cfg.RouteSelectionExpression == "" {
		cfg.RouteSelectionExpression = DefaultRouteSelectionExpression
	}
	path, ok := strings.CutPrefix(cfg.RouteSelectionExpression, "$request.body.")
	if !ok || path == "" {
		return nil, fmt.Errorf("wsgw: unsupported route selection expression %q (want $request.body.<path>)", cfg.RouteSelectionExpression)
	}
	if cfg.Auth == nil {
		return nil, errors.New("wsgw: no Auth: the @connections API only takes signed requests")
	}
	for key, r := range cfg.Routes {
		if r.Function == "" {
			return nil, fmt.Errorf("wsgw: route %q has no function", key)
		}
	}
	if a := cfg.Authorizer; a != nil {
		if a.Function == "" {
			return nil, errors.New("wsgw: authorizer has no function")
		}
		for _, src := range a.IdentitySources {
			if _, _, err := parseIdentitySource(src); err != nil {
				return nil, fmt.Errorf("wsgw: %w", err)
			}
		}
	}
	g := &Gateway{
		cfg:      cfg,
		limits:   cfg.Limits.withDefaults(),
		inv:      inv,
		log:      cfg.Logger,
		bodyPath: strings.Split(path, "."),
		conns:    map[string]*connection{},
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.baseCtx, g.cancelAll = context.WithCancel(context.Background())
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("GET /"+cfg.Stage, g.handleConnect)
	mgmt := "/" + cfg.Stage + "/@connections/{connectionId}"
	g.mux.HandleFunc("POST "+mgmt, g.timed(g.handlePost))
	g.mux.HandleFunc("GET "+mgmt, g.timed(g.handleGet))
	g.mux.HandleFunc("DELETE "+mgmt, g.timed(g.handleDelete))
	return g, nil
}

// ServeHTTP serves WebSocket handshakes at /{stage} and the management API
// at /{stage}/@connections/{connectionId}.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mux.ServeHTTP(w, r)
}

// Shutdown closes every connection with 1001 (going away), runs their
// $disconnect routes and waits for them, or for ctx to end. New handshakes
// are refused from the start.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.shuttingDown = true
	open := make([]*connection, 0, len(g.conns))
	for _, c := range g.conns {
		open = append(open, c)
	}
	g.mu.Unlock()

	for _, c := range open {
		c.close(closeInfo{code: 1001, reason: "Going away", byServer: true})
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		g.cancelAll()
		return nil
	case <-ctx.Done():
		g.cancelAll() // abandon the $disconnect invocations still running
		return fmt.Errorf("wsgw: shutdown: %w", ctx.Err())
	}
}

// register makes c postable. It fails once Shutdown has begun.
func (g *Gateway) register(c *connection) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shuttingDown {
		return false
	}
	g.conns[c.id] = c
	g.wg.Add(1) // released when c's $disconnect has run
	return true
}

func (g *Gateway) unregister(id string) {
	g.mu.Lock()
	delete(g.conns, id)
	g.mu.Unlock()
}

func (g *Gateway) lookup(id string) (*connection, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.conns[id]
	return c, ok
}

func (g *Gateway) domainName(r *http.Request) string {
	if g.cfg.DomainName != "" {
		return g.cfg.DomainName
	}
	return r.Host
}
