package iam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func sign(t *testing.T, req *http.Request, body []byte, creds aws.Credentials, service, region string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
}

// TestAuthenticate sends each request over real HTTP, so the server sees
// what a client's signer produced after net/http put it on the wire.
func TestAuthenticate(t *testing.T) {
	reg := NewRegistry("us-east-1", "1", "s")
	fn, err := reg.AddFunction("Fn", nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := reg.AddAdmin(aws.Credentials{AccessKeyID: "AKIAADMIN", SecretAccessKey: "admin-secret"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte(`{"TableName":"T"}`)
	type result struct {
		p   *Principal
		err error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(r.Body)
		p, err := reg.Authenticate(r.Context(), r, b.Bytes(), "dynamodb")
		results <- result{p, err}
	}))
	defer srv.Close()

	withoutToken := fn
	withoutToken.SessionToken = ""
	otherToken := fn
	otherToken.SessionToken = "stolen"
	wrongSecret := fn
	wrongSecret.SecretAccessKey = "guess"
	tests := []struct {
		name     string
		path     string
		prepare  func(*http.Request)
		wantName string
		wantKind AuthErrorKind
		wantMsg  string
	}{
		{name: "function", prepare: func(r *http.Request) { sign(t, r, body, fn, "dynamodb", "us-east-1", now) }, wantName: "Fn"},
		{name: "admin without session token", prepare: func(r *http.Request) { sign(t, r, body, admin, "dynamodb", "us-east-1", now) }, wantName: "admin"},
		{name: "escaped path", path: "/dev/%40connections/abc%3D", prepare: func(r *http.Request) { sign(t, r, body, fn, "dynamodb", "us-east-1", now) }, wantName: "Fn"},
		{name: "query string", path: "/?b=2&a=1", prepare: func(r *http.Request) { sign(t, r, body, fn, "dynamodb", "us-east-1", now) }, wantName: "Fn"},
		{name: "unsigned", prepare: func(*http.Request) {}, wantKind: MissingToken},
		{name: "not SigV4", prepare: func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, wantKind: MissingToken},
		{name: "unknown key", prepare: func(r *http.Request) {
			sign(t, r, body, aws.Credentials{AccessKeyID: "AKIANOPE", SecretAccessKey: "x"}, "dynamodb", "us-east-1", now)
		}, wantKind: UnrecognizedClient, wantMsg: "security token included in the request is invalid"},
		{name: "session token missing", prepare: func(r *http.Request) { sign(t, r, body, withoutToken, "dynamodb", "us-east-1", now) }, wantKind: UnrecognizedClient},
		{name: "other session token", prepare: func(r *http.Request) { sign(t, r, body, otherToken, "dynamodb", "us-east-1", now) }, wantKind: UnrecognizedClient},
		{name: "wrong secret", prepare: func(r *http.Request) { sign(t, r, body, wrongSecret, "dynamodb", "us-east-1", now) }, wantKind: BadSignature, wantMsg: "does not match"},
		{name: "body tampered", prepare: func(r *http.Request) { sign(t, r, []byte(`{"TableName":"U"}`), fn, "dynamodb", "us-east-1", now) }, wantKind: BadSignature, wantMsg: "does not match"},
		{name: "signed header changed", prepare: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
			sign(t, r, body, fn, "dynamodb", "us-east-1", now)
			r.Header.Set("X-Amz-Target", "DynamoDB_20120810.DeleteTable")
		}, wantKind: BadSignature, wantMsg: "does not match"},
		{name: "other service", prepare: func(r *http.Request) { sign(t, r, body, fn, "execute-api", "us-east-1", now) }, wantKind: BadSignature, wantMsg: "correct service"},
		{name: "other region", prepare: func(r *http.Request) { sign(t, r, body, fn, "dynamodb", "eu-west-1", now) }, wantKind: BadSignature, wantMsg: "valid region"},
		{name: "expired", prepare: func(r *http.Request) { sign(t, r, body, fn, "dynamodb", "us-east-1", now.Add(-16*time.Minute)) }, wantKind: BadSignature, wantMsg: "Signature expired"},
		{name: "from the future", prepare: func(r *http.Request) { sign(t, r, body, fn, "dynamodb", "us-east-1", now.Add(16*time.Minute)) }, wantKind: BadSignature, wantMsg: "Signature expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/"
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			tt.prepare(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-results
			if tt.wantName != "" {
				if got.err != nil || got.p.Name != tt.wantName {
					t.Fatalf("got %+v, %v; want principal %s", got.p, got.err, tt.wantName)
				}
				return
			}
			var ae *AuthError
			if !errors.As(got.err, &ae) || ae.Kind != tt.wantKind || !strings.Contains(ae.Message, tt.wantMsg) {
				t.Fatalf("got %+v, %v; want kind %v with %q", got.p, got.err, tt.wantKind, tt.wantMsg)
			}
		})
	}
}

func TestAddFunctionKeys(t *testing.T) {
	reg := NewRegistry("us-east-1", "1", "s")
	a, err := reg.AddFunction("A", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.AddFunction("B", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKeyID == b.AccessKeyID || a.SecretAccessKey == b.SecretAccessKey || !strings.HasPrefix(a.AccessKeyID, "ASIA") || len(a.AccessKeyID) != 20 {
		t.Fatalf("keys %q %q: want distinct 20-character ASIA keys with distinct secrets", a.AccessKeyID, b.AccessKeyID)
	}
	if _, err := reg.AddFunction("A", nil); err == nil {
		t.Fatal("second registration of A accepted")
	}
	p, ok := reg.Principal(a.AccessKeyID)
	if !ok || p.Name != "A" || p.ARN != "arn:aws:sts::1:assumed-role/s-ARole/A" {
		t.Fatalf("principal %+v", p)
	}
}
