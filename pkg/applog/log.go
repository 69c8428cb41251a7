// Package applog sets up structured JSON logging (log/slog) and writes
// CloudWatch Embedded Metric Format (EMF) lines for the Lambda functions.
package applog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// New returns a JSON logger writing to w at the given level. Keys follow the
// Lambda JSON log format (timestamp, message) and every record logged with a
// Lambda context carries its requestId, so local runs and Lambda runs produce
// the same shape.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: lambdacontext.ReplaceAttr})
	return slog.New(requestIDHandler{h})
}

// NewLambda returns the logger a function's main should install with
// slog.SetDefault. When the function's log format is JSON (LoggingConfig
// LogFormat: JSON), Lambda sets AWS_LAMBDA_LOG_FORMAT/AWS_LAMBDA_LOG_LEVEL and
// lambdacontext.NewLogHandler honours both. Otherwise (text log format,
// sam local, the local stack) lambdacontext would log text, so we log JSON
// ourselves at logLevel (the LOG_LEVEL variable; "" means INFO).
func NewLambda(logLevel string) (*slog.Logger, error) {
	if os.Getenv("AWS_LAMBDA_LOG_FORMAT") == "JSON" {
		return slog.New(lambdacontext.NewLogHandler()), nil
	}
	level, err := ParseLevel(logLevel)
	if err != nil {
		return nil, err
	}
	return New(os.Stdout, level), nil
}

// ParseLevel parses DEBUG, INFO, WARN or ERROR (any case); "" is INFO.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "INFO":
		return slog.LevelInfo, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("applog: unknown log level %q (want DEBUG, INFO, WARN or ERROR)", s)
	}
}

// requestIDHandler adds the Lambda request id of the record's context.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
