package fanout

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// TestWithDynamoStore runs a post through the real store (kumo, or the
// endpoint in AWS_ENDPOINT_URL_DYNAMODB): subscribers come from a GSI Query,
// the author's connection is skipped, a gone connection loses its item and
// subscriptions, and members' inboxes get the notification.
func TestWithDynamoStore(t *testing.T) {
	ctx := context.Background()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	g := groupcast.Group{ID: "g1", Name: "Group g1", Visibility: groupcast.Public, OwnerID: "alice", MemberCount: 1, CreatedAt: created}
	if err := store.CreateGroup(ctx, g, groupcast.Member{GroupID: "g1", UserID: "alice", DisplayName: "Alice", Role: groupcast.RoleOwner, JoinedAt: created}, stamped(groupcast.GroupCreatedEvent(g))); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(time.Hour)
	for _, c := range []groupcast.Connection{{ID: "a1", UserID: "alice"}, {ID: "b1", UserID: "bob"}, {ID: "c1", UserID: "carol"}} {
		c.ConnectedAt = created.Add(-time.Hour) // past the handshake: a 410 means gone
		if err := store.PutConnection(ctx, c, expires); err != nil {
			t.Fatal(err)
		}
		if _, err := store.PutSubscriptions(ctx, c, []groupcast.SubscriptionTarget{{GroupID: "g1"}}, expires); err != nil {
			t.Fatal(err)
		}
	}

	// The post and its event, written by the store; the record is the event
	// item read back from the table, as the stream would carry it.
	post := groupcast.Post{ID: "P1", GroupID: "g1", AuthorID: "alice", AuthorName: "Alice", Content: "hi", CreatedAt: created}
	if err := store.PutPost(ctx, post, stamped(groupcast.PostCreatedEvent(post))); err != nil {
		t.Fatal(err)
	}
	items := eventItems(t, client, table, "GROUP#g1")
	if len(items) != 1 {
		t.Fatalf("group g1 has %d event items, want the post's one", len(items))
	}
	h := newHarness(t, store, Config{Now: func() time.Time { return created.Add(time.Minute) }})
	h.conns.script["c1"] = []int{http.StatusGone}
	resp, err := h.handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{streamRecord(t, "post", "INSERT", "1", nil, items[0])}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if got := sortedKeys(h.conns.deliveredTo()); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("delivered to %v, want [b1] (a1 is the author's, c1 is gone)", got)
	}
	if _, err := store.GetConnection(ctx, "c1"); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Errorf("gone connection c1 still stored: %v", err)
	}
	var subscribers []string
	if err := store.ForEachGroupSubscriber(ctx, "g1", func(page []groupcast.Subscriber) error {
		for _, s := range page {
			subscribers = append(subscribers, s.ConnectionID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(subscribers)
	if !slices.Equal(subscribers, []string{"a1", "b1"}) {
		t.Errorf("subscribers after cleanup %v, want [a1 b1]", subscribers)
	}
	// alice is the only member and the author: nobody's inbox gets the post.
	// The store takes normalized pages: DynamoDB (and moto) refuse Limit 0.
	page, err := store.ListNotifications(ctx, "alice", groupcast.PageRequest{Limit: groupcast.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("author got her own post in the inbox: %+v", page.Items)
	}
}

// TestInboxItemsExpire: every inbox item the fan-out writes carries the
// table's TTL attribute, set to the event time plus the configured
// retention (the default when unset).
func TestInboxItemsExpire(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		want      time.Duration
	}{
		{"default", 0, DefaultInboxRetention},
		{"configured", 7 * 24 * time.Hour, 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			client, table := dynamotest.NewTable(t)
			store, err := dynamostore.New(client, table)
			if err != nil {
				t.Fatal(err)
			}
			created := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
			g := groupcast.Group{ID: "g1", Name: "Group g1", Visibility: groupcast.Public, OwnerID: "alice", MemberCount: 1, CreatedAt: created}
			if err := store.CreateGroup(ctx, g, groupcast.Member{GroupID: "g1", UserID: "alice", Role: groupcast.RoleOwner, JoinedAt: created}, stamped(groupcast.GroupCreatedEvent(g))); err != nil {
				t.Fatal(err)
			}
			bob := groupcast.Member{GroupID: "g1", UserID: "bob", Role: groupcast.RoleMember, JoinedAt: created}
			joined := stamped(groupcast.MemberJoinedEvent("g1", groupcast.Caller{UserID: "bob"}, 2, "j1", created))
			if err := store.AddMember(ctx, bob, groupcast.MemberChange{CountBefore: 1, Event: joined}); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, store, Config{InboxRetention: tt.retention})
			if resp, err := h.handle(ctx, batch(loadRecords(t), "post-created")); err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			res, err := client.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(table), KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :n)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":pk": &types.AttributeValueMemberS{Value: "USER#bob"}, ":n": &types.AttributeValueMemberS{Value: "NOTIF#"},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Items) != 1 {
				t.Fatalf("bob's inbox has %d items, want 1", len(res.Items))
			}
			var it dynamostore.NotificationItem
			if err := attributevalue.UnmarshalMap(res.Items[0], &it); err != nil {
				t.Fatal(err)
			}
			ttl, ok := res.Items[0]["ttl"].(*types.AttributeValueMemberN)
			if !ok {
				t.Fatalf("inbox item has no numeric ttl attribute: %v", res.Items[0])
			}
			if want := strconv.FormatInt(it.CreatedAt.Add(tt.want).Unix(), 10); ttl.Value != want {
				t.Errorf("ttl = %s, want %s (event time %s + %s)", ttl.Value, want, it.CreatedAt, tt.want)
			}
		})
	}
}

var seqs = groupcast.NewULIDGenerator()

// stamped gives an event its sequence id and expiry, as the Service does.
func stamped(ev groupcast.Event) groupcast.Event {
	ev.Seq, ev.ExpiresAt = seqs(), ev.At.Add(groupcast.DefaultEventRetention)
	return ev
}

// eventItems reads the outbox items of partition pk, in stream order.
func eventItems(t *testing.T, client *dynamodb.Client, table, pk string) []map[string]types.AttributeValue {
	t.Helper()
	res, err := client.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :e)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk}, ":e": &types.AttributeValueMemberS{Value: "EVENT#"},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}
