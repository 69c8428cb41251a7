package httpgw

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/identity"
)

// requestTimeLayout is the format of requestContext.time.
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

type jwtDescription struct {
	claims map[string]any
}

type eventInput struct {
	route     Route
	params    map[string]string
	body      []byte
	requestID string
	at        time.Time
	jwt       *jwtDescription
}

// buildEvent builds the payload format 2.0 event API Gateway sends.
func (g *Gateway) buildEvent(r *http.Request, in eventInput) events.APIGatewayV2HTTPRequest {
	domain := g.cfg.DomainName
	if domain == "" {
		domain = r.Host
	}
	domainPrefix, _, _ := strings.Cut(domain, ".")

	headers := make(map[string]string, len(r.Header))
	var cookies []string
	for name, values := range r.Header {
		lower := strings.ToLower(name)
		if lower == "cookie" {
			// Cookies travel in their own field, split per cookie, and not
			// in headers.
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lower] = strings.Join(values, ",")
	}
	// Go moves Host out of the header map; API Gateway reports it.
	headers["host"] = r.Host
	if r.ContentLength > 0 {
		headers["content-length"] = strconv.FormatInt(r.ContentLength, 10)
	}

	var query map[string]string
	if values, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(values) > 0 {
		query = make(map[string]string, len(values))
		for k, v := range values {
			query[k] = strings.Join(v, ",")
		}
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              in.route.Key(),
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        in.params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     in.route.Key(),
			AccountID:    g.cfg.AccountID,
			Stage:        g.cfg.Stage,
			RequestID:    in.requestID,
			APIID:        g.cfg.APIID,
			DomainName:   domain,
			DomainPrefix: domainPrefix,
			Time:         in.at.UTC().Format(requestTimeLayout),
			TimeEpoch:    in.at.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	if in.jwt != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
				Claims: stringifyClaims(in.jwt.claims),
				Scopes: scopes(in.jwt.claims),
			},
		}
	}
	if len(in.body) > 0 {
		if isTextContent(r.Header.Get("Content-Type")) {
			// A text body travels as a JSON string, which must be UTF-8
			// ("A text payload is a UTF-8-encoded JSON string",
			// https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html):
			// bytes that are not UTF-8 reach the function as U+FFFD, as
			// binary uploads sent with a text type arrive corrupted on AWS
			// rather than base64-encoded. Said here so it is not an
			// accident of encoding/json.
			ev.Body = strings.ToValidUTF8(string(in.body), "\uFFFD")
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(in.body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// isTextContent reports whether API Gateway passes a body of this content
// type as text. HTTP APIs base64-encode everything else, including a body
// without a content type, application/x-www-form-urlencoded, and a text type
// with a charset other than UTF-8; measured against AWS in
// https://github.com/ministackorg/ministack/pull/766 and
// https://github.com/floci-io/floci/pull/2203 (its test matrix follows the
// capture in floci-io/floci#2172).
func isTextContent(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "/json"), strings.HasSuffix(mt, "+json"),
		strings.HasSuffix(mt, "/xml"), strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/graphql":
		return true
	}
	return false
}

// authorize extracts the token from the authorizer's identity source,
// verifies it and checks issuer and audience as API Gateway's JWT authorizer
// does (the verifier checks signature and expiry).
func (g *Gateway) authorize(r *http.Request, a JWTAuthorizer) (map[string]any, error) {
	kind, name, _ := parseIdentitySource(a.IdentitySource)
	var raw string
	if kind == "header" {
		raw = r.Header.Get(name)
	} else {
		raw = r.URL.Query().Get(name)
	}
	token := strings.TrimSpace(raw)
	// The "Bearer " prefix is optional, as in API Gateway.
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	if token == "" {
		return nil, errors.New("no token in identity source")
	}
	claims, err := a.Verifier.Verify(r.Context(), token)
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if a.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != a.Issuer {
			return nil, fmt.Errorf("issuer %q is not %q", iss, a.Issuer)
		}
	}
	if len(a.Audience) > 0 && !identity.AudienceMatches(claims, a.Audience) {
		return nil, errors.New("audience not accepted")
	}
	return claims, nil
}

func parseIdentitySource(src string) (kind, name string, err error) {
	switch {
	case strings.HasPrefix(src, "$request.header."):
		return "header", strings.TrimPrefix(src, "$request.header."), nil
	case strings.HasPrefix(src, "$request.querystring."):
		return "query", strings.TrimPrefix(src, "$request.querystring."), nil
	}
	return "", "", fmt.Errorf("unsupported identity source %q", src)
}

// stringifyClaims renders claims the way API Gateway puts them in
// requestContext.authorizer.jwt.claims: every value a string, numbers in
// plain notation, arrays as "[a b]".
func stringifyClaims(claims map[string]any) map[string]string {
	out := make(map[string]string, len(claims))
	for k, v := range claims {
		out[k] = claimString(v)
	}
	return out
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return x.String()
	case time.Time:
		return strconv.FormatInt(x.Unix(), 10)
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

// scopes returns the token's scopes from its "scope" (space separated) or
// "scp" claim.
func scopes(claims map[string]any) []string {
	switch s := claims["scope"].(type) {
	case string:
		return strings.Fields(s)
	}
	switch s := claims["scp"].(type) {
	case string:
		return strings.Fields(s)
	case []string:
		return s
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			out = append(out, claimString(e))
		}
		return out
	}
	return nil
}
