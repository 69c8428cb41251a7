package httpgw

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/groupcast/groupcast/internal/golden"
)

// fakeInvoker records every event and answers with a per-function response.
type fakeInvoker struct {
	mu        sync.Mutex
	calls     []call
	responses map[string]string // function -> raw JSON response
	errs      map[string]error
	block     map[string]bool // functions that wait for ctx to end
}

type call struct {
	function string
	event    events.APIGatewayV2HTTPRequest
	raw      []byte
}

func (f *fakeInvoker) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, call{function: function, event: ev, raw: payload})
	resp, err, block := f.responses[function], f.errs[function], f.block[function]
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if resp == "" {
		resp = `{"statusCode":200,"body":"ok"}`
	}
	return []byte(resp), nil
}

func (f *fakeInvoker) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// testIssuer signs tokens with a local key and verifies them against its
// JWKS, like the project's verifier does against the issuer's JWKS.
type testIssuer struct {
	priv jwk.Key
	keys jwk.Set
}

const (
	issuerURL = "https://issuer.test"
	audience  = "groupcast-local"
)

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	_ = priv.Set(jwk.KeyIDKey, "test-key")
	_ = priv.Set(jwk.AlgorithmKey, jwa.ES256())
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	return &testIssuer{priv: priv, keys: set}
}

