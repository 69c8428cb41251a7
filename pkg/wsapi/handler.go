// Package wsapi serves the Groupcast WebSocket API's Lambda integrations:
// $connect records the connection of the user the REQUEST authorizer
// verified, $disconnect removes it with its subscriptions, and one message
// handler answers the subscribe, unsubscribe and ping actions (and $default).
//
// Replies travel back as the integration response body: every route has a
// $default route response, so API Gateway forwards the body to the client
// and no management API client is needed here.
package wsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/identity"
)

// MaxMessageBytes is the largest client message accepted: 32 KiB, API
// Gateway's WebSocket frame size. A subscribe for the full subscription cap
// of 100 ids needs about 3 KB, so the limit never blocks a legitimate call.
const MaxMessageBytes = 32 << 10

// Service is the part of the domain service the WebSocket API uses.
//
// Subscribe enforces the per-connection subscription cap
// (groupcast.ServiceConfig.MaxSubscriptions, default 100, set from
// MAX_SUBSCRIPTIONS_PER_CONNECTION): ids past the cap come back rejected
// with reason "limit" rather than failing the whole message.
type Service interface {
	Connect(ctx context.Context, conn groupcast.Connection) error
	Disconnect(ctx context.Context, connectionID string) error
	Subscribe(ctx context.Context, connectionID string, groupIDs []string) ([]string, []groupcast.SubscriptionRejection, error)
	Unsubscribe(ctx context.Context, connectionID string, groupIDs []string) ([]string, error)
}

// Handler holds the three WebSocket integrations.
type Handler struct {
	svc Service
	log *slog.Logger
}

// New returns a Handler.
func New(svc Service, log *slog.Logger) (*Handler, error) {
	switch {
	case svc == nil:
		return nil, errors.New("wsapi: nil service")
	case log == nil:
		return nil, errors.New("wsapi: nil logger")
	}
	return &Handler{svc: svc, log: log}, nil
}

// Connect handles $connect. A non-2xx status makes API Gateway refuse the
// handshake, so the connection exists only once its item is written.
func (h *Handler) Connect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc := ev.RequestContext
	userID, displayName := authorizerIdentity(rc.Authorizer)
	if userID == "" {
		// Only reachable when the route is deployed without the authorizer.
		h.log.WarnContext(ctx, "connect without authorizer identity", "connectionId", rc.ConnectionID)
		return status(http.StatusUnauthorized), nil
	}
	if rc.ConnectionID == "" {
		return status(http.StatusBadRequest), nil
	}
	// API Gateway stamps connectedAt; the service uses its own clock when
	// the event lacks it.
	var connectedAt time.Time
	if rc.ConnectedAt > 0 {
		connectedAt = time.UnixMilli(rc.ConnectedAt)
	}
	err := h.svc.Connect(ctx, groupcast.Connection{
		ID: rc.ConnectionID, UserID: userID, DisplayName: displayName, ConnectedAt: connectedAt,
	})
	if err == nil {
		return status(http.StatusOK), nil
	}
	wire := wireErrorFor(err)
	if wire.reply == codeInternal {
		h.log.ErrorContext(ctx, "connect failed", "connectionId", rc.ConnectionID, "userId", userID, "error", err.Error())
	} else {
		// The service refused the identity (e.g. a malformed user id): the
		// handshake fails and nothing was written.
		h.log.WarnContext(ctx, "connect refused", "connectionId", rc.ConnectionID, "userId", userID, "error", err.Error())
	}
	return status(wire.handshake), nil
}

// Disconnect handles $disconnect. API Gateway does not retry it and the
// client is already gone, so a failure is only logged; the connection and
// subscription items carry a TTL as the safety net.
func (h *Handler) Disconnect(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	cid := ev.RequestContext.ConnectionID
	if err := h.svc.Disconnect(ctx, cid); err != nil {
		h.log.ErrorContext(ctx, "disconnect failed", "connectionId", cid, "error", err.Error())
		return status(http.StatusInternalServerError), nil
	}
	return status(http.StatusOK), nil
}

// authorizerIdentity reads the REQUEST authorizer's context. API Gateway
// hands it to the integration as requestContext.authorizer, a JSON object
// holding the context keys next to principalId. The user id is used exactly
// as given, never trimmed: one that identity.CheckSubject refuses (the
// authorizer already refuses such tokens) counts as no identity, so
// " victim" can never act as "victim".
func authorizerIdentity(auth any) (userID, displayName string) {
	m, ok := auth.(map[string]any)
	if !ok {
		return "", ""
	}
	userID, _ = m["userId"].(string)
	displayName, _ = m["displayName"].(string)
	if identity.CheckSubject(userID) != nil {
		return "", ""
	}
	if strings.TrimSpace(displayName) == "" {
		displayName = userID
	}
	return userID, displayName
}

// Client messages and replies (README "WebSocket API").

type inbound struct {
	Action   string   `json:"action"`
	GroupIDs []string `json:"groupIds"`
}

type subscribedReply struct {
	Type     string          `json:"type"`
	GroupIDs []string        `json:"groupIds"`
	Rejected []rejectionJSON `json:"rejected"`
}

type rejectionJSON struct {
	GroupID string `json:"groupId"`
	Reason  string `json:"reason"`
}

type unsubscribedReply struct {
	Type     string   `json:"type"`
	GroupIDs []string `json:"groupIds"`
}

type typeReply struct {
	Type string `json:"type"`
}

