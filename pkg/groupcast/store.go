package groupcast

// Store is every store role the Service needs, for wiring: pkg/dynamostore
// implements it. Implementations report a missing item with CodeNotFound and
// a lost race or broken precondition with CodeConflict (see each method);
// every other failure is an internal error. The roles are declared next to
// the use cases that call them.
type Store interface {
	GroupStore
	MemberStore
	PostStore
	InvitationStore
	InboxStore
	ConnectionStore
	SubscriptionStore
	EventStore
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

// Subscriber is one connection subscribed to a group's events.
type Subscriber struct {
	ConnectionID string
	UserID       string
}
