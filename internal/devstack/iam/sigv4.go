package iam

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AuthErrorKind says why a request's authentication failed. Each service
// renders it in its own error shape.
type AuthErrorKind int

const (
	// MissingToken: no Authorization header (or not SigV4).
	MissingToken AuthErrorKind = iota
	// UnrecognizedClient: the access key or session token is not one the
	// stack issued.
	UnrecognizedClient
	// BadSignature: the signature does not match, is malformed, is scoped
	// to another region or service, or has expired.
	BadSignature
)

// AuthError is an authentication failure with AWS's message for it.
type AuthError struct {
	Kind    AuthErrorKind
	Message string
}

func (e *AuthError) Error() string { return e.Message }

// AWS's messages for the failures above, as DynamoDB and API Gateway send
// them (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html).
const (
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken      = "The security token included in the request is invalid."
)

// maxClockSkew: AWS refuses a signature whose X-Amz-Date is more than 15
// minutes from its clock ("Signature expired").
// https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html
const maxClockSkew = 15 * time.Minute

// Principal is an identity the stack issued credentials to.
type Principal struct {
	// Name is the function's logical id, or "admin".
	Name string
	// ARN is what AWS names the caller in an AccessDenied message: the
	// assumed-role session of the function's execution role.
	ARN        string
	Statements []Statement
	// Admin is allowed everything; it is for the test harness and
	// developer tools, never given to a function.
	Admin bool
}

// DeniedError is an authorization failure, worded as AWS words it.
type DeniedError struct {
	Principal, Action, Resource string
	Explicit                    bool
}

func (e *DeniedError) Error() string {
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
	why := "because no identity-based policy allows the " + e.Action + " action"
	if e.Explicit {
		why = "with an explicit deny in an identity-based policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", e.Principal, e.Action, e.Resource, why)
}

// Authorize returns nil when the principal may perform action on resource,
// and a *DeniedError otherwise.
func (p *Principal) Authorize(action, resource string) error {
	if p.Admin {
		return nil
	}
	switch Evaluate(p.Statements, action, resource) {
	case Allow:
		return nil
	case ExplicitDeny:
		return &DeniedError{Principal: p.ARN, Action: action, Resource: resource, Explicit: true}
	}
	return &DeniedError{Principal: p.ARN, Action: action, Resource: resource}
}

// Registry maps the access keys the stack issued to their principals and
// verifies signed requests. It is safe for concurrent use.
type Registry struct {
	region, account, stack string
	now                    func() time.Time
	signer                 *v4.Signer

	mu    sync.RWMutex
	byKey map[string]entry
}

type entry struct {
	creds aws.Credentials
	p     *Principal
}

// NewRegistry returns an empty registry for one region and account; stack
// names the roles (<stack>-<LogicalId>Role, as SAM does).
func NewRegistry(region, account, stack string) *Registry {
	return &Registry{region: region, account: account, stack: stack, now: time.Now,
		signer: v4.NewSigner(), byKey: map[string]entry{}}
}

// AddFunction issues credentials to a function whose execution role has
// the given statements. The access key is derived from the logical id (so
// logs stay readable across runs); the secret and session token are random.
func (r *Registry) AddFunction(logicalID string, stmts []Statement) (aws.Credentials, error) {
	sum := sha256.Sum256([]byte("groupcast-local/" + logicalID))
	// ASIA: the prefix of temporary (STS) access keys, which is what a
	// Lambda execution role's credentials are.
	key := "ASIA" + base32.StdEncoding.EncodeToString(sum[:])[:16]
	secret, err := randomString(30)
	if err != nil {
		return aws.Credentials{}, err
	}
	token, err := randomString(48)
	if err != nil {
		return aws.Credentials{}, err
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token, Source: "local stack"}
	p := &Principal{
		Name:       logicalID,
		ARN:        fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s-%sRole/%s", r.account, r.stack, logicalID, logicalID),
		Statements: stmts,
	}
	return creds, r.add(creds, p)
}

// AddAdmin registers credentials that are allowed everything. An empty
// access key gets random credentials.
func (r *Registry) AddAdmin(creds aws.Credentials) (aws.Credentials, error) {
	if creds.AccessKeyID == "" {
		secret, err := randomString(30)
		if err != nil {
			return aws.Credentials{}, err
		}
		id, err := randomString(10)
		if err != nil {
			return aws.Credentials{}, err
		}
		creds = aws.Credentials{AccessKeyID: "AKIA" + strings.ToUpper(id)[:16], SecretAccessKey: secret}
	}
	creds.Source = "local stack admin"
	p := &Principal{Name: "admin", ARN: fmt.Sprintf("arn:aws:iam::%s:user/admin", r.account), Admin: true}
	return creds, r.add(creds, p)
}

// Principal returns the principal an access key was issued to.
func (r *Registry) Principal(accessKey string) (*Principal, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.byKey[accessKey]
	return e.p, ok
}

