package groupcast

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"
)

// Defaults of ServiceConfig.
const (
	// DefaultPostsPerMinute lets a person type fast in a lively group while
	// stopping a script from flooding members (every post fans out).
	DefaultPostsPerMinute = 30
	// DefaultMaxSubscriptions bounds the SUB# items of one connection, so
	// $disconnect cleans up in a few calls and one socket cannot make every
	// group's fan-out query heavier.
	DefaultMaxSubscriptions = 100
	// DefaultConnectionTTL is API Gateway's 2-hour maximum connection
	// lifetime plus 5 minutes of slack: a connection item whose $disconnect
	// was lost is certainly dead after that.
	DefaultConnectionTTL = 7500 * time.Second
)

// rateWindow is the fixed window of the post rate limit.
const rateWindow = time.Minute

// ServiceConfig holds the Service's collaborators and limits. Zero values
// take the defaults.
type ServiceConfig struct {
	Now              func() time.Time // default time.Now
	NewID            func() string    // default NewULIDGenerator()
	PostsPerMinute   int              // default DefaultPostsPerMinute
	MaxSubscriptions int              // default DefaultMaxSubscriptions
	ConnectionTTL    time.Duration    // default DefaultConnectionTTL
}

// Service carries out the Groupcast use cases and enforces their rules.
type Service struct {
	store Store
	cfg   ServiceConfig
}

// CreateGroupInput is a new group as the caller asked for it.
type CreateGroupInput struct {
	Name, Description string
	Visibility        Visibility
}

