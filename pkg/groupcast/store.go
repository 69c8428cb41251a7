package groupcast

import (
	"context"
	"time"
)

// Store is the persistence the Service needs. Implementations report a
// missing item with CodeNotFound and a lost race or broken precondition with
// CodeConflict (see each method); every other failure is an internal error.
type Store interface {
	// CreateGroup stores g and its owner membership atomically.
	CreateGroup(ctx context.Context, g Group, owner Member) error
	// GetGroup returns CodeNotFound when the group does not exist.
	GetGroup(ctx context.Context, groupID string) (Group, error)
	// GetGroups returns the groups that exist among ids, keyed by id.
	GetGroups(ctx context.Context, ids []string) (map[string]Group, error)
	ListPublicGroups(ctx context.Context, p PageRequest) (Page[Group], error)
	// ListUserGroups lists the groups userID is a member of, newest membership first.
	ListUserGroups(ctx context.Context, userID string, p PageRequest) (Page[Group], error)
	// UserGroupIDs returns the ids of every group userID is a member of.
	UserGroupIDs(ctx context.Context, userID string) ([]string, error)

	// GetMember returns CodeNotFound when userID is not a member of groupID.
	GetMember(ctx context.Context, groupID, userID string) (Member, error)
	// Memberships reports which of the (group, user) pairs are memberships.
	Memberships(ctx context.Context, keys []MemberKey) (map[MemberKey]bool, error)
	ListMembers(ctx context.Context, groupID string, p PageRequest) (Page[Member], error)
	// AddMember adds m and records change on the group, atomically.
	// CodeConflict: already a member; CodeNotFound: no such group.
	AddMember(ctx context.Context, m Member, change MemberChange) error
	// RemoveMember removes the membership and records change on the group.
	// CodeNotFound: not a member.
	RemoveMember(ctx context.Context, groupID, userID string, change MemberChange) error

	PutPost(ctx context.Context, p Post) error
	// ListPosts lists newest first; a non-empty afterPostID keeps only newer posts.
	ListPosts(ctx context.Context, groupID string, p PageRequest, afterPostID string) (Page[Post], error)
	// CountPost adds one post to userID's counter for the window starting at
	// windowStart and returns the new count. The counter expires at expiresAt.
	CountPost(ctx context.Context, userID string, windowStart, expiresAt time.Time) (int, error)

	// PendingInvitations reports which of userIDs hold a pending invitation to groupID.
	PendingInvitations(ctx context.Context, groupID string, userIDs []string) (map[string]bool, error)
	// PutInvitation stores a pending invitation, replacing an answered one.
	// CodeConflict: a pending invitation already exists.
	PutInvitation(ctx context.Context, inv Invitation) error
	// GetInvitation returns userID's invitation to groupID, or CodeNotFound.
	GetInvitation(ctx context.Context, userID, groupID string) (Invitation, error)
	// ListInvitations lists userID's invitations; status "" means all.
	ListInvitations(ctx context.Context, userID string, status InvitationStatus) ([]Invitation, error)
	// AcceptInvitation marks inv accepted at answeredAt, adds m and records
	// change on the group, all in one transaction. CodeConflict: the
	// invitation is no longer pending or m is already a member.
	AcceptInvitation(ctx context.Context, inv Invitation, answeredAt time.Time, m Member, change MemberChange) (Invitation, error)
	// DeclineInvitation marks inv declined. CodeConflict: no longer pending.
	DeclineInvitation(ctx context.Context, inv Invitation, answeredAt time.Time) (Invitation, error)

	// ListNotifications lists userID's inbox, newest first.
	ListNotifications(ctx context.Context, userID string, p PageRequest) (Page[Notification], error)
	CountUnread(ctx context.Context, userID string) (int, error)
	// MarkRead marks the listed notifications read; ids == nil marks all.
	// Unknown or already read ids are ignored.
	MarkRead(ctx context.Context, userID string, ids []string) error

	// PutConnection stores a live connection that expires at expiresAt.
	PutConnection(ctx context.Context, c Connection, expiresAt time.Time) error
	// GetConnection returns CodeNotFound when the connection is unknown.
	GetConnection(ctx context.Context, connectionID string) (Connection, error)
	// DeleteConnection deletes the connection and its subscriptions (idempotent).
	DeleteConnection(ctx context.Context, connectionID string) error
	// UserConnectionIDs returns the ids of every live connection of userID.
	UserConnectionIDs(ctx context.Context, userID string) ([]string, error)
	// Subscriptions returns the group ids (or "public") connectionID is subscribed to.
	Subscriptions(ctx context.Context, connectionID string) ([]string, error)
	// PutSubscriptions subscribes c to targets until expiresAt. A target
	// with RequireMembership is written atomically with a check that
	// c.UserID is a member at that moment; the group ids refused because
	// the membership is gone are returned in notMember.
	PutSubscriptions(ctx context.Context, c Connection, targets []SubscriptionTarget, expiresAt time.Time) (notMember []string, err error)
	// DeleteSubscriptions removes the subscriptions (idempotent).
	DeleteSubscriptions(ctx context.Context, connectionID string, groupIDs []string) error
	// UnsubscribeUser removes the subscriptions of all userID's connections
	// to groupID. It must remove every such subscription written before the
	// call, so that after RemoveMember no subscription outlives the
	// membership (later ones fail PutSubscriptions' membership check).
	UnsubscribeUser(ctx context.Context, userID, groupID string) error
}

// SubscriptionTarget is one group a connection subscribes to.
type SubscriptionTarget struct {
	GroupID string
	// RequireMembership: the subscription is allowed only because the user
	// is a member, so it may exist only while the membership does.
	RequireMembership bool
}

// MemberKey names one possible membership.
type MemberKey struct{ GroupID, UserID string }

// MemberChangeKind says how a group's membership changed.
type MemberChangeKind string

const (
	MemberJoined MemberChangeKind = "joined"
	MemberLeft   MemberChangeKind = "left"
)

// MemberChange is recorded on the group with every membership change, so
// the change and the new member count travel in one stream record.
type MemberChange struct {
	Kind        MemberChangeKind
	UserID      string
	DisplayName string
	ChangeID    string
	At          time.Time
}

// Subscriber is one connection subscribed to a group's events.
type Subscriber struct {
	ConnectionID string
	UserID       string
}
