package httpapi

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// This file holds the wire format of the REST API. The domain types carry no
// JSON tags on purpose: the field names and formats below are a public
// contract, and changing a domain field must not silently change it. The
// one exception is the event envelope (groupcast.Envelope): it is a single
// shape for live pushes, the inbox and history, so it is defined once, with
// the events.

// timestamp formats t as RFC 3339 in UTC; API Gateway clients in every
// language parse it, and UTC keeps equal instants byte-for-byte equal.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type groupJSON struct {
	GroupID     string `json:"groupId"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Visibility  string `json:"visibility"`
	OwnerID     string `json:"ownerId"`
	MemberCount int    `json:"memberCount"`
	CreatedAt   string `json:"createdAt"`
}

func toGroupJSON(g groupcast.Group) groupJSON {
	return groupJSON{
		GroupID:     g.ID,
		Name:        g.Name,
		Description: g.Description,
		Visibility:  string(g.Visibility),
		OwnerID:     g.OwnerID,
		MemberCount: g.MemberCount,
		CreatedAt:   timestamp(g.CreatedAt),
	}
}

type memberJSON struct {
	GroupID     string `json:"groupId"`
	UserID      string `json:"userId"`
	DisplayName string `json:"displayName"`
	Role        string `json:"role"`
	JoinedAt    string `json:"joinedAt"`
}

func toMemberJSON(m groupcast.Member) memberJSON {
	return memberJSON{
		GroupID:     m.GroupID,
		UserID:      m.UserID,
		DisplayName: m.DisplayName,
		Role:        string(m.Role),
		JoinedAt:    timestamp(m.JoinedAt),
	}
}

type postJSON struct {
	PostID     string `json:"postId"`
	GroupID    string `json:"groupId"`
	AuthorID   string `json:"authorId"`
	AuthorName string `json:"authorName"`
	Content    string `json:"content"`
	CreatedAt  string `json:"createdAt"`
}

func toPostJSON(p groupcast.Post) postJSON {
	return postJSON{
		PostID:     p.ID,
		GroupID:    p.GroupID,
		AuthorID:   p.AuthorID,
		AuthorName: p.AuthorName,
		Content:    p.Content,
		CreatedAt:  timestamp(p.CreatedAt),
	}
}

type invitationJSON struct {
	InvitationID string `json:"invitationId"`
	GroupID      string `json:"groupId"`
	GroupName    string `json:"groupName"`
	InviteeID    string `json:"inviteeId"`
	InviterID    string `json:"inviterId"`
	InviterName  string `json:"inviterName"`
	// Status is lower case, the same spelling the ?status= filter takes.
	Status    string `json:"status"`
	CreatedAt string `json:"createdAt"`
	// AnsweredAt is absent while the invitation is pending.
	AnsweredAt string `json:"answeredAt,omitempty"`
}

func toInvitationJSON(inv groupcast.Invitation) invitationJSON {
	out := invitationJSON{
		InvitationID: inv.ID,
		GroupID:      inv.GroupID,
		GroupName:    inv.GroupName,
		InviteeID:    inv.InviteeID,
		InviterID:    inv.InviterID,
		InviterName:  inv.InviterName,
		Status:       strings.ToLower(string(inv.Status)),
		CreatedAt:    timestamp(inv.CreatedAt),
	}
	if !inv.AnsweredAt.IsZero() {
		out.AnsweredAt = timestamp(inv.AnsweredAt)
	}
	return out
}

type skippedJSON struct {
	UserID string `json:"userId"`
	Reason string `json:"reason"`
}

type invitationsCreatedJSON struct {
	Invitations []invitationJSON `json:"invitations"`
	Skipped     []skippedJSON    `json:"skipped"`
}

// notificationJSON is the event's envelope, exactly as it was pushed, plus
// "read".
type notificationJSON struct {
	groupcast.Envelope
	Read bool `json:"read"`
}

func toNotificationJSON(n groupcast.Notification) notificationJSON {
	env := n.Envelope
	if len(env.Data) == 0 {
		env.Data = json.RawMessage("{}")
	}
	return notificationJSON{Envelope: env, Read: n.Read}
}

// listJSON is every paginated listing. NextCursor is null on the last page so
// clients can loop on `while (nextCursor)`.
type listJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"nextCursor"`
}

type notificationListJSON struct {
	listJSON[notificationJSON]
	UnreadCount int `json:"unreadCount"`
}

// itemsJSON is a listing the service returns whole (the caller's invitations).
type itemsJSON[T any] struct {
	Items []T `json:"items"`
}

// mapItems converts a page of domain values, always yielding a non-nil slice
// so an empty page encodes as [] rather than null.
func mapItems[D, J any](in []D, conv func(D) J) []J {
	out := make([]J, 0, len(in))
	for _, d := range in {
		out = append(out, conv(d))
	}
	return out
}

func toList[D, J any](p groupcast.Page[D], conv func(D) J) listJSON[J] {
	l := listJSON[J]{Items: mapItems(p.Items, conv)}
	if p.NextCursor != "" {
		c := p.NextCursor
		l.NextCursor = &c
	}
	return l
}

// Request bodies. Unknown fields are rejected (see decodeBody), so a typo such
// as "visiblity" is a 400 rather than a silently public group.

type createGroupRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Visibility  string `json:"visibility"`
}

type createPostRequest struct {
	Content string `json:"content"`
}

type inviteRequest struct {
	UserIDs []string `json:"userIds"`
}

type markReadRequest struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}
