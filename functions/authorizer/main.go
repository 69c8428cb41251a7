// Command authorizer is the WebSocket $connect REQUEST authorizer Lambda.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/authorizer"
)

func main() {
	if err := run(); err != nil {
		slog.Error("authorizer start-up failed", "error", err)
		os.Exit(1)
	}
}

func run() error {
	log, err := applog.NewLambda(os.Getenv("LOG_LEVEL"))
	if err != nil {
		return err
	}
	slog.SetDefault(log)

	// The verifier lives for the whole execution environment so the JWKS
	// is fetched once and then refreshed in the background.
	verifier, err := authorizer.NewVerifier(context.Background(), authorizer.Config{
		Issuer:   os.Getenv("JWT_ISSUER"),
		Audience: os.Getenv("JWT_AUDIENCE"),
		JWKSURL:  os.Getenv("JWKS_URL"),
	})
	if err != nil {
		return fmt.Errorf("configure verifier (JWT_ISSUER, JWT_AUDIENCE, JWKS_URL): %w", err)
	}
	h, err := authorizer.NewHandler(verifier, log)
	if err != nil {
		return err
	}
	lambda.Start(h.Handle)
	return nil
}
