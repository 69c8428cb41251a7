package groupcast_test

import (
	"context"
	"slices"
	"testing"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

func subscribed(t *testing.T, f fixture, cid, groupID string) bool {
	t.Helper()
	subs, err := f.store.Subscriptions(context.Background(), cid)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(subs, groupID)
}

// "*" follows membership: groups created, joined or accepted later are
// subscribed on the "*" connections, never on the others, and leave
// removes them.
func TestWildcardFollowsMembership(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// become makes bob a member of a new group and returns its id.
		become func(t *testing.T, f fixture) string
	}{
		{"create", func(t *testing.T, f fixture) string { return f.group(t, bob, "Bob's", groupcast.Private).ID }},
		{"join", func(t *testing.T, f fixture) string {
			g := f.group(t, alice, "Public", groupcast.Public)
			if _, err := f.svc.JoinGroup(ctx, bob, g.ID); err != nil {
				t.Fatal(err)
			}
			return g.ID
		}},
		{"accept", func(t *testing.T, f fixture) string {
			g := f.group(t, alice, "Private", groupcast.Private)
			if _, _, err := f.svc.Invite(ctx, alice, g.ID, []string{"bob"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.AnswerInvitation(ctx, bob, g.ID, true); err != nil {
				t.Fatal(err)
			}
			return g.ID
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, groupcast.ServiceConfig{})
			f.connectAs(t, "c-star", bob)
			f.connectAs(t, "c-plain", bob)
			f.connectAs(t, "c-stopped", bob)
			f.subscribe(t, "c-star", groupcast.SubscribeAllMine)
			f.subscribe(t, "c-plain", groupcast.SubscribePublic)
			f.subscribe(t, "c-stopped", groupcast.SubscribeAllMine)
			if _, err := f.svc.Unsubscribe(ctx, "c-stopped", []string{groupcast.SubscribeAllMine}); err != nil {
				t.Fatal(err)
			}
			gid := tt.become(t, f)
			if !subscribed(t, f, "c-star", gid) {
				t.Errorf("the \"*\" connection is not subscribed to the new group")
			}
			if subscribed(t, f, "c-plain", gid) || subscribed(t, f, "c-stopped", gid) {
				t.Errorf("a connection without \"*\" was subscribed to the new group")
			}
			if tt.name == "create" {
				return // the owner cannot leave
			}
			if err := f.svc.LeaveGroup(ctx, bob, gid); err != nil {
				t.Fatal(err)
			}
			if subscribed(t, f, "c-star", gid) {
				t.Errorf("still subscribed after leaving")
			}
		})
	}
}

// leaveBeforeFollow is a store on which the user leaves the group after
// the join committed and before the "*" connections are subscribed to it:
// the interleaving of a leave racing the join's follow-up.
type leaveBeforeFollow struct {
	*dynamostore.Store
	leave func(ctx context.Context) error
}

func (s leaveBeforeFollow) WildcardConnections(ctx context.Context, userID string) ([]groupcast.Connection, error) {
	if err := s.leave(ctx); err != nil {
		return nil, err
	}
	return s.Store.WildcardConnections(ctx, userID)
}

func TestWildcardFollowLosingTheRaceToLeaveSubscribesNothing(t *testing.T) {
	ctx := context.Background()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := groupcast.NewService(store, groupcast.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := plain.CreateGroup(ctx, alice, groupcast.CreateGroupInput{Name: "Public", Visibility: groupcast.Public})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Connect(ctx, groupcast.Connection{ID: "c-bob", UserID: "bob", DisplayName: "Bob"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := plain.Subscribe(ctx, "c-bob", []string{groupcast.SubscribeAllMine}); err != nil {
		t.Fatal(err)
	}
	racing, err := groupcast.NewService(leaveBeforeFollow{Store: store, leave: func(ctx context.Context) error {
		return plain.LeaveGroup(ctx, bob, g.ID)
	}}, groupcast.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := racing.JoinGroup(ctx, bob, g.ID); err != nil {
		t.Fatal(err)
	}
	if got := subscribers(t, store, g.ID); len(got) != 0 {
		t.Errorf("subscribers after the leave = %v, want none (the follow-up must check the membership)", got)
	}
}
