package stack

import (
	"context"
	"errors"
	"fmt"

	"github.com/groupcast/groupcast/pkg/authorizer"
)

// claimsVerifier emulates an HTTP API JWT authorizer with the project's own
// verifier (signature against the issuer's JWKS, issuer, audience, expiry).
// An HTTP API accepts any of several audiences; each gets a verifier.
type claimsVerifier struct {
	vs []*authorizer.Verifier
}

func newClaimsVerifier(ctx context.Context, issuer string, audiences []string) (*claimsVerifier, error) {
	if len(audiences) == 0 {
		return nil, errors.New("JwtConfiguration.audience is empty")
	}
	cv := &claimsVerifier{}
	for _, aud := range audiences {
		v, err := authorizer.NewVerifier(ctx, authorizer.Config{Issuer: issuer, Audience: aud})
		if err != nil {
			cv.Close(ctx)
			return nil, fmt.Errorf("verifier for audience %q: %w", aud, err)
		}
		cv.vs = append(cv.vs, v)
	}
	return cv, nil
}

func (cv *claimsVerifier) Verify(ctx context.Context, token string) (map[string]any, error) {
	var errs []error
	for _, v := range cv.vs {
		claims, err := v.Claims(ctx, token)
		if err == nil {
			return claims, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (cv *claimsVerifier) Close(ctx context.Context) error {
	var errs []error
	for _, v := range cv.vs {
		errs = append(errs, v.Close(ctx))
	}
	return errors.Join(errs...)
}
