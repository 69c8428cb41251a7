package authorizer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/groupcast/groupcast/pkg/identity"
)

const testAudience = "groupcast-test"

// issuer is a local OpenID issuer: it signs tokens and serves its JWKS.
type issuer struct {
	t           *testing.T
	srv         *httptest.Server
	rsaKey      jwk.Key      // kid "rsa-1", alg RS256
	ecKey       jwk.Key      // kid "ec-1", alg ES256
	rsaPEM      []byte       // the RSA public key, PEM encoded (for the HMAC trick)
	fetches     atomic.Int32 // JWKS downloads
	discoveries atomic.Int32 // discovery document downloads
	verifier    *Verifier
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	rsaRaw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecRaw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{t: t, rsaKey: importKey(t, rsaRaw, "rsa-1", jwa.RS256()), ecKey: importKey(t, ecRaw, "ec-1", jwa.ES256())}
	der, err := x509.MarshalPKIXPublicKey(&rsaRaw.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	is.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	set := jwk.NewSet()
	for _, k := range []jwk.Key{is.rsaKey, is.ecKey} {
		pub, err := k.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	// Like Okta or Google, the issuer serves its keys at a path of its own
	// choosing, named only by the discovery document's jwks_uri.
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			is.discoveries.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/oauth2/v1/keys"})
		case "/oauth2/v1/keys":
			is.fetches.Add(1)
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(is.srv.Close)

	is.verifier, err = NewVerifier(context.Background(), Config{Issuer: is.srv.URL, Audiences: []string{testAudience}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.verifier.Close(context.Background()) })
	return is
}

func importKey(t *testing.T, raw any, kid string, alg jwa.SignatureAlgorithm) jwk.Key {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
		t.Fatal(err)
	}
	return k
}

// claims returns valid claims for user-1; tests change what they need.
func (is *issuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": is.srv.URL, "aud": testAudience, "sub": "user-1", "name": "Ada",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func (is *issuer) sign(claims map[string]any, alg jwa.SignatureAlgorithm, key any) string {
	is.t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			is.t.Fatal(err)
		}
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		is.t.Fatal(err)
	}
	return string(signed)
}

func (is *issuer) rsaToken(claims map[string]any) string {
	return is.sign(claims, jwa.RS256(), is.rsaKey)
}

// unsignedToken builds header.payload. with alg "none".
func unsignedToken(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "."
}

