package stack

import (
	"context"
	"errors"
	"fmt"

	"github.com/groupcast/groupcast/pkg/authorizer"
)

// claimsVerifier emulates an HTTP API JWT authorizer with the project's own
// verifier: the JWKS found by OIDC discovery as API Gateway finds it,
// signature, issuer, audience (identity.AudienceMatches) and expiry.
type claimsVerifier struct {
	v *authorizer.Verifier
}

func newClaimsVerifier(ctx context.Context, issuer string, audiences []string) (*claimsVerifier, error) {
	if len(audiences) == 0 {
		return nil, errors.New("JwtConfiguration.audience is empty")
	}
	v, err := authorizer.NewVerifier(ctx, authorizer.Config{Issuer: issuer, Audiences: audiences})
	if err != nil {
		return nil, fmt.Errorf("verifier for audiences %q: %w", audiences, err)
	}
	return &claimsVerifier{v: v}, nil
}

func (cv *claimsVerifier) Verify(ctx context.Context, token string) (map[string]any, error) {
	return cv.v.Claims(ctx, token)
}

func (cv *claimsVerifier) Close(ctx context.Context) error {
	return cv.v.Close(ctx)
}
