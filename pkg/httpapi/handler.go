// Package httpapi serves the Groupcast REST API as an API Gateway HTTP API
// (payload format 2.0) Lambda handler: it routes on the event's route key,
// reads the caller from the JWT authorizer's claims, decodes and validates
// the transport-level input, calls the domain service and encodes JSON.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Service is the part of the domain service the REST API uses.
type Service interface {
	CreateGroup(ctx context.Context, c groupcast.Caller, in groupcast.CreateGroupInput) (groupcast.Group, error)
	ListGroups(ctx context.Context, c groupcast.Caller, scope groupcast.GroupScope, p groupcast.PageRequest) (groupcast.Page[groupcast.Group], error)
	GetGroup(ctx context.Context, c groupcast.Caller, groupID string) (groupcast.Group, error)
	JoinGroup(ctx context.Context, c groupcast.Caller, groupID string) (groupcast.Member, error)
	LeaveGroup(ctx context.Context, c groupcast.Caller, groupID string) error
	ListMembers(ctx context.Context, c groupcast.Caller, groupID string, p groupcast.PageRequest) (groupcast.Page[groupcast.Member], error)
	CreatePost(ctx context.Context, c groupcast.Caller, groupID, content string) (groupcast.Post, error)
	ListPosts(ctx context.Context, c groupcast.Caller, groupID string, p groupcast.PageRequest, afterPostID string) (groupcast.Page[groupcast.Post], error)
	Invite(ctx context.Context, c groupcast.Caller, groupID string, userIDs []string) ([]groupcast.Invitation, []groupcast.SkippedInvite, error)
	ListInvitations(ctx context.Context, c groupcast.Caller, status groupcast.InvitationStatus) ([]groupcast.Invitation, error)
	AnswerInvitation(ctx context.Context, c groupcast.Caller, groupID string, accept bool) (groupcast.Invitation, error)
	ListNotifications(ctx context.Context, c groupcast.Caller, p groupcast.PageRequest) (groupcast.Page[groupcast.Notification], int, error)
	MarkNotificationsRead(ctx context.Context, c groupcast.Caller, ids []string, all bool) error
}

// Handler is the ApiFunction's Lambda handler.
type Handler struct {
	svc    Service
	log    *slog.Logger
	routes map[string]route
}

// request is one API call after the caller has been authenticated.
type request struct {
	events.APIGatewayV2HTTPRequest
	caller groupcast.Caller
}

type route func(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error)

// New returns a handler serving the routes template.yaml declares on the
// HTTP API; their route keys must match the keys below exactly.
func New(svc Service, log *slog.Logger) (*Handler, error) {
	if svc == nil {
		return nil, errors.New("httpapi: nil service")
	}
	if log == nil {
		return nil, errors.New("httpapi: nil logger")
	}
	h := &Handler{svc: svc, log: log}
	h.routes = map[string]route{
		"POST /groups":                               h.createGroup,
		"GET /groups":                                h.listGroups,
		"GET /groups/{groupId}":                      h.getGroup,
		"POST /groups/{groupId}/members":             h.joinGroup,
		"DELETE /groups/{groupId}/members/me":        h.leaveGroup,
		"GET /groups/{groupId}/members":              h.listMembers,
		"POST /groups/{groupId}/posts":               h.createPost,
		"GET /groups/{groupId}/posts":                h.listPosts,
		"POST /groups/{groupId}/invitations":         h.invite,
		"POST /groups/{groupId}/invitations/accept":  h.acceptInvitation,
		"POST /groups/{groupId}/invitations/decline": h.declineInvitation,
		"GET /invitations":                           h.listInvitations,
		"GET /notifications":                         h.listNotifications,
		"POST /notifications/read":                   h.markNotificationsRead,
	}
	return h, nil
}

// RouteKeys lists the route keys the handler serves, for checks that the
// template declares each of them.
func (h *Handler) RouteKeys() []string {
	keys := make([]string, 0, len(h.routes))
	for k := range h.routes {
		keys = append(keys, k)
	}
	return keys
}

