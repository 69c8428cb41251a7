package fanout

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/groupcast/groupcast/internal/devstack/iam"
)

// recorded is one request as the server saw it.
type recorded struct {
	method, escapedPath, contentType string
	body                             []byte
	authErr                          error
}

// recordingServer answers every request with status (and an API Gateway
// error body for non-2xx) and records it; with reg set it verifies the
// SigV4 signature as the local stack does.
func recordingServer(t *testing.T, status int, errorType string, reg *iam.Registry) (string, func() []recorded) {
	t.Helper()
	var mu sync.Mutex
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, escapedPath: r.URL.EscapedPath(), contentType: r.Header.Get("Content-Type"), body: body}
		if reg != nil {
			_, rec.authErr = reg.Authenticate(r.Context(), r, body, "execute-api")
		}
		mu.Lock()
		got = append(got, rec)
		mu.Unlock()
		w.Header().Set("X-Amzn-Requestid", "req-1")
		if errorType != "" {
			w.Header().Set("X-Amzn-Errortype", errorType)
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		if errorType != "" {
			_, _ = w.Write([]byte(`{"message":"from the server"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/dev", func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), got...)
	}
}

// The fast path's errors are the SDK's own: same types, same text, same
// HTTP status, and each call reaches the server once (the decoding replay
// sends nothing).
func TestManagementClientErrorsMatchSDK(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		errorType string
		as        func(error) bool
	}{
		{"gone", http.StatusGone, "GoneException", func(err error) bool { var e *types.GoneException; return errors.As(err, &e) }},
		{"limit exceeded", http.StatusTooManyRequests, "LimitExceededException", func(err error) bool { var e *types.LimitExceededException; return errors.As(err, &e) }},
		{"payload too large", http.StatusRequestEntityTooLarge, "PayloadTooLargeException", func(err error) bool { var e *types.PayloadTooLargeException; return errors.As(err, &e) }},
		{"forbidden", http.StatusForbidden, "ForbiddenException", func(err error) bool { var e *types.ForbiddenException; return errors.As(err, &e) }},
		{"server error", http.StatusInternalServerError, "InternalServerErrorException", func(err error) bool { return httpStatus(err) == 500 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, requests := recordingServer(t, tc.status, tc.errorType, nil)
			mc := NewManagementClient(testAWSConfig(), endpoint, 1)
			in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("abc="), Data: []byte(`{"x":1}`)}
			fastErr := func() error { _, err := mc.PostToConnection(context.Background(), in); return err }()
			sdkErr := func() error { _, err := mc.sdk.PostToConnection(context.Background(), in); return err }()
			if fastErr == nil || sdkErr == nil {
				t.Fatalf("errors = %v (fast), %v (sdk); want both non-nil", fastErr, sdkErr)
			}
			if !tc.as(fastErr) {
				t.Errorf("fast path error %T %v does not decode as %s", fastErr, fastErr, tc.errorType)
			}
			if fastErr.Error() != sdkErr.Error() {
				t.Errorf("fast path error %q, SDK error %q", fastErr, sdkErr)
			}
			if got, want := httpStatus(fastErr), tc.status; got != want {
				t.Errorf("HTTP status = %d, want %d", got, want)
			}
			if got := len(requests()); got != 2 {
				t.Errorf("server saw %d requests for one fast and one SDK call, want 2", got)
			}
		})
	}
}

// A connection refused is a retryable network error, as from the SDK.
func TestManagementClientTransportError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	mc := NewManagementClient(testAWSConfig(), "http://"+addr+"/dev", 1)
	in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("c1"), Data: []byte("x")}
	_, fastErr := mc.PostToConnection(context.Background(), in)
	_, sdkErr := mc.sdk.PostToConnection(context.Background(), in)
	if fastErr == nil || !retryable(fastErr) {
		t.Fatalf("error = %v, want a retryable network error", fastErr)
	}
	if fastErr.Error() != sdkErr.Error() {
		t.Errorf("fast path error %q, SDK error %q", fastErr, sdkErr)
	}
}

// The fast path sends the request the SDK sends (method, escaped path,
// Content-Type, body), and its signature verifies against the local
// stack's SigV4 check, which recomputes it with the issued secret.
func TestManagementClientSignsLikeSDK(t *testing.T) {
	reg := iam.NewRegistry("us-east-1", "123456789012", "groupcast")
	creds, err := reg.AddFunction("FanoutFunction", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)}
	wrong := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, "not-the-secret", creds.SessionToken)}
	endpoint, requests := recordingServer(t, http.StatusOK, "", reg)
	in := &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String("Ab+c/d="), Data: bytes.Repeat([]byte("é"), 300)}
	mc := NewManagementClient(cfg, endpoint, 1)
	if _, err := mc.PostToConnection(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.sdk.PostToConnection(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	_, _ = NewManagementClient(wrong, endpoint, 1).PostToConnection(context.Background(), in)
	got := requests()
	if len(got) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(got))
	}
	fast, sdk, bad := got[0], got[1], got[2]
	if fast.authErr != nil || sdk.authErr != nil {
		t.Errorf("signature check: fast path %v, SDK %v; want both nil", fast.authErr, sdk.authErr)
	}
	if bad.authErr == nil {
		t.Error("a request signed with the wrong secret verified")
	}
	if fast.method != sdk.method || fast.escapedPath != sdk.escapedPath || fast.contentType != sdk.contentType || !bytes.Equal(fast.body, sdk.body) {
		t.Errorf("fast path sent %s %s (%s, %d bytes), SDK %s %s (%s, %d bytes)",
			fast.method, fast.escapedPath, fast.contentType, len(fast.body), sdk.method, sdk.escapedPath, sdk.contentType, len(sdk.body))
	}
}
