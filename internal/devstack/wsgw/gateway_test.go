package wsgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/groupcast/groupcast/internal/devstack/iam"
	"github.com/groupcast/groupcast/internal/golden"
)

// testTimeout bounds every wait in these tests so a bug fails instead of
// hanging; it is not a performance assertion.
const testTimeout = 10 * time.Second

// functionError mimics the runtime's function error: its JSON form carries
// errorMessage, which is how the gateway reads it.
type functionError struct{ message string }

func (e *functionError) Error() string { return "Error: " + e.message }
func (e *functionError) JSON() []byte {
	b, _ := json.Marshal(map[string]string{"errorType": "Error", "errorMessage": e.message})
	return b
}

type invocation struct {
	function string
	raw      []byte
	event    events.APIGatewayWebsocketProxyRequest
}

// fakeInvoker delivers every invocation on a channel and answers through
// handle.
type fakeInvoker struct {
	calls  chan invocation
	handle func(ctx context.Context, inv invocation) ([]byte, error)
}

func (f *fakeInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	inv := invocation{function: function, raw: payload}
	if err := json.Unmarshal(payload, &inv.event); err != nil {
		return nil, err
	}
	f.calls <- inv
	return f.handle(ctx, inv)
}

// next returns the next invocation of function, skipping others.
func (f *fakeInvoker) next(t *testing.T, function string) invocation {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case inv := <-f.calls:
			if inv.function == function {
				return inv
			}
		case <-deadline:
			t.Fatalf("no invocation of %s", function)
		}
	}
}

// standardHandler plays the functions of a typical API.
func standardHandler(_ context.Context, inv invocation) ([]byte, error) {
	switch inv.function {
	case "Auth":
		var req authorizerRequest
		if err := json.Unmarshal(inv.raw, &req); err != nil {
			return nil, err
		}
		token := req.QueryStringParameters["token"]
		switch token {
		case "error":
			return nil, &functionError{message: "boom"}
		case "unauthorized":
			return nil, &functionError{message: "Unauthorized"}
		}
		effect := "Allow"
		if token == "deny" {
			effect = "Deny"
		}
		return json.Marshal(events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: "user-" + token,
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
				Version:   "2012-10-17",
				Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{req.MethodArn}}},
			},
			Context: map[string]any{"userId": token, "displayName": "User " + token},
		})
	case "Connect":
		status := 200
		if s := inv.event.QueryStringParameters["connectStatus"]; s != "" {
			fmt.Sscan(s, &status)
		}
		return json.Marshal(map[string]any{"statusCode": status})
	case "Subscribe":
		return []byte(`{"statusCode":200,"body":"{\"type\":\"subscribed\"}"}`), nil
	case "Default":
		return json.Marshal(map[string]any{"statusCode": 200, "body": "default:" + inv.event.Body})
	}
	return []byte(`{"statusCode":200}`), nil
}

type fixture struct {
	gw    *Gateway
	srv   *httptest.Server
	inv   *fakeInvoker
	cfg   Config
	iam   *iam.Registry
	admin aws.Credentials
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	inv := &fakeInvoker{calls: make(chan invocation, 100), handle: standardHandler}
	cfg := Config{
		Stage:     "dev",
		APIID:     "localws1",
		Region:    "us-east-1",
		AccountID: "123456789012",
		Routes: map[string]Route{
			RouteConnect:    {Function: "Connect"},
			RouteDisconnect: {Function: "Disconnect"},
			RouteDefault:    {Function: "Default", TwoWay: true},
			"subscribe":     {Function: "Subscribe", TwoWay: true},
			"oneway":        {Function: "OneWay"},
		},
		Authorizer: &Authorizer{Function: "Auth", IdentitySources: []string{"route.request.querystring.token"}},
	}
	reg := iam.NewRegistry(cfg.Region, cfg.AccountID, "test")
	admin, err := reg.AddAdmin(aws.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = reg
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, inv)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	return &fixture{gw: gw, srv: srv, inv: inv, cfg: cfg, iam: reg, admin: admin}
}

