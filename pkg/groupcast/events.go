package groupcast

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// EventType names an event pushed to clients.
type EventType string

const (
	EventPostCreated        EventType = "group.post_created"
	EventMemberJoined       EventType = "group.member_joined"
	EventMemberLeft         EventType = "group.member_left"
	EventGroupCreated       EventType = "group.created"
	EventInvitationReceived EventType = "invitation.received"
	EventInvitationAccepted EventType = "invitation.accepted"
	EventInvitationDeclined EventType = "invitation.declined"
)

// EventTypes lists every event type, so tests can cover each one.
var EventTypes = []EventType{
	EventPostCreated, EventMemberJoined, EventMemberLeft, EventGroupCreated,
	EventInvitationReceived, EventInvitationAccepted, EventInvitationDeclined,
}

// Event is one logical change, decided by the domain when the change
// happens. The store writes it in the same transaction as the change (a
// transactional outbox) and the fan-out delivers it from the stream.
type Event struct {
	// ID is deterministic for the logical change (EventID), so a
	// redelivered stream record yields the same ID and clients can drop
	// duplicates.
	ID string
	// Seq is a time-ordered id (a ULID) that orders the event within its
	// stream, for history.
	Seq     string
	Type    EventType
	GroupID string
	At      time.Time
	Data    Payload
	// Audience is who gets the event live; Inbox whose inbox keeps it.
	Audience Audience
	Inbox    Inbox
	// ExpiresAt is when the store may delete the outbox item.
	ExpiresAt time.Time
}

// Payload is the data of one event type.
type Payload interface{ EventType() EventType }

// Audience is who receives an event live: the connections of UserID, or
// the subscribers of GroupID (SubscribePublic: the public feed) except
// ExceptUserID's connections.
type Audience struct {
	UserID       string
	GroupID      string
	ExceptUserID string
}

// Inbox is whose inbox keeps an event: UserID's, or every member's of
// MembersOf except ExceptUserID. The zero Inbox keeps it nowhere.
type Inbox struct {
	UserID       string
	MembersOf    string
	ExceptUserID string
}

// StreamKind names the kind of history stream an event belongs to.
type StreamKind string

const (
	StreamGroup  StreamKind = "group"  // a group's events, for its subscribers
	StreamUser   StreamKind = "user"   // events for one user's connections
	StreamPublic StreamKind = "public" // the feed of new public groups
)

// Stream is the history an event is kept in, in Seq order: the stream a
// reconnecting client of that audience would resume.
func (e Event) Stream() (StreamKind, string) {
	switch {
	case e.Audience.UserID != "":
		return StreamUser, e.Audience.UserID
	case e.Audience.GroupID == SubscribePublic:
		return StreamPublic, ""
	}
	return StreamGroup, e.Audience.GroupID
}

// Envelope is the one JSON shape of an event: pushed live, replayed on
// resume, kept in the inbox (with "read" added) and in history.
type Envelope struct {
	ID      string    `json:"id"`
	Type    EventType `json:"type"`
	GroupID string    `json:"groupId"`
	// Stream names the history the event is kept in, as clients see it
	// ("group:<gid>", "user", "public": StreamName), and Position is its
	// place there (its Seq), which a reconnecting client resumes from.
	Stream   string          `json:"stream"`
	Position string          `json:"position"`
	At       time.Time       `json:"at"`
	Data     json.RawMessage `json:"data"`
}

