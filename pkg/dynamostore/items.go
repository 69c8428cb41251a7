package dynamostore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Values of the "type" attribute every item carries.
const (
	TypeGroup        = "GROUP"
	TypeMember       = "MEMBER"
	TypePost         = "POST"
	TypeInvitation   = "INVITATION"
	TypeNotification = "NOTIFICATION"
	TypeRate         = "RATE"
	TypeConnection   = "CONNECTION"
	TypeSubscription = "SUBSCRIPTION"
	// TypeUserConnection lists a connection under its user on the base table.
	TypeUserConnection = "USER_CONNECTION"
	// TypeEvent is an outbox event (events.go), the only type the fan-out's
	// stream filter passes.
	TypeEvent = "EVENT"
)

// Key prefixes and fixed values of the key layout (README "The table").
const (
	prefixGroup    = "GROUP#"
	prefixMember   = "MEMBER#"
	prefixPost     = "POST#"
	prefixUser     = "USER#"
	prefixInvite   = "INVITE#"
	prefixNotif    = "NOTIF#"
	prefixUnread   = "UNREAD#"
	prefixRate     = "RATE#"
	prefixPosts    = "POSTS#"
	prefixConn     = "CONN#"
	prefixSub      = "SUB#"
	prefixSubs     = "SUBS#"
	prefixEvent    = "EVENT#"
	skMeta         = "META"
	gsi1PublicFeed = "PUBLIC"
)

// sortableTime formats times inside sort keys with a fixed width, so that
// string order is time order (RFC3339Nano drops trailing zeros and is not).
func sortableTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z")
}

// GroupItem is a group (PK GROUP#gid, SK META).
type GroupItem struct {
	PK          string    `dynamodbav:"PK"`
	SK          string    `dynamodbav:"SK"`
	GSI1PK      string    `dynamodbav:"GSI1PK,omitempty"`
	GSI1SK      string    `dynamodbav:"GSI1SK,omitempty"`
	Type        string    `dynamodbav:"type"`
	GroupID     string    `dynamodbav:"groupId"`
	Name        string    `dynamodbav:"name"`
	Description string    `dynamodbav:"description"`
	Visibility  string    `dynamodbav:"visibility"`
	OwnerID     string    `dynamodbav:"ownerId"`
	MemberCount int       `dynamodbav:"memberCount"`
	CreatedAt   time.Time `dynamodbav:"createdAt"`
}

func groupKey(groupID string) (pk, sk string) { return prefixGroup + groupID, skMeta }

func newGroupItem(g groupcast.Group) GroupItem {
	pk, sk := groupKey(g.ID)
	it := GroupItem{
		PK: pk, SK: sk, Type: TypeGroup,
		GroupID: g.ID, Name: g.Name, Description: g.Description, Visibility: string(g.Visibility),
		OwnerID: g.OwnerID, MemberCount: g.MemberCount, CreatedAt: g.CreatedAt.UTC(),
	}
	// Only public groups enter the PUBLIC feed partition of GSI1 (sparse).
	if g.Visibility == groupcast.Public {
		it.GSI1PK = gsi1PublicFeed
		it.GSI1SK = sortableTime(g.CreatedAt) + "#" + g.ID
	}
	return it
}

// Group converts the item to the domain type.
func (it GroupItem) Group() groupcast.Group {
	return groupcast.Group{
		ID: it.GroupID, Name: it.Name, Description: it.Description, Visibility: groupcast.Visibility(it.Visibility),
		OwnerID: it.OwnerID, MemberCount: it.MemberCount, CreatedAt: it.CreatedAt,
	}
}

// MemberItem is a membership (PK GROUP#gid, SK MEMBER#uid).
type MemberItem struct {
	PK          string    `dynamodbav:"PK"`
	SK          string    `dynamodbav:"SK"`
	GSI1PK      string    `dynamodbav:"GSI1PK"`
	GSI1SK      string    `dynamodbav:"GSI1SK"`
	Type        string    `dynamodbav:"type"`
	GroupID     string    `dynamodbav:"groupId"`
	UserID      string    `dynamodbav:"userId"`
	DisplayName string    `dynamodbav:"displayName"`
	Role        string    `dynamodbav:"role"`
	JoinedAt    time.Time `dynamodbav:"joinedAt"`
}

func memberKey(groupID, userID string) (pk, sk string) {
	return prefixGroup + groupID, prefixMember + userID
}

func newMemberItem(m groupcast.Member) MemberItem {
	pk, sk := memberKey(m.GroupID, m.UserID)
	return MemberItem{
		PK: pk, SK: sk,
		GSI1PK: prefixUser + m.UserID, GSI1SK: prefixGroup + sortableTime(m.JoinedAt) + "#" + m.GroupID,
		Type: TypeMember, GroupID: m.GroupID, UserID: m.UserID, DisplayName: m.DisplayName,
		Role: string(m.Role), JoinedAt: m.JoinedAt.UTC(),
	}
}

