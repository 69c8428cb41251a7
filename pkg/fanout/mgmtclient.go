package fanout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// ManagementClient is the fan-out's @connections client. It keeps the
// SDK's apigatewaymanagementapi.Client for everything but one case: a
// PostToConnection that succeeds. That call is a keep-alive POST of the
// same request the SDK would send (same URL escaping, Content-Type, body),
// signed by the SDK's own SigV4 signer with the SDK's credentials
// provider.
//
// Why: BenchmarkPostToConnection measured the SDK call at 2.3-2.6× a bare
// signed POST on the same machine (README, "Push cost"). Most of it is
// per-call machinery that o.APIOptions cannot remove: the Options copy,
// building a ~25-middleware stack, auth-scheme and endpoint-rule
// resolution, the schema serializer, and a request body type net/http
// does not recognise as in-memory, so headers and body go out in two
// writes. Removing the optional middleware (invocation id, retry, user
// agent, timing, logging) and a static endpoint resolver together gained
// ~10-20%, far from the 1.5× target.
//
// Every other outcome (any non-2xx answer, a transport error) is handed to
// the SDK client with an HTTP client that replays what the wire returned,
// so the SDK's own deserializer builds the error: GoneException,
// LimitExceededException, PayloadTooLargeException, ForbiddenException,
// request ids and HTTP status all exactly as from the SDK. The replay sends
// nothing, so no message is posted twice.
//
// What the fast path drops: the amz-sdk-invocation-id and amz-sdk-request
// headers (retry bookkeeping: the SDK retryer is off, deliverOne retries),
// the SDK's clock-skew correction (Lambda's clock is NTP-synced; a skewed
// signature still fails loudly as a 403), and the per-call response
// metadata in PostToConnectionOutput, which the fan-out never reads.
type ManagementClient struct {
	sdk  *apigatewaymanagementapi.Client
	http interface {
		Do(*http.Request) (*http.Response, error)
	}
	creds     aws.CredentialsProvider
	signer    *v4.Signer
	region    string
	base      *url.URL // endpoint, including the stage path
	userAgent string
}

// maxErrorBody bounds how much of an error answer is kept for the SDK to
// decode: API Gateway's error bodies are a one-line JSON message.
const maxErrorBody = 64 << 10

// PostToConnection sends in.Data to one connection. With optFns, or an
// input the SDK would reject, it is the SDK's call unchanged.
func (c *ManagementClient) PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	if len(optFns) > 0 || in == nil || in.ConnectionId == nil || in.Data == nil || c.creds == nil {
		return c.sdk.PostToConnection(ctx, in, optFns...)
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return c.sdk.PostToConnection(ctx, in) // the SDK reports it in its own words
	}
	req, err := c.newRequest(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("post to connection %s: %w", *in.ConnectionId, err)
	}
	sum := sha256.Sum256(in.Data)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.region, time.Now()); err != nil {
		return nil, fmt.Errorf("sign post to connection %s: %w", *in.ConnectionId, err)
	}
	resp, err := c.http.Do(req)
	if err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain so the keep-alive connection is reused; the SDK discards
		// PostToConnection's (empty) success body too.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
	}
	rp := &replay{err: err}
	switch {
	case err != nil:
		if resp != nil {
			_ = resp.Body.Close()
		}
	default:
		body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		if readErr != nil {
			rp.err = fmt.Errorf("read error response: %w", readErr)
		} else {
			rp.resp, rp.body = resp, body
		}
	}
	return c.sdk.PostToConnection(ctx, in, func(o *apigatewaymanagementapi.Options) { o.HTTPClient = rp })
}

// newRequest builds the request the SDK's REST-JSON serializer builds:
// POST {endpoint}/@connections/{connectionId} with the id escaped in
// Amazon style and the data as an application/octet-stream body.
func (c *ManagementClient) newRequest(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(c.base.Path, "/") + "/@connections/" + *in.ConnectionId
	u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + "/@connections/" + httpbinding.EscapePath(*in.ConnectionId, true)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "", bytes.NewReader(in.Data))
	if err != nil {
		return nil, err
	}
	req.URL, req.Host = &u, u.Host
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("User-Agent", c.userAgent)
	if v, ok := lambdaTraceHeader(); ok {
		req.Header.Set("X-Amzn-Trace-Id", v)
	}
	return req, nil
}

// lambdaTraceHeader is what the SDK's RecursionDetection middleware adds
// inside Lambda: the invocation's trace id, for X-Ray and loop detection.
func lambdaTraceHeader() (string, bool) {
	if _, inLambda := os.LookupEnv("AWS_LAMBDA_FUNCTION_NAME"); !inLambda {
		return "", false
	}
	id, ok := os.LookupEnv("_X_AMZN_TRACE_ID")
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte(`-=;:+&[]{}"',`, ch) >= 0 {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String(), true
}

// replay is an SDK HTTP client that answers with what the fast path
// already received, so the SDK decodes it without a second send.
type replay struct {
	resp *http.Response
	body []byte
	err  error
}

func (r *replay) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if r.resp == nil {
		return nil, r.err
	}
	resp := *r.resp
	resp.Body = io.NopCloser(bytes.NewReader(r.body))
	resp.Request = req
	return &resp, nil
}

func userAgent() string {
	return "aws-sdk-go-v2/" + aws.SDKVersion + " os/" + runtime.GOOS + " lang/go#" + runtime.Version() +
		" api/apigatewaymanagementapi groupcast-fanout/post-fast-path"
}
