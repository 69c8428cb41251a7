package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// CreateGroup puts the group, its owner's membership and the event in one
// transaction.
func (s *Store) CreateGroup(ctx context.Context, g groupcast.Group, owner groupcast.Member, ev groupcast.Event) error {
	putGroup, err := s.transactPut(newGroupItem(g), notExists())
	if err != nil {
		return err
	}
	putOwner, err := s.transactPut(newMemberItem(owner), notExists())
	if err != nil {
		return err
	}
	putEvent, err := s.putEvent(ev)
	if err != nil {
		return err
	}
	exists := groupcast.Errorf(groupcast.CodeConflict, "group %s already exists", g.ID)
	return s.transact(ctx, "create group "+g.ID, []types.TransactWriteItem{putGroup, putOwner, putEvent},
		[]*groupcast.Error{exists, exists})
}

// GetGroup returns the group, or a CodeNotFound error.
func (s *Store) GetGroup(ctx context.Context, groupID string) (groupcast.Group, error) {
	var it GroupItem
	pk, sk := groupKey(groupID)
	found, err := s.getItem(ctx, pk, sk, &it)
	if err != nil {
		return groupcast.Group{}, err
	}
	if !found {
		return groupcast.Group{}, groupcast.Errorf(groupcast.CodeNotFound, "group %s not found", groupID)
	}
	return it.Group(), nil
}

// GetGroups returns the existing groups among ids, keyed by id.
func (s *Store) GetGroups(ctx context.Context, ids []string) (map[string]groupcast.Group, error) {
	keys := make([]item, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] { // BatchGetItem rejects duplicate keys
			seen[id] = true
			keys = append(keys, key(groupKey(id)))
		}
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get groups: %w", err)
	}
	groups, err := decodeAll[GroupItem](items)
	if err != nil {
		return nil, err
	}
	out := make(map[string]groupcast.Group, len(groups))
	for _, g := range groups {
		out[g.GroupID] = g.Group()
	}
	return out, nil
}

// ListPublicGroups lists public groups, newest first.
func (s *Store) ListPublicGroups(ctx context.Context, p groupcast.PageRequest) (groupcast.Page[groupcast.Group], error) {
	items, next, err := s.queryPage(ctx, query{index: IndexGSI1, partition: gsi1PublicFeed, newest: true}, p)
	if err != nil {
		return groupcast.Page[groupcast.Group]{}, fmt.Errorf("list public groups: %w", err)
	}
	groups, err := decodeAll[GroupItem](items)
	if err != nil {
		return groupcast.Page[groupcast.Group]{}, err
	}
	page := groupcast.Page[groupcast.Group]{Items: make([]groupcast.Group, 0, len(groups)), NextCursor: next}
	for _, g := range groups {
		page.Items = append(page.Items, g.Group())
	}
	return page, nil
}

func userGroupsQuery(userID string) query {
	return query{index: IndexGSI1, partition: prefixUser + userID, sk: beginsWith(prefixGroup), skValid: hasPrefix(prefixGroup), newest: true}
}

// ListUserGroups lists userID's groups, most recently joined first.
func (s *Store) ListUserGroups(ctx context.Context, userID string, p groupcast.PageRequest) (groupcast.Page[groupcast.Group], error) {
	items, next, err := s.queryPage(ctx, userGroupsQuery(userID), p)
	if err != nil {
		return groupcast.Page[groupcast.Group]{}, fmt.Errorf("list groups of %s: %w", userID, err)
	}
	members, err := decodeAll[MemberItem](items)
	if err != nil {
		return groupcast.Page[groupcast.Group]{}, err
	}
	ids := make([]string, 0, len(members))
	for _, m := range members {
		ids = append(ids, m.GroupID)
	}
	groups, err := s.GetGroups(ctx, ids)
	if err != nil {
		return groupcast.Page[groupcast.Group]{}, err
	}
	page := groupcast.Page[groupcast.Group]{Items: make([]groupcast.Group, 0, len(ids)), NextCursor: next}
	for _, id := range ids {
		if g, ok := groups[id]; ok {
			page.Items = append(page.Items, g)
		}
	}
	return page, nil
}