// Member converts the item to the domain type.
func (it MemberItem) Member() groupcast.Member {
	return groupcast.Member{
		GroupID: it.GroupID, UserID: it.UserID, DisplayName: it.DisplayName,
		Role: groupcast.Role(it.Role), JoinedAt: it.JoinedAt,
	}
}

// PostItem is a post (PK GROUP#gid, SK POST#postId).
type PostItem struct {
	PK         string    `dynamodbav:"PK"`
	SK         string    `dynamodbav:"SK"`
	Type       string    `dynamodbav:"type"`
	PostID     string    `dynamodbav:"postId"`
	GroupID    string    `dynamodbav:"groupId"`
	AuthorID   string    `dynamodbav:"authorId"`
	AuthorName string    `dynamodbav:"authorName"`
	Content    string    `dynamodbav:"content"`
	CreatedAt  time.Time `dynamodbav:"createdAt"`
}

func newPostItem(p groupcast.Post) PostItem {
	return PostItem{
		PK: prefixGroup + p.GroupID, SK: prefixPost + p.ID, Type: TypePost,
		PostID: p.ID, GroupID: p.GroupID, AuthorID: p.AuthorID, AuthorName: p.AuthorName,
		Content: p.Content, CreatedAt: p.CreatedAt.UTC(),
	}
}

// Post converts the item to the domain type.
func (it PostItem) Post() groupcast.Post {
	return groupcast.Post{
		ID: it.PostID, GroupID: it.GroupID, AuthorID: it.AuthorID, AuthorName: it.AuthorName,
		Content: it.Content, CreatedAt: it.CreatedAt,
	}
}

// InvitationItem is an invitation (PK USER#invitee, SK INVITE#gid).
type InvitationItem struct {
	PK           string     `dynamodbav:"PK"`
	SK           string     `dynamodbav:"SK"`
	GSI1PK       string     `dynamodbav:"GSI1PK"`
	GSI1SK       string     `dynamodbav:"GSI1SK"`
	Type         string     `dynamodbav:"type"`
	InvitationID string     `dynamodbav:"invitationId"`
	GroupID      string     `dynamodbav:"groupId"`
	GroupName    string     `dynamodbav:"groupName"`
	InviteeID    string     `dynamodbav:"inviteeId"`
	InviterID    string     `dynamodbav:"inviterId"`
	InviterName  string     `dynamodbav:"inviterName"`
	Status       string     `dynamodbav:"status"`
	CreatedAt    time.Time  `dynamodbav:"createdAt"`
	AnsweredAt   *time.Time `dynamodbav:"answeredAt,omitempty"`
}

func invitationKey(inviteeID, groupID string) (pk, sk string) {
	return prefixUser + inviteeID, prefixInvite + groupID
}

func newInvitationItem(inv groupcast.Invitation) InvitationItem {
	pk, sk := invitationKey(inv.InviteeID, inv.GroupID)
	it := InvitationItem{
		PK: pk, SK: sk, GSI1PK: prefixGroup + inv.GroupID, GSI1SK: prefixInvite + inv.InviteeID,
		Type: TypeInvitation, InvitationID: inv.ID, GroupID: inv.GroupID, GroupName: inv.GroupName,
		InviteeID: inv.InviteeID, InviterID: inv.InviterID, InviterName: inv.InviterName,
		Status: string(inv.Status), CreatedAt: inv.CreatedAt.UTC(),
	}
	if !inv.AnsweredAt.IsZero() {
		at := inv.AnsweredAt.UTC()
		it.AnsweredAt = &at
	}
	return it
}

// Invitation converts the item to the domain type.
func (it InvitationItem) Invitation() groupcast.Invitation {
	inv := groupcast.Invitation{
		ID: it.InvitationID, GroupID: it.GroupID, GroupName: it.GroupName, InviteeID: it.InviteeID,
		InviterID: it.InviterID, InviterName: it.InviterName, Status: groupcast.InvitationStatus(it.Status),
		CreatedAt: it.CreatedAt,
	}
	if it.AnsweredAt != nil {
		inv.AnsweredAt = *it.AnsweredAt
	}
	return inv
}

// NotificationItem is an inbox entry (PK USER#uid, SK NOTIF#<at>#<id>).
// While unread it is also in the sparse GSI2 under UNREAD#uid.
type NotificationItem struct {
	PK        string         `dynamodbav:"PK"`
	SK        string         `dynamodbav:"SK"`
	GSI2PK    string         `dynamodbav:"GSI2PK,omitempty"`
	GSI2SK    string         `dynamodbav:"GSI2SK,omitempty"`
	Type      string         `dynamodbav:"type"`
	ID        string         `dynamodbav:"id"`
	UserID    string         `dynamodbav:"userId"`
	EventType string         `dynamodbav:"eventType"`
	GroupID   string         `dynamodbav:"groupId"`
	Stream    string         `dynamodbav:"stream,omitempty"`
	Position  string         `dynamodbav:"position,omitempty"`
	Data      map[string]any `dynamodbav:"data"`
	CreatedAt time.Time      `dynamodbav:"createdAt"`
	Read      bool           `dynamodbav:"read"`
	// TTL (epoch seconds) lets DynamoDB delete the entry; 0 keeps it.
	TTL int64 `dynamodbav:"ttl,omitempty"`
}

