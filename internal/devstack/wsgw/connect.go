package wsgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/groupcast/groupcast/internal/devstack/apigwid"
)

// authorizerRequest is the REQUEST authorizer event of a WebSocket API: the
// shape of events.APIGatewayCustomAuthorizerRequestTypeRequest with the
// WebSocket request context API Gateway sends.
type authorizerRequest struct {
	Type                            string                                        `json:"type"`
	MethodArn                       string                                        `json:"methodArn"`
	Headers                         map[string]string                             `json:"headers"`
	MultiValueHeaders               map[string][]string                           `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string                             `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string                           `json:"multiValueQueryStringParameters"`
	StageVariables                  map[string]string                             `json:"stageVariables"`
	RequestContext                  events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}

// handshake is what $connect learns about a new connection.
type handshake struct {
	id          string
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	domainName  string
	headers     map[string]string
	multiHeader map[string][]string
	query       map[string]string
	multiQuery  map[string][]string
	authorizer  map[string]any // context + principalId, nil without authorizer
	pushFault   int            // status every POST to it gets (faults.go); 0 for none
}

// handleConnect runs the authorizer and $connect, and only then upgrades:
// until $connect returns the connection is not postable (410), and a
// refusal answers the handshake with an HTTP status instead of a socket.
func (g *Gateway) handleConnect(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	down := g.shuttingDown
	g.mu.Unlock()
	if down {
		writeGatewayError(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	hs := newHandshake(r, g.domainName(r))
	if g.cfg.PushFaults {
		if err := hs.takePushFault(); err != nil {
			g.log.InfoContext(r.Context(), "handshake refused: bad push fault", "connectionId", hs.id, "err", err)
			writeGatewayError(w, http.StatusBadRequest, err.Error())
			return
		}
	}

	if g.cfg.Authorizer != nil {
		authCtx, status := g.authorize(r.Context(), hs)
		if status != 0 {
			g.log.InfoContext(r.Context(), "handshake refused by authorizer", "connectionId", hs.id, "status", status)
			writeGatewayError(w, status, http.StatusText(status))
			return
		}
		hs.authorizer = authCtx
	}

	if route, ok := g.cfg.Routes[RouteConnect]; ok {
		status := g.runConnect(r.Context(), route, hs)
		if status < 200 || status > 299 {
			g.log.InfoContext(r.Context(), "handshake refused by $connect", "connectionId", hs.id, "status", status)
			writeGatewayError(w, status, http.StatusText(status))
			return
		}
	}

	// Register before upgrading: once the client sees the handshake
	// succeed, the connection must be postable and known to Shutdown.
	watcher := &frameWatcher{maxFrame: g.limits.MaxFrameBytes}
	c := newConnection(g, hs, watcher)
	if !g.register(c) {
		writeGatewayError(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	ws, err := websocket.Accept(hijackWatcher{ResponseWriter: w, watcher: watcher}, r, &websocket.AcceptOptions{
		// API Gateway does not check Origin; browsers from any page connect.
		InsecureSkipVerify: true,
		// API Gateway does not negotiate permessage-deflate.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		g.log.WarnContext(r.Context(), "websocket upgrade failed", "connectionId", hs.id, "err", err)
		c.attach(nil)
		c.close(closeInfo{code: int(websocket.StatusAbnormalClosure), reason: "Connection was closed abnormally"})
		return
	}
	ws.SetReadLimit(g.limits.MaxMessageBytes)
	c.attach(ws)
	g.log.InfoContext(r.Context(), "connected", "connectionId", c.id)
	c.run()
}

func newHandshake(r *http.Request, domain string) *handshake {
	hs := &handshake{
		id:          apigwid.New(),
		connectedAt: time.Now(),
		userAgent:   r.UserAgent(),
		domainName:  domain,
		headers:     map[string]string{},
		multiHeader: map[string][]string{},
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		hs.sourceIP = host
	} else {
		hs.sourceIP = r.RemoteAddr
	}
	// WebSocket events keep the client's header names and the last value
	// in headers, every value in multiValueHeaders.
	for name, values := range r.Header {
		hs.headers[name] = values[len(values)-1]
		hs.multiHeader[name] = values
	}
	hs.headers["Host"] = r.Host
	hs.multiHeader["Host"] = []string{r.Host}
	if q := r.URL.Query(); len(q) > 0 {
		hs.query = make(map[string]string, len(q))
		hs.multiQuery = q
		for k, v := range q {
			hs.query[k] = v[len(v)-1]
		}
	}
	return hs
}

// requestContext builds the requestContext shared by all event types.
func (g *Gateway) requestContext(hs *handshake, routeKey, eventType string) events.APIGatewayWebsocketProxyRequestContext {
	now := time.Now()
	rc := events.APIGatewayWebsocketProxyRequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: apigwid.New(),
		RequestTime:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		MessageDirection:  "IN",
		Stage:             g.cfg.Stage,
		ConnectedAt:       hs.connectedAt.UnixMilli(),
		RequestTimeEpoch:  now.UnixMilli(),
		Identity:          events.APIGatewayRequestIdentity{SourceIP: hs.sourceIP, UserAgent: hs.userAgent},
		DomainName:        hs.domainName,
		ConnectionID:      hs.id,
		APIID:             g.cfg.APIID,
	}
	rc.RequestID = rc.ExtendedRequestID
	if hs.authorizer != nil {
		rc.Authorizer = hs.authorizer
	}
	return rc
}

// authorize runs the REQUEST authorizer. It returns the authorizer context
// (with principalId) or the HTTP status refusing the handshake: 401 for a
// missing identity or an "Unauthorized" error, 403 for a policy that does
// not allow $connect, 500 for any other failure (API Gateway's
// AuthorizerConfigurationException).
func (g *Gateway) authorize(ctx context.Context, hs *handshake) (map[string]any, int) {
	a := g.cfg.Authorizer
	for _, src := range a.IdentitySources {
		kind, name, _ := parseIdentitySource(src)
		var v string
		if kind == "header" {
			v = http.Header(hs.multiHeader).Get(name)
		} else {
			v = hs.query[name]
		}
		if v == "" {
			return nil, http.StatusUnauthorized
		}
	}
	methodArn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s", g.cfg.Region, g.cfg.AccountID, g.cfg.APIID, g.cfg.Stage, RouteConnect)
	req := authorizerRequest{
		Type:                            "REQUEST",
		MethodArn:                       methodArn,
		Headers:                         hs.headers,
		MultiValueHeaders:               hs.multiHeader,
		QueryStringParameters:           hs.query,
		MultiValueQueryStringParameters: hs.multiQuery,
		RequestContext:                  g.requestContext(hs, RouteConnect, "CONNECT"),
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, http.StatusInternalServerError
	}
	ictx, cancel := context.WithTimeout(ctx, g.limits.IntegrationTimeout)
	defer cancel()
	out, err := g.inv.Invoke(ictx, a.Function, payload)
	if err != nil {
		if isUnauthorizedError(err) {
			return nil, http.StatusUnauthorized
		}
		g.log.ErrorContext(ctx, "authorizer failed", "function", a.Function, "err", err)
		return nil, http.StatusInternalServerError
	}
	var resp authorizerResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.PrincipalID == "" {
		g.log.ErrorContext(ctx, "malformed authorizer response", "function", a.Function, "err", err)
		return nil, http.StatusInternalServerError
	}
	if !policyAllows(resp.PolicyDocument, methodArn) {
		return nil, http.StatusForbidden
	}
	authCtx := make(map[string]any, len(resp.Context)+1)
	for k, v := range resp.Context {
		authCtx[k] = v
	}
	authCtx["principalId"] = resp.PrincipalID
	return authCtx, 0
}

// isUnauthorizedError reports a function error whose message is
// "Unauthorized": the authorizer's documented way to ask for a 401. The
// function error's details are read through the JSON form Lambda reports.
func isUnauthorizedError(err error) bool {
	var withJSON interface{ JSON() []byte }
	if errors.As(err, &withJSON) {
		var fe struct {
			Message string `json:"errorMessage"`
		}
		if json.Unmarshal(withJSON.JSON(), &fe) == nil {
			return fe.Message == "Unauthorized"
		}
	}
	return false
}

// authorizerResponse is events.APIGatewayCustomAuthorizerResponse with
// Action and Resource accepted as a string or a list, as IAM allows.
type authorizerResponse struct {
	PrincipalID    string         `json:"principalId"`
	PolicyDocument policyDocument `json:"policyDocument"`
	Context        map[string]any `json:"context"`
}

type policyDocument struct {
	Statement []policyStatement
}

type policyStatement struct {
	Action   stringOrList
	Effect   string
	Resource stringOrList
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

// policyAllows evaluates an IAM policy for execute-api:Invoke on arn: an
// explicit Deny wins, otherwise an Allow is needed.
func policyAllows(doc policyDocument, arn string) bool {
	allowed := false
	for _, st := range doc.Statement {
		if !matchesAny(st.Action, "execute-api:Invoke") || !matchesAny(st.Resource, arn) {
			continue
		}
		switch strings.ToLower(st.Effect) {
		case "deny":
			return false
		case "allow":
			allowed = true
		}
	}
	return allowed
}

func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch matches IAM wildcards: '*' any run of characters, '?' one.
func globMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if globMatch(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || pattern[0] != s[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// runConnect invokes the $connect route and returns the status it answered:
// 200 for a response without statusCode, 500 when the invocation failed.
func (g *Gateway) runConnect(ctx context.Context, route Route, hs *handshake) int {
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:                         hs.headers,
		MultiValueHeaders:               hs.multiHeader,
		QueryStringParameters:           hs.query,
		MultiValueQueryStringParameters: hs.multiQuery,
		RequestContext:                  g.requestContext(hs, RouteConnect, "CONNECT"),
	}
	out, err := g.invoke(ctx, route.Function, ev)
	if err != nil {
		g.log.ErrorContext(ctx, "$connect failed", "connectionId", hs.id, "function", route.Function, "err", err)
		return http.StatusInternalServerError
	}
	status, _, err := parseProxyResponse(out)
	if err != nil {
		g.log.ErrorContext(ctx, "malformed $connect response", "connectionId", hs.id, "err", err)
		return http.StatusInternalServerError
	}
	return status
}

func (g *Gateway) invoke(ctx context.Context, function string, ev events.APIGatewayWebsocketProxyRequest) ([]byte, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.limits.IntegrationTimeout)
	defer cancel()
	return g.inv.Invoke(ctx, function, payload)
}

// parseProxyResponse reads a Lambda proxy response. A response that is not
// an object with statusCode (e.g. null) counts as 200 with no body.
func parseProxyResponse(out []byte) (status int, body string, err error) {
	var resp struct {
		StatusCode *int   `json:"statusCode"`
		Body       string `json:"body"`
	}
	if len(out) == 0 || string(out) == "null" {
		return http.StatusOK, "", nil
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return 0, "", err
	}
	if resp.StatusCode == nil {
		return http.StatusOK, resp.Body, nil
	}
	return *resp.StatusCode, resp.Body, nil
}

func parseIdentitySource(src string) (kind, name string, err error) {
	switch {
	case strings.HasPrefix(src, "route.request.header."):
		return "header", strings.TrimPrefix(src, "route.request.header."), nil
	case strings.HasPrefix(src, "route.request.querystring."):
		return "query", strings.TrimPrefix(src, "route.request.querystring."), nil
	}
	return "", "", fmt.Errorf("unsupported identity source %q", src)
}

// writeGatewayError answers a refused handshake as API Gateway does.
func writeGatewayError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
