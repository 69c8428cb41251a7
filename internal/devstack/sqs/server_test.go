package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/groupcast/groupcast/internal/devstack/iam"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	srv          *Server
	admin, fn    *sqs.Client
	adminCreds   aws.Credentials
	queue, other string // names
}

// newEnv starts the endpoint with IAM: an admin, and a function allowed
// sqs:SendMessage on one queue only (SAM's SQSSendMessagePolicy).
func newEnv(t *testing.T) *env {
	t.Helper()
	reg := iam.NewRegistry("eu-west-1", "123456789012", "test")
	srv, err := Listen(context.Background(), Options{Region: "eu-west-1", AccountID: "123456789012", Logger: quiet, Auth: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	suffix := fmt.Sprint(time.Now().UnixNano()) // kumo's store is shared by the process
	e := &env{srv: srv, queue: "q-" + suffix, other: "other-" + suffix}
	// What SAM's SQSSendMessagePolicy expands to (internal/devstack/iam tests the expansion).
	stmts, err := iam.ParseDocument(map[string]any{"Statement": []any{map[string]any{"Effect": "Allow",
		"Action": []any{"sqs:SendMessage*"}, "Resource": "arn:aws:sqs:eu-west-1:123456789012:" + e.queue}}})
	if err != nil {
		t.Fatal(err)
	}
	fnCreds, err := reg.AddFunction("Fn", stmts)
	if err != nil {
		t.Fatal(err)
	}
	if e.adminCreds, err = reg.AddAdmin(aws.Credentials{}); err != nil {
		t.Fatal(err)
	}
	client := func(c aws.Credentials) *sqs.Client {
		return sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL()), Credentials: credentials.StaticCredentialsProvider{Value: c}})
	}
	e.admin, e.fn = client(e.adminCreds), client(fnCreds)
	for _, q := range []string{e.queue, e.other} {
		if _, err := e.admin.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(q)}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestIAM(t *testing.T) {
	tests := []struct {
		name string
		call func(e *env) error
		want string // "" = allowed
	}{
		{"send to its queue", func(e *env) error {
			_, err := e.fn.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.srv.QueueURL(e.queue)), MessageBody: aws.String("x")})
			return err
		}, ""},
		{"send to another queue", func(e *env) error {
			_, err := e.fn.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.srv.QueueURL(e.other)), MessageBody: aws.String("x")})
			return err
		}, "AccessDenied"},
		{"batch send needs SendMessage", func(e *env) error {
			_, err := e.fn.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(e.srv.QueueURL(e.queue)),
				Entries: []types.SendMessageBatchRequestEntry{{Id: aws.String("1"), MessageBody: aws.String("x")}}})
			return err
		}, ""},
		{"receive is not granted", func(e *env) error {
			_, err := e.fn.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.srv.QueueURL(e.queue))})
			return err
		}, "AccessDenied"},
		{"unknown key", func(e *env) error {
			c := sqs.New(sqs.Options{Region: "eu-west-1", BaseEndpoint: aws.String(e.srv.URL()), Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWN", "x", "")})
			_, err := c.ListQueues(context.Background(), &sqs.ListQueuesInput{})
			return err
		}, "InvalidClientTokenId"},
		{"admin receives", func(e *env) error {
			_, err := e.admin.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.srv.QueueURL(e.other))})
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			err := tt.call(e)
			if got := errorCode(err); got != tt.want || (tt.want == "" && err != nil) {
				t.Fatalf("error %v (code %q), want code %q", err, got, tt.want)
			}
		})
	}
}

// The stack's URLs and ARNs (not kumo's), SenderId, and the attributes
// asked for only.
func TestNamesAndAttributes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u, err := e.admin.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(e.queue)})
	if err != nil || aws.ToString(u.QueueUrl) != e.srv.QueueURL(e.queue) {
		t.Fatalf("GetQueueUrl = %v, %v; want %s", aws.ToString(u.QueueUrl), err, e.srv.QueueURL(e.queue))
	}
	a, err := e.admin.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: u.QueueUrl, AttributeNames: []types.QueueAttributeName{"QueueArn"}})
	if err != nil || a.Attributes["QueueArn"] != "arn:aws:sqs:eu-west-1:123456789012:"+e.queue {
		t.Fatalf("QueueArn = %v, %v", a.Attributes, err)
	}
	if _, err := e.fn.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: u.QueueUrl, MessageBody: aws.String("hello")}); err != nil {
		t.Fatal(err)
	}
	r, err := e.admin.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u.QueueUrl, WaitTimeSeconds: 5, VisibilityTimeout: 1})
	if err != nil || len(r.Messages) != 1 || r.Messages[0].Attributes != nil {
		t.Fatalf("receive without attribute names = %+v, %v; want one message, no attributes", r.Messages, err)
	}
	time.Sleep(1100 * time.Millisecond) // visible again
	r, err = e.admin.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u.QueueUrl, WaitTimeSeconds: 5,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{"SenderId", "ApproximateReceiveCount"}})
	if err != nil || len(r.Messages) != 1 {
		t.Fatalf("receive = %+v, %v", r.Messages, err)
	}
	at := r.Messages[0].Attributes
	if !strings.HasPrefix(at["SenderId"], "AROA") || !strings.HasSuffix(at["SenderId"], ":Fn") || at["ApproximateReceiveCount"] != "2" || len(at) != 2 {
		t.Fatalf("attributes %v, want SenderId of the function's role session and ApproximateReceiveCount 2 only", at)
	}
}

// The AWS CLI v1 (JSON protocol since botocore 1.31) works against the endpoint.
func TestAWSCLI(t *testing.T) {
	if _, err := exec.LookPath("aws"); err != nil {
		// The README promises this CLI works; CI's image has it, so there
		// its absence is a failure. A developer's machine needs only Go.
		if os.Getenv("CI") != "" {
			t.Fatalf("aws CLI not on PATH (CI must have it: pip install awscli): %v", err)
		}
		t.Skip("aws CLI not on PATH; install it to run this test (CI requires it)")
	}
	e := newEnv(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("aws", append([]string{"sqs", "--endpoint-url", e.srv.URL(), "--output", "json"}, args...)...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "AWS_DEFAULT_REGION=eu-west-1", "AWS_ACCESS_KEY_ID="+e.adminCreds.AccessKeyID,
			"AWS_SECRET_ACCESS_KEY="+e.adminCreds.SecretAccessKey, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	url := e.srv.QueueURL(e.queue)
	run("send-message", "--queue-url", url, "--message-body", "from the cli")
	var got struct{ Messages []struct{ Body string } }
	if err := json.Unmarshal([]byte(run("receive-message", "--queue-url", url, "--wait-time-seconds", "5")), &got); err != nil || len(got.Messages) != 1 || got.Messages[0].Body != "from the cli" {
		t.Fatalf("receive-message: %+v %v", got, err)
	}
	var attrs struct{ Attributes map[string]string }
	if err := json.Unmarshal([]byte(run("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")), &attrs); err != nil ||
		attrs.Attributes["QueueArn"] != "arn:aws:sqs:eu-west-1:123456789012:"+e.queue || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "1" {
		t.Fatalf("get-queue-attributes: %+v %v", attrs, err)
	}
}
