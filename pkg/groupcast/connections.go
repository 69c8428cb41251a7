package groupcast

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ConnectionStore stores live WebSocket connections.
type ConnectionStore interface {
	// PutConnection stores a live connection that expires at expiresAt.
	PutConnection(ctx context.Context, c Connection, expiresAt time.Time) error
	// GetConnection returns CodeNotFound when the connection is unknown.
	GetConnection(ctx context.Context, connectionID string) (Connection, error)
	// DeleteConnection deletes the connection and its subscriptions (idempotent).
	DeleteConnection(ctx context.Context, connectionID string) error
	// UserConnectionIDs returns the ids of every live connection of userID.
	UserConnectionIDs(ctx context.Context, userID string) ([]string, error)
	// SetWildcard records whether connection c follows all its user's
	// groups ("*"); it returns CodeNotFound once the connection is gone.
	SetWildcard(ctx context.Context, c Connection, on bool) error
	// WildcardConnections returns userID's connections that follow "*",
	// read strongly consistently (never from an index), so a connection
	// marked before the call is in the answer.
	WildcardConnections(ctx context.Context, userID string) ([]Connection, error)
}

// SubscriptionStore stores which connection follows which group.
type SubscriptionStore interface {
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

// Connect records a new live connection.
func (s *Service) Connect(ctx context.Context, conn Connection) error {
	if err := ValidateID("connectionId", conn.ID); err != nil {
		return err
	}
	if err := validateCaller(Caller{UserID: conn.UserID, DisplayName: conn.DisplayName}); err != nil {
		return err
	}
	now := s.now()
	if conn.ConnectedAt.IsZero() {
		conn.ConnectedAt = now
	}
	conn.ConnectedAt = conn.ConnectedAt.UTC()
	return s.connections.PutConnection(ctx, conn, now.Add(s.cfg.ConnectionTTL))
}

// Disconnect forgets a connection and its subscriptions. It is idempotent.
func (s *Service) Disconnect(ctx context.Context, connectionID string) error {
	if err := ValidateID("connectionId", connectionID); err != nil {
		return err
	}
	return s.connections.DeleteConnection(ctx, connectionID)
}

// Subscribe subscribes a connection to groups' live events. "*" stands for
// every group of the connection's user and "public" for the feed of new
// public groups. Members may subscribe to their groups, anyone to public
// groups; a group that does not exist or that the user may not see is
// rejected as not_found, and targets beyond the cap as limit.
func (s *Service) Subscribe(ctx context.Context, connectionID string, groupIDs []string) (accepted []string, rejected []SubscriptionRejection, err error) {
	conn, err := s.connection(ctx, connectionID)
	if err != nil {
		return nil, nil, err
	}
	if err := checkTargetCount(groupIDs); err != nil {
		return nil, nil, err
	}
	accepted, rejected = []string{}, []SubscriptionRejection{}
	// allowed: may subscribe; viaMembership: only because of a membership,
	// which the subscription write checks again atomically.
	allowed, viaMembership := map[string]bool{}, map[string]bool{}
	var explicit, order []string
	seen := map[string]bool{}
	add := func(id string) bool {
		if seen[id] {
			return false
		}
		seen[id] = true
		order = append(order, id)
		return true
	}
	if slices.Contains(groupIDs, SubscribeAllMine) {
		// Marked before the groups are listed: a membership that begins
		// after this either is in the list or is followed by the join
		// (followMembership), which reads the mark strongly consistently.
		if err := s.connections.SetWildcard(ctx, conn, true); err != nil {
			return nil, nil, fmt.Errorf("mark %s as following all groups: %w", connectionID, err)
		}
	}
	for _, id := range groupIDs {
		switch {
		case id == SubscribeAllMine:
			mine, err := s.groups.UserGroupIDs(ctx, conn.UserID)
			if err != nil {
				return nil, nil, fmt.Errorf("groups of %s: %w", conn.UserID, err)
			}
			for _, g := range mine {
				add(g)
				allowed[g] = true
				viaMembership[g] = true
			}
		case id == SubscribePublic:
			if add(id) {
				allowed[id] = true
			}
		case ValidateID("groupId", id) != nil:
			if add(id) {
				rejected = append(rejected, SubscriptionRejection{GroupID: id, Reason: "invalid"})
			}
		default:
			if add(id) {
				explicit = append(explicit, id)
			}
		}
	}
	if err := s.authorizeSubscriptions(ctx, conn.UserID, explicit, allowed, viaMembership); err != nil {
		return nil, nil, err
	}
	current, err := s.subscriptions.Subscriptions(ctx, connectionID)
	if err != nil {
		return nil, nil, fmt.Errorf("subscriptions of %s: %w", connectionID, err)
	}
	have := make(map[string]bool, len(current))
	for _, id := range current {
		have[id] = true
	}
	var fresh []SubscriptionTarget
	for _, id := range order {
		switch {
		case !allowed[id]:
			if !isRejected(rejected, id) {
				rejected = append(rejected, SubscriptionRejection{GroupID: id, Reason: "not_found"})
			}
		case have[id]:
			accepted = append(accepted, id)
		case len(current)+len(fresh) >= s.cfg.MaxSubscriptions:
			rejected = append(rejected, SubscriptionRejection{GroupID: id, Reason: "limit"})
		default:
			fresh = append(fresh, SubscriptionTarget{GroupID: id, RequireMembership: viaMembership[id]})
			accepted = append(accepted, id)
		}
	}
	if len(fresh) == 0 {
		return accepted, rejected, nil
	}
	gone, err := s.subscriptions.PutSubscriptions(ctx, conn, fresh, s.now().Add(s.cfg.ConnectionTTL))
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe %s: %w", connectionID, err)
	}
	// Memberships that ended since the check above (a concurrent leave).
	for _, id := range gone {
		accepted = slices.DeleteFunc(accepted, func(a string) bool { return a == id })
		rejected = append(rejected, SubscriptionRejection{GroupID: id, Reason: "not_found"})
	}
	return accepted, rejected, nil
}