type errorReply struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes sent in {"type":"error"} replies: this API's contract
// (README "WebSocket"), spelled here rather than borrowed from the domain.
const (
	codeBadRequest    = "bad_request"
	codeUnknownAction = "unknown_action"
	codeUnauthorized  = "unauthorized"
	codeForbidden     = "forbidden"
	codeNotFound      = "not_found"
	codeConflict      = "conflict"
	codeRateLimited   = "rate_limited"
	codeInternal      = "internal"
)

// wireErrors is the one place domain error codes become WebSocket answers:
// the $connect status that refuses a handshake, and the code of an error
// reply to a message. A refused handshake is 403, never 401: the identity
// came from a verified token, so the refusal is about the caller.
var wireErrors = map[groupcast.Code]wireError{
	groupcast.CodeInvalid:      {http.StatusForbidden, codeBadRequest},
	groupcast.CodeTooLarge:     {http.StatusForbidden, codeBadRequest},
	groupcast.CodeUnauthorized: {http.StatusForbidden, codeUnauthorized},
	groupcast.CodeForbidden:    {http.StatusForbidden, codeForbidden},
	groupcast.CodeNotFound:     {http.StatusForbidden, codeNotFound},
	groupcast.CodeConflict:     {http.StatusForbidden, codeConflict},
	groupcast.CodeRateLimited:  {http.StatusForbidden, codeRateLimited},
	groupcast.CodeInternal:     {http.StatusInternalServerError, codeInternal},
}

type wireError struct {
	handshake int
	reply     string
}

// wireErrorFor maps err; anything that is not a known domain error is internal.
func wireErrorFor(err error) wireError {
	if w, ok := wireErrors[groupcast.ErrorCode(err)]; ok {
		return w
	}
	return wireErrors[groupcast.CodeInternal]
}

// Message handles every client message. Replies are always status 200: the
// error, if any, is in the body, because a non-2xx integration response is
// not forwarded to the client as a message.
func (h *Handler) Message(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	return reply(h.message(ctx, ev)), nil
}

func (h *Handler) message(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) any {
	cid := ev.RequestContext.ConnectionID
	if ev.IsBase64Encoded {
		return badRequest("binary messages are not supported; send JSON text")
	}
	if len(ev.Body) > MaxMessageBytes {
		return badRequest(fmt.Sprintf("message exceeds %d bytes", MaxMessageBytes))
	}
	if !utf8.ValidString(ev.Body) {
		return badRequest("message is not valid UTF-8")
	}
	var in inbound
	// Unknown fields are ignored so clients may add their own correlation
	// fields; the fields we read are type-checked.
	dec := json.NewDecoder(strings.NewReader(ev.Body))
	if err := dec.Decode(&in); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && (typ.Field == "groupIds" || strings.HasPrefix(typ.Field, "groupIds.")) {
			return badRequest(`"groupIds" must be an array of strings`)
		}
		return badRequest(`message must be a JSON object with an "action" string`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("message must hold a single JSON object")
	}
	switch in.Action {
	case "":
		return badRequest("\"action\" is required")
	case "ping":
		return typeReply{Type: "pong"}
	case "subscribe":
		ids, ok := groupIDs(in)
		if !ok {
			return badRequest(`subscribe needs a non-empty "groupIds" array`)
		}
		accepted, rejected, serr := h.svc.Subscribe(ctx, cid, ids)
		if serr != nil {
			return h.failure(ctx, cid, in.Action, serr)
		}
		out := subscribedReply{Type: "subscribed", GroupIDs: nonNil(accepted), Rejected: make([]rejectionJSON, 0, len(rejected))}
		for _, r := range rejected {
			out.Rejected = append(out.Rejected, rejectionJSON{GroupID: r.GroupID, Reason: r.Reason})
		}
		return out
	case "unsubscribe":
		ids, ok := groupIDs(in)
		if !ok {
			return badRequest(`unsubscribe needs a non-empty "groupIds" array`)
		}
		removed, serr := h.svc.Unsubscribe(ctx, cid, ids)
		if serr != nil {
			return h.failure(ctx, cid, in.Action, serr)
		}
		return unsubscribedReply{Type: "unsubscribed", GroupIDs: nonNil(removed)}
	default:
		return errorReply{Type: "error", Code: codeUnknownAction,
			Message: "unknown action; use subscribe, unsubscribe or ping"}
	}
}

// groupIDs returns the message's groupIds, which subscribe and unsubscribe
// require to be a non-empty array (decoding already checked the type).
func groupIDs(in inbound) ([]string, bool) {
	if len(in.GroupIDs) == 0 {
		return nil, false
	}
	return in.GroupIDs, true
}

// failure turns a service error into an error reply. Domain validation
// errors are the client's to fix; anything else is logged and hidden.
func (h *Handler) failure(ctx context.Context, cid, action string, err error) errorReply {
	wire := wireErrorFor(err)
	if wire.reply == codeInternal {
		h.log.ErrorContext(ctx, "message failed", "connectionId", cid, "action", action, "error", err.Error())
		return errorReply{Type: "error", Code: codeInternal, Message: "internal error"}
	}
	return errorReply{Type: "error", Code: wire.reply, Message: groupcast.ErrorMessage(err)}
}

func badRequest(msg string) errorReply {
	return errorReply{Type: "error", Code: codeBadRequest, Message: msg}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func reply(v any) events.APIGatewayProxyResponse {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"type":"error","code":"internal","message":"internal error"}`)
	}
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK, Body: string(b)}
}

func status(code int) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: code}
}
