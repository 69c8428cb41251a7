package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/groupcast/groupcast/internal/devstack/localaws"
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

// The commands devstack prints must be the README's, literally, for the
// default ports: a newcomer pastes either. It also pins what a fresh machine
// needs: npx's --yes, and the AWS CLI's region and the admin keys.
func TestTryItMatchesTheREADME(t *testing.T) {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	opts, _ := commonFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	e := stack.Endpoints{
		HTTPAPI: "http://127.0.0.1:3000/dev", WebSocket: "ws://127.0.0.1:3001/dev",
		Tokens: "http://127.0.0.1:3002/token", DynamoDB: "http://127.0.0.1:8000",
	}
	admin := aws.Credentials{AccessKeyID: opts.AdminCredentials.AccessKeyID, SecretAccessKey: opts.AdminCredentials.SecretAccessKey}
	var out bytes.Buffer
	printTryIt(&out, e, admin, localaws.Region, "local-Table")
	printed := out.String()
	for _, want := range []string{
		`npx --yes wscat -c "ws://127.0.0.1:3001/dev?token=$TOKEN"`,
		"export AWS_ACCESS_KEY_ID=AKIADEVSTACKADMIN000 AWS_SECRET_ACCESS_KEY=devstack-admin-secret AWS_DEFAULT_REGION=us-east-1",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("printed hints lack %q:\n%s", want, printed)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for l := range strings.SplitSeq(string(readme), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	n := 0
	for l := range strings.SplitSeq(printed, "\n") {
		l = strings.TrimSpace(l)
		// Comments and the block's first and last lines are prose.
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "Try it") || strings.HasPrefix(l, "Ctrl-C") {
			continue
		}
		n++
		if !lines[l] {
			t.Errorf("README.md has no line %q, which devstack prints", l)
		}
	}
	if n < 5 {
		t.Fatalf("compared %d command lines, want every command:\n%s", n, printed)
	}
}
