package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/groupcast/groupcast/internal/cfn"
	"github.com/groupcast/groupcast/internal/devstack/httpgw"
)

const corsTemplate = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  CorsAllowOrigins:
    Type: CommaDelimitedList
    Default: "*"
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: !Ref CorsAllowOrigins
        AllowHeaders: [authorization, content-type]
        AllowMethods: [GET, POST]
        ExposeHeaders: [retry-after]
        MaxAge: 600
`

type throttled struct{}

func (throttled) Invoke(context.Context, string, []byte) ([]byte, error) {
	return []byte(`{"statusCode":429,"headers":{"Retry-After":"12","Content-Type":"application/json"},"body":"{}"}`), nil
}

// TestCORSFromTemplate runs a CorsConfiguration as the template engineer
// writes it: a multi-origin CorsAllowOrigins becomes a list, and a page from
// each listed origin may read Retry-After (API Gateway adds the configured
// CORS headers to the integration's response:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html).
func TestCORSFromTemplate(t *testing.T) {
	tmpl, err := cfn.Parse([]byte(corsTemplate))
	if err != nil {
		t.Fatal(err)
	}
	cctx, err := cfn.NewContext(tmpl, cfn.Options{Parameters: map[string]string{"CorsAllowOrigins": "https://a.test, https://b.test"}})
	if err != nil {
		t.Fatal(err)
	}
	props, err := cctx.Properties("Api")
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpAPIPlan("Api", newResolver("us-east-1", "000000000000"), props)
	if err != nil {
		t.Fatal(err)
	}
	api.Config.Routes = []httpgw.Route{{Method: "POST", Path: "/posts", Function: "Api"}}
	gw, err := httpgw.New(api.Config, throttled{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	tests := []struct {
		origin, wantOrigin, wantExpose string
	}{
		{"https://a.test", "https://a.test", "retry-after"},
		{"https://b.test", "https://b.test", "retry-after"},
		{"https://c.test", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/posts", nil)
			req.Header.Set("Origin", tt.origin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "12" {
				t.Fatalf("status %d Retry-After %q, want the function's 429 and 12", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.wantOrigin)
			}
			if got := resp.Header.Get("Access-Control-Expose-Headers"); got != tt.wantExpose {
				t.Errorf("Access-Control-Expose-Headers %q, want %q", got, tt.wantExpose)
			}
		})
	}
}
