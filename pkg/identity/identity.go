// Package identity owns the rules that turn a verified JWT's claims into the
// caller, and the audience rule, for every path that authenticates: the HTTP
// API (claims from API Gateway's JWT authorizer), the WebSocket $connect
// authorizer, and the local stack's emulated JWT authorizer. Keeping them in
// one place stops the paths from drifting apart.
package identity

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caller is the authenticated user.
type Caller struct {
	UserID      string // the "sub" claim, exactly as the issuer signed it
	DisplayName string // name, else preferred_username, else UserID
}

// ErrInvalidSubject is returned (wrapped) for a token whose sub cannot be a
// user id.
var ErrInvalidSubject = errors.New("identity: invalid subject")

// displayNameClaims are read in this order for the display name.
var displayNameClaims = []string{"name", "preferred_username"}

// FromClaims turns verified claims into the caller. It takes API Gateway's
// stringified claims (map[string]string) or decoded JSON claims
// (map[string]any); a claim that is not a string counts as absent.
//
// The user id is the sub exactly as given, never trimmed or normalised:
// trimming made " victim" act as "victim". A sub that is empty, not valid
// UTF-8, or holds whitespace, control or invisible format characters anywhere
// is refused rather than kept, because such an id is indistinguishable from
// another user's on screen and in logs. Issuers' subjects are opaque ids
// (Cognito: a UUID) that never contain them.
func FromClaims[V any](claims map[string]V) (Caller, error) {
	sub, _ := stringClaim(claims, "sub")
	if err := CheckSubject(sub); err != nil {
		return Caller{}, err
	}
	c := Caller{UserID: sub, DisplayName: sub}
	for _, name := range displayNameClaims {
		v, _ := stringClaim(claims, name)
		// The display name is only shown, never compared, so surrounding
		// whitespace is dropped; an unusable one falls through.
		v = strings.TrimSpace(v)
		if v != "" && utf8.ValidString(v) && !strings.ContainsFunc(v, unicode.IsControl) {
			c.DisplayName = v
			break
		}
	}
	return c, nil
}

// CheckSubject reports whether sub can be a user id (see FromClaims).
func CheckSubject(sub string) error {
	switch {
	case sub == "":
		return fmt.Errorf("%w: sub is empty", ErrInvalidSubject)
	case !utf8.ValidString(sub):
		return fmt.Errorf("%w: sub is not valid UTF-8", ErrInvalidSubject)
	case strings.ContainsFunc(sub, forbiddenInSubject):
		return fmt.Errorf("%w: sub contains whitespace, control or format characters", ErrInvalidSubject)
	}
	return nil
}

// forbiddenInSubject: unicode.IsSpace covers U+00A0 and the other Unicode
// spaces, IsControl the C0/C1 controls, and Cf the invisible format
// characters (zero-width space and joiners, BOM, bidi overrides).
func forbiddenInSubject(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// AudienceMatches applies API Gateway's JWT authorizer audience rule: the
// token's aud must name one of the accepted audiences; client_id is consulted
// only when aud is absent (Cognito access tokens carry client_id and no aud).
// A token whose aud names another client is refused even if its client_id is
// ours. https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html
// ("API Gateway validates client_id only if aud is not present").
func AudienceMatches(claims map[string]any, accepted []string) bool {
	var got []string
	if aud, present := claims["aud"]; present && aud != nil {
		switch aud := aud.(type) {
		case string:
			got = []string{aud}
		case []string:
			got = aud
		case []any:
			for _, v := range aud {
				if s, ok := v.(string); ok {
					got = append(got, s)
				}
			}
		}
	} else if cid, ok := claims["client_id"].(string); ok {
		got = []string{cid}
	}
	for _, a := range got {
		if a != "" && slices.Contains(accepted, a) {
			return true
		}
	}
	return false
}

func stringClaim[V any](claims map[string]V, name string) (string, bool) {
	v, ok := claims[name]
	if !ok {
		return "", false
	}
	s, ok := any(v).(string)
	return s, ok
}
