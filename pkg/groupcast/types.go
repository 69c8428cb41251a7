package groupcast

import "time"

// Visibility says who may see and join a group.
type Visibility string

const (
	Public  Visibility = "public"
	Private Visibility = "private"
)

// Role is a member's role in a group.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// InvitationStatus is where an invitation is in its life.
type InvitationStatus string

const (
	InvitationPending  InvitationStatus = "PENDING"
	InvitationAccepted InvitationStatus = "ACCEPTED"
	InvitationDeclined InvitationStatus = "DECLINED"
)

// Caller is the authenticated user making a request.
type Caller struct {
	UserID      string
	DisplayName string
}

type Group struct {
	ID          string
	Name        string
	Description string
	Visibility  Visibility
	OwnerID     string
	MemberCount int
	CreatedAt   time.Time
}

type Member struct {
	GroupID     string
	UserID      string
	DisplayName string
	Role        Role
	JoinedAt    time.Time
}

type Post struct {
	ID         string
	GroupID    string
	AuthorID   string
	AuthorName string
	Content    string
	CreatedAt  time.Time
}

type Invitation struct {
	ID          string
	GroupID     string
	GroupName   string
	InviteeID   string
	InviterID   string
	InviterName string
	Status      InvitationStatus
	CreatedAt   time.Time
	AnsweredAt  time.Time // zero while pending
}

// SkipReason says why an invitation was not created for a user.
type SkipReason string

const (
	SkipAlreadyMember  SkipReason = "already_member"
	SkipAlreadyInvited SkipReason = "already_invited"
	SkipSelf           SkipReason = "self"
)

type SkippedInvite struct {
	UserID string
	Reason SkipReason
}

// Notification is one entry of a user's inbox: the event's envelope, as it
// was pushed, and whether the user has read it.
type Notification struct {
	Envelope
	UserID string
	Read   bool
	// ExpiresAt, when set, is when the store may delete the entry.
	ExpiresAt time.Time
}

// Page is one page of a listing; NextCursor is empty on the last page.
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// PageRequest asks for one page. Limit 0 means the default.
type PageRequest struct {
	Limit  int
	Cursor string
}

// GroupScope selects which groups GET /groups lists.
type GroupScope string

const (
	ScopeMine   GroupScope = "mine"
	ScopePublic GroupScope = "public"
)

// Connection is a live WebSocket connection of a user.
type Connection struct {
	ID          string
	UserID      string
	DisplayName string
	ConnectedAt time.Time
}

// SubscriptionRejection says why a connection may not subscribe to a group.
type SubscriptionRejection struct {
	GroupID string
	Reason  string // "not_found", "limit", "invalid"
}

// Special subscription targets.
const (
	SubscribeAllMine = "*"      // every group the caller is a member of
	SubscribePublic  = "public" // the feed of newly created public groups
)