func (f *fixture) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/dev" + query
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// dial connects and returns the client and its connection id (from the
// $connect invocation).
func (f *fixture) dial(t *testing.T, query string) (*websocket.Conn, string) {
	t.Helper()
	c, resp, err := websocket.Dial(testCtx(t), f.wsURL(query), nil)
	if err != nil {
		t.Fatalf("dial: %v (status %v)", err, statusOf(resp))
	}
	t.Cleanup(func() { c.CloseNow() })
	connect := f.inv.next(t, "Connect")
	return c, connect.event.RequestContext.ConnectionID
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// management is a client signing with the fixture's admin credentials.
func (f *fixture) management(t *testing.T) *apigatewaymanagementapi.Client {
	return f.managementAs(f.admin)
}

func (f *fixture) managementAs(creds aws.Credentials) *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		BaseEndpoint: aws.String(f.srv.URL + "/dev"),
		Region:       "us-east-1",
		Credentials:  credentials.StaticCredentialsProvider{Value: creds},
	})
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name       string
		query      string
		wantStatus int // 0: connected
	}{
		{name: "missing identity source", query: "", wantStatus: 401},
		{name: "authorizer denies", query: "?token=deny", wantStatus: 403},
		{name: "authorizer fails", query: "?token=error", wantStatus: 500},
		{name: "authorizer says Unauthorized", query: "?token=unauthorized", wantStatus: 401},
		{name: "$connect answers 403", query: "?token=alice&connectStatus=403", wantStatus: 403},
		{name: "$connect answers 500", query: "?token=alice&connectStatus=500", wantStatus: 500},
		{name: "allowed", query: "?token=alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			c, resp, err := websocket.Dial(testCtx(t), f.wsURL(tt.query), nil)
			if tt.wantStatus != 0 {
				if err == nil {
					c.CloseNow()
					t.Fatal("handshake succeeded, want refusal")
				}
				if got := statusOf(resp); got != tt.wantStatus {
					t.Fatalf("status %d, want %d", got, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.CloseNow()
			connect := f.inv.next(t, "Connect")
			auth, _ := connect.event.RequestContext.Authorizer.(map[string]any)
			if auth["principalId"] != "user-alice" || auth["userId"] != "alice" || auth["displayName"] != "User alice" {
				t.Errorf("authorizer context = %v", auth)
			}
		})
	}
}

func TestAuthorizerEvent(t *testing.T) {
	f := newFixture(t, nil)
	authEvents := make(chan []byte, 1)
	f.inv.handle = func(ctx context.Context, inv invocation) ([]byte, error) {
		if inv.function == "Auth" {
			authEvents <- inv.raw
		}
		return standardHandler(ctx, inv)
	}
	f.dial(t, "?token=alice")
	var req authorizerRequest
	if err := json.Unmarshal(<-authEvents, &req); err != nil {
		t.Fatal(err)
	}
	if req.Type != "REQUEST" || req.MethodArn != "arn:aws:execute-api:us-east-1:123456789012:localws1/dev/$connect" {
		t.Errorf("type %q methodArn %q", req.Type, req.MethodArn)
	}
	rc := req.RequestContext
	if req.QueryStringParameters["token"] != "alice" || rc.EventType != "CONNECT" || rc.RouteKey != RouteConnect || rc.ConnectionID == "" {
		t.Errorf("request = %+v", req)
	}
}

// drain yields the invocations already delivered.
func drain(ch chan invocation) func(func(invocation) bool) {
	return func(yield func(invocation) bool) {
		for {
			select {
			case inv := <-ch:
				if !yield(inv) {
					return
				}
			default:
				return
			}
		}
	}
}

func TestMessageRouting(t *testing.T) {
	tests := []struct {
		name      string
		noDefault bool
		message   string
		wantReply string
		wantFn    string
	}{
		{name: "named two-way route", message: `{"action":"subscribe","groupIds":["g1"]}`, wantReply: `{"type":"subscribed"}`, wantFn: "Subscribe"},
		{name: "unknown action goes to $default", message: `{"action":"dance"}`, wantReply: `default:{"action":"dance"}`, wantFn: "Default"},
		{name: "non-JSON goes to $default", message: `hello`, wantReply: `default:hello`, wantFn: "Default"},
		{name: "no route and no $default", noDefault: true, message: `{"action":"dance"}`, wantReply: `"message":"Forbidden"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if tt.noDefault {
					delete(c.Routes, RouteDefault)
				}
			})
			c, id := f.dial(t, "?token=alice")
			ctx := testCtx(t)
			if err := c.Write(ctx, websocket.MessageText, []byte(tt.message)); err != nil {
				t.Fatal(err)
			}
			_, reply, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(reply), tt.wantReply) {
				t.Errorf("reply %s, want %s", reply, tt.wantReply)
			}
			if tt.wantFn == "" {
				if !strings.Contains(string(reply), `"connectionId":"`+id+`"`) {
					t.Errorf("Forbidden reply without connection id: %s", reply)
				}
				return
			}
			inv := f.inv.next(t, tt.wantFn)
			rc := inv.event.RequestContext
			if inv.event.Body != tt.message || rc.EventType != "MESSAGE" || rc.ConnectionID != id || rc.MessageID == nil {
				t.Errorf("event body %q eventType %q connectionId %q messageId %v", inv.event.Body, rc.EventType, rc.ConnectionID, rc.MessageID)
			}
		})
	}
}

func TestManagementAPI(t *testing.T) {
	f := newFixture(t, nil)
	c, id := f.dial(t, "?token=alice")
	api := f.management(t)
	ctx := testCtx(t)

	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte(`{"type":"ping"}`)}); err != nil {
		t.Fatalf("post: %v", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != `{"type":"ping"}` {
		t.Fatalf("client read %q, %v", got, err)
	}

	info, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if info.ConnectedAt == nil || info.LastActiveAt == nil || info.LastActiveAt.Before(*info.ConnectedAt) ||
		aws.ToString(info.Identity.SourceIp) != "127.0.0.1" || aws.ToString(info.Identity.UserAgent) == "" {
		t.Errorf("connection info = %+v identity %+v", info, info.Identity)
	}

	big := make([]byte, DefaultMaxMessageBytes+1)
	var tooLarge *types.PayloadTooLargeException
	if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: big}); !errors.As(err, &tooLarge) {
		t.Errorf("oversized post: %v, want PayloadTooLargeException", err)
	}

	if _, err := api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("client saw %v, want close 1000", err)
	}
	disc := f.inv.next(t, "Disconnect")
	if disc.event.RequestContext.ConnectionID != id || disc.event.RequestContext.DisconnectStatusCode != 1000 {
		t.Errorf("disconnect event %+v", disc.event.RequestContext)
	}

	for _, target := range []string{id, "Unknown0000000=="} {
		var gone *types.GoneException
		if _, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(target), Data: []byte("x")}); !errors.As(err, &gone) {
			t.Errorf("post to %s: %v, want GoneException", target, err)
		}
		if _, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(target)}); !errors.As(err, &gone) {
			t.Errorf("get %s: %v, want GoneException", target, err)
		}
	}
}

func TestPostDuringConnectIsGone(t *testing.T) {
	var (
		mu      sync.Mutex
		postErr error
	)
	f := newFixture(t, nil)
	api := f.management(t)
	f.inv.handle = func(ctx context.Context, inv invocation) ([]byte, error) {
		if inv.function == "Connect" {
			id := inv.event.RequestContext.ConnectionID
			_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("early")})
			mu.Lock()
			postErr = err
			mu.Unlock()
		}
		return standardHandler(ctx, inv)
	}
	f.dial(t, "?token=alice")
	mu.Lock()
	defer mu.Unlock()
	var gone *types.GoneException
	if !errors.As(postErr, &gone) {
		t.Fatalf("post during $connect: %v, want GoneException", postErr)
	}
}

func TestDisconnect(t *testing.T) {
	tests := []struct {
		name       string
		limits     Limits
		act        func(ctx context.Context, c *websocket.Conn) error
		wantClient websocket.StatusCode // close status the client sees; -1 when it closed itself
		wantCode   int64
		wantReason string
	}{
		{
			name:       "client closes",
			act:        func(_ context.Context, c *websocket.Conn) error { return c.Close(websocket.StatusNormalClosure, "bye") },
			wantClient: -1, wantCode: 1000, wantReason: "bye",
		},
		{
			name:   "message too big",
			limits: Limits{MaxMessageBytes: 1024},
			act: func(ctx context.Context, c *websocket.Conn) error {
				return c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 2048)))
			},
			wantClient: websocket.StatusMessageTooBig, wantCode: 1009,
		},
		{
			name:   "frame too big",
			limits: Limits{MaxMessageBytes: 4096, MaxFrameBytes: 100},
			act: func(ctx context.Context, c *websocket.Conn) error {
				return c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 200)))
			},
			wantClient: websocket.StatusMessageTooBig, wantCode: 1009, wantReason: "Frame too big",
		},
		{
			name:       "idle timeout",
			limits:     Limits{IdleTimeout: 20 * time.Millisecond},
			act:        func(context.Context, *websocket.Conn) error { return nil },
			wantClient: websocket.StatusGoingAway, wantCode: 1001, wantReason: "Going away",
		},
		{
			name:       "maximum connection age",
			limits:     Limits{MaxConnectionAge: 20 * time.Millisecond},
			act:        func(context.Context, *websocket.Conn) error { return nil },
			wantClient: websocket.StatusGoingAway, wantCode: 1001, wantReason: "Going away",
		},
		{
			name: "binary message",
			act: func(ctx context.Context, c *websocket.Conn) error {
				return c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
			},
			wantClient: websocket.StatusUnsupportedData, wantCode: 1003,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Limits = tt.limits })
			c, id := f.dial(t, "?token=alice")
			ctx := testCtx(t)
			if err := tt.act(ctx, c); err != nil && tt.wantClient != -1 {
				t.Fatalf("act: %v", err)
			}
			if tt.wantClient != -1 {
				_, _, err := c.Read(ctx)
				if got := websocket.CloseStatus(err); got != tt.wantClient {
					t.Fatalf("client close status %v (%v), want %v", got, err, tt.wantClient)
				}
			}
			disc := f.inv.next(t, "Disconnect")
			rc := disc.event.RequestContext
			if rc.ConnectionID != id || rc.EventType != "DISCONNECT" || rc.RouteKey != RouteDisconnect || rc.DisconnectStatusCode != tt.wantCode {
				t.Errorf("disconnect context %+v", rc)
			}
			if tt.wantReason != "" && (rc.DisconnectReason == nil || *rc.DisconnectReason != tt.wantReason) {
				t.Errorf("disconnect reason %v, want %q", rc.DisconnectReason, tt.wantReason)
			}
			// $disconnect runs once.
			for inv := range drain(f.inv.calls) {
				if inv.function == "Disconnect" {
					t.Errorf("second $disconnect: %+v", inv.event.RequestContext)
				}
			}
		})
	}
}

func TestShutdownClosesWithGoingAway(t *testing.T) {
	f := newFixture(t, nil)
	c1, _ := f.dial(t, "?token=alice")
	c2, _ := f.dial(t, "?token=bob")
	ctx := testCtx(t)

	// The clients must read to complete the close handshakes Shutdown starts.
	statuses := make(chan websocket.StatusCode, 2)
	for _, c := range []*websocket.Conn{c1, c2} {
		go func() {
			_, _, err := c.Read(ctx)
			statuses <- websocket.CloseStatus(err)
		}()
	}
	if err := f.gw.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range 2 {
		if got := <-statuses; got != websocket.StatusGoingAway {
			t.Errorf("client close status %v, want 1001", got)
		}
	}
	for range 2 {
		if d := f.inv.next(t, "Disconnect"); d.event.RequestContext.DisconnectStatusCode != 1001 {
			t.Errorf("disconnect status %d, want 1001", d.event.RequestContext.DisconnectStatusCode)
		}
	}
	if _, resp, err := websocket.Dial(ctx, f.wsURL("?token=carol"), nil); err == nil || statusOf(resp) != 503 {
		t.Errorf("dial after shutdown: %v (status %d), want 503", err, statusOf(resp))
	}
}

func TestSlowClientQueueFull(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits = Limits{SendQueueLength: 2} })
	_, id := f.dial(t, "?token=alice") // never reads
	api := f.management(t)
	ctx := testCtx(t)
	// Large messages fill the socket buffers quickly; the bounded queue then
	// fills and the gateway answers 429 instead of blocking the poster.
	payload := make([]byte, DefaultMaxMessageBytes)
	var limited *types.LimitExceededException
	for i := 0; i < 1000; i++ {
		_, err := api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: payload})
		if errors.As(err, &limited) {
			return
		}
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	t.Fatal("no LimitExceededException after 1000 posts to a client that never reads")
}

// TestEventGolden pins the MESSAGE and DISCONNECT event shapes. Run with
// -update to rewrite the golden file after a deliberate change.
func TestEventGolden(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.DomainName = "localws1.execute-api.us-east-1.amazonaws.com" })
	c, _ := f.dial(t, "?token=alice")
	ctx := testCtx(t)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"oneway","n":1}`)); err != nil {
		t.Fatal(err)
	}
	msg := f.inv.next(t, "OneWay")
	c.Close(websocket.StatusNormalClosure, "done")
	disc := f.inv.next(t, "Disconnect")

	got := map[string]any{"message": normalize(t, msg.raw), "disconnect": normalize(t, disc.raw)}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden.Assert(t, filepath.Join("testdata", "events.golden.json"), b)
}

// normalize replaces the values that change on every run (ids, times, the
// listener's port, the WebSocket key) with placeholders, after checking
// their format.
func normalize(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev["requestContext"].(map[string]any)
	for _, k := range []string{"connectionId", "requestId", "extendedRequestId", "messageId"} {
		if v, ok := rc[k].(string); ok {
			if len(v) != 16 || !strings.HasSuffix(v, "=") {
				t.Errorf("%s %q is not in API Gateway's format", k, v)
			}
			rc[k] = strings.ToUpper(k)
		}
	}
	for _, k := range []string{"connectedAt", "requestTimeEpoch", "requestTime"} {
		if _, ok := rc[k]; ok {
			rc[k] = strings.ToUpper(k)
		}
	}
	for _, k := range []string{"headers", "multiValueHeaders"} {
		if h, ok := ev[k].(map[string]any); ok {
			for _, name := range []string{"Host", "Sec-Websocket-Key"} {
				if _, ok := h[name]; ok {
					h[name] = "VARIES"
				}
			}
		}
	}
	return ev
}
