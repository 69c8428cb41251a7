package authorizer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// sampleEvent loads the repo's sam local invoke sample: a WebSocket
// $connect REQUEST authorizer event carrying ?token=.
func sampleEvent(t *testing.T) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "authorizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestHandler(t *testing.T) {
	is := newIssuer(t)
	valid := is.rsaToken(is.claims())
	var logs bytes.Buffer
	h, err := NewHandler(is.verifier, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sample := sampleEvent(t)
	if sample.MethodArn == "" || sample.QueryStringParameters["token"] == "" {
		t.Fatalf("events/authorizer.json lacks methodArn or ?token=: %+v", sample)
	}

	tests := []struct {
		name   string
		change func(*events.APIGatewayCustomAuthorizerRequestTypeRequest)
		allow  bool
	}{
		{name: "sample token (placeholder signature)", change: func(*events.APIGatewayCustomAuthorizerRequestTypeRequest) {}},
		{name: "valid token in query", change: func(e *events.APIGatewayCustomAuthorizerRequestTypeRequest) {
			e.QueryStringParameters = map[string]string{"token": valid}
		}, allow: true},
		// The query string is the only identity source (see tokenFrom).
		{name: "bearer header is not an identity source", change: func(e *events.APIGatewayCustomAuthorizerRequestTypeRequest) {
			e.QueryStringParameters = nil
			e.Headers["authorization"] = "Bearer " + valid
		}},
		{name: "empty sub", change: func(e *events.APIGatewayCustomAuthorizerRequestTypeRequest) {
			c := is.claims()
			c["sub"] = ""
			e.QueryStringParameters = map[string]string{"token": is.rsaToken(c)}
		}},
		{name: "sub with leading space", change: func(e *events.APIGatewayCustomAuthorizerRequestTypeRequest) {
			c := is.claims()
			c["sub"] = " user-1"
			e.QueryStringParameters = map[string]string{"token": is.rsaToken(c)}
		}},
		{name: "missing token", change: func(e *events.APIGatewayCustomAuthorizerRequestTypeRequest) { e.QueryStringParameters = nil }},
		{name: "invalid token", change: func(e *events.APIGatewayCustomAuthorizerRequestTypeRequest) {
			e.QueryStringParameters = map[string]string{"token": "x.y.z"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleEvent(t)
			tt.change(&ev)
			resp, err := h.Handle(context.Background(), ev)
			if !tt.allow {
				// API Gateway answers 401 only for exactly this error message.
				if err == nil || err.Error() != "Unauthorized" || !errors.Is(err, ErrAPIGatewayUnauthorized) {
					t.Fatalf("Handle = %+v, %v; want error \"Unauthorized\"", resp, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			want := events.APIGatewayCustomAuthorizerResponse{
				PrincipalID: "user-1",
				PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
					Version: "2012-10-17",
					Statement: []events.IAMPolicyStatement{{
						Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{sample.MethodArn},
					}},
				},
				Context: map[string]any{"userId": "user-1", "displayName": "Ada"},
			}
			gotJSON, _ := json.Marshal(resp)
			wantJSON, _ := json.Marshal(want)
			if !bytes.Equal(gotJSON, wantJSON) {
				t.Errorf("response\n got %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
	if bytes.Contains(logs.Bytes(), []byte(valid)) {
		t.Error("a token was written to the logs")
	}
}