// authorizeSubscriptions marks in allowed the groups among ids that exist
// and that userID may see: public ones, and private ones it is a member of.
func (s *Service) authorizeSubscriptions(ctx context.Context, userID string, ids []string, allowed, viaMembership map[string]bool) error {
	if len(ids) == 0 {
		return nil
	}
	groups, err := s.groups.GetGroups(ctx, ids)
	if err != nil {
		return fmt.Errorf("get groups to subscribe: %w", err)
	}
	var private []MemberKey
	for _, id := range ids {
		g, ok := groups[id]
		switch {
		case !ok:
		case g.Visibility == Public:
			allowed[id] = true
		default:
			private = append(private, MemberKey{GroupID: id, UserID: userID})
		}
	}
	if len(private) == 0 {
		return nil
	}
	members, err := s.members.Memberships(ctx, private)
	if err != nil {
		return fmt.Errorf("check memberships to subscribe: %w", err)
	}
	for _, k := range private {
		if members[k] {
			allowed[k.GroupID] = true
			viaMembership[k.GroupID] = true
		}
	}
	return nil
}

func isRejected(rs []SubscriptionRejection, id string) bool {
	for _, r := range rs {
		if r.GroupID == id {
			return true
		}
	}
	return false
}

// Unsubscribe removes a connection's subscriptions; "*" removes them all.
// It returns the ids it unsubscribed from and is idempotent.
func (s *Service) Unsubscribe(ctx context.Context, connectionID string, groupIDs []string) ([]string, error) {
	if err := checkTargetCount(groupIDs); err != nil {
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	conn, err := s.connection(ctx, connectionID)
	if err != nil {
		return nil, err
	}
	for _, id := range groupIDs {
		if id == SubscribeAllMine {
			if err := s.connections.SetWildcard(ctx, conn, false); err != nil && ErrorCode(err) != CodeNotFound {
				return nil, fmt.Errorf("stop %s following all groups: %w", connectionID, err)
			}
			current, err := s.subscriptions.Subscriptions(ctx, connectionID)
			if err != nil {
				return nil, fmt.Errorf("subscriptions of %s: %w", connectionID, err)
			}
			for _, c := range current {
				if !seen[c] {
					seen[c] = true
					ids = append(ids, c)
				}
			}
			continue
		}
		if err := ValidateID("groupId", id); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := s.subscriptions.DeleteSubscriptions(ctx, connectionID, ids); err != nil {
		return nil, fmt.Errorf("unsubscribe %s: %w", connectionID, err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// followMembership subscribes userID's "*" connections to groupID, which
// the user has just created, joined or been accepted into. It runs after
// the membership committed, and each subscription is written with a check
// that the membership still exists: a leave that deleted it first makes
// the write fail, and a leave that comes after removes the subscription
// (UnsubscribeUser), so "*" never outlives a membership. A connection at
// the subscription cap is left as it is.
func (s *Service) followMembership(ctx context.Context, userID, groupID string) error {
	conns, err := s.connections.WildcardConnections(ctx, userID)
	if err != nil {
		return fmt.Errorf("connections of %s following all groups: %w", userID, err)
	}
	for _, c := range conns {
		current, err := s.subscriptions.Subscriptions(ctx, c.ID)
		if err != nil {
			return fmt.Errorf("subscriptions of %s: %w", c.ID, err)
		}
		if slices.Contains(current, groupID) || len(current) >= s.cfg.MaxSubscriptions {
			continue
		}
		target := []SubscriptionTarget{{GroupID: groupID, RequireMembership: true}}
		if _, err := s.subscriptions.PutSubscriptions(ctx, c, target, s.now().Add(s.cfg.ConnectionTTL)); err != nil {
			return fmt.Errorf("subscribe %s to %s: %w", c.ID, groupID, err)
		}
	}
	return nil
}

func (s *Service) connection(ctx context.Context, connectionID string) (Connection, error) {
	if err := ValidateID("connectionId", connectionID); err != nil {
		return Connection{}, err
	}
	conn, err := s.connections.GetConnection(ctx, connectionID)
	if err != nil {
		return Connection{}, fmt.Errorf("get connection %s: %w", connectionID, err)
	}
	return conn, nil
}

func checkTargetCount(groupIDs []string) error {
	switch {
	case len(groupIDs) == 0:
		return Errorf(CodeInvalid, "groupIds must not be empty")
	case len(groupIDs) > MaxSubscribeTargets:
		return Errorf(CodeInvalid, "at most %d groupIds per message", MaxSubscribeTargets)
	}
	return nil
}