// UserGroupIDs returns the ids of all of userID's groups.
func (s *Store) UserGroupIDs(ctx context.Context, userID string) ([]string, error) {
	var ids []string
	err := s.queryAll(ctx, userGroupsQuery(userID), func(items []item) error {
		members, err := decodeAll[MemberItem](items)
		for _, m := range members {
			ids = append(ids, m.GroupID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", userID, err)
	}
	return ids, nil
}

// GetMember returns the membership, or a CodeNotFound error.
func (s *Store) GetMember(ctx context.Context, groupID, userID string) (groupcast.Member, error) {
	var it MemberItem
	pk, sk := memberKey(groupID, userID)
	found, err := s.getItem(ctx, pk, sk, &it)
	if err != nil {
		return groupcast.Member{}, err
	}
	if !found {
		return groupcast.Member{}, groupcast.Errorf(groupcast.CodeNotFound, "%s is not a member of group %s", userID, groupID)
	}
	return it.Member(), nil
}

// Memberships reports which of keys are memberships, with BatchGetItem.
func (s *Store) Memberships(ctx context.Context, keys []groupcast.MemberKey) (map[groupcast.MemberKey]bool, error) {
	req := make([]item, 0, len(keys))
	seen := map[groupcast.MemberKey]bool{}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			req = append(req, key(memberKey(k.GroupID, k.UserID)))
		}
	}
	items, err := s.batchGet(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("get memberships: %w", err)
	}
	members, err := decodeAll[MemberItem](items)
	if err != nil {
		return nil, err
	}
	out := make(map[groupcast.MemberKey]bool, len(members))
	for _, m := range members {
		out[groupcast.MemberKey{GroupID: m.GroupID, UserID: m.UserID}] = true
	}
	return out, nil
}

func membersQuery(groupID string) query {
	return query{partition: prefixGroup + groupID, sk: beginsWith(prefixMember), skValid: hasPrefix(prefixMember)}
}

// ListMembers lists a group's members in user id order.
func (s *Store) ListMembers(ctx context.Context, groupID string, p groupcast.PageRequest) (groupcast.Page[groupcast.Member], error) {
	items, next, err := s.queryPage(ctx, membersQuery(groupID), p)
	if err != nil {
		return groupcast.Page[groupcast.Member]{}, fmt.Errorf("list members of %s: %w", groupID, err)
	}
	members, err := decodeAll[MemberItem](items)
	if err != nil {
		return groupcast.Page[groupcast.Member]{}, err
	}
	page := groupcast.Page[groupcast.Member]{Items: make([]groupcast.Member, 0, len(members)), NextCursor: next}
	for _, m := range members {
		page.Items = append(page.Items, m.Member())
	}
	return page, nil
}

// ForEachGroupMemberID hands the user ids of groupID's members to fn, one
// query page at a time.
func (s *Store) ForEachGroupMemberID(ctx context.Context, groupID string, fn func([]string) error) error {
	err := s.queryAll(ctx, membersQuery(groupID), func(items []item) error {
		members, err := decodeAll[MemberItem](items)
		if err != nil {
			return err
		}
		ids := make([]string, 0, len(members))
		for _, m := range members {
			ids = append(ids, m.UserID)
		}
		return fn(ids)
	})
	if err != nil {
		return fmt.Errorf("members of %s: %w", groupID, err)
	}
	return nil
}

// groupChange is the update of the group item by a membership change:
// memberCount moves from c.CountBefore by delta, only if it still is
// c.CountBefore, so the event announcing the new count is exact.
func (s *Store) groupChange(groupID string, delta int, c groupcast.MemberChange) (types.TransactWriteItem, error) {
	u := expression.Set(expression.Name("memberCount"), expression.Value(c.CountBefore+delta))
	pk, sk := groupKey(groupID)
	return s.transactUpdate(pk, sk, u, exists().And(expression.Name("memberCount").Equal(expression.Value(c.CountBefore))))
}

// groupChanged maps a failed group condition: the group is gone, or its
// count moved (the Service re-reads it, and then finds it gone if it is).
var groupChanged = groupcast.ErrGroupChanged

// membershipChange runs a membership transaction: actions, then the group
// update and the event.
func (s *Store) membershipChange(ctx context.Context, what, groupID string, delta int, c groupcast.MemberChange,
	actions []types.TransactWriteItem, failures []*groupcast.Error, more ...groupcast.Event) error {
	update, err := s.groupChange(groupID, delta, c)
	if err != nil {
		return err
	}
	actions = append(actions, update)
	failures = append(failures, groupChanged)
	for _, ev := range append([]groupcast.Event{c.Event}, more...) {
		put, err := s.putEvent(ev)
		if err != nil {
			return err
		}
		actions = append(actions, put)
	}
	return s.transact(ctx, what, actions, failures)
}

// AddMember puts the membership, updates the group and writes the event.
func (s *Store) AddMember(ctx context.Context, m groupcast.Member, change groupcast.MemberChange) error {
	put, err := s.transactPut(newMemberItem(m), notExists())
	if err != nil {
		return err
	}
	return s.membershipChange(ctx, fmt.Sprintf("add %s to %s", m.UserID, m.GroupID), m.GroupID, 1, change,
		[]types.TransactWriteItem{put},
		[]*groupcast.Error{groupcast.Errorf(groupcast.CodeConflict, "already a member of group %s", m.GroupID)})
}

// RemoveMember deletes the membership, updates the group and writes the event.
func (s *Store) RemoveMember(ctx context.Context, groupID, userID string, change groupcast.MemberChange) error {
	pk, sk := memberKey(groupID, userID)
	del, err := s.transactDelete(pk, sk, exists())
	if err != nil {
		return err
	}
	return s.membershipChange(ctx, fmt.Sprintf("remove %s from %s", userID, groupID), groupID, -1, change,
		[]types.TransactWriteItem{del},
		[]*groupcast.Error{groupcast.Errorf(groupcast.CodeNotFound, "not a member of group %s", groupID)})
}

// PutPost stores a post and its event in one transaction. Post ids are
// unique, so the condition only guards against an id generator bug
// silently overwriting a post.
func (s *Store) PutPost(ctx context.Context, p groupcast.Post, ev groupcast.Event) error {
	put, err := s.transactPut(newPostItem(p), notExists())
	if err != nil {
		return err
	}
	putEvent, err := s.putEvent(ev)
	if err != nil {
		return err
	}
	return s.transact(ctx, "put post "+p.ID, []types.TransactWriteItem{put, putEvent}, nil)
}

// ListPosts lists a group's posts newest first. Post ids sort by time, so
// "newer than afterPostID" is "sort key greater than POST#afterPostID"; no
// other item type of the group partition sorts after "POST#".
func (s *Store) ListPosts(ctx context.Context, groupID string, p groupcast.PageRequest, afterPostID string) (groupcast.Page[groupcast.Post], error) {
	q := query{partition: prefixGroup + groupID, sk: beginsWith(prefixPost), skValid: hasPrefix(prefixPost), newest: true}
	if afterPostID != "" {
		q.sk = func(k expression.KeyBuilder) expression.KeyConditionBuilder {
			return expression.KeyGreaterThan(k, expression.Value(prefixPost+afterPostID))
		}
		q.skValid = func(sk string) bool { return sk > prefixPost+afterPostID }
	}
	items, next, err := s.queryPage(ctx, q, p)
	if err != nil {
		return groupcast.Page[groupcast.Post]{}, fmt.Errorf("list posts of %s: %w", groupID, err)
	}
	posts, err := decodeAll[PostItem](items)
	if err != nil {
		return groupcast.Page[groupcast.Post]{}, err
	}
	page := groupcast.Page[groupcast.Post]{Items: make([]groupcast.Post, 0, len(posts)), NextCursor: next}
	for _, it := range posts {
		page.Items = append(page.Items, it.Post())
	}
	return page, nil
}

// CountPost atomically increments userID's post counter of the window and
// returns the new count.
func (s *Store) CountPost(ctx context.Context, userID string, windowStart, expiresAt time.Time) (int, error) {
	// One SET clause (if_not_exists + 1) rather than ADD + SET: the same
	// effect, and local emulators mis-parse multi-clause update expressions.
	count := expression.Name("count")
	u := expression.Set(count, expression.Plus(count.IfNotExists(expression.Value(0)), expression.Value(1))).
		Set(expression.Name("type"), expression.Value(TypeRate)).
		Set(expression.Name(attrTTL), expression.Value(expiresAt.Unix()))
	expr, err := expression.NewBuilder().WithUpdate(u).Build()
	if err != nil {
		return 0, fmt.Errorf("build rate update: %w", err)
	}
	pk, sk := rateKey(userID, windowStart)
	res, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pk, sk), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("count post of %s: %w", userID, err)
	}
	n, ok := res.Attributes["count"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("count post of %s: no count returned", userID)
	}
	posts, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, fmt.Errorf("count post of %s: %w", userID, err)
	}
	return posts, nil
}
