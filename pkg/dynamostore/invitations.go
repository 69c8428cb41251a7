package dynamostore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// PendingInvitations reports which of userIDs hold a pending invitation to groupID.
func (s *Store) PendingInvitations(ctx context.Context, groupID string, userIDs []string) (map[string]bool, error) {
	keys := make([]item, 0, len(userIDs))
	seen := map[string]bool{}
	for _, u := range userIDs {
		if !seen[u] {
			seen[u] = true
			keys = append(keys, key(invitationKey(u, groupID)))
		}
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get invitations to %s: %w", groupID, err)
	}
	invs, err := decodeAll[InvitationItem](items)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(invs))
	for _, inv := range invs {
		if inv.Status == string(groupcast.InvitationPending) {
			out[inv.InviteeID] = true
		}
	}
	return out, nil
}

// PutInvitation stores a new pending invitation with its event. There is
// one invitation item per (invitee, group): an answered one is deleted
// first and the new one put with attribute_not_exists, so a concurrent
// invitation of the same person fails its condition instead of replacing
// this one.
func (s *Store) PutInvitation(ctx context.Context, inv groupcast.Invitation, ev groupcast.Event) error {
	err := s.putNewInvitation(ctx, inv, ev)
	if !invitationExists(err) {
		return err
	}
	old, err := s.GetInvitation(ctx, inv.InviteeID, inv.GroupID)
	switch {
	case groupcast.ErrorCode(err) == groupcast.CodeNotFound: // deleted meanwhile
	case err != nil:
		return err
	case old.Status == groupcast.InvitationPending:
		return fmt.Errorf("invite %s to %s: %w", inv.InviteeID, inv.GroupID,
			groupcast.Errorf(groupcast.CodeConflict, "%s already has a pending invitation", inv.InviteeID))
	default:
		if err := s.deleteAnsweredInvitation(ctx, old); err != nil {
			return err
		}
	}
	err = s.putNewInvitation(ctx, inv, ev)
	if invitationExists(err) { // someone invited them between our delete and put
		return fmt.Errorf("invite %s to %s: %w", inv.InviteeID, inv.GroupID,
			groupcast.Errorf(groupcast.CodeConflict, "%s already has a pending invitation", inv.InviteeID))
	}
	return err
}

// putNewInvitation writes inv, if no invitation item exists, and its event:
// a transaction of two actions, so one invitation batch stays far from the
// 100-action limit however many invitees it has.
func (s *Store) putNewInvitation(ctx context.Context, inv groupcast.Invitation, ev groupcast.Event) error {
	put, err := s.transactPut(newInvitationItem(inv), notExists())
	if err != nil {
		return err
	}
	putEvent, err := s.putEvent(ev)
	if err != nil {
		return err
	}
	if err := s.transactWrite(ctx, []types.TransactWriteItem{put, putEvent}); err != nil {
		return fmt.Errorf("put invitation of %s to %s: %w", inv.InviteeID, inv.GroupID, err)
	}
	return nil
}

// invitationExists reports that putNewInvitation found an invitation item.
func invitationExists(err error) bool {
	i, ok := canceledBy(err)
	return ok && i == 0
}

// deleteAnsweredInvitation deletes old only if it is still that same answered invitation.
func (s *Store) deleteAnsweredInvitation(ctx context.Context, old groupcast.Invitation) error {
	expr, err := conditional(expression.Name("invitationId").Equal(expression.Value(old.ID)).
		And(expression.Name("status").NotEqual(expression.Value(string(groupcast.InvitationPending)))))
	if err != nil {
		return fmt.Errorf("build condition: %w", err)
	}
	pk, sk := invitationKey(old.InviteeID, old.GroupID)
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: key(pk, sk), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return fmt.Errorf("replace invitation of %s to %s: %w", old.InviteeID, old.GroupID,
			groupcast.Errorf(groupcast.CodeConflict, "%s was invited concurrently", old.InviteeID))
	}
	if err != nil {
		return fmt.Errorf("delete answered invitation of %s to %s: %w", old.InviteeID, old.GroupID, err)
	}
	return nil
}

