// Package wsapi serves the Groupcast WebSocket API's Lambda integrations:
// $connect records the connection of the user the REQUEST authorizer
// verified, $disconnect removes it with its subscriptions, and one message
// handler answers the subscribe, unsubscribe and ping actions (and $default).
//
// Replies travel back as the integration response body: every route has a
// $default route response, so API Gateway forwards the body to the client.
// Replayed events (a subscribe or resume with positions) are pushed one per
// message through @connections before the reply: a reply holds at most
// 128 KiB, and a route integration, unlike $connect, may post to its own
// connection.
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
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

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
	Resume(ctx context.Context, connectionID string, positions groupcast.Positions) (groupcast.Replay, error)
}

// Poster pushes one message to a connection; the SDK's
// *apigatewaymanagementapi.Client implements it.
type Poster interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
}

// postTimeout caps one replayed push: a healthy PostToConnection takes
// tens of ms in-region, so 2 s only cuts off a hung call and leaves the
// rest of the message function's 10 s for the other pushes.
const postTimeout = 2 * time.Second

// MaxRequestIDBytes bounds the requestId a client may attach to a message;
// it is echoed, so it must stay small.
const MaxRequestIDBytes = 128

// Handler holds the three WebSocket integrations.
type Handler struct {
	svc    Service
	poster Poster
	log    *slog.Logger
}

// New returns a Handler. poster pushes replayed events; the $connect and
// $disconnect functions push nothing and pass nil.
func New(svc Service, poster Poster, log *slog.Logger) (*Handler, error) {
	switch {
	case svc == nil:
		return nil, errors.New("wsapi: nil service")
	case log == nil:
		return nil, errors.New("wsapi: nil logger")
	}
	return &Handler{svc: svc, poster: poster, log: log}, nil
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
	Action    string              `json:"action"`
	RequestID string              `json:"requestId"`
	GroupIDs  []string            `json:"groupIds"`
	Positions groupcast.Positions `json:"positions"`
}

// subscribedReply answers subscribe. Recovered has one entry per stream the
// client gave a position for; Positions gives a position to resume from
// next time to every stream the subscription covers that has none or did
// not recover.
type subscribedReply struct {
	Type      string            `json:"type"`
	RequestID string            `json:"requestId,omitempty"`
	GroupIDs  []string          `json:"groupIds"`
	Rejected  []rejectionJSON   `json:"rejected"`
	Recovered map[string]bool   `json:"recovered"`
	Positions map[string]string `json:"positions"`
}

// resumedReply answers resume, with the same two maps.
type resumedReply struct {
	Type      string            `json:"type"`
	RequestID string            `json:"requestId,omitempty"`
	Recovered map[string]bool   `json:"recovered"`
	Positions map[string]string `json:"positions"`
}

type rejectionJSON struct {
	GroupID string `json:"groupId"`
	Reason  string `json:"reason"`
}

type unsubscribedReply struct {
	Type      string   `json:"type"`
	RequestID string   `json:"requestId,omitempty"`
	GroupIDs  []string `json:"groupIds"`
}

type typeReply struct {
	Type      string `json:"type"`
	RequestID string `json:"requestId,omitempty"`
}

