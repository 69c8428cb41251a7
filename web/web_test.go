package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	cfg := Config{HTTPAPI: "http://127.0.0.1:3000/dev", WebSocket: "ws://127.0.0.1:3001/dev", Tokens: "http://127.0.0.1:3002/token"}
	srv := httptest.NewServer(Handler(cfg))
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	tests := []struct {
		name, path string
		status     int
		// contentType and body are prefixes/substrings checked when set.
		contentType, body string
	}{
		{name: "config", path: "/demo/config.json", status: 200, contentType: "application/json", body: `"webSocket":"ws://127.0.0.1:3001/dev"`},
		{name: "demo page", path: "/demo/", status: 200, contentType: "text/html", body: "<script type=\"module\""},
		// Browsers refuse a module script served without a JavaScript MIME type.
		{name: "client module", path: "/client/index.js", status: 200, contentType: "text/javascript", body: "RealtimeClient"},
		{name: "client source", path: "/client/src/realtime.js", status: 200, contentType: "text/javascript"},
		{name: "client package.json", path: "/client/package.json", status: 200, body: `"@groupcast/client"`},
		{name: "tests are not served", path: "/client/test/fakes.js", status: 404},
		{name: "root redirects to the demo", path: "/", status: http.StatusFound},
		{name: "nothing else", path: "/web.go", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := noRedirect.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); tc.contentType != "" && !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.contentType)
			}
			if tc.body != "" && !strings.Contains(string(body), tc.body) {
				t.Errorf("body does not contain %q:\n%.300s", tc.body, body)
			}
		})
	}

	t.Run("config round-trips", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/demo/config.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got Config
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got != cfg {
			t.Fatalf("config %+v, %v; want %+v", got, err, cfg)
		}
	})
}
