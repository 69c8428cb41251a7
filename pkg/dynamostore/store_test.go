package dynamostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

type env struct {
	store  *dynamostore.Store
	client *dynamodb.Client
	table  string
}

func newEnv(t *testing.T) env {
	t.Helper()
	client, table := dynamotest.NewTable(t)
	s, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	return env{store: s, client: client, table: table}
}

// raw reads an item as DynamoDB stores it, into out (one of the exported item structs).
func (e env) raw(t *testing.T, pk, sk string, out any) bool {
	t.Helper()
	res, err := e.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.table),
		Key: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Item == nil {
		return false
	}
	if err := attributevalue.UnmarshalMap(res.Item, out); err != nil {
		t.Fatal(err)
	}
	return true
}

func (e env) createGroup(t *testing.T, id string, v groupcast.Visibility) groupcast.Group {
	t.Helper()
	g := groupcast.Group{ID: id, Name: "group " + id, Visibility: v, OwnerID: "owner", MemberCount: 1, CreatedAt: t0}
	owner := groupcast.Member{GroupID: id, UserID: "owner", DisplayName: "Owner", Role: groupcast.RoleOwner, JoinedAt: t0}
	if err := e.store.CreateGroup(context.Background(), g, owner, stamp(groupcast.GroupCreatedEvent(g))); err != nil {
		t.Fatal(err)
	}
	return g
}

var seqs = groupcast.NewULIDGenerator()

// stamp gives an event its sequence id and a 24 h expiry, as the Service does.
func stamp(ev groupcast.Event) groupcast.Event {
	ev.Seq, ev.ExpiresAt = seqs(), ev.At.Add(24*time.Hour)
	return ev
}

func joinChange(groupID, userID string, countBefore int) groupcast.MemberChange {
	ev := groupcast.MemberJoinedEvent(groupID, groupcast.Caller{UserID: userID}, countBefore+1, seqs(), t0)
	return groupcast.MemberChange{CountBefore: countBefore, Event: stamp(ev)}
}

func leaveChange(groupID, userID string, countBefore int) groupcast.MemberChange {
	ev := groupcast.MemberLeftEvent(groupID, groupcast.Caller{UserID: userID}, countBefore-1, seqs(), t0)
	return groupcast.MemberChange{CountBefore: countBefore, Event: stamp(ev)}
}

// eventTypes lists the types of the outbox events in partition pk, in
// stream order.
func (e env) eventTypes(t *testing.T, pk string) []groupcast.EventType {
	t.Helper()
	res, err := e.client.Query(context.Background(), &dynamodb.QueryInput{
		TableName:              aws.String(e.table),
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :ev)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk}, ":ev": &types.AttributeValueMemberS{Value: "EVENT#"},
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
	var out []groupcast.EventType
	for _, it := range items {
		out = append(out, groupcast.EventType(it.EventType))
	}
	return out
}

func TestNewRejectsMissingArguments(t *testing.T) {
	client := dynamotest.NewClient("http://127.0.0.1:1")
	if _, err := dynamostore.New(nil, "t"); err == nil {
		t.Error("New accepted a nil client")
	}
	if _, err := dynamostore.New(client, ""); err == nil {
		t.Error("New accepted an empty table name")
	}
}