// Handle serves one API Gateway event. It never returns a Go error: API
// Gateway would turn that into a bare 500, so every failure becomes a JSON
// error response instead.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	key := ev.RouteKey
	if key == "" {
		key = ev.RequestContext.RouteKey
	}
	rt, ok := h.routes[key]
	if !ok {
		return h.errorResponse(ctx, ev, groupcast.Errorf(groupcast.CodeNotFound, "no route for %s %s", ev.RequestContext.HTTP.Method, ev.RawPath)), nil
	}
	c, err := caller(ev)
	if err != nil {
		return h.errorResponse(ctx, ev, err), nil
	}
	resp, err := rt(ctx, request{APIGatewayV2HTTPRequest: ev, caller: c})
	if err != nil {
		return h.errorResponse(ctx, ev, err), nil
	}
	return resp, nil
}

// wireErrors is the one place domain error codes become HTTP statuses and
// the codes clients see in {"error":{"code"}}. The wire codes are this API's
// contract (README "Errors"); they are spelled here, not borrowed from the
// domain, so renaming a domain code cannot change what clients receive.
var wireErrors = map[groupcast.Code]wireError{
	groupcast.CodeInvalid:      {http.StatusBadRequest, "invalid"},
	groupcast.CodeUnauthorized: {http.StatusUnauthorized, "unauthorized"},
	groupcast.CodeForbidden:    {http.StatusForbidden, "forbidden"},
	groupcast.CodeNotFound:     {http.StatusNotFound, "not_found"},
	groupcast.CodeConflict:     {http.StatusConflict, "conflict"},
	groupcast.CodeTooLarge:     {http.StatusRequestEntityTooLarge, "too_large"},
	groupcast.CodeRateLimited:  {http.StatusTooManyRequests, "rate_limited"},
	groupcast.CodeInternal:     {http.StatusInternalServerError, "internal"},
}

type wireError struct {
	status int
	code   string
}

// errorResponse renders err as {"error":{"code","message"}}. Anything that is
// not a domain error is logged in full and shown only as "internal error".
func (h *Handler) errorResponse(ctx context.Context, ev events.APIGatewayV2HTTPRequest, err error) events.APIGatewayV2HTTPResponse {
	code := groupcast.ErrorCode(err)
	wire, ok := wireErrors[code]
	if !ok {
		code, wire = groupcast.CodeInternal, wireErrors[groupcast.CodeInternal]
	}
	if code == groupcast.CodeInternal {
		h.log.ErrorContext(ctx, "request failed",
			"route", ev.RouteKey, "requestId", ev.RequestContext.RequestID, "error", err.Error())
	}
	resp := jsonResponse(wire.status, errorBody{Error: errorDetail{Code: wire.code, Message: groupcast.ErrorMessage(err)}})
	var de *groupcast.Error
	if code == groupcast.CodeRateLimited && errors.As(err, &de) {
		// Retry-After must be a positive whole number of seconds; never tell
		// a client to retry immediately while it is over the limit.
		resp.Headers["Retry-After"] = strconv.Itoa(max(1, de.RetryAfterSeconds))
	}
	return resp
}

func jsonResponse(status int, v any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(v)
	if err != nil {
		// Only reachable with an unencodable notification data value; the
		// types above are otherwise plain strings and numbers.
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
		status = http.StatusInternalServerError
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers: map[string]string{
			"Content-Type": "application/json; charset=utf-8",
			// Every response is per-user; no shared cache may keep it.
			"Cache-Control": "no-store",
		},
		Body: string(b),
	}
}

func noContent() events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{"Cache-Control": "no-store"}}
}

// groupID returns the {groupId} path parameter API Gateway extracted.
func (r request) groupID() (string, error) {
	id := r.PathParameters["groupId"]
	if id == "" {
		return "", groupcast.Errorf(groupcast.CodeInvalid, "groupId is required in the path")
	}
	return id, nil
}

func (h *Handler) createGroup(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	var in createGroupRequest
	if err := decodeBody(r.APIGatewayV2HTTPRequest, &in); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	g, err := h.svc.CreateGroup(ctx, r.caller, groupcast.CreateGroupInput{
		Name: in.Name, Description: in.Description, Visibility: groupcast.Visibility(in.Visibility),
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("create group: %w", err)
	}
	return jsonResponse(http.StatusCreated, toGroupJSON(g)), nil
}

func (h *Handler) listGroups(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	scope, err := groupScope(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	p, err := pageRequest(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	page, err := h.svc.ListGroups(ctx, r.caller, scope, p)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("list groups: %w", err)
	}
	return jsonResponse(http.StatusOK, toList(page, toGroupJSON)), nil
}

func (h *Handler) getGroup(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	g, err := h.svc.GetGroup(ctx, r.caller, gid)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("get group %s: %w", gid, err)
	}
	return jsonResponse(http.StatusOK, toGroupJSON(g)), nil
}

func (h *Handler) joinGroup(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	m, err := h.svc.JoinGroup(ctx, r.caller, gid)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("join group %s: %w", gid, err)
	}
	return jsonResponse(http.StatusCreated, toMemberJSON(m)), nil
}

