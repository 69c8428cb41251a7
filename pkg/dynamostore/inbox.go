package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// PutNotifications writes inbox entries with BatchWriteItem. An entry's key
// derives from its event id and time, so a redelivered stream record
// rewrites the same item instead of adding a duplicate.
func (s *Store) PutNotifications(ctx context.Context, ns []groupcast.Notification) error {
	writes := make([]types.WriteRequest, 0, len(ns))
	seen := map[[2]string]bool{}
	for _, n := range ns {
		it, err := newNotificationItem(n)
		if err != nil {
			return err
		}
		k := [2]string{it.PK, it.SK}
		if seen[k] { // one BatchWriteItem call rejects two writes to the same key
			continue
		}
		seen[k] = true
		w, err := putRequest(it)
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("put %d notifications: %w", len(writes), err)
	}
	return nil
}

// ListNotifications lists userID's inbox, newest first.
func (s *Store) ListNotifications(ctx context.Context, userID string, p groupcast.PageRequest) (groupcast.Page[groupcast.Notification], error) {
	q := query{partition: prefixUser + userID, sk: beginsWith(prefixNotif), skValid: hasPrefix(prefixNotif), newest: true}
	items, next, err := s.queryPage(ctx, q, p)
	if err != nil {
		return groupcast.Page[groupcast.Notification]{}, fmt.Errorf("list notifications of %s: %w", userID, err)
	}
	ns, err := decodeAll[NotificationItem](items)
	if err != nil {
		return groupcast.Page[groupcast.Notification]{}, err
	}
	page := groupcast.Page[groupcast.Notification]{Items: make([]groupcast.Notification, 0, len(ns)), NextCursor: next}
	for _, it := range ns {
		n, err := it.Notification()
		if err != nil {
			return groupcast.Page[groupcast.Notification]{}, err
		}
		page.Items = append(page.Items, n)
	}
	return page, nil
}

func unreadQuery(userID string) query {
	return query{index: IndexGSI2, partition: prefixUnread + userID}
}

// CountUnread counts userID's unread notifications on the sparse GSI2,
// where only unread entries have keys.
func (s *Store) CountUnread(ctx context.Context, userID string) (int, error) {
	q := unreadQuery(userID)
	q.count = true
	in, err := q.input(s.table)
	if err != nil {
		return 0, err
	}
	total := 0
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		res, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("count unread of %s: %w", userID, err)
		}
		total += int(res.Count)
	}
	return total, nil
}

// MarkRead marks the given unread notifications (all when ids is nil)
// read. It finds them on the unread index and writes them back with
// read=true and without the GSI2 keys, so they leave that sparse index.
// Rewriting whole items with BatchWriteItem costs one write per entry and
// one call per 25 entries; entries are immutable apart from the read flag,
// so nothing else can be lost. (An UpdateItem "SET read REMOVE GSI2PK,
// GSI2SK" per entry is equivalent but costs a round trip per entry.)
func (s *Store) MarkRead(ctx context.Context, userID string, ids []string) error {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var writes []types.WriteRequest
	err := s.queryAll(ctx, unreadQuery(userID), func(items []item) error {
		ns, err := decodeAll[NotificationItem](items)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if ids != nil && !want[n.ID] {
				continue
			}
			n.Read, n.GSI2PK, n.GSI2SK = true, "", ""
			w, err := putRequest(n)
			if err != nil {
				return err
			}
			writes = append(writes, w)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("find unread notifications of %s: %w", userID, err)
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("mark %d notifications of %s read: %w", len(writes), userID, err)
	}
	return nil
}
