// Command echo is a test function: it returns its payload together with what
// the platform told it (request id, deadline, environment, pid). If the payload
// has "waitURL" it first GETs that URL, which lets a test hold invocations open.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	WaitURL string `json:"waitURL"`
}

type reply struct {
	Payload     json.RawMessage   `json:"payload"`
	PID         int               `json:"pid"`
	RequestID   string            `json:"requestId"`
	FunctionArn string            `json:"functionArn"`
	HasDeadline bool              `json:"hasDeadline"`
	Env         map[string]string `json:"env"`
}

// envReported are the variables the tests check.
var envReported = []string{
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_LOG_FORMAT", "_HANDLER", "LAMBDA_TASK_ROOT", "CUSTOM", "AWS_PROFILE", "LAMBDARUN_HOST_ONLY",
}

func handle(ctx context.Context, raw json.RawMessage) (reply, error) {
	var req request
	if err := json.Unmarshal(raw, &req); err != nil {
		return reply{}, fmt.Errorf("decode payload: %w", err)
	}
	if req.WaitURL != "" {
		httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.WaitURL, nil)
		if err != nil {
			return reply{}, err
		}
		resp, err := http.DefaultClient.Do(httpReq)
		if err != nil {
			return reply{}, fmt.Errorf("wait: %w", err)
		}
		resp.Body.Close()
	}
	lc, _ := lambdacontext.FromContext(ctx)
	_, hasDeadline := ctx.Deadline()
	env := map[string]string{}
	for _, k := range envReported {
		env[k] = os.Getenv(k)
	}
	return reply{
		Payload:     raw,
		PID:         os.Getpid(),
		RequestID:   lc.AwsRequestID,
		FunctionArn: lc.InvokedFunctionArn,
		HasDeadline: hasDeadline,
		Env:         env,
	}, nil
}

func main() { lambda.Start(handle) }
