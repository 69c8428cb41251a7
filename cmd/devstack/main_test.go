package main

import (
	"flag"
	"io"
	"testing"
	"time"
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
