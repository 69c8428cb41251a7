package wsgw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/groupcast/groupcast/internal/devstack/iam"
)

// rawManagementCall sends a @connections request over real HTTP, signed
// with creds unless creds is nil, and returns the status, error type and
// message.
func rawManagementCall(t *testing.T, f *fixture, method, id string, body []byte, sign func(*http.Request, []byte)) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, f.srv.URL+"/dev/@connections/"+id, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sign != nil {
		sign(req, body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m struct{ Message string }
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), m.Message
}

func signWith(t *testing.T, creds aws.Credentials, at time.Time) func(*http.Request, []byte) {
	return func(req *http.Request, body []byte) {
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
}

// Unsigned, forged and stale @connections calls are refused with 403, and
// neither deliver a message nor close the connection.
func TestManagementRefusesUnauthenticatedCalls(t *testing.T) {
	f := newFixture(t, nil)
	forged := f.admin
	forged.SecretAccessKey = "not-the-secret"
	unknown := aws.Credentials{AccessKeyID: "AKIAUNKNOWN000000000", SecretAccessKey: "x"}
	tests := []struct {
		name    string
		sign    func(*http.Request, []byte)
		wantMsg string
	}{
		{"unsigned", nil, "Missing Authentication Token"},
		{"wrong secret", signWith(t, forged, time.Now()), "The request signature we calculated does not match"},
		{"unknown key", signWith(t, unknown, time.Now()), "The security token included in the request is invalid"},
		{"expired signature", signWith(t, f.admin, time.Now().Add(-20*time.Minute)), "Signature expired"},
		{"body changed after signing", func(req *http.Request, body []byte) {
			signWith(t, f.admin, time.Now())(req, []byte(`{"other":"body"}`))
		}, "The request signature we calculated does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, id := f.dial(t, "?token=alice")
			for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodGet} {
				var body []byte
				if method == http.MethodPost {
					body = []byte(`{"type":"forged"}`)
				}
				status, typ, msg := rawManagementCall(t, f, method, id, body, tt.sign)
				if status != http.StatusForbidden || typ != "ForbiddenException" || !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("%s: %d %s %q, want 403 ForbiddenException %q", method, status, typ, msg, tt.wantMsg)
				}
			}
			// The connection is still open and got nothing: the next
			// message it reads is the admin's.
			ctx := testCtx(t)
			if _, err := f.management(t).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("genuine")}); err != nil {
				t.Fatalf("signed post after the refused ones: %v", err)
			}
			if _, got, err := c.Read(ctx); err != nil || string(got) != "genuine" {
				t.Fatalf("client read %q, %v; want only the genuine message", got, err)
			}
		})
	}
}

// A function may call @connections only as its policies allow: the
// method and the connection are part of the resource ARN.
func TestManagementChecksPolicies(t *testing.T) {
	f := newFixture(t, nil)
	postOnly, err := f.iam.AddFunction("Poster", []iam.Statement{{Effect: "Allow",
		Action:   []string{"execute-api:ManageConnections"},
		Resource: []string{"arn:aws:execute-api:us-east-1:123456789012:localws1/dev/POST/@connections/*"}}})
	if err != nil {
		t.Fatal(err)
	}
	nothing, err := f.iam.AddFunction("Bystander", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, id := f.dial(t, "?token=alice")
	ctx := testCtx(t)
	var forbidden *types.ForbiddenException

	// The SDK's ForbiddenException carries no message, so read AWS's
	// wording off the wire.
	status, typ, msg := rawManagementCall(t, f, http.MethodPost, id, []byte("x"), signWith(t, nothing, time.Now()))
	want := "User: arn:aws:sts::123456789012:assumed-role/test-BystanderRole/Bystander is not authorized to perform: execute-api:ManageConnections" +
		" on resource: arn:aws:execute-api:us-east-1:123456789012:localws1/dev/POST/@connections/" + id +
		" because no identity-based policy allows the execute-api:ManageConnections action"
	if status != http.StatusForbidden || typ != "ForbiddenException" || msg != want {
		t.Errorf("post without a grant: %d %s %q\nwant 403 ForbiddenException %q", status, typ, msg, want)
	}
	if _, err := f.managementAs(nothing).PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("x")}); !errors.As(err, &forbidden) {
		t.Errorf("SDK post without a grant: %v, want ForbiddenException", err)
	}

	poster := f.managementAs(postOnly)
	if _, err := poster.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: &id, Data: []byte("allowed")}); err != nil {
		t.Fatalf("post with a POST grant: %v", err)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != "allowed" {
		t.Fatalf("client read %q, %v", got, err)
	}
	if _, err := poster.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: &id}); !errors.As(err, &forbidden) {
		t.Errorf("delete with only a POST grant: %v, want ForbiddenException", err)
	}
	if _, _, msg := rawManagementCall(t, f, http.MethodDelete, id, nil, signWith(t, postOnly, time.Now())); !strings.Contains(msg, "/dev/DELETE/@connections/"+id+" because") {
		t.Errorf("delete with only a POST grant: %q, want the DELETE resource named", msg)
	}
	if _, err := poster.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id}); !errors.As(err, &forbidden) {
		t.Errorf("get with only a POST grant: %v, want ForbiddenException", err)
	}
	// Still open: the admin can still reach it.
	if _, err := f.management(t).GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: &id}); err != nil {
		t.Errorf("connection closed by a refused DELETE: %v", err)
	}
}

func TestNewRequiresAuth(t *testing.T) {
	_, err := New(Config{Stage: "dev", Routes: map[string]Route{}}, &fakeInvoker{})
	if err == nil || !strings.Contains(err.Error(), "Auth") {
		t.Fatalf("New without Auth: %v, want an error", err)
	}
}