func TestMembershipChangesWriteTheirEvent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	g := e.createGroup(t, "g1", groupcast.Public)
	err := e.store.CreateGroup(ctx, g, groupcast.Member{GroupID: "g1", UserID: "owner", Role: groupcast.RoleOwner, JoinedAt: t0}, stamp(groupcast.GroupCreatedEvent(g)))
	if groupcast.ErrorCode(err) != groupcast.CodeConflict {
		t.Fatalf("create twice: %v, want conflict", err)
	}
	if got := e.eventTypes(t, "PUBLIC"); !slices.Equal(got, []groupcast.EventType{groupcast.EventGroupCreated}) {
		t.Fatalf("public feed events %v, want one group.created (the failed create wrote none)", got)
	}
	if _, err := e.store.GetGroup(ctx, "nope"); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("get missing group: %v, want not_found", err)
	}

	bob := groupcast.Member{GroupID: "g1", UserID: "bob", DisplayName: "Bob", Role: groupcast.RoleMember, JoinedAt: t0}
	join := func(e env) error { return e.store.AddMember(ctx, bob, joinChange("g1", "bob", 1)) }
	leave := func(e env) error { return e.store.RemoveMember(ctx, "g1", "bob", leaveChange("g1", "bob", 2)) }
	joined, left := groupcast.EventMemberJoined, groupcast.EventMemberLeft
	// Every case starts from a fresh table holding g1 with its owner, runs
	// given (which must succeed), then run; g1 must then have wantCount
	// members and its stream the events wantEvents: a failed change writes
	// no event.
	steps := []struct {
		name       string
		given      []func(e env) error
		run        func(e env) error
		wantCode   groupcast.Code
		wantStale  bool
		wantCount  int
		wantEvents []groupcast.EventType
	}{
		{"join", nil, join, "", false, 2, []groupcast.EventType{joined}},
		{"join again rolls back", []func(env) error{join}, join, groupcast.CodeConflict, false, 2, []groupcast.EventType{joined}},
		{"join with a stale count", nil, func(e env) error {
			return e.store.AddMember(ctx, bob, joinChange("g1", "bob", 5))
		}, groupcast.CodeConflict, true, 1, nil},
		{"join missing group", nil, func(e env) error {
			m := bob
			m.GroupID = "nope"
			return e.store.AddMember(ctx, m, joinChange("nope", "bob", 1))
		}, groupcast.CodeConflict, true, 1, nil},
		{"leave", []func(env) error{join}, leave, "", false, 1, []groupcast.EventType{joined, left}},
		{"leave again", []func(env) error{join, leave}, func(e env) error {
			return e.store.RemoveMember(ctx, "g1", "bob", leaveChange("g1", "bob", 1))
		}, groupcast.CodeNotFound, false, 1, []groupcast.EventType{joined, left}},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.createGroup(t, "g1", groupcast.Public)
			for _, given := range tt.given {
				if err := given(e); err != nil {
					t.Fatalf("given: %v", err)
				}
			}
			err := tt.run(e)
			if groupcast.ErrorCode(err) != tt.wantCode || errors.Is(err, groupcast.ErrGroupChanged) != tt.wantStale {
				t.Fatalf("error = %v, want code %q (stale count: %v)", err, tt.wantCode, tt.wantStale)
			}
			var it dynamostore.GroupItem
			if !e.raw(t, "GROUP#g1", "META", &it) {
				t.Fatal("group item missing")
			}
			if it.Type != dynamostore.TypeGroup || it.MemberCount != tt.wantCount {
				t.Fatalf("group item = %+v, want %d members", it, tt.wantCount)
			}
			if got := e.eventTypes(t, "GROUP#g1"); !slices.Equal(got, tt.wantEvents) {
				t.Fatalf("group events %v, want %v", got, tt.wantEvents)
			}
			if e.raw(t, "GROUP#nope", "MEMBER#bob", &dynamostore.MemberItem{}) || len(e.eventTypes(t, "GROUP#nope")) > 0 {
				t.Fatal("membership or event of a missing group was written despite the failed transaction")
			}
		})
	}
}

func TestEventItemCarriesEnvelopeAudienceAndExpiry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createGroup(t, "g1", groupcast.Public)
	p := groupcast.Post{ID: "P1", GroupID: "g1", AuthorID: "owner", AuthorName: "Owner", Content: "hello", CreatedAt: t0}
	ev := stamp(groupcast.PostCreatedEvent(p))
	if err := e.store.PutPost(ctx, p, ev); err != nil {
		t.Fatal(err)
	}
	var it dynamostore.EventItem
	if !e.raw(t, "GROUP#g1", "EVENT#"+ev.Seq, &it) {
		t.Fatal("no event item at GROUP#g1 / EVENT#<seq>")
	}
	d, err := it.Delivery()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ev.Envelope()
	if it.Type != dynamostore.TypeEvent || it.EventID != ev.ID || it.TTL != t0.Add(24*time.Hour).Unix() ||
		d.Audience != ev.Audience || d.Inbox != ev.Inbox || d.Envelope.ID != want.ID || string(d.Envelope.Data) != string(want.Data) {
		t.Fatalf("event item = %+v, delivery %+v; want the event %+v with a 24 h ttl", it, d, ev)
	}
	// A post whose put fails (same id) writes no second event.
	if err := e.store.PutPost(ctx, p, stamp(groupcast.PostCreatedEvent(p))); err == nil {
		t.Fatal("second put of the same post succeeded")
	}
	if got := e.eventTypes(t, "GROUP#g1"); len(got) != 1 {
		t.Fatalf("events after a failed put %v, want one", got)
	}
}

func TestAcceptInvitationIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createGroup(t, "g1", groupcast.Private)
	inv := groupcast.Invitation{ID: "i1", GroupID: "g1", GroupName: "group g1", InviteeID: "bob", InviterID: "owner",
		InviterName: "Owner", Status: groupcast.InvitationPending, CreatedAt: t0}
	if err := e.store.PutInvitation(ctx, inv, stamp(groupcast.InvitationReceivedEvent(inv))); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutInvitation(ctx, inv, stamp(groupcast.InvitationReceivedEvent(inv))); groupcast.ErrorCode(err) != groupcast.CodeConflict {
		t.Fatalf("second pending invitation: %v, want conflict", err)
	}
	if got := e.eventTypes(t, "USER#bob"); !slices.Equal(got, []groupcast.EventType{groupcast.EventInvitationReceived}) {
		t.Fatalf("invitee's events %v, want one invitation.received", got)
	}
	accepted := inv
	accepted.Status, accepted.AnsweredAt = groupcast.InvitationAccepted, t0
	answer, err := groupcast.InvitationAnsweredEvent(accepted)
	if err != nil {
		t.Fatal(err)
	}
	// bob became a member by other means: accepting must fail as a whole.
	bob := groupcast.Member{GroupID: "g1", UserID: "bob", Role: groupcast.RoleMember, JoinedAt: t0}
	if err := e.store.AddMember(ctx, bob, joinChange("g1", "bob", 1)); err != nil {
		t.Fatal(err)
	}
	_, err = e.store.AcceptInvitation(ctx, inv, t0, bob, joinChange("g1", "bob", 2), stamp(answer))
	if groupcast.ErrorCode(err) != groupcast.CodeConflict {
		t.Fatalf("accept as member: %v, want conflict", err)
	}
	var it dynamostore.InvitationItem
	if !e.raw(t, "USER#bob", "INVITE#g1", &it) || it.Status != "PENDING" || it.AnsweredAt != nil {
		t.Fatalf("invitation after failed accept = %+v, want untouched PENDING", it)
	}
	if g, _ := e.store.GetGroup(ctx, "g1"); g.MemberCount != 2 {
		t.Fatalf("memberCount = %d, want 2 (failed accept must not count)", g.MemberCount)
	}
	if got := e.eventTypes(t, "USER#owner"); len(got) != 1 || got[0] != groupcast.EventGroupCreated {
		t.Fatalf("inviter's events after a failed accept %v, want only the private group.created", got)
	}

	if err := e.store.RemoveMember(ctx, "g1", "bob", leaveChange("g1", "bob", 2)); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.AcceptInvitation(ctx, inv, t0.Add(time.Minute), bob, joinChange("g1", "bob", 1), stamp(answer))
	if err != nil || got.Status != groupcast.InvitationAccepted || !got.AnsweredAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("accept = %+v, %v", got, err)
	}
	if _, err := e.store.DeclineInvitation(ctx, inv, t0, stamp(answer)); groupcast.ErrorCode(err) != groupcast.CodeConflict {
		t.Fatalf("decline after accept: %v, want conflict", err)
	}
	if !e.raw(t, "USER#bob", "INVITE#g1", &it) || it.Status != "ACCEPTED" || it.GSI1PK != "GROUP#g1" {
		t.Fatalf("stored invitation = %+v", it)
	}
	if got := e.eventTypes(t, "USER#owner"); !slices.Equal(got, []groupcast.EventType{groupcast.EventGroupCreated, groupcast.EventInvitationAccepted}) {
		t.Fatalf("inviter's events %v, want group.created then one invitation.accepted", got)
	}
	wantGroup := []groupcast.EventType{groupcast.EventMemberJoined, groupcast.EventMemberLeft, groupcast.EventMemberJoined}
	if got := e.eventTypes(t, "GROUP#g1"); !slices.Equal(got, wantGroup) {
		t.Fatalf("group events %v, want %v", got, wantGroup)
	}
}

