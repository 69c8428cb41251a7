// Package tokens is a development token issuer for the local stack: it mints
// RS256-signed JWTs for any user id and publishes its public key as a JWKS,
// found through an OpenID discovery document as real issuers publish it, so
// the project's real JWT verification (the HTTP API's JWT authorizer and the
// WebSocket authorizer function) runs unchanged against it.
//
// It authenticates nobody: whoever can reach it can mint a token for any user.
// Serve it on loopback only.
package tokens

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	// JWKSPath is where the public key set is served; verifiers find it
	// through the discovery document's jwks_uri, not by this name.
	JWKSPath = "/.well-known/jwks.json"
	// DiscoveryPath serves the OpenID Provider configuration, which API
	// Gateway's JWT authorizer reads to find jwks_uri.
	// https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig
	DiscoveryPath = "/.well-known/openid-configuration"
	// TokenPath is the minting endpoint.
	TokenPath = "/token"

	// DefaultTTL: a working session's worth, so a developer does not re-mint
	// all the time, yet short enough that expiry handling gets exercised.
	DefaultTTL = time.Hour
	// MaxTTL caps ttlSeconds: a mistyped value must not mint a token that is
	// valid for years.
	MaxTTL = 24 * time.Hour

	maxSubjectRunes = 128
	maxNameRunes    = 256
	// maxRequestBody: a token request is a few dozen bytes; 64 KiB is ample.
	maxRequestBody = 64 << 10
	// keyBits: 2048-bit RSA is the smallest size verifiers accept without
	// complaint and is quick to generate at start-up.
	keyBits = 2048
)

// Options configure an Issuer.
type Options struct {
	// Issuer is the "iss" claim: the issuer's base URL (e.g.
	// "http://127.0.0.1:4567"), known once its listener is. Required.
	Issuer string
	// Audience is the "aud" claim. Required.
	Audience string
	// TTL of minted tokens when a request does not ask for one; 0 means DefaultTTL.
	TTL time.Duration
	// KeyFile, if set, is a PEM RSA private key (PKCS#1 or PKCS#8). If the file
	// does not exist a new key is generated and written there, so tokens stay
	// valid across restarts. Empty: a new key for every Issuer.
	KeyFile string
	Logger  *slog.Logger
}

// Issuer mints tokens and serves its JWKS.
type Issuer struct {
	issuer   string
	audience string
	ttl      time.Duration
	key      jwk.Key // private, with kid and alg
	jwks     []byte  // the public set, rendered once
	logger   *slog.Logger
}

// New creates an Issuer with a generated or loaded RSA key.
func New(opts Options) (*Issuer, error) {
	u, err := url.Parse(opts.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("tokens: issuer %q must be an absolute URL", opts.Issuer)
	}
	if opts.Audience == "" {
		return nil, errors.New("tokens: audience is empty")
	}
	if opts.TTL < 0 || opts.TTL > MaxTTL {
		return nil, fmt.Errorf("tokens: TTL %s outside (0, %s]", opts.TTL, MaxTTL)
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	raw, err := loadOrGenerateKey(opts.KeyFile)
	if err != nil {
		return nil, err
	}
	key, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("tokens: import key: %w", err)
	}
	// The kid is the key's thumbprint, so a persisted key keeps its kid.
	if err := jwk.AssignKeyID(key); err != nil {
		return nil, fmt.Errorf("tokens: key id: %w", err)
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.RS256()); err != nil {
		return nil, fmt.Errorf("tokens: key alg: %w", err)
	}
	if err := key.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, fmt.Errorf("tokens: key use: %w", err)
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("tokens: public key: %w", err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, fmt.Errorf("tokens: key set: %w", err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("tokens: render key set: %w", err)
	}
	return &Issuer{
		issuer:   strings.TrimSuffix(opts.Issuer, "/"),
		audience: opts.Audience,
		ttl:      opts.TTL,
		key:      key,
		jwks:     jwks,
		logger:   opts.Logger,
	}, nil
}

func loadOrGenerateKey(path string) (*rsa.PrivateKey, error) {
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			return parseKey(path, data)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("tokens: read key: %w", err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("tokens: generate key: %w", err)
	}
	if path != "" {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("tokens: encode key: %w", err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
			return nil, fmt.Errorf("tokens: save key: %w", err)
		}
	}
	return key, nil
}

func parseKey(path string, data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("tokens: %s holds no PEM block", path)
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tokens: %s: not an RSA private key: %w", path, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tokens: %s: key is %T, want RSA", path, parsed)
	}
	return key, nil
}