func (ti *testIssuer) token(t *testing.T, mutate func(*jwt.Builder)) string {
	t.Helper()
	b := jwt.NewBuilder().
		Issuer(issuerURL).
		Audience([]string{audience}).
		Subject("alice").
		Claim("name", "Alice").
		Claim("scope", "posts:write groups:read").
		IssuedAt(time.Now()).
		Expiration(time.Now().Add(time.Hour))
	if mutate != nil {
		mutate(b)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), ti.priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// tokenWithoutAud signs a valid token with no aud claim and the given extra
// claims (a Cognito access token carries client_id instead).
func (ti *testIssuer) tokenWithoutAud(t *testing.T, extra map[string]any) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Issuer(issuerURL).Subject("alice").Claim("name", "Alice").
		IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		if err := tok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256(), ti.priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func (ti *testIssuer) Verify(_ context.Context, token string) (map[string]any, error) {
	tok, err := jwt.Parse([]byte(token), jwt.WithKeySet(ti.keys))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(tok)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(b, &claims)
}

type fixture struct {
	srv *httptest.Server
	inv *fakeInvoker
	iss *testIssuer
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	iss := newTestIssuer(t)
	inv := &fakeInvoker{responses: map[string]string{}, errs: map[string]error{}, block: map[string]bool{}}
	cfg := Config{
		APIID:     "localhttp1",
		AccountID: "123456789012",
		Region:    "us-east-1",
		Routes: []Route{
			{Method: "GET", Path: "/groups", Function: "ListGroups"},
			{Method: "GET", Path: "/groups/mine", Function: "MyGroups"},
			{Method: "GET", Path: "/groups/{groupId}", Function: "GetGroup"},
			{Method: "POST", Path: "/groups/{groupId}/posts", Function: "Api", Authorizer: "jwt"},
			{Method: "ANY", Path: "/groups/{groupId}/posts", Function: "AnyPosts"},
			{Method: "ANY", Path: "/files/{proxy+}", Function: "Files"},
			{Method: "GET", Path: "/files/{proxy+}", Function: "GetFiles"},
		},
		Authorizers: []JWTAuthorizer{{Name: "jwt", Issuer: issuerURL, Audience: []string{audience}, Verifier: iss}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	gw, err := New(cfg, inv)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, inv: inv, iss: iss}
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name       string
		defaultFn  bool
		method     string
		path       string
		wantStatus int
		wantFn     string
		wantKey    string
		wantParams map[string]string
	}{
		{name: "literal", method: "GET", path: "/groups", wantStatus: 200, wantFn: "ListGroups", wantKey: "GET /groups"},
		{name: "literal beats variable", method: "GET", path: "/groups/mine", wantStatus: 200, wantFn: "MyGroups", wantKey: "GET /groups/mine"},
		{name: "path variable", method: "GET", path: "/groups/g%201", wantStatus: 200, wantFn: "GetGroup", wantKey: "GET /groups/{groupId}", wantParams: map[string]string{"groupId": "g 1"}},
		{name: "ANY matches other methods", method: "DELETE", path: "/groups/g1/posts", wantStatus: 200, wantFn: "AnyPosts", wantKey: "ANY /groups/{groupId}/posts", wantParams: map[string]string{"groupId": "g1"}},
		{name: "exact method beats ANY on greedy", method: "GET", path: "/files/a/b/c.txt", wantStatus: 200, wantFn: "GetFiles", wantKey: "GET /files/{proxy+}", wantParams: map[string]string{"proxy": "a/b/c.txt"}},
		{name: "greedy with ANY", method: "PUT", path: "/files/x/y", wantStatus: 200, wantFn: "Files", wantKey: "ANY /files/{proxy+}", wantParams: map[string]string{"proxy": "x/y"}},
		{name: "greedy needs a segment", method: "GET", path: "/files/", wantStatus: 404},
		{name: "method mismatch is 404", method: "POST", path: "/groups", wantStatus: 404},
		{name: "unknown path is 404", method: "GET", path: "/nope", wantStatus: 404},
		{name: "trailing segment does not match", method: "GET", path: "/groups/g1/extra", wantStatus: 404},
		{name: "$default catches unmatched", defaultFn: true, method: "POST", path: "/groups", wantStatus: 200, wantFn: "Fallback", wantKey: "$default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if tt.defaultFn {
					c.Routes = append(c.Routes, Route{Path: "$default", Function: "Fallback"})
				}
			})
			resp, body := f.do(t, tt.method, tt.path, nil, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if resp.Header.Get("Apigw-Requestid") == "" {
				t.Error("missing apigw-requestid header")
			}
			calls := f.inv.Calls()
			if tt.wantStatus == 404 {
				if body != `{"message":"Not Found"}` || len(calls) != 0 {
					t.Fatalf("body %s, %d calls; want Not Found and no call", body, len(calls))
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.function != tt.wantFn || c.event.RouteKey != tt.wantKey || c.event.RequestContext.RouteKey != tt.wantKey {
				t.Errorf("got %s %q, want %s %q", c.function, c.event.RouteKey, tt.wantFn, tt.wantKey)
			}
			if !mapsEqual(c.event.PathParameters, tt.wantParams) {
				t.Errorf("pathParameters = %v, want %v", c.event.PathParameters, tt.wantParams)
			}
			if c.event.RequestContext.RequestID != resp.Header.Get("Apigw-Requestid") {
				t.Errorf("requestId %q differs from header %q", c.event.RequestContext.RequestID, resp.Header.Get("Apigw-Requestid"))
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestNamedStage(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Stage = "dev" })
	if resp, _ := f.do(t, "GET", "/groups", nil, nil); resp.StatusCode != 404 {
		t.Fatalf("without stage prefix: %d, want 404", resp.StatusCode)
	}
	resp, _ := f.do(t, "GET", "/dev/groups", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("with stage prefix: %d, want 200", resp.StatusCode)
	}
	ev := f.inv.Calls()[0].event
	if ev.RawPath != "/dev/groups" || ev.RequestContext.Stage != "dev" || ev.RouteKey != "GET /groups" {
		t.Errorf("rawPath %q stage %q routeKey %q", ev.RawPath, ev.RequestContext.Stage, ev.RouteKey)
	}
}

func TestJWTAuthorizer(t *testing.T) {
	f := newFixture(t, nil)
	otherIssuer := newTestIssuer(t)
	valid := f.iss.token(t, nil)
	tests := []struct {
		name       string
		header     string
		wantStatus int
	}{
		{name: "missing token", header: "", wantStatus: 401},
		{name: "garbage", header: "Bearer not-a-jwt", wantStatus: 401},
		{name: "signed by another key", header: "Bearer " + otherIssuer.token(t, nil), wantStatus: 401},
		{name: "expired", header: "Bearer " + f.iss.token(t, func(b *jwt.Builder) {
			b.Expiration(time.Now().Add(-time.Hour))
		}), wantStatus: 401},
		{name: "wrong audience", header: "Bearer " + f.iss.token(t, func(b *jwt.Builder) {
			b.Audience([]string{"someone-else"})
		}), wantStatus: 401},
		// identity.AudienceMatches: client_id counts only without aud.
		{name: "aud names another client, client_id ours", header: "Bearer " + f.iss.token(t, func(b *jwt.Builder) {
			b.Audience([]string{"someone-else"}).Claim("client_id", audience)
		}), wantStatus: 401},
		{name: "client_id without aud", header: "Bearer " + f.iss.tokenWithoutAud(t, map[string]any{"client_id": audience}), wantStatus: 200},
		{name: "wrong client_id without aud", header: "Bearer " + f.iss.tokenWithoutAud(t, map[string]any{"client_id": "someone-else"}), wantStatus: 401},
		{name: "wrong issuer", header: "Bearer " + f.iss.token(t, func(b *jwt.Builder) {
			b.Issuer("https://evil.test")
		}), wantStatus: 401},
		{name: "valid with Bearer", header: "Bearer " + valid, wantStatus: 200},
		{name: "valid without Bearer", header: valid, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.inv.Calls())
			resp, body := f.do(t, "POST", "/groups/g1/posts", strings.NewReader(`{"content":"hi"}`),
				map[string]string{"Authorization": tt.header, "Content-Type": "application/json"})
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			calls := f.inv.Calls()[before:]
			if tt.wantStatus == 401 {
				if body != `{"message":"Unauthorized"}` || len(calls) != 0 {
					t.Fatalf("body %s with %d calls, want Unauthorized and no invocation", body, len(calls))
				}
				return
			}
			if !strings.HasSuffix(tt.header, valid) {
				return // the claims of the standard token are checked below
			}
			jwtDesc := calls[0].event.RequestContext.Authorizer.JWT
			want := map[string]string{"sub": "alice", "name": "Alice", "iss": issuerURL, "aud": "[" + audience + "]"}
			for k, v := range want {
				if jwtDesc.Claims[k] != v {
					t.Errorf("claim %s = %q, want %q", k, jwtDesc.Claims[k], v)
				}
			}
			if !slices.Equal(jwtDesc.Scopes, []string{"posts:write", "groups:read"}) {
				t.Errorf("scopes = %v", jwtDesc.Scopes)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.CORS = &CORS{
			AllowOrigins:  []string{"http://app.test"},
			AllowMethods:  []string{"GET", "POST"},
			AllowHeaders:  []string{"authorization", "content-type"},
			ExposeHeaders: []string{"x-total"},
			MaxAge:        10 * time.Minute,
		}
		c.Routes = append(c.Routes, Route{Method: "GET", Path: "/cors", Function: "Cors"})
	})
	f.inv.responses["Cors"] = `{"statusCode":200,"headers":{"Access-Control-Allow-Origin":"http://evil.test"},"body":"x"}`

	tests := []struct {
		name        string
		method      string
		path        string
		headers     map[string]string
		wantStatus  int
		wantHeaders map[string]string
		wantCalls   int
	}{
		{
			name: "preflight from allowed origin", method: "OPTIONS", path: "/groups/g1/posts",
			headers:    map[string]string{"Origin": "http://app.test", "Access-Control-Request-Method": "POST"},
			wantStatus: 204,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin":  "http://app.test",
				"Access-Control-Allow-Methods": "GET,POST",
				"Access-Control-Allow-Headers": "authorization,content-type",
				"Access-Control-Max-Age":       "600",
			},
		},
		{
			name: "preflight from other origin", method: "OPTIONS", path: "/groups",
			headers:     map[string]string{"Origin": "http://other.test", "Access-Control-Request-Method": "GET"},
			wantStatus:  204,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "actual request gets gateway CORS headers", method: "GET", path: "/cors",
			headers:     map[string]string{"Origin": "http://app.test"},
			wantStatus:  200,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": "http://app.test", "Access-Control-Expose-Headers": "x-total"},
			wantCalls:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.inv.Calls())
			resp, body := f.do(t, tt.method, tt.path, nil, tt.headers)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			for k, v := range tt.wantHeaders {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := len(f.inv.Calls()) - before; got != tt.wantCalls {
				t.Errorf("%d invocations, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestResponseMapping(t *testing.T) {
	tests := []struct {
		name        string
		response    string
		err         error
		block       bool
		wantStatus  int
		wantBody    string
		wantHeaders map[string][]string
	}{
		{
			name:       "structured with headers and cookies",
			response:   `{"statusCode":201,"headers":{"Content-Type":"application/json","X-Count":3},"multiValueHeaders":{"X-Multi":["a","b"]},"cookies":["a=1; Path=/","b=2"],"body":"{\"id\":\"p1\"}"}`,
			wantStatus: 201,
			wantBody:   `{"id":"p1"}`,
			wantHeaders: map[string][]string{
				"Content-Type": {"application/json"},
				"X-Count":      {"3"},
				"X-Multi":      {"a", "b"},
				"Set-Cookie":   {"a=1; Path=/", "b=2"},
			},
		},
		{
			name:        "base64 body is decoded",
			response:    `{"statusCode":200,"headers":{"content-type":"image/png"},"body":"iVBORw0=","isBase64Encoded":true}`,
			wantStatus:  200,
			wantBody:    "\x89PNG\r",
			wantHeaders: map[string][]string{"Content-Type": {"image/png"}},
		},
		{
			name:        "simple format object",
			response:    `{"hello":"world"}`,
			wantStatus:  200,
			wantBody:    `{"hello":"world"}`,
			wantHeaders: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:        "simple format string",
			response:    `"just text"`,
			wantStatus:  200,
			wantBody:    `"just text"`,
			wantHeaders: map[string][]string{"Content-Type": {"application/json"}},
		},
		{name: "invalid status code", response: `{"statusCode":"abc"}`, wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`},
		{name: "not JSON", response: `<html>`, wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`},
		{name: "function error", err: errors.New("Runtime.ExitError"), wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`},
		{name: "integration timeout", block: true, wantStatus: 503, wantBody: `{"message":"Service Unavailable"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.IntegrationTimeout = 50 * time.Millisecond })
			f.inv.responses["ListGroups"] = tt.response
			f.inv.errs["ListGroups"] = tt.err
			f.inv.block["ListGroups"] = tt.block
			resp, body := f.do(t, "GET", "/groups", nil, nil)
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			for k, v := range tt.wantHeaders {
				if got := resp.Header.Values(k); !slices.Equal(got, v) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestRequestBodyEncoding(t *testing.T) {
	tests := []struct {
		contentType string
		body        string
		wantBody    string
		wantBase64  bool
	}{
		{contentType: "application/json", body: `{"a":1}`, wantBody: `{"a":1}`},
		{contentType: "text/plain; charset=utf-8", body: "héllo", wantBody: "héllo"},
		{contentType: "application/x-www-form-urlencoded", body: "a=1&b=2", wantBody: "YT0xJmI9Mg==", wantBase64: true},
		{contentType: "image/png", body: "\x89PNG", wantBody: "iVBORw==", wantBase64: true},
		{contentType: "", body: `{"a":1}`, wantBody: "eyJhIjoxfQ==", wantBase64: true},
		{contentType: "text/plain; charset=iso-8859-1", body: "caf\xe9", wantBody: "Y2Fm6Q==", wantBase64: true},
		{contentType: "application/json; charset=UTF-8", body: `{"a":1}`, wantBody: `{"a":1}`},
		{contentType: "application/json", body: "{\"userIds\":[\"u\xff\"]}", wantBody: "{\"userIds\":[\"u\uFFFD\"]}"},
	}
	f := newFixture(t, nil)
	for _, tt := range tests {
		t.Run(tt.contentType+" "+tt.body, func(t *testing.T) {
			before := len(f.inv.Calls())
			headers := map[string]string{}
			if tt.contentType != "" {
				headers["Content-Type"] = tt.contentType
			}
			f.do(t, "PUT", "/files/upload", strings.NewReader(tt.body), headers)
			ev := f.inv.Calls()[before].event
			if ev.Body != tt.wantBody || ev.IsBase64Encoded != tt.wantBase64 {
				t.Errorf("body %q base64 %v, want %q %v", ev.Body, ev.IsBase64Encoded, tt.wantBody, tt.wantBase64)
			}
		})
	}
}

func TestPayloadLimit(t *testing.T) {
	tests := []struct {
		name        string
		size        int
		contentType string
		wantStatus  int
		wantBody    string
		wantType    string
		wantCalls   int
	}{
		{
			name: "over the 10 MB HTTP API quota", size: MaxPayloadBytes + 1, contentType: "text/plain",
			wantStatus: 413, wantBody: "HTTP content length exceeded 10485760 bytes.", wantType: "text; charset=utf-8",
		},
		{
			name: "7 MB text body exceeds Lambda's 6 MB", size: 7 << 20, contentType: "application/json",
			wantStatus: 413, wantBody: `{"message": "Request Too Long"}`, wantType: "application/json",
		},
		{
			name: "5 MB binary body exceeds 6 MB once base64-encoded", size: 5 << 20, contentType: "application/octet-stream",
			wantStatus: 413, wantBody: `{"message": "Request Too Long"}`, wantType: "application/json",
		},
		{
			name: "5 MB text body is invoked", size: 5 << 20, contentType: "text/plain",
			wantStatus: 200, wantBody: "ok", wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			big := strings.Repeat("x", tt.size)
			resp, body := f.do(t, "PUT", "/files/big", strings.NewReader(big), map[string]string{"Content-Type": tt.contentType})
			if resp.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantType != "" && resp.Header.Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.wantType)
			}
			if got := len(f.inv.Calls()); got != tt.wantCalls {
				t.Errorf("%d invocations, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestEventGolden pins the whole payload format 2.0 event. Run with -update
// to rewrite testdata/event.golden.json after a deliberate change.
func TestEventGolden(t *testing.T) {
	at := time.Date(2026, 3, 12, 19, 3, 58, 390_000_000, time.UTC)
	f := newFixture(t, func(c *Config) {
		c.DomainName = "localhttp1.execute-api.us-east-1.amazonaws.com"
		c.Now = func() time.Time { return at }
	})
	token := f.iss.token(t, func(b *jwt.Builder) {
		b.IssuedAt(time.Unix(1773342238, 0))
		b.Expiration(time.Now().Add(time.Hour))
	})
	req, err := http.NewRequest("POST", f.srv.URL+"/groups/g-42/posts?x=1&x=2&y=z", strings.NewReader(`{"content":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "golden-test/1.0")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("Cookie", "session=abc; theme=dark")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}

	var ev map[string]any
	if err := json.Unmarshal(f.inv.Calls()[0].raw, &ev); err != nil {
		t.Fatal(err)
	}
	// Values that differ on every run: the listener's address, the request
	// id, the token and its expiry.
	headers := ev["headers"].(map[string]any)
	headers["host"] = "HOST"
	headers["authorization"] = "Bearer TOKEN"
	rc := ev["requestContext"].(map[string]any)
	rc["requestId"] = "REQUEST_ID"
	rc["authorizer"].(map[string]any)["jwt"].(map[string]any)["claims"].(map[string]any)["exp"] = "EXP"
	got, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden.Assert(t, filepath.Join("testdata", "event.golden.json"), got)
}
