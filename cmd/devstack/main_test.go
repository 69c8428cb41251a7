package main

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/web"
)

// Every shared flag must reach the options the stack is started with.
func TestCommonFlagsReachOptions(t *testing.T) {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts, ps := commonFlags(fs)
	err := fs.Parse([]string{
		"--template", "other.yaml", "--dynamodb-endpoint", "http://127.0.0.1:9999",
		"--build-dir", "/tmp/b", "--region", "eu-west-1", "--max-concurrency", "3",
		"--ws-idle-timeout", "5s", "--ws-max-age", "1m", "--stream-retention", "2s",
		"--param", "A=b", "--stack-name", "mine",
		"--admin-access-key-id", "AKIAMINE", "--admin-secret-access-key", "mine-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Template != "other.yaml" || opts.DynamoDBEndpoint != "http://127.0.0.1:9999" ||
		opts.BuildDir != "/tmp/b" || opts.Region != "eu-west-1" || opts.MaxConcurrency != 3 ||
		opts.WebSocketLimits.IdleTimeout != 5*time.Second || opts.WebSocketLimits.MaxConnectionAge != time.Minute ||
		opts.StreamRetention != 2*time.Second || ps["A"] != "b" || opts.StackName != "mine" ||
		opts.AdminCredentials.AccessKeyID != "AKIAMINE" || opts.AdminCredentials.SecretAccessKey != "mine-secret" {
		t.Fatalf("flags did not reach the options: %+v %v", *opts, ps)
	}
}

// The demo must be told the stack's real endpoints.
func TestServeWebTellsTheDemoTheEndpoints(t *testing.T) {
	e := stack.Endpoints{HTTPAPI: "http://127.0.0.1:1/dev", WebSocket: "ws://127.0.0.1:2/dev", Tokens: "http://127.0.0.1:3/token"}
	closeWeb, demoURL, err := serveWeb("127.0.0.1:0", e)
	if err != nil {
		t.Fatal(err)
	}
	defer closeWeb()
	resp, err := http.Get(demoURL + "config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got web.Config
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got != (web.Config{HTTPAPI: e.HTTPAPI, WebSocket: e.WebSocket, Tokens: e.Tokens}) {
		t.Fatalf("config %+v, want the endpoints %+v", got, e)
	}
}
