package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/identity"
)

// MaxBodyBytes is the largest request body accepted (64 KiB). The
// biggest legitimate body, a 5000-character post, is at most ~20 KB of UTF-8
// even before JSON escaping, so 64 KiB leaves room without inviting abuse.
const MaxBodyBytes = 64 << 10

// caller reads the identity the HTTP API's JWT authorizer verified, by the
// same rule as the WebSocket authorizer (identity.FromClaims). API Gateway
// only forwards requests whose token it accepted, so missing claims mean the
// route was deployed without the authorizer: refuse rather than act as
// nobody. A sub that is not exactly a user id (empty, whitespace, control
// characters) is refused, never trimmed into someone else's.
func caller(req events.APIGatewayV2HTTPRequest) (groupcast.Caller, error) {
	auth := req.RequestContext.Authorizer
	if auth == nil || auth.JWT == nil {
		return groupcast.Caller{}, groupcast.Errorf(groupcast.CodeUnauthorized, "missing credentials")
	}
	c, err := identity.FromClaims(auth.JWT.Claims)
	if err != nil {
		return groupcast.Caller{}, groupcast.Errorf(groupcast.CodeUnauthorized, "token subject is not a valid user id")
	}
	return groupcast.Caller{UserID: c.UserID, DisplayName: c.DisplayName}, nil
}

// body returns the raw request body, decoding base64 when API Gateway
// encoded it, and enforces MaxBodyBytes on the decoded size.
func body(req events.APIGatewayV2HTTPRequest) ([]byte, error) {
	if !req.IsBase64Encoded {
		if len(req.Body) > MaxBodyBytes {
			return nil, tooLarge()
		}
		return []byte(req.Body), nil
	}
	// Reject on the encoded length first so an oversized body is never
	// decoded: base64 needs 4 characters per 3 bytes.
	if base64.StdEncoding.DecodedLen(len(req.Body)) > MaxBodyBytes+2 {
		return nil, tooLarge()
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, groupcast.Errorf(groupcast.CodeInvalid, "request body is not valid base64")
	}
	if len(b) > MaxBodyBytes {
		return nil, tooLarge()
	}
	return b, nil
}

func tooLarge() error {
	return groupcast.Errorf(groupcast.CodeTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
}

// replacementChar is U+FFFD as it appears in raw UTF-8.
var replacementChar = []byte("\uFFFD")

// decodeBody strictly decodes a JSON object into dst: one object, no unknown
// fields, no trailing data, valid UTF-8. encoding/json would otherwise turn
// invalid UTF-8 into U+FFFD and store the mangled text, so it is checked
// first. API Gateway does the same to a text body before the function runs
// (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html:
// a text payload is a UTF-8 JSON string), so a raw U+FFFD is refused too: it
// is what invalid bytes became, and storing it would act on text nobody
// sent ("u\xff" becoming another user id). A client that means the character
// sends the JSON escape \ufffd, which passes.
func decodeBody(req events.APIGatewayV2HTTPRequest, dst any) error {
	b, err := body(req)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return groupcast.Errorf(groupcast.CodeInvalid, "request body is required")
	}
	if !utf8.Valid(b) {
		return groupcast.Errorf(groupcast.CodeInvalid, "request body is not valid UTF-8")
	}
	if bytes.Contains(b, replacementChar) {
		return groupcast.Errorf(groupcast.CodeInvalid, `request body contains U+FFFD, which stands for bytes that were not valid UTF-8; send the character as the JSON escape \ufffd if you mean it`)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return groupcast.Errorf(groupcast.CodeInvalid, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return groupcast.Errorf(groupcast.CodeInvalid, "request body must hold a single JSON object")
	}
	return nil
}

// describeJSONError turns encoding/json errors into messages a client can act
// on without knowing Go.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of body"
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("request body must be a JSON object, not %s", typ.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return "malformed JSON"
	}
}

// jsonKind names a Go kind in JSON terms.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return "a number"
	}
}

// pageRequest reads ?limit and ?cursor. The bounds are the domain's
// (groupcast.MaxPageLimit); the cursor stays opaque here and the store
// rejects one that is malformed or belongs to another query.
func pageRequest(q map[string]string) (groupcast.PageRequest, error) {
	var p groupcast.PageRequest
	if raw, ok := q["limit"]; ok {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > groupcast.MaxPageLimit {
			return p, groupcast.Errorf(groupcast.CodeInvalid, "limit must be an integer from 1 to %d", groupcast.MaxPageLimit)
		}
		p.Limit = n
	}
	if raw, ok := q["cursor"]; ok {
		if raw == "" {
			return p, groupcast.Errorf(groupcast.CodeInvalid, "cursor must not be empty")
		}
		p.Cursor = raw
	}
	return p, nil
}

// groupScope reads ?scope, defaulting to the caller's own groups.
func groupScope(q map[string]string) (groupcast.GroupScope, error) {
	raw, ok := q["scope"]
	if !ok {
		return groupcast.ScopeMine, nil
	}
	switch s := groupcast.GroupScope(raw); s {
	case groupcast.ScopeMine, groupcast.ScopePublic:
		return s, nil
	default:
		return "", groupcast.Errorf(groupcast.CodeInvalid, "scope must be %q or %q", groupcast.ScopeMine, groupcast.ScopePublic)
	}
}

// invitationStatus reads ?status (lower case on the wire); without it every
// invitation of the caller is listed.
func invitationStatus(q map[string]string) (groupcast.InvitationStatus, error) {
	raw, ok := q["status"]
	if !ok {
		return "", nil
	}
	for _, s := range []groupcast.InvitationStatus{groupcast.InvitationPending, groupcast.InvitationAccepted, groupcast.InvitationDeclined} {
		if raw == strings.ToLower(string(s)) {
			return s, nil
		}
	}
	return "", groupcast.Errorf(groupcast.CodeInvalid, "status must be pending, accepted or declined")
}

// afterPostID reads ?after. Its bounds are the domain's (ListPosts
// validates it as an id); the handler only refuses a present but empty value.
func afterPostID(q map[string]string) (string, error) {
	raw, ok := q["after"]
	if !ok {
		return "", nil
	}
	if raw == "" {
		return "", groupcast.Errorf(groupcast.CodeInvalid, "after must be a post id")
	}
	return raw, nil
}