func TestPaginationRejectsForeignCursors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, g := range []string{"a", "b"} {
		e.createGroup(t, g, groupcast.Public)
		for i := range 3 {
			p := groupcast.Post{ID: fmt.Sprintf("P%d", i), GroupID: g, AuthorID: "owner", Content: "x", CreatedAt: t0}
			if err := e.store.PutPost(ctx, p, stamp(groupcast.PostCreatedEvent(p))); err != nil {
				t.Fatal(err)
			}
		}
	}
	page, err := e.store.ListPosts(ctx, "a", groupcast.PageRequest{Limit: 2}, "")
	if err != nil || page.NextCursor == "" {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	// The cursor points at P1 (newest first: P2, P1 on the first page).
	cursor := groupcast.PageRequest{Limit: 2, Cursor: page.NextCursor}
	tests := []struct {
		name string
		list func() error
		want groupcast.Code
	}{
		{"its own listing", func() error { _, err := e.store.ListPosts(ctx, "a", cursor, ""); return err }, ""},
		{"its own listing, after an older post", func() error { _, err := e.store.ListPosts(ctx, "a", cursor, "P0"); return err }, ""},
		{"group a's cursor on group b", func() error { _, err := e.store.ListPosts(ctx, "b", cursor, ""); return err }, groupcast.CodeInvalid},
		// Same partition but outside the key condition: real DynamoDB answers
		// a ValidationException (a 500), so it must be refused as invalid.
		{"post cursor on members", func() error { _, err := e.store.ListMembers(ctx, "a", cursor); return err }, groupcast.CodeInvalid},
		{"cursor at or before after", func() error { _, err := e.store.ListPosts(ctx, "a", cursor, "P1"); return err }, groupcast.CodeInvalid},
		{"post cursor on notifications", func() error { _, err := e.store.ListNotifications(ctx, "owner", cursor); return err }, groupcast.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.list(); groupcast.ErrorCode(err) != tt.want {
				t.Fatalf("error = %v, want code %q", err, tt.want)
			}
		})
	}
}