// The event's data is stored as a map (not the JSON text) so the entry
// stays readable in the console; createdAt is the envelope's "at".
func newNotificationItem(n groupcast.Notification) (NotificationItem, error) {
	it := NotificationItem{
		PK: prefixUser + n.UserID, SK: prefixNotif + sortableTime(n.At) + "#" + n.ID,
		Type: TypeNotification, ID: n.ID, UserID: n.UserID, EventType: string(n.Type), GroupID: n.GroupID,
		Stream: n.Stream, Position: n.Position, Data: map[string]any{}, CreatedAt: n.At.UTC(), Read: n.Read,
	}
	if len(n.Data) > 0 {
		if err := json.Unmarshal(n.Data, &it.Data); err != nil {
			return NotificationItem{}, fmt.Errorf("notification %s: data is not a JSON object: %w", n.ID, err)
		}
	}
	if !n.ExpiresAt.IsZero() {
		it.TTL = n.ExpiresAt.Unix()
	}
	if !n.Read {
		it.GSI2PK, it.GSI2SK = prefixUnread+n.UserID, it.SK
	}
	return it, nil
}

// Notification converts the item to the domain type.
func (it NotificationItem) Notification() (groupcast.Notification, error) {
	data := it.Data
	if data == nil {
		data = map[string]any{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return groupcast.Notification{}, fmt.Errorf("notification %s: encode data: %w", it.ID, err)
	}
	return groupcast.Notification{
		Envelope: groupcast.Envelope{ID: it.ID, Type: groupcast.EventType(it.EventType), GroupID: it.GroupID, Stream: it.Stream, Position: it.Position, At: it.CreatedAt.UTC(), Data: raw},
		UserID:   it.UserID, Read: it.Read, ExpiresAt: expiry(it.TTL),
	}, nil
}

func expiry(ttl int64) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return time.Unix(ttl, 0).UTC()
}

// ConnectionItem is a live WebSocket connection (PK CONN#cid, SK META).
type ConnectionItem struct {
	PK           string    `dynamodbav:"PK"`
	SK           string    `dynamodbav:"SK"`
	GSI1PK       string    `dynamodbav:"GSI1PK"`
	GSI1SK       string    `dynamodbav:"GSI1SK"`
	Type         string    `dynamodbav:"type"`
	ConnectionID string    `dynamodbav:"connectionId"`
	UserID       string    `dynamodbav:"userId"`
	DisplayName  string    `dynamodbav:"displayName"`
	ConnectedAt  time.Time `dynamodbav:"connectedAt"`
	TTL          int64     `dynamodbav:"ttl"`
}

func connectionKey(connectionID string) (pk, sk string) { return prefixConn + connectionID, skMeta }

// UserConnectionItem lists a live connection under its user on the base
// table (PK USER#uid, SK CONN#cid). GSI reads are eventually consistent, so
// leaving a group finds the user's connections here, with a strongly
// consistent query that cannot miss a connection made before it.
type UserConnectionItem struct {
	PK           string `dynamodbav:"PK"`
	SK           string `dynamodbav:"SK"`
	Type         string `dynamodbav:"type"`
	ConnectionID string `dynamodbav:"connectionId"`
	UserID       string `dynamodbav:"userId"`
	// Wildcard: the connection subscribed with "*", so joining a group
	// subscribes it too (groupcast followMembership).
	Wildcard bool  `dynamodbav:"wildcard,omitempty"`
	TTL      int64 `dynamodbav:"ttl"`
}

func userConnectionKey(userID, connectionID string) (pk, sk string) {
	return prefixUser + userID, prefixConn + connectionID
}

// Connection converts the item to the domain type.
func (it ConnectionItem) Connection() groupcast.Connection {
	return groupcast.Connection{ID: it.ConnectionID, UserID: it.UserID, DisplayName: it.DisplayName, ConnectedAt: it.ConnectedAt}
}

// SubscriptionItem subscribes a connection to a group or to "public"
// (PK CONN#cid, SK SUB#gid; GSI1 SUBS#gid / cid finds a group's subscribers).
type SubscriptionItem struct {
	PK           string `dynamodbav:"PK"`
	SK           string `dynamodbav:"SK"`
	GSI1PK       string `dynamodbav:"GSI1PK"`
	GSI1SK       string `dynamodbav:"GSI1SK"`
	Type         string `dynamodbav:"type"`
	ConnectionID string `dynamodbav:"connectionId"`
	UserID       string `dynamodbav:"userId"`
	GroupID      string `dynamodbav:"groupId"`
	TTL          int64  `dynamodbav:"ttl"`
}

func subscriptionKey(connectionID, groupID string) (pk, sk string) {
	return prefixConn + connectionID, prefixSub + groupID
}

// rateKey names the post counter of userID for the minute starting at window.
func rateKey(userID string, window time.Time) (pk, sk string) {
	return prefixRate + userID, prefixPosts + strconv.FormatInt(window.Unix()/60, 10)
}