// IssuerURL is the "iss" of minted tokens.
func (i *Issuer) IssuerURL() string { return i.issuer }

// JWKSURL is where the public keys are served under the issuer.
func (i *Issuer) JWKSURL() string { return i.issuer + JWKSPath }

// Audience is the "aud" of minted tokens.
func (i *Issuer) Audience() string { return i.audience }

// JWKS returns the public key set as served.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// Mint signs a token for sub with the default TTL. name may be empty.
func (i *Issuer) Mint(sub, name string) (string, error) {
	tok, _, err := i.mint(sub, name, i.ttl)
	return tok, err
}

// InvalidError is a request the issuer refuses (HTTP 400).
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "tokens: " + e.Reason }

func (i *Issuer) mint(sub, name string, ttl time.Duration) (string, time.Time, error) {
	if err := checkText("sub", sub, 1, maxSubjectRunes); err != nil {
		return "", time.Time{}, err
	}
	if err := checkText("name", name, 0, maxNameRunes); err != nil {
		return "", time.Time{}, err
	}
	// Whole seconds: iat and exp are NumericDates, and expiresAt must equal exp.
	now := time.Now().Truncate(time.Second)
	exp := now.Add(ttl)
	b := jwt.NewBuilder().
		Issuer(i.issuer).
		Audience([]string{i.audience}).
		Subject(sub).
		IssuedAt(now).
		Expiration(exp)
	if name != "" {
		b = b.Claim("name", name)
	}
	t, err := b.Build()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: build token: %w", err)
	}
	signed, err := jwt.Sign(t, jwt.WithKey(jwa.RS256(), i.key))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: sign: %w", err)
	}
	return string(signed), exp, nil
}

func checkText(field, s string, minRunes, maxRunes int) error {
	if !utf8.ValidString(s) {
		return &InvalidError{Reason: field + " is not valid UTF-8"}
	}
	n := utf8.RuneCountInString(s)
	if n < minRunes || n > maxRunes {
		return &InvalidError{Reason: fmt.Sprintf("%s must be %d to %d characters, got %d", field, minRunes, maxRunes, n)}
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return &InvalidError{Reason: field + " contains control characters"}
	}
	return nil
}

// Handler serves POST /token, GET /.well-known/jwks.json and GET
// /.well-known/openid-configuration. All allow any origin, so a browser page
// on another local port can fetch tokens.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+TokenPath, i.handleToken)
	mux.HandleFunc("OPTIONS "+TokenPath, handlePreflight)
	mux.HandleFunc("GET "+JWKSPath, i.handleJWKS)
	mux.HandleFunc("GET "+DiscoveryPath, i.handleDiscovery)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		mux.ServeHTTP(w, r)
	})
}

type tokenRequest struct {
	Sub        string `json:"sub"`
	Name       string `json:"name"`
	TTLSeconds *int64 `json:"ttlSeconds"`
}

type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"` // RFC 3339, equal to the exp claim
}

func (i *Issuer) handleToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "body must be a JSON object {\"sub\",\"name\",\"ttlSeconds\"}: "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "invalid", "body must hold a single JSON object")
		return
	}
	ttl := i.ttl
	if req.TTLSeconds != nil {
		if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(MaxTTL/time.Second) {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("ttlSeconds must be 1 to %d", int64(MaxTTL/time.Second)))
			return
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	token, exp, err := i.mint(req.Sub, req.Name, ttl)
	var invalid *InvalidError
	switch {
	case errors.As(err, &invalid):
		writeError(w, http.StatusBadRequest, "invalid", invalid.Reason)
		return
	case err != nil:
		i.logger.Error("mint token", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not sign the token")
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{Token: token, ExpiresAt: exp.UTC().Format(time.RFC3339)})
}

func (i *Issuer) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(i.jwks)
}

// discoveryDocument holds the discovery fields verifiers read, plus the
// required ones that describe this issuer truthfully. There is no
// authorization endpoint: tokens come from POST /token.
type discoveryDocument struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
}

func (i *Issuer) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, discoveryDocument{
		Issuer:                           i.issuer,
		JWKSURI:                          i.JWKSURL(),
		TokenEndpoint:                    i.issuer + TokenPath,
		ResponseTypesSupported:           []string{"id_token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{"RS256"},
	})
}

func handlePreflight(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError uses the project's error shape {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: msg}})
}
