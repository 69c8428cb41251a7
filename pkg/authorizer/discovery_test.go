package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The default issuer (newIssuer) serves its keys only at the jwks_uri of its
// discovery document; every accepted token in TestVerify proves discovery.
// These cases cover the rest.
func TestDiscovery(t *testing.T) {
	keys := newIssuer(t) // signs the tokens and serves the real key set
	tests := []struct {
		name string
		// doc returns the discovery document for the issuer at base; nil
		// serves no document (404).
		doc      func(base string) map[string]string
		override bool // set Config.JWKSURL to the real key set
		wantOK   bool
	}{
		{name: "jwks_uri followed", doc: func(base string) map[string]string {
			return map[string]string{"issuer": base, "jwks_uri": keys.srv.URL + "/oauth2/v1/keys"}
		}, wantOK: true},
		{name: "no discovery document", doc: nil},
		{name: "no discovery document, JWKS override", doc: nil, override: true, wantOK: true},
		{name: "override wins over discovery", doc: func(base string) map[string]string {
			return map[string]string{"issuer": base, "jwks_uri": base + "/nothing-here"}
		}, override: true, wantOK: true},
		{name: "document names another issuer", doc: func(string) map[string]string {
			return map[string]string{"issuer": "https://evil.example", "jwks_uri": keys.srv.URL + "/oauth2/v1/keys"}
		}},
		{name: "jwks_uri missing", doc: func(base string) map[string]string { return map[string]string{"issuer": base} }},
		{name: "jwks_uri not http(s)", doc: func(base string) map[string]string {
			return map[string]string{"issuer": base, "jwks_uri": "file:///etc/passwd"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != discoveryPath || tt.doc == nil {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(tt.doc(srv.URL))
			}))
			t.Cleanup(srv.Close)
			cfg := Config{Issuer: srv.URL, Audiences: []string{testAudience}}
			if tt.override {
				cfg.JWKSURL = keys.srv.URL + "/oauth2/v1/keys"
			}
			v, err := NewVerifier(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = v.Close(context.Background()) })
			c := keys.claims()
			c["iss"] = srv.URL
			got, err := v.Verify(context.Background(), keys.rsaToken(c))
			if tt.wantOK {
				if err != nil || got.UserID != "user-1" {
					t.Fatalf("Verify = %+v, %v; want user-1", got, err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify = %+v, %v; want ErrUnauthorized", got, err)
			}
		})
	}
}

func TestDiscoveryDocumentFetchedOnce(t *testing.T) {
	is := newIssuer(t)
	for range 5 {
		if _, err := is.verifier.Verify(context.Background(), is.rsaToken(is.claims())); err != nil {
			t.Fatal(err)
		}
	}
	if n := is.discoveries.Load(); n != 1 {
		t.Errorf("discovery document fetched %d times for 5 tokens, want 1", n)
	}
}
