package tokens

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const audience = "groupcast-local"

// startIssuer serves an Issuer whose issuer URL is its own listener's, the
// way the local stack wires it.
func startIssuer(t *testing.T, opts Options) (*Issuer, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	opts.Issuer = "http://" + srv.Listener.Addr().String()
	if opts.Audience == "" {
		opts.Audience = audience
	}
	iss, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = iss.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return iss, srv
}

// fetchJWKS reads the served key set the way API Gateway does: the issuer's
// discovery document names it in jwks_uri.
func fetchJWKS(t *testing.T, srv *httptest.Server) jwk.Set {
	t.Helper()
	resp, err := http.Get(srv.URL + DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery document: status %d, %v", resp.StatusCode, err)
	}
	if doc.Issuer != srv.URL {
		t.Fatalf("discovery issuer %q, want %q (OIDC Discovery §4.3)", doc.Issuer, srv.URL)
	}
	set, err := jwk.Fetch(t.Context(), doc.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// verify checks signature, issuer, audience and expiry as the authorizers do.
func verify(token string, set jwk.Set, issuer string) (jwt.Token, error) {
	return jwt.ParseString(token,
		jwt.WithKeySet(set),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithValidate(true))
}

func postToken(t *testing.T, srv *httptest.Server, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(srv.URL+TokenPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("status %d: body is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, raw
}

func TestTokenEndpointMintsVerifiableTokens(t *testing.T) {
	iss, srv := startIssuer(t, Options{})
	set := fetchJWKS(t, srv)
	tests := []struct {
		name    string
		body    string
		sub     string
		display string
		ttl     time.Duration
	}{
		{"sub and name", `{"sub":"alice","name":"Alice"}`, "alice", "Alice", DefaultTTL},
		{"sub only", `{"sub":"bob"}`, "bob", "", DefaultTTL},
		{"custom ttl", `{"sub":"carol","name":"Carol","ttlSeconds":120}`, "carol", "Carol", 2 * time.Minute},
		{"unicode sub at the limit", `{"sub":"` + strings.Repeat("é", maxSubjectRunes) + `"}`, strings.Repeat("é", maxSubjectRunes), "", DefaultTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := postToken(t, srv, tc.body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, raw)
			}
			var resp tokenResponse
			if err := json.Unmarshal(raw, &resp); err != nil {
				t.Fatal(err)
			}
			tok, err := verify(resp.Token, set, iss.IssuerURL())
			if err != nil {
				t.Fatalf("token does not verify against the served JWKS: %v", err)
			}
			if sub, _ := tok.Subject(); sub != tc.sub {
				t.Errorf("sub = %q, want %q", sub, tc.sub)
			}
			var name string
			if err := tok.Get("name", &name); (err == nil) != (tc.display != "") || name != tc.display {
				t.Errorf("name = %q (%v), want %q", name, err, tc.display)
			}
			iat, _ := tok.IssuedAt()
			exp, _ := tok.Expiration()
			if exp.Sub(iat) != tc.ttl {
				t.Errorf("exp - iat = %s, want %s", exp.Sub(iat), tc.ttl)
			}
			if want := exp.UTC().Format(time.RFC3339); resp.ExpiresAt != want {
				t.Errorf("expiresAt = %q, want the exp claim %q", resp.ExpiresAt, want)
			}
		})
	}
}

func TestJWKSPublishesOnlyThePublicSigningKey(t *testing.T) {
	iss, srv := startIssuer(t, Options{})
	set := fetchJWKS(t, srv)
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", set.Len())
	}
	key, _ := set.Key(0)
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		t.Errorf("served key is private (%v, %v)", private, err)
	}
	kid, _ := key.KeyID()
	alg, _ := key.Algorithm()
	use, _ := key.KeyUsage()
	if kid == "" || alg.String() != jwa.RS256().String() || use != string(jwk.ForSignature) || key.KeyType() != jwa.RSA() {
		t.Errorf("key kid=%q alg=%v use=%q kty=%v, want a kid, RS256, sig, RSA", kid, alg, use, key.KeyType())
	}

	token, err := iss.Mint("alice", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.ParseString(token)
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	headerKid, _ := h.KeyID()
	headerAlg, _ := h.Algorithm()
	if headerKid != kid || headerAlg.String() != "RS256" {
		t.Errorf("token header kid=%q alg=%v, want kid %q and RS256", headerKid, headerAlg, kid)
	}
	if _, err := verify(token, set, iss.IssuerURL()); err != nil {
		t.Errorf("Mint token does not verify: %v", err)
	}
}

func TestTokensFromAnotherIssuerDoNotVerify(t *testing.T) {
	iss, srv := startIssuer(t, Options{})
	other, _ := startIssuer(t, Options{})
	foreign, err := other.Mint("mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(foreign, fetchJWKS(t, srv), iss.IssuerURL()); err == nil {
		t.Error("a token signed by another key verified")
	}
}

func TestBadTokenRequests(t *testing.T) {
	_, srv := startIssuer(t, Options{})
	tests := []struct {
		name string
		body string
		want string // substring of the message
	}{
		{"not JSON", `sub=alice`, "JSON object"},
		{"empty body", ``, "JSON object"},
		{"array", `["alice"]`, "JSON object"},
		{"missing sub", `{"name":"Alice"}`, "sub must be 1 to 128"},
		{"sub too long", `{"sub":"` + strings.Repeat("a", maxSubjectRunes+1) + `"}`, "sub must be 1 to 128"},
		{"control character", `{"sub":"al\nice"}`, "control characters"},
		{"name too long", `{"sub":"a","name":"` + strings.Repeat("n", maxNameRunes+1) + `"}`, "name must be"},
		{"unknown field", `{"sub":"alice","admin":true}`, "unknown field"},
		{"zero ttl", `{"sub":"alice","ttlSeconds":0}`, "ttlSeconds"},
		{"ttl above the cap", `{"sub":"alice","ttlSeconds":86401}`, "ttlSeconds"},
		{"ttl not a number", `{"sub":"alice","ttlSeconds":"60"}`, "JSON object"},
		{"trailing data", `{"sub":"alice"} {"sub":"bob"}`, "single JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := postToken(t, srv, tc.body)
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatal(err)
			}
			if status != http.StatusBadRequest || body.Error.Code != "invalid" || !strings.Contains(body.Error.Message, tc.want) {
				t.Errorf("status %d, error %+v; want 400 invalid mentioning %q", status, body.Error, tc.want)
			}
		})
	}
}