func TestFanoutLookups(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createGroup(t, "g1", groupcast.Public)
	const members = 30
	for i := range members - 1 {
		m := groupcast.Member{GroupID: "g1", UserID: fmt.Sprintf("u%02d", i), Role: groupcast.RoleMember, JoinedAt: t0}
		if err := e.store.AddMember(ctx, m, joinChange("g1", m.UserID, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	if err := e.store.ForEachGroupMemberID(ctx, "g1", func(batch []string) error { ids = append(ids, batch...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != members || !slices.Contains(ids, "owner") {
		t.Fatalf("member ids = %v, want %d including the owner", ids, members)
	}

	expires := t0.Add(7500 * time.Second)
	for i := range 40 { // more than one BatchWriteItem call
		c := groupcast.Connection{ID: fmt.Sprintf("c%02d", i), UserID: fmt.Sprintf("u%02d", i%2), ConnectedAt: t0}
		if err := e.store.PutConnection(ctx, c, expires); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.PutSubscriptions(ctx, c, []groupcast.SubscriptionTarget{{GroupID: "g1"}, {GroupID: "public"}}, expires); err != nil {
			t.Fatal(err)
		}
	}
	var conn dynamostore.ConnectionItem
	if !e.raw(t, "CONN#c00", "META", &conn) || conn.TTL != expires.Unix() {
		t.Fatalf("connection item = %+v, want ttl %d", conn, expires.Unix())
	}
	var sub dynamostore.SubscriptionItem
	if !e.raw(t, "CONN#c00", "SUB#g1", &sub) || sub.TTL != expires.Unix() || sub.GSI1PK != "SUBS#g1" {
		t.Fatalf("subscription item = %+v", sub)
	}
	count := func(group string) int {
		n := 0
		err := e.store.ForEachGroupSubscriber(ctx, group, func(subs []groupcast.Subscriber) error {
			for _, s := range subs {
				if s.ConnectionID == "" || s.UserID == "" {
					t.Errorf("incomplete subscriber %+v", s)
				}
			}
			n += len(subs)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count("g1"); n != 40 {
		t.Fatalf("subscribers of g1 = %d, want 40", n)
	}
	u0, err := e.store.UserConnectionIDs(ctx, "u00")
	if err != nil || len(u0) != 20 {
		t.Fatalf("connections of u00 = %d, %v; want 20", len(u0), err)
	}
	for _, id := range u0 {
		if err := e.store.DeleteConnection(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.DeleteConnection(ctx, "never-existed"); err != nil {
		t.Fatalf("deleting an unknown connection: %v", err)
	}
	if n := count("public"); n != 20 {
		t.Fatalf("public subscribers after deleting u00's connections = %d, want 20", n)
	}
	if ids, _ := e.store.UserConnectionIDs(ctx, "u00"); len(ids) != 0 {
		t.Fatalf("u00 still has connections %v", ids)
	}
}

func TestPutNotificationsIsIdempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var ns []groupcast.Notification
	for i := range 60 { // three BatchWriteItem calls
		ns = append(ns, groupcast.Notification{UserID: "bob", Envelope: groupcast.Envelope{ID: fmt.Sprintf("e%02d", i), Type: groupcast.EventInvitationReceived,
			GroupID: "g1", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), At: t0.Add(time.Duration(i) * time.Second)}})
	}
	for range 2 { // a redelivered stream batch writes the same entries again
		if err := e.store.PutNotifications(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	unread, err := e.store.CountUnread(ctx, "bob")
	if err != nil || unread != 60 {
		t.Fatalf("unread = %d, %v; want 60", unread, err)
	}
	page, err := e.store.ListNotifications(ctx, "bob", groupcast.PageRequest{Limit: 100})
	if err != nil || len(page.Items) != 60 || page.Items[0].ID != "e59" {
		t.Fatalf("inbox = %d items (first %+v), %v", len(page.Items), page.Items[0], err)
	}
	if got := string(page.Items[0].Data); got != `{"n":59}` {
		t.Fatalf("data = %s, want {\"n\":59}", got)
	}
	if err := e.store.MarkRead(ctx, "bob", nil); err != nil {
		t.Fatal(err)
	}
	var it dynamostore.NotificationItem
	if !e.raw(t, "USER#bob", "NOTIF#2026-11-29T10:00:59.000000000Z#e59", &it) {
		t.Fatal("notification item missing")
	}
	if !it.Read || it.GSI2PK != "" || it.GSI2SK != "" {
		t.Fatalf("read notification = %+v, want read without GSI2 keys", it)
	}
}

// TestIndexQueryPagesToTheEnd pages a GSI listing to its end. It covers a
// kumo/moto difference: DynamoDB (and moto) put the index keys in a GSI
// query's LastEvaluatedKey, kumo only the table keys, from which no next
// page can start; the store fills them in (queryPage). Passes on both.
func TestIndexQueryPagesToTheEnd(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	want := []string{"g1", "g2", "g3", "g4", "g5"}
	for _, id := range want {
		e.createGroup(t, id, groupcast.Public)
	}
	var got []string
	p := groupcast.PageRequest{Limit: 2}
	for range len(want) + 1 { // bounded: a cursor that never ends fails the test
		page, err := e.store.ListPublicGroups(ctx, p)
		if err != nil {
			t.Fatalf("page after %v: %v", got, err)
		}
		for _, g := range page.Items {
			got = append(got, g.ID)
		}
		if page.NextCursor == "" {
			break
		}
		p.Cursor = page.NextCursor
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("paged public groups = %v, want each of %v once", got, want)
	}
}
