package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// discoveryPath is appended to the issuer (without its trailing slash) to
// find the OpenID Provider configuration.
// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
const discoveryPath = "/.well-known/openid-configuration"

// jwks returns the JWKS URL, discovering and registering it on first use.
// API Gateway's JWT authorizer finds the keys the same way (the issuer's
// jwks_uri); Okta, Google and others serve no <issuer>/.well-known/jwks.json.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html
func (v *Verifier) jwks(ctx context.Context) (string, error) {
	v.jwksMu.Lock()
	defer v.jwksMu.Unlock()
	if v.jwksURL != "" {
		return v.jwksURL, nil
	}
	if !v.lastDiscoveryAt.IsZero() && time.Since(v.lastDiscoveryAt) < discoveryRetryEvery {
		return "", errors.New("issuer discovery failed recently; not retrying yet")
	}
	v.lastDiscoveryAt = time.Now()
	jwksURL, err := v.discover(ctx)
	if err != nil {
		return "", fmt.Errorf("discover JWKS: %w", err)
	}
	if err := v.register(ctx, jwksURL); err != nil {
		return "", err
	}
	return jwksURL, nil
}

// discover reads jwks_uri from the issuer's discovery document.
func (v *Verifier) discover(ctx context.Context) (string, error) {
	docURL := strings.TrimSuffix(v.issuer, "/") + discoveryPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", fmt.Errorf("request %s: %w", docURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", docURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: status %d", docURL, resp.StatusCode)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBytes)).Decode(&doc); err != nil {
		return "", fmt.Errorf("decode %s: %w", docURL, err)
	}
	// OpenID Connect Discovery §4.3: the document's issuer MUST be
	// identical to the issuer it was fetched for, or it is not to be used.
	if doc.Issuer != v.issuer {
		return "", fmt.Errorf("%s names issuer %q, want %q", docURL, doc.Issuer, v.issuer)
	}
	if err := validateURL("jwks_uri", doc.JWKSURI); err != nil {
		return "", fmt.Errorf("%s: %w", docURL, err)
	}
	return doc.JWKSURI, nil
}
