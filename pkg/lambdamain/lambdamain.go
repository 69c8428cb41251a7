// Package lambdamain is the start-up every function shares: JSON logs at
// the level Lambda passes (AWS_LAMBDA_LOG_LEVEL), one build step that wires configuration → store → domain →
// handler, and a logged exit when that wiring fails.
package lambdamain

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Build reads the function's configuration, wires its dependencies and
// returns the handler for lambda.Start.
type Build func(ctx context.Context, log *slog.Logger) (handler any, err error)

// Start builds the function and serves invocations. A build error is logged
// and the process exits 1: Lambda reports the failed init and starts a new
// environment for the next invocation, so a bad configuration is visible at
// once instead of failing every request.
func Start(name string, build Build) {
	handler, err := wire(context.Background(), build)
	if err != nil {
		slog.Error(name+" start-up failed", "error", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}

func wire(ctx context.Context, build Build) (any, error) {
	log, err := applog.NewLambda()
	if err != nil {
		return nil, err
	}
	slog.SetDefault(log)
	return build(ctx, log)
}

// OpenService is the domain service over the table: what the HTTP API and
// the WebSocket functions start from. opts configure the store (the API
// function's fast-path hand-off).
func OpenService(ctx context.Context, table string, cfg groupcast.ServiceConfig, opts ...dynamostore.Option) (*groupcast.Service, error) {
	store, err := dynamostore.Open(ctx, table, opts...)
	if err != nil {
		return nil, err
	}
	svc, err := groupcast.NewService(store, cfg)
	if err != nil {
		return nil, fmt.Errorf("build service: %w", err)
	}
	return svc, nil
}
