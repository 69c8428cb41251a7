package groupcast

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
)

// InvitationStore stores invitations, one per (invitee, group).
type InvitationStore interface {
	// PendingInvitations reports which of userIDs hold a pending invitation to groupID.
	PendingInvitations(ctx context.Context, groupID string, userIDs []string) (map[string]bool, error)
	// PutInvitation stores a pending invitation, replacing an answered one,
	// with its event. CodeConflict: a pending invitation already exists.
	PutInvitation(ctx context.Context, inv Invitation, ev Event) error
	// GetInvitation returns userID's invitation to groupID, or CodeNotFound.
	GetInvitation(ctx context.Context, userID, groupID string) (Invitation, error)
	// ListInvitations lists userID's invitations; status "" means all.
	ListInvitations(ctx context.Context, userID string, status InvitationStatus) ([]Invitation, error)
	// AcceptInvitation marks inv accepted at answeredAt, adds m, applies
	// change to the group and writes the answer's event ev, all in one
	// transaction. CodeConflict: the invitation is no longer pending or m is
	// already a member; ErrGroupChanged as MemberStore.AddMember.
	AcceptInvitation(ctx context.Context, inv Invitation, answeredAt time.Time, m Member, change MemberChange, ev Event) (Invitation, error)
	// DeclineInvitation marks inv declined and writes ev with it.
	// CodeConflict: no longer pending.
	DeclineInvitation(ctx context.Context, inv Invitation, answeredAt time.Time, ev Event) (Invitation, error)
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
	members, err := s.members.Memberships(ctx, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("check memberships of invitees: %w", err)
	}
	pending, err := s.invitations.PendingInvitations(ctx, groupID, userIDs)
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
			err := s.invitations.PutInvitation(pctx, inv, s.stamp(InvitationReceivedEvent(inv)))
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
	return s.invitations.ListInvitations(ctx, c.UserID, status)
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
	inv, err := s.invitations.GetInvitation(ctx, c.UserID, groupID)
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
	status := InvitationDeclined
	if accept {
		status = InvitationAccepted
	}
	answered := inv
	answered.Status, answered.AnsweredAt = status, now
	answerEvent, err := InvitationAnsweredEvent(answered)
	if err != nil {
		return Invitation{}, err
	}
	answerEvent = s.stamp(answerEvent)
	if !accept {
		return s.invitations.DeclineInvitation(ctx, inv, now, answerEvent)
	}
	m := Member{GroupID: groupID, UserID: c.UserID, DisplayName: c.DisplayName, Role: RoleMember, JoinedAt: now}
	var out Invitation
	err = s.changeMembers(ctx, groupID, func(g Group) error {
		joined := s.memberEvent(true, groupID, c, g.MemberCount+1, now)
		out, err = s.invitations.AcceptInvitation(ctx, inv, now, m, MemberChange{CountBefore: g.MemberCount, Event: joined}, answerEvent)
		return err
	})
	if err != nil {
		return Invitation{}, err
	}
	if err := s.followMembership(ctx, c.UserID, groupID); err != nil {
		return Invitation{}, fmt.Errorf("accepted the invitation to %s, but: %w", groupID, err)
	}
	return out, nil
}