func (h *Handler) leaveGroup(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if err := h.svc.LeaveGroup(ctx, r.caller, gid); err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("leave group %s: %w", gid, err)
	}
	return noContent(), nil
}

func (h *Handler) listMembers(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	p, err := pageRequest(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	page, err := h.svc.ListMembers(ctx, r.caller, gid, p)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("list members of %s: %w", gid, err)
	}
	return jsonResponse(http.StatusOK, toList(page, toMemberJSON)), nil
}

func (h *Handler) createPost(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var in createPostRequest
	if err := decodeBody(r.APIGatewayV2HTTPRequest, &in); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	p, err := h.svc.CreatePost(ctx, r.caller, gid, in.Content)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("create post in %s: %w", gid, err)
	}
	return jsonResponse(http.StatusCreated, toPostJSON(p)), nil
}

func (h *Handler) listPosts(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	p, err := pageRequest(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	after, err := afterPostID(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	page, err := h.svc.ListPosts(ctx, r.caller, gid, p, after)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("list posts of %s: %w", gid, err)
	}
	return jsonResponse(http.StatusOK, toList(page, toPostJSON)), nil
}

func (h *Handler) invite(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var in inviteRequest
	if err := decodeBody(r.APIGatewayV2HTTPRequest, &in); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	invs, skipped, err := h.svc.Invite(ctx, r.caller, gid, in.UserIDs)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("invite to %s: %w", gid, err)
	}
	return jsonResponse(http.StatusCreated, invitationsCreatedJSON{
		Invitations: mapItems(invs, toInvitationJSON),
		Skipped: mapItems(skipped, func(s groupcast.SkippedInvite) skippedJSON {
			return skippedJSON{UserID: s.UserID, Reason: string(s.Reason)}
		}),
	}), nil
}

func (h *Handler) listInvitations(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	status, err := invitationStatus(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	invs, err := h.svc.ListInvitations(ctx, r.caller, status)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("list invitations: %w", err)
	}
	return jsonResponse(http.StatusOK, itemsJSON[invitationJSON]{Items: mapItems(invs, toInvitationJSON)}), nil
}

func (h *Handler) acceptInvitation(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	return h.answerInvitation(ctx, r, true)
}

func (h *Handler) declineInvitation(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	return h.answerInvitation(ctx, r, false)
}

func (h *Handler) answerInvitation(ctx context.Context, r request, accept bool) (events.APIGatewayV2HTTPResponse, error) {
	gid, err := r.groupID()
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	inv, err := h.svc.AnswerInvitation(ctx, r.caller, gid, accept)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("answer invitation to %s: %w", gid, err)
	}
	return jsonResponse(http.StatusOK, toInvitationJSON(inv)), nil
}

func (h *Handler) listNotifications(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	p, err := pageRequest(r.QueryStringParameters)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	page, unread, err := h.svc.ListNotifications(ctx, r.caller, p)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("list notifications: %w", err)
	}
	return jsonResponse(http.StatusOK, notificationListJSON{
		listJSON:    toList(page, toNotificationJSON),
		UnreadCount: unread,
	}), nil
}

func (h *Handler) markNotificationsRead(ctx context.Context, r request) (events.APIGatewayV2HTTPResponse, error) {
	var in markReadRequest
	if err := decodeBody(r.APIGatewayV2HTTPRequest, &in); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if in.All == (len(in.IDs) > 0) {
		return events.APIGatewayV2HTTPResponse{}, groupcast.Errorf(groupcast.CodeInvalid, `give either "ids" or "all": true`)
	}
	if err := h.svc.MarkNotificationsRead(ctx, r.caller, in.IDs, in.All); err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("mark notifications read: %w", err)
	}
	return noContent(), nil
}
