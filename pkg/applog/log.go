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
// slog.SetDefault: JSON at the level Lambda passes in AWS_LAMBDA_LOG_LEVEL,
// which it sets from LoggingConfig.ApplicationLogLevel under the JSON log
// format (the local stack does the same). This is the one place the level
// comes from; unset means INFO, as in aws-lambda-go's own handler.
// https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
func NewLambda() (*slog.Logger, error) {
	level, err := ParseLevel(os.Getenv("AWS_LAMBDA_LOG_LEVEL"))
	if err != nil {
		return nil, fmt.Errorf("AWS_LAMBDA_LOG_LEVEL: %w", err)
	}
	return New(os.Stdout, level), nil
}

// ParseLevel parses Lambda's application log levels TRACE, DEBUG, INFO,
// WARN, ERROR and FATAL (any case); "" is INFO. slog has no TRACE or FATAL:
// they map one step below DEBUG and above ERROR.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "INFO":
		return slog.LevelInfo, nil
	case "TRACE":
		return slog.LevelDebug - 4, nil
	case "FATAL":
		return slog.LevelError + 4, nil
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
