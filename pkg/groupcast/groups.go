package groupcast

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// GroupStore stores groups and finds a user's groups.
type GroupStore interface {
	// CreateGroup stores g, its owner membership and ev atomically.
	CreateGroup(ctx context.Context, g Group, owner Member, ev Event) error
	// GetGroup returns CodeNotFound when the group does not exist.
	GetGroup(ctx context.Context, groupID string) (Group, error)
	// GetGroups returns the groups that exist among ids, keyed by id.
	GetGroups(ctx context.Context, ids []string) (map[string]Group, error)
	ListPublicGroups(ctx context.Context, p PageRequest) (Page[Group], error)
	// ListUserGroups lists the groups userID is a member of, newest membership first.
	ListUserGroups(ctx context.Context, userID string, p PageRequest) (Page[Group], error)
	// UserGroupIDs returns the ids of every group userID is a member of.
	UserGroupIDs(ctx context.Context, userID string) ([]string, error)
}

// MemberStore stores memberships; each change is recorded on its group atomically.
type MemberStore interface {
	// GetMember returns CodeNotFound when userID is not a member of groupID.
	GetMember(ctx context.Context, groupID, userID string) (Member, error)
	// Memberships reports which of the (group, user) pairs are memberships.
	Memberships(ctx context.Context, keys []MemberKey) (map[MemberKey]bool, error)
	ListMembers(ctx context.Context, groupID string, p PageRequest) (Page[Member], error)
	// AddMember adds m and applies change to the group, atomically.
	// CodeConflict: already a member; ErrGroupChanged: the group is gone or
	// its member count is no longer change.CountBefore.
	AddMember(ctx context.Context, m Member, change MemberChange) error
	// RemoveMember removes the membership and applies change to the group,
	// atomically. CodeNotFound: not a member; ErrGroupChanged as AddMember.
	RemoveMember(ctx context.Context, groupID, userID string, change MemberChange) error
}

// MemberChange is a membership change's effect on its group: the store
// moves memberCount from CountBefore by one and writes Event (which
// announces the count after) in the same transaction, only while the count
// still is CountBefore, so the announced count is exact.
type MemberChange struct {
	CountBefore int
	Event       Event
}

// ErrGroupChanged reports that a group's member count moved between the
// read and the write of a membership change; the Service retries.
var ErrGroupChanged = Errorf(CodeConflict, "the group changed concurrently; try again")

// memberChangeAttempts bounds the re-reads of a membership change that
// lost the race for its group's count. Only concurrent joins and leaves of
// one group contend, each attempt is one read and one transaction (a few
// ms), and with jittered waits 16 simultaneous joiners (the load tool's
// parallelism) all get through in well under 10 attempts.
const memberChangeAttempts = 10

// changeMembers runs one membership change, re-reading the group when its
// count moved meanwhile. write gets the count it must see.
func (s *Service) changeMembers(ctx context.Context, groupID string, write func(g Group) error) error {
	for attempt := 1; ; attempt++ {
		g, err := s.groups.GetGroup(ctx, groupID)
		if err != nil {
			return fmt.Errorf("get group %s: %w", groupID, err)
		}
		err = write(g)
		if !errors.Is(err, ErrGroupChanged) || attempt == memberChangeAttempts {
			return err
		}
		if err := s.cfg.Sleep(ctx, jitter(attempt)); err != nil {
			return err
		}
	}
}

// jitter is the full-jitter wait before retry n: up to 5 ms doubling to at
// most 80 ms, enough to let a contender's transaction (a few ms) finish.
func jitter(n int) time.Duration {
	ceiling := min(5*time.Millisecond<<(n-1), 80*time.Millisecond)
	return rand.N(ceiling) + time.Millisecond
}

func (s *Service) memberEvent(joined bool, groupID string, c Caller, countAfter int, at time.Time) Event {
	newEvent := MemberLeftEvent
	if joined {
		newEvent = MemberJoinedEvent
	}
	return s.stamp(newEvent(groupID, c, countAfter, s.cfg.NewID(), at))
}

// CreateGroupInput is a new group as the caller asked for it.
type CreateGroupInput struct {
	Name, Description string
	Visibility        Visibility
}

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
	if err := s.groups.CreateGroup(ctx, g, owner, s.stamp(GroupCreatedEvent(g))); err != nil {
		return Group{}, fmt.Errorf("create group: %w", err)
	}
	if err := s.followMembership(ctx, c.UserID, g.ID); err != nil {
		return Group{}, fmt.Errorf("group %s created, but: %w", g.ID, err)
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
		return s.groups.ListUserGroups(ctx, c.UserID, p)
	case ScopePublic:
		return s.groups.ListPublicGroups(ctx, p)
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
	g, err := s.groups.GetGroup(ctx, groupID)
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
	_, err := s.members.GetMember(ctx, groupID, userID)
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
	g, err := s.groups.GetGroup(ctx, groupID)
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
		// 403, as the API documents (README "REST API"): private groups
		// are joined only by accepting an invitation.
		return Member{}, Errorf(CodeForbidden, "group %s is private; join it by accepting an invitation", groupID)
	}
	now := s.now()
	m := Member{GroupID: groupID, UserID: c.UserID, DisplayName: c.DisplayName, Role: RoleMember, JoinedAt: now}
	err = s.changeMembers(ctx, groupID, func(g Group) error {
		ev := s.memberEvent(true, groupID, c, g.MemberCount+1, now)
		return s.members.AddMember(ctx, m, MemberChange{CountBefore: g.MemberCount, Event: ev})
	})
	if err != nil {
		return Member{}, fmt.Errorf("join group %s: %w", groupID, err)
	}
	if err := s.followMembership(ctx, c.UserID, groupID); err != nil {
		return Member{}, fmt.Errorf("joined group %s, but: %w", groupID, err)
	}
	return m, nil
}

// LeaveGroup removes the caller from a group. The owner cannot leave.
func (s *Service) LeaveGroup(ctx context.Context, c Caller, groupID string) error {
	if _, _, err := s.visibleGroup(ctx, c, groupID); err != nil {
		return err
	}
	m, err := s.members.GetMember(ctx, groupID, c.UserID)
	if err != nil {
		return fmt.Errorf("leave group %s: %w", groupID, err)
	}
	if m.Role == RoleOwner {
		return Errorf(CodeConflict, "the owner cannot leave group %s", groupID)
	}
	err = s.changeMembers(ctx, groupID, func(g Group) error {
		ev := s.memberEvent(false, groupID, c, g.MemberCount-1, s.now())
		return s.members.RemoveMember(ctx, groupID, c.UserID, MemberChange{CountBefore: g.MemberCount, Event: ev})
	})
	if err != nil {
		return fmt.Errorf("leave group %s: %w", groupID, err)
	}
	// A former member must stop receiving the group's live events at once,
	// not when the socket closes (that matters most for private groups).
	// This runs after the membership is gone: a subscribe racing the leave
	// either committed before (and is removed here) or fails its
	// membership check.
	if err := s.subscriptions.UnsubscribeUser(ctx, c.UserID, groupID); err != nil {
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
	return s.members.ListMembers(ctx, groupID, p)
}
