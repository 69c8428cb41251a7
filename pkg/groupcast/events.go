package groupcast

import (
	"crypto/sha256"
	"encoding/hex"
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

// Event is one logical change pushed to connections. ID is deterministic
// for the logical event, so a redelivered stream record yields the same ID
// and clients can drop duplicates.
type Event struct {
	ID      string
	Type    EventType
	GroupID string
	At      time.Time
	Data    map[string]any
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
