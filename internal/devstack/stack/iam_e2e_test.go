package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/groupcast/groupcast/internal/devstack/stack"
)

// TestMissingGrantIsAccessDenied runs a template whose functions lack
// grants: each call the template does not allow fails inside the function
// with DynamoDB's AccessDeniedException, and each granted one succeeds.
func TestMissingGrantIsAccessDenied(t *testing.T) {
	logs := io.Discard
	if testing.Verbose() {
		logs = os.Stderr
	}
	ctx := testContext(t)
	s, err := stack.Start(ctx, stack.Options{
		Template:     filepath.Join("testdata", "iam", "template.yaml"),
		BuildDir:     buildDir,
		StackName:    fmt.Sprintf("iam%d", stackSeq.Add(1)),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FunctionLogs: logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	table := "arn:aws:dynamodb:us-east-1:000000000000:table/" + s.Tables[0]
	roleOf := func(fn string) string {
		return "arn:aws:sts::000000000000:assumed-role/" + strings.Split(s.Tables[0], "-")[0] + "-" + fn + "Role/" + fn
	}
	implicit := func(fn, action, resource string) string {
		return "User: " + roleOf(fn) + " is not authorized to perform: " + action + " on resource: " + resource +
			" because no identity-based policy allows the " + action + " action"
	}
	explicit := func(fn, action, resource string) string {
		return "User: " + roleOf(fn) + " is not authorized to perform: " + action + " on resource: " + resource +
			" with an explicit deny in an identity-based policy"
	}
	tests := []struct {
		fn, op  string
		wantMsg string // "" = allowed
	}{
		{"Reader", "get", ""},
		{"Reader", "query-index", ""},
		{"Reader", "put", implicit("Reader", "dynamodb:PutItem", table)},
		{"Reader", "delete", implicit("Reader", "dynamodb:DeleteItem", table)},
		{"Reader", "batch-write", implicit("Reader", "dynamodb:BatchWriteItem", table)},
		{"Reader", "transact-put", implicit("Reader", "dynamodb:ConditionCheckItem", table)},
		{"Writer", "put", ""},
		{"Writer", "get", ""},
		{"Writer", "batch-write", ""},
		{"Writer", "delete", explicit("Writer", "dynamodb:DeleteItem", table)},
		{"Writer", "query-index", implicit("Writer", "dynamodb:Query", table+"/index/GSI1")},
		{"Writer", "transact-put", explicit("Writer", "dynamodb:ConditionCheckItem", table)},
	}
	for _, tt := range tests {
		t.Run(tt.fn+"/"+tt.op, func(t *testing.T) {
			out, err := s.Runtime().Invoke(testContext(t), tt.fn, []byte(`{"op":"`+tt.op+`"}`))
			if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			var res struct {
				OK            bool
				Code, Message string
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("result %s: %v", out, err)
			}
			if tt.wantMsg == "" {
				if !res.OK {
					t.Fatalf("%s %s refused: %s %s", tt.fn, tt.op, res.Code, res.Message)
				}
				return
			}
			if res.OK || res.Code != "AccessDeniedException" || res.Message != tt.wantMsg {
				t.Fatalf("%s %s: ok=%v %s %q\nwant AccessDeniedException %q", tt.fn, tt.op, res.OK, res.Code, res.Message, tt.wantMsg)
			}
		})
	}
}

// The local DynamoDB refuses what AWS refuses before any policy is read:
// unsigned requests, unknown keys and forged signatures.
func TestDynamoDBRequiresSignature(t *testing.T) {
	ctx := testContext(t)
	admin := shared.AdminCredentials()
	forged := admin
	forged.SecretAccessKey = "guessed"
	tests := []struct {
		name     string
		creds    aws.CredentialsProvider
		wantCode string
	}{
		{"anonymous", aws.AnonymousCredentials{}, "MissingAuthenticationTokenException"},
		{"unknown key", credentials.NewStaticCredentialsProvider("local", "local", ""), "UnrecognizedClientException"},
		{"forged signature", credentials.StaticCredentialsProvider{Value: forged}, "InvalidSignatureException"},
		{"admin", credentials.StaticCredentialsProvider{Value: admin}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(shared.Endpoints.DynamoDB),
				Credentials: tt.creds, RetryMaxAttempts: 1})
			_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(shared.Tables[0])})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("admin describe: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantCode) {
				t.Fatalf("describe: %v, want %s", err, tt.wantCode)
			}
		})
	}
}

// TestConnectionsRefuseUnsignedCalls: an unsigned POST must not reach
// another user's socket and an unsigned DELETE must not close it, while
// the fan-out (whose policy grants POST) still delivers.
func TestConnectionsRefuseUnsignedCalls(t *testing.T) {
	ctx := testContext(t)
	a, victim := newUser(t, shared, "a"), newUser(t, shared, "victim")
	g := groupWith(t, a, "public", victim)
	cv := victim.connect(t, shared, g.GroupID)
	store := storeOf(t, shared)
	ids, err := store.UserConnectionIDs(ctx, victim.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("victim's connections %v, %v", ids, err)
	}
	url := shared.Endpoints.Management + "/@connections/" + ids[0]
	for _, method := range []string{http.MethodPost, http.MethodDelete} {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader([]byte(`{"type":"group.post_created","data":{"content":"forged"}}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || string(body) != `{"message":"Missing Authentication Token"}` {
			t.Errorf("unsigned %s: %d %s, want 403 Missing Authentication Token", method, resp.StatusCode, body)
		}
	}
	// Still connected, and the first post event it sees is the real one.
	p, err := a.CreatePost(ctx, g.GroupID, "genuine")
	if err != nil {
		t.Fatal(err)
	}
	if ev := awaitEvent(t, cv, "group.post_created"); !containsJSON(ev.Data, `"postId":"`+p.PostID+`"`) {
		t.Fatalf("victim got %s, want post %s", ev.Data, p.PostID)
	}
}
