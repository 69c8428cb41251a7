package groupcast_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// TestEventRules pins, for every event type, who gets it live, whose inbox
// keeps it, which history stream holds it and its payload.
func TestEventRules(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	inv := groupcast.Invitation{ID: "I1", GroupID: "g1", GroupName: "G", InviteeID: "dave", InviterID: "alice",
		InviterName: "Alice", Status: groupcast.InvitationPending, CreatedAt: at}
	answer := func(s groupcast.InvitationStatus) groupcast.Event {
		a := inv
		a.Status, a.AnsweredAt = s, at.Add(time.Minute)
		ev, err := groupcast.InvitationAnsweredEvent(a)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	post := groupcast.Post{ID: "P1", GroupID: "g1", AuthorID: "alice", AuthorName: "Alice", Content: "hi", CreatedAt: at}
	group := func(v groupcast.Visibility) groupcast.Group {
		return groupcast.Group{ID: "g2", Name: "N", Description: "D", Visibility: v, OwnerID: "bob", MemberCount: 1, CreatedAt: at}
	}
	tests := []struct {
		name       string
		ev         func() groupcast.Event
		wantType   groupcast.EventType
		wantID     string
		audience   groupcast.Audience
		inbox      groupcast.Inbox
		streamKind groupcast.StreamKind
		streamID   string
		data       string
	}{
		{"post created", func() groupcast.Event { return groupcast.PostCreatedEvent(post) }, groupcast.EventPostCreated,
			groupcast.EventID(groupcast.EventPostCreated, "g1", "P1"),
			groupcast.Audience{GroupID: "g1", ExceptUserID: "alice"}, groupcast.Inbox{MembersOf: "g1", ExceptUserID: "alice"},
			groupcast.StreamGroup, "g1",
			`{"postId":"P1","authorId":"alice","authorName":"Alice","contentPreview":"hi","createdAt":"2026-11-29T10:00:00Z"}`},
		{"public group created", func() groupcast.Event { return groupcast.GroupCreatedEvent(group(groupcast.Public)) }, groupcast.EventGroupCreated,
			groupcast.EventID(groupcast.EventGroupCreated, "g2"),
			groupcast.Audience{GroupID: groupcast.SubscribePublic}, groupcast.Inbox{}, groupcast.StreamPublic, "",
			`{"groupId":"g2","name":"N","description":"D","visibility":"public","ownerId":"bob","createdAt":"2026-11-29T10:00:00Z","memberCount":1}`},
		{"private group created", func() groupcast.Event { return groupcast.GroupCreatedEvent(group(groupcast.Private)) }, groupcast.EventGroupCreated,
			groupcast.EventID(groupcast.EventGroupCreated, "g2"),
			groupcast.Audience{UserID: "bob"}, groupcast.Inbox{}, groupcast.StreamUser, "bob",
			`{"groupId":"g2","name":"N","description":"D","visibility":"private","ownerId":"bob","createdAt":"2026-11-29T10:00:00Z","memberCount":1}`},
		{"member joined", func() groupcast.Event {
			return groupcast.MemberJoinedEvent("g1", groupcast.Caller{UserID: "carol", DisplayName: "Carol"}, 3, "C1", at)
		}, groupcast.EventMemberJoined, groupcast.EventID(groupcast.EventMemberJoined, "g1", "C1"),
			groupcast.Audience{GroupID: "g1"}, groupcast.Inbox{}, groupcast.StreamGroup, "g1",
			`{"userId":"carol","displayName":"Carol","memberCount":3}`},
		{"member left", func() groupcast.Event {
			return groupcast.MemberLeftEvent("g1", groupcast.Caller{UserID: "carol", DisplayName: "Carol"}, 2, "C2", at)
		}, groupcast.EventMemberLeft, groupcast.EventID(groupcast.EventMemberLeft, "g1", "C2"),
			groupcast.Audience{GroupID: "g1"}, groupcast.Inbox{}, groupcast.StreamGroup, "g1",
			`{"userId":"carol","displayName":"Carol","memberCount":2}`},
		{"invitation received", func() groupcast.Event { return groupcast.InvitationReceivedEvent(inv) }, groupcast.EventInvitationReceived,
			groupcast.EventID(groupcast.EventInvitationReceived, "I1"),
			groupcast.Audience{UserID: "dave"}, groupcast.Inbox{UserID: "dave"}, groupcast.StreamUser, "dave",
			`{"invitationId":"I1","groupId":"g1","groupName":"G","inviterId":"alice","inviterName":"Alice","createdAt":"2026-11-29T10:00:00Z"}`},
		{"invitation accepted", func() groupcast.Event { return answer(groupcast.InvitationAccepted) }, groupcast.EventInvitationAccepted,
			groupcast.EventID(groupcast.EventInvitationAccepted, "I1"),
			groupcast.Audience{UserID: "alice"}, groupcast.Inbox{UserID: "alice"}, groupcast.StreamUser, "alice",
			`{"invitationId":"I1","groupId":"g1","groupName":"G","inviteeId":"dave","answeredAt":"2026-11-29T10:01:00Z"}`},
		{"invitation declined", func() groupcast.Event { return answer(groupcast.InvitationDeclined) }, groupcast.EventInvitationDeclined,
			groupcast.EventID(groupcast.EventInvitationDeclined, "I1"),
			groupcast.Audience{UserID: "alice"}, groupcast.Inbox{UserID: "alice"}, groupcast.StreamUser, "alice",
			`{"invitationId":"I1","groupId":"g1","groupName":"G","inviteeId":"dave","answeredAt":"2026-11-29T10:01:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev()
			if ev.Type != tt.wantType || ev.ID != tt.wantID || ev.Audience != tt.audience || ev.Inbox != tt.inbox {
				t.Errorf("event %+v, want type %s id %s audience %+v inbox %+v", ev, tt.wantType, tt.wantID, tt.audience, tt.inbox)
			}
			if kind, id := ev.Stream(); kind != tt.streamKind || id != tt.streamID {
				t.Errorf("stream %s %q, want %s %q", kind, id, tt.streamKind, tt.streamID)
			}
			env, err := ev.Envelope()
			if err != nil {
				t.Fatal(err)
			}
			if string(env.Data) != tt.data {
				t.Errorf("data %s\nwant %s", env.Data, tt.data)
			}
		})
	}
}

func TestInvitationAnsweredEventRejectsAPendingInvitation(t *testing.T) {
	if _, err := groupcast.InvitationAnsweredEvent(groupcast.Invitation{ID: "I1", Status: groupcast.InvitationPending}); err == nil {
		t.Fatal("a pending invitation produced an answer event")
	}
}

// TestConcurrentJoinsAnnounceExactCounts: every join's event carries the
// count after that join, even when joins race (the store writes a change
// only while the count it was computed from holds; the Service retries).
func TestConcurrentJoinsAnnounceExactCounts(t *testing.T) {
	ctx := context.Background()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc.CreateGroup(ctx, alice, groupcast.CreateGroupInput{Name: "busy", Visibility: groupcast.Public})
	if err != nil {
		t.Fatal(err)
	}
	const joiners = 16 // the load tool's parallelism
	var wg sync.WaitGroup
	errs := make([]error, joiners)
	for i := range joiners {
		wg.Go(func() {
			_, errs[i] = svc.JoinGroup(ctx, groupcast.Caller{UserID: fmt.Sprintf("u%02d", i)}, g.ID)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	res, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :e)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: "GROUP#" + g.ID}, ":e": &types.AttributeValueMemberS{Value: "EVENT#"},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var items []dynamostore.EventItem
	if err := attributevalue.UnmarshalListOfMaps(res.Items, &items); err != nil {
		t.Fatal(err)
	}
	var counts []int
	for _, it := range items {
		var env struct {
			Data struct {
				MemberCount int `json:"memberCount"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(it.Envelope), &env); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, env.Data.MemberCount)
	}
	slices.Sort(counts)
	want := make([]int, joiners)
	for i := range want {
		want[i] = i + 2
	}
	if !slices.Equal(counts, want) {
		t.Fatalf("announced counts %v, want each of 2..%d once", counts, joiners+1)
	}
	if got, _ := store.GetGroup(ctx, g.ID); got.MemberCount != joiners+1 {
		t.Fatalf("memberCount = %d, want %d", got.MemberCount, joiners+1)
	}
}
