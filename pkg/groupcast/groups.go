package groupcast

import (
	"context"
	"fmt"
	"time"
)

// GroupStore stores groups and finds a user's groups.
type GroupStore interface {
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
}

// MemberStore stores memberships; each change is recorded on its group atomically.
type MemberStore interface {
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
	if err := s.groups.CreateGroup(ctx, g, owner); err != nil {
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
	if err := s.members.AddMember(ctx, m, s.memberChange(MemberJoined, c, now)); err != nil {
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
	m, err := s.members.GetMember(ctx, groupID, c.UserID)
	if err != nil {
		return fmt.Errorf("leave group %s: %w", groupID, err)
	}
	if m.Role == RoleOwner {
		return Errorf(CodeConflict, "the owner cannot leave group %s", groupID)
	}
	if err := s.members.RemoveMember(ctx, groupID, c.UserID, s.memberChange(MemberLeft, c, s.now())); err != nil {
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