func (r *Registry) add(creds aws.Credentials, p *Principal) error {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return fmt.Errorf("iam: credentials for %s need an access key and a secret", p.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byKey[creds.AccessKeyID]; dup {
		return fmt.Errorf("iam: access key %s is already issued", creds.AccessKeyID)
	}
	r.byKey[creds.AccessKeyID] = entry{creds: creds, p: p}
	return nil
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("iam: random: %w", err)
	}
	return strings.TrimRight(base32.StdEncoding.EncodeToString(b), "="), nil
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signedHeadersRaw                 string
	signature                        string
}

func parseAuthorization(h string) (authorization, bool) {
	var a authorization
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return a, false
			}
			a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders, a.signedHeadersRaw = strings.Split(v, ";"), v
		case "Signature":
			a.signature = v
		}
	}
	return a, a.accessKey != "" && a.signature != "" && len(a.signedHeaders) > 0
}

// Authenticate verifies a request signed with Signature Version 4 for
// service and returns its principal. It recomputes the signature with the
// AWS SDK's own signer over the received method, path, query, signed
// headers and body, with the secret of the access key the request names,
// and compares the two in constant time.
// https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
func (r *Registry) Authenticate(ctx context.Context, req *http.Request, body []byte, service string) (*Principal, error) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return nil, &AuthError{Kind: MissingToken}
	}
	a, ok := parseAuthorization(h)
	if !ok {
		// AWS answers an Authorization header it cannot parse as SigV4
		// with an "incomplete signature" or missing-token error.
		return nil, &AuthError{Kind: MissingToken}
	}
	r.mu.RLock()
	e, known := r.byKey[a.accessKey]
	r.mu.RUnlock()
	if !known {
		return nil, &AuthError{Kind: UnrecognizedClient, Message: msgInvalidToken}
	}
	if e.creds.SessionToken != "" && !hmac.Equal([]byte(req.Header.Get("X-Amz-Security-Token")), []byte(e.creds.SessionToken)) {
		return nil, &AuthError{Kind: UnrecognizedClient, Message: msgInvalidToken}
	}
	if a.service != service {
		return nil, &AuthError{Kind: BadSignature, Message: fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service)}
	}
	if a.region != r.region {
		return nil, &AuthError{Kind: BadSignature, Message: fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. ", a.region)}
	}
	at, err := time.Parse("20060102T150405Z", req.Header.Get("X-Amz-Date"))
	if err != nil || a.date != at.Format("20060102") {
		return nil, &AuthError{Kind: BadSignature, Message: msgSignatureMismatch}
	}
	if now := r.now(); at.Before(now.Add(-maxClockSkew)) || at.After(now.Add(maxClockSkew)) {
		return nil, &AuthError{Kind: BadSignature, Message: fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			at.Format("20060102T150405Z"), now.Add(-maxClockSkew).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"))}
	}
	want, err := r.resign(ctx, req, body, a, e.creds, at)
	if err != nil {
		return nil, &AuthError{Kind: BadSignature, Message: msgSignatureMismatch}
	}
	// The signer signs exactly the headers it was given, in canonical
	// order, so equal signatures over an equal SignedHeaders list is the
	// whole check; both come from the one Authorization header it built.
	if !strings.Contains(want, "SignedHeaders="+a.signedHeadersRaw+",") ||
		!hmac.Equal([]byte(want[strings.LastIndex(want, "Signature=")+len("Signature="):]), []byte(a.signature)) {
		return nil, &AuthError{Kind: BadSignature, Message: msgSignatureMismatch}
	}
	return e.p, nil
}

// resign signs a copy of req holding only the headers the client signed,
// and returns the Authorization header the signer produced: its signature
// equals the received one exactly when the client signed the same request
// with the same secret.
func (r *Registry) resign(ctx context.Context, req *http.Request, body []byte, a authorization, creds aws.Credentials, at time.Time) (string, error) {
	// Built directly, not parsed from a string: the copy only feeds the
	// signer, which reads the method, Host, escaped path, query and the
	// headers set below.
	u := &url.URL{Scheme: "http", Host: req.Host, Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	cp := (&http.Request{Method: req.Method, URL: u, Host: req.Host, Header: make(http.Header, len(a.signedHeaders))}).WithContext(ctx)
	for _, name := range a.signedHeaders {
		switch name {
		case "host", "x-amz-date", "x-amz-security-token":
			// The signer sets these itself from Host, the time and the
			// session token.
		case "content-length":
			cp.ContentLength = req.ContentLength
		default:
			for _, v := range req.Header.Values(name) {
				cp.Header.Add(name, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	if err := r.signer.SignHTTP(ctx, creds, cp, hex.EncodeToString(sum[:]), a.service, a.region, at); err != nil {
		return "", err
	}
	return cp.Header.Get("Authorization"), nil
}