// NewService returns a Service on store.
func NewService(store Store, cfg ServiceConfig) (*Service, error) {
	if store == nil {
		return nil, errors.New("groupcast: nil store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = NewULIDGenerator()
	}
	if cfg.PostsPerMinute == 0 {
		cfg.PostsPerMinute = DefaultPostsPerMinute
	}
	if cfg.MaxSubscriptions == 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.ConnectionTTL == 0 {
		cfg.ConnectionTTL = DefaultConnectionTTL
	}
	switch {
	case cfg.PostsPerMinute < 0:
		return nil, fmt.Errorf("groupcast: PostsPerMinute %d must be positive", cfg.PostsPerMinute)
	case cfg.MaxSubscriptions < 0:
		return nil, fmt.Errorf("groupcast: MaxSubscriptions %d must be positive", cfg.MaxSubscriptions)
	case cfg.ConnectionTTL < 0:
		return nil, fmt.Errorf("groupcast: ConnectionTTL %s must be positive", cfg.ConnectionTTL)
	}
	return &Service{store: store, cfg: cfg}, nil
}

// NewULIDGenerator returns a concurrency-safe generator of ULIDs that sort
// by creation time, also within one millisecond.
func NewULIDGenerator() func() string {
	var mu sync.Mutex
	entropy := ulid.Monotonic(rand.Reader, 0)
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return ulid.MustNew(ulid.Now(), entropy).String()
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// CreateGroup creates a group owned by the caller, who becomes its first member.
func (s *Service) CreateGroup(ctx context.Context, c Caller, in CreateGroupInput) (Group, error) {
	if err := validateCaller(c); err != nil {
		return Group{}, err
	}
	in, err := ValidateCreateGroup(in)
	if err != nil {
		return Group{}, err
	}
	now := s.now()
	g := Group{
		ID:          s.cfg.NewID(),
		Name:        in.Name,
		Description: in.Description,
		Visibility:  in.Visibility,
		OwnerID:     c.UserID,
		MemberCount: 1,
		CreatedAt:   now,
	}
	owner := Member{GroupID: g.ID, UserID: c.UserID, DisplayName: c.DisplayName, Role: RoleOwner, JoinedAt: now}
	if err := s.store.CreateGroup(ctx, g, owner); err != nil {
		return Group{}, fmt.Errorf("create group: %w", err)
	}
	return g, nil
}

// ListGroups lists the caller's groups or the public groups.
func (s *Service) ListGroups(ctx context.Context, c Caller, scope GroupScope, p PageRequest) (Page[Group], error) {
	if err := validateCaller(c); err != nil {
		return Page[Group]{}, err
	}
	p, err := NormalizePage(p)
	if err != nil {
		return Page[Group]{}, err
	}
	switch scope {
	case ScopeMine:
		return s.store.ListUserGroups(ctx, c.UserID, p)
	case ScopePublic:
		return s.store.ListPublicGroups(ctx, p)
	}
	return Page[Group]{}, Errorf(CodeInvalid, "scope must be %q or %q", ScopeMine, ScopePublic)
}

// GetGroup returns a public group, or a private one the caller is a member of.
func (s *Service) GetGroup(ctx context.Context, c Caller, groupID string) (Group, error) {
	g, _, err := s.visibleGroup(ctx, c, groupID)
	return g, err
}

// visibleGroup loads a group the caller may see and tells whether the caller
// is a member. A private group of which the caller is not a member is
// reported exactly like a missing one, so its existence does not leak.
func (s *Service) visibleGroup(ctx context.Context, c Caller, groupID string) (Group, bool, error) {
	if err := validateCaller(c); err != nil {
		return Group{}, false, err
	}
	if err := ValidateID("groupId", groupID); err != nil {
		return Group{}, false, err
	}
	g, err := s.store.GetGroup(ctx, groupID)
	if err != nil {
		return Group{}, false, fmt.Errorf("get group %s: %w", groupID, err)
	}
	member, err := s.isMember(ctx, groupID, c.UserID)
	if err != nil {
		return Group{}, false, err
	}
	if g.Visibility == Private && !member {
		return Group{}, false, groupNotFound(groupID)
	}
	return g, member, nil
}

func (s *Service) isMember(ctx context.Context, groupID, userID string) (bool, error) {
	_, err := s.store.GetMember(ctx, groupID, userID)
	switch {
	case err == nil:
		return true, nil
	case ErrorCode(err) == CodeNotFound:
		return false, nil
	}
	return false, fmt.Errorf("get membership of %s in %s: %w", userID, groupID, err)
}

func groupNotFound(groupID string) error {
	return Errorf(CodeNotFound, "group %s not found", groupID)
}

// JoinGroup makes the caller a member of a public group.
func (s *Service) JoinGroup(ctx context.Context, c Caller, groupID string) (Member, error) {
	if err := validateCaller(c); err != nil {
		return Member{}, err
	}
	if err := ValidateID("groupId", groupID); err != nil {
		return Member{}, err
	}
	g, err := s.store.GetGroup(ctx, groupID)
	if err != nil {
		return Member{}, fmt.Errorf("get group %s: %w", groupID, err)
	}
	member, err := s.isMember(ctx, groupID, c.UserID)
	if err != nil {
		return Member{}, err
	}
	switch {
	case member:
		return Member{}, Errorf(CodeConflict, "already a member of group %s", groupID)
	case g.Visibility == Private:
		// The issue asks for 403 here: private groups are joined by invitation.
		return Member{}, Errorf(CodeForbidden, "group %s is private; join it by accepting an invitation", groupID)
	}
	now := s.now()
	m := Member{GroupID: groupID, UserID: c.UserID, DisplayName: c.DisplayName, Role: RoleMember, JoinedAt: now}
	if err := s.store.AddMember(ctx, m, s.memberChange(MemberJoined, c, now)); err != nil {
		return Member{}, fmt.Errorf("join group %s: %w", groupID, err)
	}
	return m, nil
}

func (s *Service) memberChange(kind MemberChangeKind, c Caller, at time.Time) MemberChange {
	return MemberChange{Kind: kind, UserID: c.UserID, DisplayName: c.DisplayName, ChangeID: s.cfg.NewID(), At: at}
}

// LeaveGroup removes the caller from a group. The owner cannot leave.
func (s *Service) LeaveGroup(ctx context.Context, c Caller, groupID string) error {
	if _, _, err := s.visibleGroup(ctx, c, groupID); err != nil {
		return err
	}
	m, err := s.store.GetMember(ctx, groupID, c.UserID)
	if err != nil {
		return fmt.Errorf("leave group %s: %w", groupID, err)
	}
	if m.Role == RoleOwner {
		return Errorf(CodeConflict, "the owner cannot leave group %s", groupID)
	}
	if err := s.store.RemoveMember(ctx, groupID, c.UserID, s.memberChange(MemberLeft, c, s.now())); err != nil {
		return fmt.Errorf("leave group %s: %w", groupID, err)
	}
	// A former member must stop receiving the group's live events at once,
	// not when the socket closes (that matters most for private groups).
	// This runs after the membership is gone: a subscribe racing the leave
	// either committed before (and is removed here) or fails its
	// membership check.
	if err := s.store.UnsubscribeUser(ctx, c.UserID, groupID); err != nil {
		return fmt.Errorf("unsubscribe %s from %s after leaving: %w", c.UserID, groupID, err)
	}
	return nil
}

// ListMembers lists a visible group's members.
func (s *Service) ListMembers(ctx context.Context, c Caller, groupID string, p PageRequest) (Page[Member], error) {
	p, err := NormalizePage(p)
	if err != nil {
		return Page[Member]{}, err
	}
	if _, _, err := s.visibleGroup(ctx, c, groupID); err != nil {
		return Page[Member]{}, err
	}
	return s.store.ListMembers(ctx, groupID, p)
}

// CreatePost posts content to a group the caller is a member of.
func (s *Service) CreatePost(ctx context.Context, c Caller, groupID, content string) (Post, error) {
	content, err := ValidatePostContent(content)
	if err != nil {
		return Post{}, err
	}
	_, member, err := s.visibleGroup(ctx, c, groupID)
	if err != nil {
		return Post{}, err
	}
	if !member {
		return Post{}, Errorf(CodeForbidden, "only members can post in group %s", groupID)
	}
	now := s.now()
	if err := s.checkPostRate(ctx, c.UserID, now); err != nil {
		return Post{}, err
	}
	p := Post{ID: s.cfg.NewID(), GroupID: groupID, AuthorID: c.UserID, AuthorName: c.DisplayName, Content: content, CreatedAt: now}
	if err := s.store.PutPost(ctx, p); err != nil {
		return Post{}, fmt.Errorf("create post in %s: %w", groupID, err)
	}
	return p, nil
}

// checkPostRate counts one post in the caller's current fixed one-minute
// window. The counter lives in the store, so the limit holds across every
// function instance; a rejected attempt still counts, which keeps a client
// that ignores Retry-After throttled.
func (s *Service) checkPostRate(ctx context.Context, userID string, now time.Time) error {
	window := now.Truncate(rateWindow)
	end := window.Add(rateWindow)
	// Keep the counter one extra window so late requests near the boundary
	// still find it; TTL deletion is lazy anyway.
	n, err := s.store.CountPost(ctx, userID, window, end.Add(rateWindow))
	if err != nil {
		return fmt.Errorf("count posts of %s: %w", userID, err)
	}
	if n <= s.cfg.PostsPerMinute {
		return nil
	}
	return &Error{
		Code:              CodeRateLimited,
		Message:           fmt.Sprintf("at most %d posts per minute", s.cfg.PostsPerMinute),
		RetryAfterSeconds: RetryAfterSeconds(now, end),
	}
}

// RetryAfterSeconds is the whole number of seconds from now until end,
// rounded up and at least 1 (a Retry-After of 0 invites a busy loop).
func RetryAfterSeconds(now, end time.Time) int {
	d := end.Sub(now)
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// ListPosts lists a visible group's posts newest first; afterPostID, when
// set, keeps only posts newer than that one.
func (s *Service) ListPosts(ctx context.Context, c Caller, groupID string, p PageRequest, afterPostID string) (Page[Post], error) {
	p, err := NormalizePage(p)
	if err != nil {
		return Page[Post]{}, err
	}
	if afterPostID != "" {
		if err := ValidateID("after", afterPostID); err != nil {
			return Page[Post]{}, err
		}
	}
	if _, _, err := s.visibleGroup(ctx, c, groupID); err != nil {
		return Page[Post]{}, err
	}
	return s.store.ListPosts(ctx, groupID, p, afterPostID)
}

// Invite invites users to a group the caller is a member of. Users who are
// the caller, already members or already invited are skipped, with a reason.
func (s *Service) Invite(ctx context.Context, c Caller, groupID string, userIDs []string) ([]Invitation, []SkippedInvite, error) {
	userIDs, err := ValidateInvitees(userIDs)
	if err != nil {
		return nil, nil, err
	}
	g, member, err := s.visibleGroup(ctx, c, groupID)
	if err != nil {
		return nil, nil, err
	}
	if !member {
		return nil, nil, Errorf(CodeForbidden, "only members can invite to group %s", groupID)
	}
	keys := make([]MemberKey, 0, len(userIDs))
	for _, u := range userIDs {
		keys = append(keys, MemberKey{GroupID: groupID, UserID: u})
	}
	members, err := s.store.Memberships(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("check memberships of invitees: %w", err)
	}
	pending, err := s.store.PendingInvitations(ctx, groupID, userIDs)
	if err != nil {
		return nil, nil, fmt.Errorf("check pending invitations: %w", err)
	}
	// Each invitee gets an invitation or a reason to skip, in input order.
	invites := make([]*Invitation, len(userIDs))
	reasons := make([]SkipReason, len(userIDs))
	puts, pctx := errgroup.WithContext(ctx)
	puts.SetLimit(inviteConcurrency)
	for i, u := range userIDs {
		switch {
		case u == c.UserID:
			reasons[i] = SkipSelf
			continue
		case members[MemberKey{GroupID: groupID, UserID: u}]:
			reasons[i] = SkipAlreadyMember
			continue
		case pending[u]:
			reasons[i] = SkipAlreadyInvited
			continue
		}
		inv := Invitation{
			ID: s.cfg.NewID(), GroupID: groupID, GroupName: g.Name, InviteeID: u,
			InviterID: c.UserID, InviterName: c.DisplayName, Status: InvitationPending, CreatedAt: s.now(),
		}
		puts.Go(func() error {
			err := s.store.PutInvitation(pctx, inv)
			switch {
			case ErrorCode(err) == CodeConflict: // invited concurrently by someone else
				reasons[i] = SkipAlreadyInvited
			case err != nil:
				return fmt.Errorf("invite %s to %s: %w", u, groupID, err)
			default:
				invites[i] = &inv
			}
			return nil
		})
	}
	if err := puts.Wait(); err != nil {
		return nil, nil, err
	}
	invitations := []Invitation{}
	skipped := []SkippedInvite{}
	for i, u := range userIDs {
		if invites[i] != nil {
			invitations = append(invitations, *invites[i])
		} else {
			skipped = append(skipped, SkippedInvite{UserID: u, Reason: reasons[i]})
		}
	}
	return invitations, skipped, nil
}

// inviteConcurrency is how many invitations one call writes at once: each
// is a conditional put (it must fail alone when someone else invited the
// same person meanwhile), so 50 invitees would be 50 round trips in a row;
// 10 at a time brings a full call to ~5 round trips while one caller stays
// far below the table's write throughput.
const inviteConcurrency = 10

// ListInvitations lists the caller's invitations with the given status ("" = all).
func (s *Service) ListInvitations(ctx context.Context, c Caller, status InvitationStatus) ([]Invitation, error) {
	if err := validateCaller(c); err != nil {
		return nil, err
	}
	if err := ValidateInvitationStatus(status); err != nil {
		return nil, err
	}
	return s.store.ListInvitations(ctx, c.UserID, status)
}

// AnswerInvitation accepts or declines the caller's own invitation to a
// group. The invitation is looked up by the caller's id, so nobody can
// answer an invitation meant for someone else.
func (s *Service) AnswerInvitation(ctx context.Context, c Caller, groupID string, accept bool) (Invitation, error) {
	if err := validateCaller(c); err != nil {
		return Invitation{}, err
	}
	if err := ValidateID("groupId", groupID); err != nil {
		return Invitation{}, err
	}
	inv, err := s.store.GetInvitation(ctx, c.UserID, groupID)
	if ErrorCode(err) == CodeNotFound {
		return Invitation{}, Errorf(CodeNotFound, "no invitation to group %s", groupID)
	}
	if err != nil {
		return Invitation{}, fmt.Errorf("get invitation to %s: %w", groupID, err)
	}
	if inv.Status != InvitationPending {
		return Invitation{}, Errorf(CodeConflict, "invitation to group %s was already %s", groupID, inv.Status)
	}
	now := s.now()
	if !accept {
		return s.store.DeclineInvitation(ctx, inv, now)
	}
	m := Member{GroupID: groupID, UserID: c.UserID, DisplayName: c.DisplayName, Role: RoleMember, JoinedAt: now}
	return s.store.AcceptInvitation(ctx, inv, now, m, s.memberChange(MemberJoined, c, now))
}

// ListNotifications returns a page of the caller's inbox and the number of
// unread notifications.
func (s *Service) ListNotifications(ctx context.Context, c Caller, p PageRequest) (page Page[Notification], unread int, err error) {
	if err := validateCaller(c); err != nil {
		return Page[Notification]{}, 0, err
	}
	if p, err = NormalizePage(p); err != nil {
		return Page[Notification]{}, 0, err
	}
	if page, err = s.store.ListNotifications(ctx, c.UserID, p); err != nil {
		return Page[Notification]{}, 0, err
	}
	if unread, err = s.store.CountUnread(ctx, c.UserID); err != nil {
		return Page[Notification]{}, 0, fmt.Errorf("count unread: %w", err)
	}
	return page, unread, nil
}

// MarkNotificationsRead marks the given notifications, or all, read.
func (s *Service) MarkNotificationsRead(ctx context.Context, c Caller, ids []string, all bool) error {
	if err := validateCaller(c); err != nil {
		return err
	}
	if all {
		if len(ids) > 0 {
			return Errorf(CodeInvalid, "give either ids or all, not both")
		}
		return s.store.MarkRead(ctx, c.UserID, nil)
	}
	ids, err := ValidateNotificationIDs(ids)
	if err != nil {
		return err
	}
	return s.store.MarkRead(ctx, c.UserID, ids)
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
	return s.store.PutConnection(ctx, conn, now.Add(s.cfg.ConnectionTTL))
}

// Disconnect forgets a connection and its subscriptions. It is idempotent.
func (s *Service) Disconnect(ctx context.Context, connectionID string) error {
	if err := ValidateID("connectionId", connectionID); err != nil {
		return err
	}
	return s.store.DeleteConnection(ctx, connectionID)
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
	for _, id := range groupIDs {
		switch {
		case id == SubscribeAllMine:
			mine, err := s.store.UserGroupIDs(ctx, conn.UserID)
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
	current, err := s.store.Subscriptions(ctx, connectionID)
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
	gone, err := s.store.PutSubscriptions(ctx, conn, fresh, s.now().Add(s.cfg.ConnectionTTL))
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
	groups, err := s.store.GetGroups(ctx, ids)
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
	members, err := s.store.Memberships(ctx, private)
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
	if _, err := s.connection(ctx, connectionID); err != nil {
		return nil, err
	}
	if err := checkTargetCount(groupIDs); err != nil {
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range groupIDs {
		if id == SubscribeAllMine {
			current, err := s.store.Subscriptions(ctx, connectionID)
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
	if err := s.store.DeleteSubscriptions(ctx, connectionID, ids); err != nil {
		return nil, fmt.Errorf("unsubscribe %s: %w", connectionID, err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

func (s *Service) connection(ctx context.Context, connectionID string) (Connection, error) {
	if err := ValidateID("connectionId", connectionID); err != nil {
		return Connection{}, err
	}
	conn, err := s.store.GetConnection(ctx, connectionID)
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

func validateCaller(c Caller) error {
	if err := ValidateID("caller id", c.UserID); err != nil {
		return Errorf(CodeUnauthorized, "missing or malformed caller identity")
	}
	return nil
}
