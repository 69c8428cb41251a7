package applog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestNewWritesJSONWithRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo).With("component", "test")
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	log.InfoContext(ctx, "hello", "n", 1)
	log.DebugContext(ctx, "dropped below level")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("want 1 line, got %d: %s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(lines[0], &rec); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]any{"message": "hello", "requestId": "req-1", "component": "test", "level": "INFO", "n": 1.0} {
		if rec[key] != want {
			t.Errorf("%s = %v, want %v (line %s)", key, rec[key], want, lines[0])
		}
	}
	if _, ok := rec["timestamp"]; !ok {
		t.Errorf("no timestamp key: %s", lines[0])
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"debug", slog.LevelDebug, false},
		{"INFO", slog.LevelInfo, false},
		{"Warn", slog.LevelWarn, false},
		{"ERROR", slog.LevelError, false},
		{"verbose", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestNewLambdaLevel: the level comes from AWS_LAMBDA_LOG_LEVEL, which
// Lambda sets from LoggingConfig.ApplicationLogLevel, and from nothing else.
func TestNewLambdaLevel(t *testing.T) {
	tests := []struct {
		name, awsLevel, logLevel string
		min                      slog.Level // lowest level enabled
		wantErr                  bool
	}{
		{name: "debug", awsLevel: "DEBUG", min: slog.LevelDebug},
		{name: "warn", awsLevel: "WARN", min: slog.LevelWarn},
		{name: "error", awsLevel: "ERROR", min: slog.LevelError},
		{name: "trace", awsLevel: "TRACE", min: slog.LevelDebug - 4},
		{name: "unset is info", min: slog.LevelInfo},
		{name: "LOG_LEVEL is not read", logLevel: "debug", min: slog.LevelInfo},
		{name: "invalid", awsLevel: "loud", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_LAMBDA_LOG_LEVEL", tc.awsLevel)
			t.Setenv("LOG_LEVEL", tc.logLevel)
			log, err := NewLambda()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("AWS_LAMBDA_LOG_LEVEL=%q accepted", tc.awsLevel)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if !log.Enabled(ctx, tc.min) || log.Enabled(ctx, tc.min-1) {
				t.Errorf("enabled(%v) = %v, enabled(%v) = %v; want the lowest enabled level to be %v",
					tc.min, log.Enabled(ctx, tc.min), tc.min-1, log.Enabled(ctx, tc.min-1), tc.min)
			}
		})
	}
}
