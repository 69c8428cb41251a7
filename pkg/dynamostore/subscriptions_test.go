package dynamostore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

func (e env) join(t *testing.T, groupID, userID string) {
	t.Helper()
	m := groupcast.Member{GroupID: groupID, UserID: userID, Role: groupcast.RoleMember, JoinedAt: t0}
	g, err := e.store.GetGroup(context.Background(), groupID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AddMember(context.Background(), m, joinChange(groupID, userID, g.MemberCount)); err != nil {
		t.Fatal(err)
	}
}

func (e env) connect(t *testing.T, connID, userID string) groupcast.Connection {
	t.Helper()
	c := groupcast.Connection{ID: connID, UserID: userID, ConnectedAt: t0}
	if err := e.store.PutConnection(context.Background(), c, t0.Add(7500e9)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e env) subscriptions(t *testing.T, connID string) []string {
	t.Helper()
	subs, err := e.store.Subscriptions(context.Background(), connID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(subs)
	return subs
}

func TestPutSubscriptionsChecksMembership(t *testing.T) {
	// 60 private groups of which bob is a member of the even ones: more
	// than one transaction's worth (50 guarded subscriptions per call).
	many, manyMember := []groupcast.SubscriptionTarget{}, []string{}
	for i := range 60 {
		id := fmt.Sprintf("m%02d", i)
		many = append(many, groupcast.SubscriptionTarget{GroupID: id, RequireMembership: true})
		if i%2 == 0 {
			manyMember = append(manyMember, id)
		}
	}
	tests := []struct {
		name        string
		member      []string // groups bob is a member of
		targets     []groupcast.SubscriptionTarget
		wantSubs    []string
		wantRefused []string
	}{
		{
			name: "member", member: []string{"p1"},
			targets:  []groupcast.SubscriptionTarget{{GroupID: "p1", RequireMembership: true}},
			wantSubs: []string{"p1"},
		},
		{
			name:        "not a member",
			targets:     []groupcast.SubscriptionTarget{{GroupID: "p1", RequireMembership: true}},
			wantRefused: []string{"p1"},
		},
		{
			name: "mixed", member: []string{"p1"},
			targets: []groupcast.SubscriptionTarget{
				{GroupID: "p1", RequireMembership: true}, {GroupID: "p2", RequireMembership: true},
				{GroupID: "pub"}, {GroupID: "public"},
			},
			wantSubs: []string{"p1", "pub", "public"}, wantRefused: []string{"p2"},
		},
		{
			name: "several transactions", member: manyMember, targets: many,
			wantSubs: manyMember, wantRefused: slices.DeleteFunc(slices.Clone(groupIDs(many)), func(id string) bool { return slices.Contains(manyMember, id) }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			for _, g := range tt.targets {
				if g.RequireMembership {
					e.createGroup(t, g.GroupID, groupcast.Private)
				}
			}
			for _, g := range tt.member {
				e.join(t, g, "bob")
			}
			c := e.connect(t, "cb", "bob")
			refused, err := e.store.PutSubscriptions(ctx, c, tt.targets, t0.Add(7500e9))
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(refused)
			if !slices.Equal(refused, tt.wantRefused) {
				t.Errorf("refused %v, want %v", refused, tt.wantRefused)
			}
			if got := e.subscriptions(t, "cb"); !slices.Equal(got, tt.wantSubs) {
				t.Errorf("subscriptions %v, want %v", got, tt.wantSubs)
			}
		})
	}
}

func groupIDs(ts []groupcast.SubscriptionTarget) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.GroupID
	}
	return out
}

func TestUnsubscribeUserReachesEveryConnection(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	targets := []groupcast.SubscriptionTarget{{GroupID: "g1"}, {GroupID: "g2"}}
	for _, id := range []string{"c1", "c2"} {
		if _, err := e.store.PutSubscriptions(ctx, e.connect(t, id, "bob"), targets, t0.Add(7500e9)); err != nil {
			t.Fatal(err)
		}
	}
	var entry dynamostore.UserConnectionItem
	if !e.raw(t, "USER#bob", "CONN#c1", &entry) || entry.ConnectionID != "c1" || entry.TTL == 0 {
		t.Fatalf("connection entry under the user = %+v", entry)
	}
	// A connection stored before connection entries existed: only the
	// connection item, found through GSI1.
	legacy := dynamostore.ConnectionItem{
		PK: "CONN#old", SK: "META", GSI1PK: "USER#bob", GSI1SK: "CONN#old", Type: dynamostore.TypeConnection,
		ConnectionID: "old", UserID: "bob", ConnectedAt: t0, TTL: t0.Add(7500e9).Unix(),
	}
	av, err := attributevalue.MarshalMap(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: av}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutSubscriptions(ctx, groupcast.Connection{ID: "old", UserID: "bob"}, targets, t0.Add(7500e9)); err != nil {
		t.Fatal(err)
	}
	// Another user's subscription to the same group stays.
	if _, err := e.store.PutSubscriptions(ctx, e.connect(t, "ca", "alice"), targets, t0.Add(7500e9)); err != nil {
		t.Fatal(err)
	}

	if err := e.store.UnsubscribeUser(ctx, "bob", "g1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2", "old"} {
		if got := e.subscriptions(t, id); !slices.Equal(got, []string{"g2"}) {
			t.Errorf("subscriptions of %s = %v, want [g2]", id, got)
		}
	}
	if got := e.subscriptions(t, "ca"); !slices.Equal(got, []string{"g1", "g2"}) {
		t.Errorf("alice's subscriptions = %v, want both", got)
	}

	if err := e.store.DeleteConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if e.raw(t, "USER#bob", "CONN#c1", &entry) {
		t.Error("connection entry under the user outlived the connection")
	}
}
