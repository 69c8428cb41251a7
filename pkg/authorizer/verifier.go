// Package authorizer verifies JWTs against an issuer's JWKS and implements
// the WebSocket $connect REQUEST authorizer.
package authorizer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	// DefaultClockSkew tolerates clocks of issuer and verifier drifting apart
	// a little; a minute is common practice and keeps expiry meaningful.
	DefaultClockSkew = time.Minute
	// jwksMinRefresh is the shortest interval between background JWKS
	// refreshes. Issuers publish new keys well before signing with them
	// (Cognito rotates rarely), so 15 minutes is plenty.
	jwksMinRefresh = 15 * time.Minute
	// jwksMaxRefresh bounds how long a JWKS is trusted without re-fetching,
	// so a removed (compromised) key stops verifying within a day.
	jwksMaxRefresh = 24 * time.Hour
	// unknownKidRefreshEvery limits refreshes triggered by a token whose kid
	// is not in the cached set: enough to pick up a freshly rotated key
	// quickly, rare enough that tokens with made-up kids cannot turn the
	// authorizer into a JWKS request amplifier.
	unknownKidRefreshEvery = 30 * time.Second
	// jwksFetchTimeout caps one JWKS download; a $connect waits on it at
	// cold start, and API Gateway gives the authorizer 10 s at most.
	jwksFetchTimeout = 5 * time.Second
)

// allowedAlgs are the asymmetric signature algorithms a key may declare.
// HMAC is excluded on purpose: with a public JWKS it would let anyone who
// knows the public key forge tokens. "none" is never a valid signature.
var allowedAlgs = []jwa.SignatureAlgorithm{
	jwa.RS256(), jwa.RS384(), jwa.RS512(),
	jwa.PS256(), jwa.PS384(), jwa.PS512(),
	jwa.ES256(), jwa.ES384(), jwa.ES512(),
	jwa.EdDSA(),
}

// ErrUnauthorized is returned (wrapped) for every token that is missing or
// does not verify; callers answer 401 without revealing the reason.
var ErrUnauthorized = errors.New("unauthorized")

// Config configures a Verifier.
type Config struct {
	Issuer   string // required, exact "iss" value
	Audience string // required; matches "aud" or Cognito's "client_id"
	// JWKSURL defaults to Issuer + "/.well-known/jwks.json".
	JWKSURL string
	// ClockSkew defaults to DefaultClockSkew.
	ClockSkew time.Duration
	// HTTPClient fetches the JWKS; nil means a client with jwksFetchTimeout.
	HTTPClient *http.Client
}

// Identity is the verified caller.
type Identity struct {
	UserID      string // the "sub" claim
	DisplayName string // name, else preferred_username, else sub
}

// Verifier verifies JWTs. It is safe for concurrent use and meant to live
// for the whole process (it caches and refreshes the JWKS in the background).
type Verifier struct {
	issuer, audience, jwksURL string
	skew                      time.Duration
	cache                     *jwk.Cache

	mu             sync.Mutex
	lastMissLookup time.Time
}

// NewVerifier validates cfg and starts the JWKS cache. It does not fetch the
// JWKS yet, so a briefly unreachable issuer does not fail start-up; the
// first Verify fetches it.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := validateURL("issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.Audience == "" {
		return nil, errors.New("authorizer: audience is required")
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/jwks.json"
	}
	if err := validateURL("JWKS URL", cfg.JWKSURL); err != nil {
		return nil, err
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: jwksFetchTimeout}
	}
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, fmt.Errorf("authorizer: start JWKS cache: %w", err)
	}
	err = cache.Register(ctx, cfg.JWKSURL,
		jwk.WithHTTPClient(cfg.HTTPClient),
		jwk.WithMinInterval(jwksMinRefresh),
		jwk.WithMaxInterval(jwksMaxRefresh),
		jwk.WithWaitReady(false),
	)
	if err != nil {
		return nil, fmt.Errorf("authorizer: register JWKS %s: %w", cfg.JWKSURL, err)
	}
	return &Verifier{issuer: cfg.Issuer, audience: cfg.Audience, jwksURL: cfg.JWKSURL, skew: cfg.ClockSkew, cache: cache}, nil
}

func validateURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("authorizer: %s %q is not an absolute http(s) URL", what, raw)
	}
	return nil
}

// Close stops the background JWKS refresh.
func (v *Verifier) Close(ctx context.Context) error {
	return v.cache.Shutdown(ctx)
}

// Verify checks the token's signature, issuer, audience and validity window
// and returns the caller. Every failure wraps ErrUnauthorized.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	tok, err := v.parse(ctx, token)
	if err != nil {
		return Identity{}, err
	}
	sub, _ := tok.Subject()
	id := Identity{UserID: sub, DisplayName: sub}
	for _, claim := range []string{"name", "preferred_username"} {
		var s string
		if err := tok.Get(claim, &s); err == nil && s != "" {
			id.DisplayName = s
			break
		}
	}
	return id, nil
}

// Claims verifies the token as Verify does and returns all of its claims,
// as an HTTP API JWT authorizer hands them to the integration.
func (v *Verifier) Claims(ctx context.Context, token string) (map[string]any, error) {
	if _, err := v.parse(ctx, token); err != nil {
		return nil, err
	}
	// The signature over this payload has just been verified.
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrUnauthorized, err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrUnauthorized, err)
	}
	return claims, nil
}

// parse verifies the token and returns it. Every failure wraps ErrUnauthorized.
func (v *Verifier) parse(ctx context.Context, token string) (jwt.Token, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	tok, err := jwt.ParseString(token,
		jwt.WithKeyProvider(keyProvider{v}),
		jwt.WithContext(ctx),
		jwt.WithIssuer(v.issuer),
		jwt.WithAcceptableSkew(v.skew),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("sub"),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if !v.audienceMatches(tok) {
		return nil, fmt.Errorf("%w: token is not for audience %q", ErrUnauthorized, v.audience)
	}
	return tok, nil
}

// audienceMatches accepts the audience in "aud" (ID tokens, most issuers)
// or in "client_id" (Cognito access tokens carry no "aud").
func (v *Verifier) audienceMatches(tok jwt.Token) bool {
	if aud, ok := tok.Audience(); ok && slices.Contains(aud, v.audience) {
		return true
	}
	var clientID string
	return tok.Get("client_id", &clientID) == nil && clientID == v.audience
}

// keyProvider hands jws exactly one key: the JWKS key named by the token's
// kid, and only when the token's alg is the asymmetric alg that key declares.
type keyProvider struct{ v *Verifier }

func (p keyProvider) FetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	hdr := sig.ProtectedHeaders()
	kid, ok := hdr.KeyID()
	if !ok || kid == "" {
		return errors.New("token has no kid")
	}
	alg, ok := hdr.Algorithm()
	if !ok || !slices.Contains(allowedAlgs, alg) {
		return fmt.Errorf("token alg %q is not accepted", alg)
	}
	key, err := p.v.lookupKey(ctx, kid)
	if err != nil {
		return err
	}
	keyAlg, ok := key.Algorithm()
	if !ok || keyAlg.String() != alg.String() {
		return fmt.Errorf("token alg %q does not match the alg declared on key %q", alg, kid)
	}
	sink.Key(alg, key)
	return nil
}

// lookupKey finds kid in the cached JWKS, fetching it when the cache is
// still empty and refreshing it (rate limited) when kid is unknown.
func (v *Verifier) lookupKey(ctx context.Context, kid string) (jwk.Key, error) {
	set, err := v.cache.Lookup(ctx, v.jwksURL)
	if err != nil {
		// Not fetched yet (cold start or the issuer was down): fetch now.
		if set, err = v.cache.Refresh(ctx, v.jwksURL); err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	if !v.mayRefreshForUnknownKid() {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	if set, err = v.cache.Refresh(ctx, v.jwksURL); err != nil {
		return nil, fmt.Errorf("refresh JWKS: %w", err)
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown kid %q", kid)
}

func (v *Verifier) mayRefreshForUnknownKid() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.lastMissLookup) < unknownKidRefreshEvery {
		return false
	}
	v.lastMissLookup = time.Now()
	return true
}
