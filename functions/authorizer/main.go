// Command authorizer is the WebSocket $connect REQUEST authorizer Lambda.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/groupcast/groupcast/pkg/authorizer"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("authorizer", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	// The verifier lives for the whole execution environment so the JWKS
	// is fetched once and then refreshed in the background.
	// JWKS_URL empty: OIDC discovery from the issuer, as API Gateway does.
	verifier, err := authorizer.NewVerifier(ctx, authorizer.Config{
		Issuer:    os.Getenv("JWT_ISSUER"),
		Audiences: []string{os.Getenv("JWT_AUDIENCE")},
		JWKSURL:   os.Getenv("JWKS_URL"),
	})
	if err != nil {
		return nil, fmt.Errorf("configure verifier (JWT_ISSUER, JWT_AUDIENCE, JWKS_URL): %w", err)
	}
	h, err := authorizer.NewHandler(verifier, log)
	if err != nil {
		return nil, err
	}
	return h.Handle, nil
}