// Envelope encodes the event's wire form.
func (e Event) Envelope() (Envelope, error) {
	if e.Data == nil || e.Data.EventType() != e.Type {
		return Envelope{}, fmt.Errorf("event %s: payload does not match type %s", e.ID, e.Type)
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	return Envelope{ID: e.ID, Type: e.Type, GroupID: e.GroupID, Stream: e.StreamName(), Position: e.Seq, At: e.At.UTC(), Data: data}, nil
}

// StreamName is the event's stream as clients name it (StreamName).
func (e Event) StreamName() string { return StreamName(e.Stream()) }

// Delivery is an event as the fan-out reads it back from the outbox: the
// envelope to send and the people to send it to.
type Delivery struct {
	Envelope Envelope
	Audience Audience
	Inbox    Inbox
	// ExpiresAt is when the outbox item expires (history skips it then).
	ExpiresAt time.Time
}

// Payloads, one type per event. Times are UTC and encode as RFC 3339.

type PostCreatedData struct {
	PostID         string    `json:"postId"`
	AuthorID       string    `json:"authorId"`
	AuthorName     string    `json:"authorName"`
	ContentPreview string    `json:"contentPreview"`
	CreatedAt      time.Time `json:"createdAt"`
}

type MemberJoinedData struct {
	UserID      string `json:"userId"`
	DisplayName string `json:"displayName"`
	// MemberCount is the count after the change: the store writes the
	// change only if the count it was computed from still holds.
	MemberCount int `json:"memberCount"`
}

type MemberLeftData MemberJoinedData

type GroupCreatedData struct {
	GroupID     string     `json:"groupId"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Visibility  Visibility `json:"visibility"`
	OwnerID     string     `json:"ownerId"`
	CreatedAt   time.Time  `json:"createdAt"`
	MemberCount int        `json:"memberCount"`
}

type InvitationReceivedData struct {
	InvitationID string    `json:"invitationId"`
	GroupID      string    `json:"groupId"`
	GroupName    string    `json:"groupName"`
	InviterID    string    `json:"inviterId"`
	InviterName  string    `json:"inviterName"`
	CreatedAt    time.Time `json:"createdAt"`
}

type InvitationAcceptedData struct {
	InvitationID string    `json:"invitationId"`
	GroupID      string    `json:"groupId"`
	GroupName    string    `json:"groupName"`
	InviteeID    string    `json:"inviteeId"`
	AnsweredAt   time.Time `json:"answeredAt"`
}

type InvitationDeclinedData InvitationAcceptedData

func (PostCreatedData) EventType() EventType        { return EventPostCreated }
func (MemberJoinedData) EventType() EventType       { return EventMemberJoined }
func (MemberLeftData) EventType() EventType         { return EventMemberLeft }
func (GroupCreatedData) EventType() EventType       { return EventGroupCreated }
func (InvitationReceivedData) EventType() EventType { return EventInvitationReceived }
func (InvitationAcceptedData) EventType() EventType { return EventInvitationAccepted }
func (InvitationDeclinedData) EventType() EventType { return EventInvitationDeclined }

// The rules: which change produces which event, for whom. Seq and ExpiresAt
// are left to the Service, which owns the clock and the id generator.

// PostCreatedEvent goes to the group's subscribers and members' inboxes,
// except the author's.
func PostCreatedEvent(p Post) Event {
	return Event{
		ID: EventID(EventPostCreated, p.GroupID, p.ID), Type: EventPostCreated, GroupID: p.GroupID, At: p.CreatedAt.UTC(),
		Data: PostCreatedData{
			PostID: p.ID, AuthorID: p.AuthorID, AuthorName: p.AuthorName,
			ContentPreview: Preview(p.Content), CreatedAt: p.CreatedAt.UTC(),
		},
		Audience: Audience{GroupID: p.GroupID, ExceptUserID: p.AuthorID},
		Inbox:    Inbox{MembersOf: p.GroupID, ExceptUserID: p.AuthorID},
	}
}

// GroupCreatedEvent goes to the public feed for a public group and to the
// owner's own connections for a private one (nobody else may see it).
func GroupCreatedEvent(g Group) Event {
	a := Audience{GroupID: SubscribePublic}
	if g.Visibility != Public {
		a = Audience{UserID: g.OwnerID}
	}
	return Event{
		ID: EventID(EventGroupCreated, g.ID), Type: EventGroupCreated, GroupID: g.ID, At: g.CreatedAt.UTC(),
		Data: GroupCreatedData{
			GroupID: g.ID, Name: g.Name, Description: g.Description, Visibility: g.Visibility,
			OwnerID: g.OwnerID, CreatedAt: g.CreatedAt.UTC(), MemberCount: g.MemberCount,
		},
		Audience: a,
	}
}

// MemberJoinedEvent goes to the group's subscribers; changeID names the
// change (a fresh id), memberCount is the count after it.
func MemberJoinedEvent(groupID string, who Caller, memberCount int, changeID string, at time.Time) Event {
	return memberEvent(EventMemberJoined, MemberJoinedData{UserID: who.UserID, DisplayName: who.DisplayName, MemberCount: memberCount}, groupID, changeID, at)
}

// MemberLeftEvent is MemberJoinedEvent's counterpart.
func MemberLeftEvent(groupID string, who Caller, memberCount int, changeID string, at time.Time) Event {
	return memberEvent(EventMemberLeft, MemberLeftData{UserID: who.UserID, DisplayName: who.DisplayName, MemberCount: memberCount}, groupID, changeID, at)
}

func memberEvent(t EventType, data Payload, groupID, changeID string, at time.Time) Event {
	return Event{
		ID: EventID(t, groupID, changeID), Type: t, GroupID: groupID, At: at.UTC(), Data: data,
		Audience: Audience{GroupID: groupID},
	}
}

// InvitationReceivedEvent goes to the invitee's connections and inbox.
func InvitationReceivedEvent(inv Invitation) Event {
	return Event{
		ID: EventID(EventInvitationReceived, inv.ID), Type: EventInvitationReceived, GroupID: inv.GroupID, At: inv.CreatedAt.UTC(),
		Data: InvitationReceivedData{
			InvitationID: inv.ID, GroupID: inv.GroupID, GroupName: inv.GroupName,
			InviterID: inv.InviterID, InviterName: inv.InviterName, CreatedAt: inv.CreatedAt.UTC(),
		},
		Audience: Audience{UserID: inv.InviteeID},
		Inbox:    Inbox{UserID: inv.InviteeID},
	}
}

// InvitationAnsweredEvent (accepted or declined, from inv.Status) goes to
// the inviter's connections and inbox.
func InvitationAnsweredEvent(inv Invitation) (Event, error) {
	answer := InvitationAcceptedData{
		InvitationID: inv.ID, GroupID: inv.GroupID, GroupName: inv.GroupName,
		InviteeID: inv.InviteeID, AnsweredAt: inv.AnsweredAt.UTC(),
	}
	var data Payload
	switch inv.Status {
	case InvitationAccepted:
		data = answer
	case InvitationDeclined:
		data = InvitationDeclinedData(answer)
	default:
		return Event{}, fmt.Errorf("invitation %s is %s, not answered", inv.ID, inv.Status)
	}
	t := data.EventType()
	return Event{
		ID: EventID(t, inv.ID), Type: t, GroupID: inv.GroupID, At: inv.AnsweredAt.UTC(), Data: data,
		Audience: Audience{UserID: inv.InviterID},
		Inbox:    Inbox{UserID: inv.InviterID},
	}, nil
}

// EventID derives a stable event id from the event type and the parts that
// identify the logical change (e.g. the post id).
func EventID(t EventType, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(t))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PreviewLength is how many characters of a post a notification shows.
const PreviewLength = 100

// Preview returns the first PreviewLength characters of content, with "…"
// appended when it was cut. It counts runes, never splitting a character.
func Preview(content string) string {
	if utf8.RuneCountInString(content) <= PreviewLength {
		return content
	}
	var b strings.Builder
	n := 0
	for _, r := range content {
		if n == PreviewLength {
			break
		}
		b.WriteRune(r)
		n++
	}
	b.WriteString("…")
	return b.String()
}