type errorReply struct {
	Type      string `json:"type"`
	RequestID string `json:"requestId,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
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
		return badRequest("", "binary messages are not supported; send JSON text")
	}
	if len(ev.Body) > MaxMessageBytes {
		return badRequest("", fmt.Sprintf("message exceeds %d bytes", MaxMessageBytes))
	}
	if !utf8.ValidString(ev.Body) {
		return badRequest("", "message is not valid UTF-8")
	}
	var in inbound
	// Unknown fields are ignored so clients may add their own fields; the
	// fields we read are type-checked.
	dec := json.NewDecoder(strings.NewReader(ev.Body))
	if err := dec.Decode(&in); err != nil {
		rid := lenientRequestID(ev.Body)
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			switch field := strings.SplitN(typ.Field, ".", 2)[0]; field {
			case "groupIds":
				return badRequest(rid, `"groupIds" must be an array of strings`)
			case "positions":
				return badRequest(rid, `"positions" must be an object of stream names to position strings`)
			case "requestId":
				return badRequest("", `"requestId" must be a string`)
			}
		}
		return badRequest(rid, `message must be a JSON object with an "action" string`)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("", "message must hold a single JSON object")
	}
	if msg := checkRequestID(in.RequestID); msg != "" {
		return badRequest("", msg)
	}
	rid := in.RequestID
	switch in.Action {
	case "":
		return badRequest(rid, "\"action\" is required")
	case "ping":
		return typeReply{Type: "pong", RequestID: rid}
	case "subscribe":
		ids, ok := groupIDs(in)
		if !ok {
			return badRequest(rid, `subscribe needs a non-empty "groupIds" array`)
		}
		// Positions are checked before anything is written.
		if err := groupcast.ValidatePositions(in.Positions); err != nil {
			return h.failure(ctx, cid, rid, in.Action, err)
		}
		accepted, rejected, serr := h.svc.Subscribe(ctx, cid, ids)
		if serr != nil {
			return h.failure(ctx, cid, rid, in.Action, serr)
		}
		// History is read after the subscriptions are written, so an event
		// committed in between is live-pushed, replayed, or both (same id).
		recovered, start, rerr := h.replay(ctx, cid, in.Positions)
		if rerr != nil {
			return h.failure(ctx, cid, rid, in.Action, rerr)
		}
		out := subscribedReply{
			Type: "subscribed", RequestID: rid, GroupIDs: nonNil(accepted),
			Rejected: make([]rejectionJSON, 0, len(rejected)), Recovered: recovered, Positions: map[string]string{},
		}
		for _, r := range rejected {
			out.Rejected = append(out.Rejected, rejectionJSON{GroupID: r.GroupID, Reason: r.Reason})
		}
		streams := []string{groupcast.StreamNameUser}
		for _, g := range accepted {
			if g == groupcast.SubscribePublic {
				streams = append(streams, groupcast.StreamNamePublic)
			} else {
				streams = append(streams, groupcast.GroupStreamName(g))
			}
		}
		for name, ok := range recovered {
			if !ok {
				streams = append(streams, name)
			}
		}
		for _, name := range streams {
			if _, given := in.Positions[name]; !given || !recovered[name] {
				out.Positions[name] = start
			}
		}
		return out
	case "resume":
		if len(in.Positions) == 0 {
			return badRequest(rid, `resume needs a non-empty "positions" object`)
		}
		recovered, start, err := h.replay(ctx, cid, in.Positions)
		if err != nil {
			return h.failure(ctx, cid, rid, in.Action, err)
		}
		out := resumedReply{Type: "resumed", RequestID: rid, Recovered: recovered, Positions: map[string]string{}}
		for name, ok := range recovered {
			if !ok {
				out.Positions[name] = start
			}
		}
		return out
	case "unsubscribe":
		ids, ok := groupIDs(in)
		if !ok {
			return badRequest(rid, `unsubscribe needs a non-empty "groupIds" array`)
		}
		removed, serr := h.svc.Unsubscribe(ctx, cid, ids)
		if serr != nil {
			return h.failure(ctx, cid, rid, in.Action, serr)
		}
		return unsubscribedReply{Type: "unsubscribed", RequestID: rid, GroupIDs: nonNil(removed)}
	default:
		return errorReply{Type: "error", RequestID: rid, Code: codeUnknownAction,
			Message: "unknown action; use subscribe, unsubscribe, resume or ping"}
	}
}

// replay reads what the connection missed after positions and pushes it,
// one event per message, in stream order. It returns whether each stream
// recovered and the position to resume from next time for those that did
// not.
func (h *Handler) replay(ctx context.Context, cid string, positions groupcast.Positions) (map[string]bool, string, error) {
	r, err := h.svc.Resume(ctx, cid, positions)
	if err != nil {
		return nil, "", err
	}
	recovered := make(map[string]bool, len(r.Streams))
	for _, st := range r.Streams {
		recovered[st.Stream] = st.Recovered
		for _, env := range st.Events {
			if err := h.push(ctx, cid, env); err != nil {
				return nil, "", err
			}
		}
	}
	return recovered, r.Start, nil
}

func (h *Handler) push(ctx context.Context, cid string, env groupcast.Envelope) error {
	if h.poster == nil {
		return fmt.Errorf("replay event %s: no @connections client configured", env.ID)
	}
	body, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", env.ID, err)
	}
	callCtx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	if _, err := h.poster.PostToConnection(callCtx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(cid), Data: body,
	}); err != nil {
		return fmt.Errorf("replay event %s to %s: %w", env.ID, cid, err)
	}
	return nil
}

// checkRequestID returns why a requestId is refused, or "".
func checkRequestID(id string) string {
	switch {
	case len(id) > MaxRequestIDBytes:
		return fmt.Sprintf(`"requestId" must have at most %d bytes`, MaxRequestIDBytes)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return `"requestId" must not contain control characters`
	}
	return ""
}

// lenientRequestID recovers a valid requestId from a message whose other
// fields failed to decode, so the error reply can still be matched.
func lenientRequestID(body string) string {
	var m struct {
		RequestID string `json:"requestId"`
	}
	if json.Unmarshal([]byte(body), &m) != nil || checkRequestID(m.RequestID) != "" {
		return ""
	}
	return m.RequestID
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
func (h *Handler) failure(ctx context.Context, cid, rid, action string, err error) errorReply {
	wire := wireErrorFor(err)
	if wire.reply == codeInternal {
		h.log.ErrorContext(ctx, "message failed", "connectionId", cid, "action", action, "error", err.Error())
		return errorReply{Type: "error", RequestID: rid, Code: codeInternal, Message: "internal error"}
	}
	return errorReply{Type: "error", RequestID: rid, Code: wire.reply, Message: groupcast.ErrorMessage(err)}
}

func badRequest(rid, msg string) errorReply {
	return errorReply{Type: "error", RequestID: rid, Code: codeBadRequest, Message: msg}
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