func TestMintRejectsBadSubjects(t *testing.T) {
	iss, _ := startIssuer(t, Options{})
	for _, sub := range []string{"", strings.Repeat("x", maxSubjectRunes+1), "bad\x00sub", string([]byte{0xff})} {
		if _, err := iss.Mint(sub, ""); err == nil {
			t.Errorf("Mint(%q) succeeded", sub)
		}
	}
}

func TestKeyFilePersistsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "issuer.pem")
	first, _ := startIssuer(t, Options{KeyFile: path})
	token, err := first.Mint("alice", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	// A restarted issuer (new port, same key file) still accepts the token's signature.
	_, srv := startIssuer(t, Options{KeyFile: path})
	if _, err := jwt.ParseString(token, jwt.WithKeySet(fetchJWKS(t, srv)), jwt.WithValidate(true)); err != nil {
		t.Errorf("token from before the restart does not verify: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"relative issuer", Options{Issuer: "/issuer", Audience: audience}},
		{"empty issuer", Options{Audience: audience}},
		{"empty audience", Options{Issuer: "http://127.0.0.1:1"}},
		{"ttl above the cap", Options{Issuer: "http://127.0.0.1:1", Audience: audience, TTL: MaxTTL + time.Second}},
		{"key file not a key", Options{Issuer: "http://127.0.0.1:1", Audience: audience, KeyFile: "tokens.go"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func TestCORSPreflight(t *testing.T) {
	_, srv := startIssuer(t, Options{})
	req, err := http.NewRequestWithContext(context.Background(), http.MethodOptions, srv.URL+TokenPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}
