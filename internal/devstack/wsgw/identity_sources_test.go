package wsgw

import (
	"net/http"
	"testing"

	"github.com/coder/websocket"
)

// API Gateway calls a REQUEST authorizer only when every declared identity
// source is present and non-empty; otherwise it answers 401 without calling
// it. https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-authorizers.html
func TestIdentitySourcesAllRequired(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		header string // X-Client value; "" sends none
		want   int    // 0: connected
	}{
		{name: "both present", query: "?token=alice", header: "cli"},
		{name: "query only", query: "?token=alice", want: http.StatusUnauthorized},
		{name: "header only", header: "cli", want: http.StatusUnauthorized},
		{name: "empty query value", query: "?token=", header: "cli", want: http.StatusUnauthorized},
		{name: "neither", want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				c.Authorizer.IdentitySources = []string{"route.request.querystring.token", "route.request.header.X-Client"}
			})
			opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
			if tt.header != "" {
				opts.HTTPHeader.Set("X-Client", tt.header)
			}
			c, resp, err := websocket.Dial(testCtx(t), f.wsURL(tt.query), opts)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.CloseNow()
				f.inv.next(t, "Auth")
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("handshake succeeded, want 401")
			}
			if got := statusOf(resp); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
			select {
			case inv := <-f.inv.calls:
				t.Fatalf("%s was invoked for a handshake missing an identity source", inv.function)
			default:
			}
		})
	}
}
