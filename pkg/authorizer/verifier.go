// Package authorizer verifies JWTs against an issuer's JWKS and implements
// the WebSocket $connect REQUEST authorizer.
package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/groupcast/groupcast/pkg/identity"
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
	// discoveryRetryEvery spaces out discovery attempts while the issuer's
	// discovery document cannot be had, so a burst of $connects against a
	// down issuer does not queue one fetch each; short, so recovery is quick.
	discoveryRetryEvery = 5 * time.Second
	// maxDiscoveryBytes bounds the discovery document read: real ones are a
	// few KB (Cognito's is under 2 KB).
	maxDiscoveryBytes = 1 << 20
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
	Issuer string // required, exact "iss" value
	// Audiences are the accepted "aud" values (or "client_id" when the
	// token has no aud; identity.AudienceMatches). At least one.
	Audiences []string
	// JWKSURL overrides discovery. Empty: the JWKS is found as API Gateway
	// finds it, through <issuer>/.well-known/openid-configuration's jwks_uri.
	JWKSURL string
	// ClockSkew defaults to DefaultClockSkew.
	ClockSkew time.Duration
	// HTTPClient fetches the discovery document and the JWKS; nil means a
	// client with jwksFetchTimeout.
	HTTPClient *http.Client
}

// Verifier verifies JWTs. It is safe for concurrent use and meant to live
// for the whole process (it caches and refreshes the JWKS in the background).
type Verifier struct {
	issuer    string
	audiences []string
	skew      time.Duration
	client    *http.Client
	cache     *jwk.Cache

	jwksMu          sync.Mutex
	jwksURL         string // "" until discovered (or set by Config.JWKSURL)
	lastDiscoveryAt time.Time

	mu             sync.Mutex
	lastMissLookup time.Time
}

// NewVerifier validates cfg and starts the JWKS cache. It fetches neither
// the discovery document nor the JWKS yet, so a briefly unreachable issuer
// does not fail start-up; the first Verify fetches them.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := validateURL("issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if len(cfg.Audiences) == 0 || slices.Contains(cfg.Audiences, "") {
		return nil, errors.New("authorizer: at least one audience is required, and none may be empty")
	}
	if cfg.JWKSURL != "" {
		if err := validateURL("JWKS URL", cfg.JWKSURL); err != nil {
			return nil, err
		}
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
	v := &Verifier{issuer: cfg.Issuer, audiences: slices.Clone(cfg.Audiences), skew: cfg.ClockSkew, client: cfg.HTTPClient, cache: cache}
	if cfg.JWKSURL != "" {
		if err := v.register(ctx, cfg.JWKSURL); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *Verifier) register(ctx context.Context, jwksURL string) error {
	err := v.cache.Register(ctx, jwksURL,
		jwk.WithHTTPClient(v.client),
		jwk.WithMinInterval(jwksMinRefresh),
		jwk.WithMaxInterval(jwksMaxRefresh),
		jwk.WithWaitReady(false),
	)
	if err != nil {
		return fmt.Errorf("authorizer: register JWKS %s: %w", jwksURL, err)
	}
	v.jwksURL = jwksURL
	return nil
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
// and returns the caller (identity.FromClaims: a token whose sub cannot be a
// user id is refused). Every failure wraps ErrUnauthorized.
func (v *Verifier) Verify(ctx context.Context, token string) (identity.Caller, error) {
	claims, err := v.parse(ctx, token)
	if err != nil {
		return identity.Caller{}, err
	}
	c, err := identity.FromClaims(claims)
	if err != nil {
		return identity.Caller{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return c, nil
}

// Claims verifies the token's signature, issuer, audience and validity
// window and returns all of its claims, as an HTTP API JWT authorizer hands
// them to the integration. It applies no rule to sub: API Gateway does not,
// the integration does (identity.FromClaims).
func (v *Verifier) Claims(ctx context.Context, token string) (map[string]any, error) {
	return v.parse(ctx, token)
}

// parse verifies the token and returns its claims. Every failure wraps
// ErrUnauthorized.
func (v *Verifier) parse(ctx context.Context, token string) (map[string]any, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	// jws.Verify rather than jwt.Parse: jwt.Parse with a key provider
	// ignores the "crit" header, and RFC 7515 §4.1.11 requires refusing a
	// JWS whose crit names an extension we do not understand (we understand
	// none). https://www.rfc-editor.org/rfc/rfc7515#section-4.1.11
	payload, err := jws.Verify([]byte(token),
		jws.WithKeyProvider(keyProvider{v}),
		jws.WithContext(ctx),
		jws.WithCompact(),
		jws.WithCritValidation(true),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	// The payload must be a JSON object (not, say, a nested JWS).
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrUnauthorized, err)
	}
	// The signature has been verified; this validates the claims.
	if _, err := jwt.Parse(payload,
		jwt.WithVerify(false),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.issuer),
		jwt.WithAcceptableSkew(v.skew),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("sub"),
	); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if !identity.AudienceMatches(claims, v.audiences) {
		return nil, fmt.Errorf("%w: token is not for audiences %q", ErrUnauthorized, v.audiences)
	}
	return claims, nil
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
	jwksURL, err := v.jwks(ctx)
	if err != nil {
		return nil, err
	}
	set, err := v.cache.Lookup(ctx, jwksURL)
	if err != nil {
		// Not fetched yet (cold start or the issuer was down): fetch now.
		if set, err = v.cache.Refresh(ctx, jwksURL); err != nil {
			return nil, fmt.Errorf("fetch JWKS: %w", err)
		}
	}
	if key, ok := set.LookupKeyID(kid); ok {
		return key, nil
	}
	if !v.mayRefreshForUnknownKid() {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	if set, err = v.cache.Refresh(ctx, jwksURL); err != nil {
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
