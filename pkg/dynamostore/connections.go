package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// PutConnection stores a live connection; the TTL removes it should its
// $disconnect never arrive.
func (s *Store) PutConnection(ctx context.Context, c groupcast.Connection, expiresAt time.Time) error {
	pk, sk := connectionKey(c.ID)
	av, err := attributevalue.MarshalMap(ConnectionItem{
		PK: pk, SK: sk, GSI1PK: prefixUser + c.UserID, GSI1SK: prefixConn + c.ID, Type: TypeConnection,
		ConnectionID: c.ID, UserID: c.UserID, DisplayName: c.DisplayName, ConnectedAt: c.ConnectedAt.UTC(),
		TTL: expiresAt.Unix(),
	})
	if err != nil {
		return fmt.Errorf("encode connection: %w", err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: s.table, Item: av}); err != nil {
		return fmt.Errorf("put connection %s: %w", c.ID, err)
	}
	return nil
}

// GetConnection returns the connection, or CodeNotFound.
func (s *Store) GetConnection(ctx context.Context, connectionID string) (groupcast.Connection, error) {
	var it ConnectionItem
	pk, sk := connectionKey(connectionID)
	found, err := s.getItem(ctx, pk, sk, &it)
	if err != nil {
		return groupcast.Connection{}, err
	}
	if !found {
		return groupcast.Connection{}, groupcast.Errorf(groupcast.CodeNotFound, "connection %s not found", connectionID)
	}
	return it.Connection(), nil
}

// DeleteConnection deletes the connection and all its subscriptions: every
// item of the CONN#cid partition. Deleting twice is harmless.
func (s *Store) DeleteConnection(ctx context.Context, connectionID string) error {
	var writes []types.WriteRequest
	err := s.queryAll(ctx, query{partition: prefixConn + connectionID}, func(items []item) error {
		for _, it := range items {
			var k struct{ PK, SK string }
			if err := attributevalue.UnmarshalMap(it, &k); err != nil {
				return fmt.Errorf("decode key: %w", err)
			}
			writes = append(writes, deleteRequest(k.PK, k.SK))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("items of connection %s: %w", connectionID, err)
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("delete connection %s: %w", connectionID, err)
	}
	return nil
}

// UserConnectionIDs returns the ids of userID's live connections.
func (s *Store) UserConnectionIDs(ctx context.Context, userID string) ([]string, error) {
	var ids []string
	q := query{index: IndexGSI1, partition: prefixUser + userID, sk: beginsWith(prefixConn)}
	err := s.queryAll(ctx, q, func(items []item) error {
		conns, err := decodeAll[ConnectionItem](items)
		for _, c := range conns {
			ids = append(ids, c.ConnectionID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connections of %s: %w", userID, err)
	}
	return ids, nil
}

// Subscriptions returns the group ids (or "public") connectionID is subscribed to.
func (s *Store) Subscriptions(ctx context.Context, connectionID string) ([]string, error) {
	var ids []string
	err := s.queryAll(ctx, query{partition: prefixConn + connectionID, sk: beginsWith(prefixSub)}, func(items []item) error {
		subs, err := decodeAll[SubscriptionItem](items)
		for _, sub := range subs {
			ids = append(ids, sub.GroupID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("subscriptions of %s: %w", connectionID, err)
	}
	return ids, nil
}

// PutSubscriptions subscribes c to groupIDs until expiresAt.
func (s *Store) PutSubscriptions(ctx context.Context, c groupcast.Connection, groupIDs []string, expiresAt time.Time) error {
	writes := make([]types.WriteRequest, 0, len(groupIDs))
	for _, g := range groupIDs {
		pk, sk := subscriptionKey(c.ID, g)
		w, err := putRequest(SubscriptionItem{
			PK: pk, SK: sk, GSI1PK: prefixSubs + g, GSI1SK: c.ID, Type: TypeSubscription,
			ConnectionID: c.ID, UserID: c.UserID, GroupID: g, TTL: expiresAt.Unix(),
		})
		if err != nil {
			return err
		}
		writes = append(writes, w)
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("subscribe %s: %w", c.ID, err)
	}
	return nil
}

// DeleteSubscriptions removes connectionID's subscriptions to groupIDs.
func (s *Store) DeleteSubscriptions(ctx context.Context, connectionID string, groupIDs []string) error {
	writes := make([]types.WriteRequest, 0, len(groupIDs))
	for _, g := range groupIDs {
		writes = append(writes, deleteRequest(subscriptionKey(connectionID, g)))
	}
	if err := s.batchWrite(ctx, writes); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", connectionID, err)
	}
	return nil
}

// ForEachGroupSubscriber hands the connections subscribed to groupID (or to
// "public") to fn, one query page at a time.
func (s *Store) ForEachGroupSubscriber(ctx context.Context, groupID string, fn func([]groupcast.Subscriber) error) error {
	// Only the two attributes the fan-out uses: for a large group this
	// cuts the bytes DynamoDB sends and the Lambda decodes (measured with
	// BenchmarkForEachGroupSubscriber: 10,000 subscriptions in about
	// 160 ms instead of 270 ms).
	q := query{
		index: IndexGSI1, partition: prefixSubs + groupID,
		project: []string{"connectionId", "userId"},
	}
	err := s.queryAll(ctx, q, func(items []item) error {
		subs, err := decodeAll[SubscriptionItem](items)
		if err != nil {
			return err
		}
		out := make([]groupcast.Subscriber, 0, len(subs))
		for _, sub := range subs {
			out = append(out, groupcast.Subscriber{ConnectionID: sub.ConnectionID, UserID: sub.UserID})
		}
		return fn(out)
	})
	if err != nil {
		return fmt.Errorf("subscribers of %s: %w", groupID, err)
	}
	return nil
}
