package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/pkg/client"
)

// invoke --stack runs a sample event against a running stack's table: the
// group created through the stack's HTTP API is what the function reads,
// with the sample's ids replaced by real ones.
func TestInvokeAgainstRunningStackSeesItsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := stack.Start(ctx, stack.Options{Template: filepath.Join("..", "..", "template.yaml"), StackName: "invoketest",
		Logger: quiet, FunctionLogs: io.Discard, BuildDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	tok, err := s.Mint("inv-alice", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	g, err := (&client.HTTP{BaseURL: s.Endpoints.HTTPAPI, Token: tok}).CreateGroup(ctx, "Invoked hikers", "", "private")
	if err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	data, _ := json.Marshal(s.Ready())
	if err := os.WriteFile(ready, data, 0o600); err != nil {
		t.Fatal(err)
	}
	event := filepath.Join("..", "..", "events", "api-get-group.json")
	var out, logs bytes.Buffer
	err = run([]string{"invoke", "--stack", ready, "--replace", "01JQ3ZK8Y6V5T9M2N4P7R8S0AB=" + g.GroupID, "--replace", "user-alice=inv-alice",
		"ApiFunction", event}, &out, &logs)
	if err != nil {
		t.Fatalf("invoke: %v\n%s", err, logs.String())
	}
	if !strings.Contains(out.String(), `"statusCode": 200`) || !strings.Contains(out.String(), "Invoked hikers") {
		t.Fatalf("invoke against the stack did not see its group:\n%s\nlogs:\n%s", out.String(), logs.String())
	}

	// A stopped stack's ready file is refused with a clear error.
	s.Close(context.Background())
	err = run([]string{"invoke", "--stack", ready, "ApiFunction", event}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("invoke against a stopped stack: %v", err)
	}
}

func TestInvokeArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no function", []string{"invoke"}, "usage"},
		{"too many", []string{"invoke", "--stack", "x.json", "Fn", "a.json", "b.json"}, "usage"},
		{"bad replace", []string{"invoke", "--replace", "novalue", "Fn"}, "OLD=NEW"},
		{"missing ready file", []string{"invoke", "--stack", filepath.Join(os.TempDir(), "no-such-devstack.json"), "Fn"}, "is the stack running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run %v: %v, want an error with %q", tt.args, err, tt.want)
			}
		})
	}
}