// GetInvitation returns userID's invitation to groupID, or CodeNotFound.
func (s *Store) GetInvitation(ctx context.Context, userID, groupID string) (groupcast.Invitation, error) {
	var it InvitationItem
	pk, sk := invitationKey(userID, groupID)
	found, err := s.getItem(ctx, pk, sk, &it)
	if err != nil {
		return groupcast.Invitation{}, err
	}
	if !found {
		return groupcast.Invitation{}, groupcast.Errorf(groupcast.CodeNotFound, "no invitation to group %s", groupID)
	}
	return it.Invitation(), nil
}

// ListInvitations lists userID's invitations with the status ("" = all),
// newest first. A user has one invitation item per group at most, so the
// list is read to the end.
func (s *Store) ListInvitations(ctx context.Context, userID string, status groupcast.InvitationStatus) ([]groupcast.Invitation, error) {
	q := query{partition: prefixUser + userID, sk: beginsWith(prefixInvite)}
	if status != "" {
		f := expression.Name("status").Equal(expression.Value(string(status)))
		q.filter = &f
	}
	out := []groupcast.Invitation{}
	err := s.queryAll(ctx, q, func(items []item) error {
		invs, err := decodeAll[InvitationItem](items)
		for _, inv := range invs {
			out = append(out, inv.Invitation())
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list invitations of %s: %w", userID, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

// answer is the update that moves a pending invitation to status.
func (s *Store) answer(inv groupcast.Invitation, status groupcast.InvitationStatus, at time.Time) (types.TransactWriteItem, error) {
	u := expression.Set(expression.Name("status"), expression.Value(string(status))).
		Set(expression.Name("answeredAt"), expression.Value(at.UTC()))
	c := expression.Name("status").Equal(expression.Value(string(groupcast.InvitationPending))).
		And(expression.Name("invitationId").Equal(expression.Value(inv.ID)))
	pk, sk := invitationKey(inv.InviteeID, inv.GroupID)
	return s.transactUpdate(pk, sk, u, c)
}

func answered(inv groupcast.Invitation, status groupcast.InvitationStatus, at time.Time) groupcast.Invitation {
	inv.Status, inv.AnsweredAt = status, at.UTC()
	return inv
}

// AcceptInvitation marks inv accepted, adds the membership, updates the
// group and writes both events (member joined, invitation accepted) in one
// transaction of five actions.
func (s *Store) AcceptInvitation(ctx context.Context, inv groupcast.Invitation, at time.Time, m groupcast.Member, change groupcast.MemberChange, ev groupcast.Event) (groupcast.Invitation, error) {
	accept, err := s.answer(inv, groupcast.InvitationAccepted, at)
	if err != nil {
		return groupcast.Invitation{}, err
	}
	put, err := s.transactPut(newMemberItem(m), notExists())
	if err != nil {
		return groupcast.Invitation{}, err
	}
	err = s.membershipChange(ctx, fmt.Sprintf("accept invitation of %s to %s", inv.InviteeID, inv.GroupID), inv.GroupID, 1, change,
		[]types.TransactWriteItem{accept, put},
		[]*groupcast.Error{
			groupcast.Errorf(groupcast.CodeConflict, "invitation to group %s was already answered", inv.GroupID),
			groupcast.Errorf(groupcast.CodeConflict, "already a member of group %s", inv.GroupID),
		}, ev)
	if err != nil {
		return groupcast.Invitation{}, err
	}
	return answered(inv, groupcast.InvitationAccepted, at), nil
}

// DeclineInvitation marks inv declined if it is still pending, and writes
// the event, in one transaction.
func (s *Store) DeclineInvitation(ctx context.Context, inv groupcast.Invitation, at time.Time, ev groupcast.Event) (groupcast.Invitation, error) {
	decline, err := s.answer(inv, groupcast.InvitationDeclined, at)
	if err != nil {
		return groupcast.Invitation{}, err
	}
	putEvent, err := s.putEvent(ev)
	if err != nil {
		return groupcast.Invitation{}, err
	}
	err = s.transact(ctx, fmt.Sprintf("decline invitation of %s to %s", inv.InviteeID, inv.GroupID),
		[]types.TransactWriteItem{decline, putEvent},
		[]*groupcast.Error{groupcast.Errorf(groupcast.CodeConflict, "invitation to group %s was already answered", inv.GroupID)})
	if err != nil {
		return groupcast.Invitation{}, err
	}
	return answered(inv, groupcast.InvitationDeclined, at), nil
}