func TestVerify(t *testing.T) {
	is := newIssuer(t)
	with := func(change func(map[string]any)) map[string]any {
		c := is.claims()
		change(c)
		return c
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// The classic key-confusion forgery: HMAC "signed" with the issuer's
	// public key bytes, naming the RSA key's kid.
	hmacHeaders := jws.NewHeaders()
	if err := hmacHeaders.Set(jws.KeyIDKey, "rsa-1"); err != nil {
		t.Fatal(err)
	}
	forged := jwt.New()
	for k, v := range is.claims() {
		if err := forged.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	hmacWithPublicKey, err := jwt.Sign(forged, jwt.WithKey(jwa.HS256(), is.rsaPEM, jws.WithProtectedHeaders(hmacHeaders)))
	if err != nil {
		t.Fatal(err)
	}

	// RFC 7515 §4.1.11: a crit extension the verifier does not understand
	// makes the token invalid, however well signed.
	critHeaders := jws.NewHeaders()
	for k, v := range map[string]any{"crit": []string{"urn:example:must-understand"}, "urn:example:must-understand": true} {
		if err := critHeaders.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	critTok := jwt.New()
	for k, v := range is.claims() {
		if err := critTok.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	withCrit, err := jwt.Sign(critTok, jwt.WithKey(jwa.RS256(), is.rsaKey, jws.WithProtectedHeaders(critHeaders)))
	if err != nil {
		t.Fatal(err)
	}
	sub := func(s string) string { return is.rsaToken(with(func(c map[string]any) { c["sub"] = s })) }

	tests := []struct {
		name     string
		token    string
		want     identity.Caller
		wantFail bool
	}{
		{name: "RSA token", token: is.rsaToken(is.claims()), want: identity.Caller{UserID: "user-1", DisplayName: "Ada"}},
		{name: "EC token", token: is.sign(is.claims(), jwa.ES256(), is.ecKey), want: identity.Caller{UserID: "user-1", DisplayName: "Ada"}},
		{name: "preferred_username when no name", token: is.rsaToken(with(func(c map[string]any) { delete(c, "name"); c["preferred_username"] = "ada99" })), want: identity.Caller{UserID: "user-1", DisplayName: "ada99"}},
		{name: "sub when no name claims", token: is.rsaToken(with(func(c map[string]any) { delete(c, "name") })), want: identity.Caller{UserID: "user-1", DisplayName: "user-1"}},
		{name: "Cognito access token with client_id", token: is.rsaToken(with(func(c map[string]any) { delete(c, "aud"); c["client_id"] = testAudience })), want: identity.Caller{UserID: "user-1", DisplayName: "Ada"}},
		{name: "audience in a list", token: is.rsaToken(with(func(c map[string]any) { c["aud"] = []string{"other", testAudience} })), want: identity.Caller{UserID: "user-1", DisplayName: "Ada"}},
		{name: "expired within skew", token: is.rsaToken(with(func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() })), want: identity.Caller{UserID: "user-1", DisplayName: "Ada"}},

		{name: "missing token", token: "", wantFail: true},
		{name: "garbage", token: "not.a.jwt", wantFail: true},
		{name: "expired", token: is.rsaToken(with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), wantFail: true},
		{name: "not yet valid", token: is.rsaToken(with(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), wantFail: true},
		{name: "no exp", token: is.rsaToken(with(func(c map[string]any) { delete(c, "exp") })), wantFail: true},
		{name: "no sub", token: is.rsaToken(with(func(c map[string]any) { delete(c, "sub") })), wantFail: true},
		{name: "wrong issuer", token: is.rsaToken(with(func(c map[string]any) { c["iss"] = "https://evil.example" })), wantFail: true},
		{name: "wrong audience", token: is.rsaToken(with(func(c map[string]any) { c["aud"] = "someone-else" })), wantFail: true},
		{name: "wrong client_id", token: is.rsaToken(with(func(c map[string]any) { delete(c, "aud"); c["client_id"] = "someone-else" })), wantFail: true},
		{name: "bad signature", token: is.sign(is.claims(), jwa.RS256(), importKey(t, otherRSA, "rsa-1", jwa.RS256())), wantFail: true},
		{name: "unknown kid", token: is.sign(is.claims(), jwa.RS256(), importKey(t, otherRSA, "rsa-2", jwa.RS256())), wantFail: true},
		{name: "alg none", token: unsignedToken(t, map[string]any{"alg": "none", "kid": "rsa-1"}, is.claims()), wantFail: true},
		{name: "HS256 signed with the public key", token: string(hmacWithPublicKey), wantFail: true},
		{name: "alg differs from the key's", token: is.sign(is.claims(), jwa.RS512(), is.rsaKey), wantFail: true},
		{name: "aud names another client, client_id ours", token: is.rsaToken(with(func(c map[string]any) { c["aud"] = "someone-else"; c["client_id"] = testAudience })), wantFail: true},
		{name: "crit extension not understood", token: string(withCrit), wantFail: true},
		{name: "empty sub", token: sub(""), wantFail: true},
		{name: "sub with leading space", token: sub(" user-1"), wantFail: true},
		{name: "sub with trailing space", token: sub("user-1 "), wantFail: true},
		{name: "sub with leading tab", token: sub("\tuser-1"), wantFail: true},
		{name: "sub with no-break space", token: sub("\u00a0user-1"), wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := is.verifier.Verify(context.Background(), tt.token)
			if tt.wantFail {
				if !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("Verify = %+v, %v; want ErrUnauthorized", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tt.want {
				t.Errorf("Verify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVerifierCachesJWKS(t *testing.T) {
	is := newIssuer(t)
	for range 5 {
		if _, err := is.verifier.Verify(context.Background(), is.rsaToken(is.claims())); err != nil {
			t.Fatal(err)
		}
	}
	// The cache starts one background fetch at registration and the first
	// Verify may fetch on demand before it lands; after that, no fetches.
	if n := is.fetches.Load(); n > 2 {
		t.Errorf("JWKS fetched %d times for 5 tokens, want at most 2", n)
	}
}

func TestNewVerifierValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no issuer", Config{Audiences: []string{"a"}}},
		{"relative issuer", Config{Issuer: "issuer.example", Audiences: []string{"a"}}},
		{"no audience", Config{Issuer: "https://issuer.example"}},
		{"empty audience", Config{Issuer: "https://issuer.example", Audiences: []string{""}}},
		{"bad JWKS URL", Config{Issuer: "https://issuer.example", Audiences: []string{"a"}, JWKSURL: "ftp://x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := NewVerifier(context.Background(), tt.cfg); err == nil {
				_ = v.Close(context.Background())
				t.Fatal("NewVerifier accepted an invalid config")
			}
		})
	}
}
