package groupcast_test

import (
	"context"
	"slices"
	"testing"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// leaveAfterCheck is a store on which the user leaves the group right after
// Subscribe has read the membership: the interleaving of a racing leave
// that the end-to-end race test hits by chance.
type leaveAfterCheck struct {
	*dynamostore.Store
	leave func(ctx context.Context) error
}

func (s leaveAfterCheck) Memberships(ctx context.Context, keys []groupcast.MemberKey) (map[groupcast.MemberKey]bool, error) {
	m, err := s.Store.Memberships(ctx, keys)
	if err != nil {
		return nil, err
	}
	return m, s.leave(ctx)
}

func (s leaveAfterCheck) UserGroupIDs(ctx context.Context, userID string) ([]string, error) {
	ids, err := s.Store.UserGroupIDs(ctx, userID)
	if err != nil {
		return nil, err
	}
	return ids, s.leave(ctx)
}

func TestSubscribeLosingTheRaceToLeaveSubscribesNothing(t *testing.T) {
	for _, target := range []string{"explicit", "*"} {
		t.Run(target, func(t *testing.T) {
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
			g, err := plain.CreateGroup(ctx, alice, groupcast.CreateGroupInput{Name: "Private", Visibility: groupcast.Private})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := plain.Invite(ctx, alice, g.ID, []string{"bob"}); err != nil {
				t.Fatal(err)
			}
			if _, err := plain.AnswerInvitation(ctx, bob, g.ID, true); err != nil {
				t.Fatal(err)
			}
			if err := plain.Connect(ctx, groupcast.Connection{ID: "c-bob", UserID: "bob", DisplayName: "Bob"}); err != nil {
				t.Fatal(err)
			}
			racing, err := groupcast.NewService(leaveAfterCheck{Store: store, leave: func(ctx context.Context) error {
				return plain.LeaveGroup(ctx, bob, g.ID)
			}}, groupcast.ServiceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			id := g.ID
			if target == "*" {
				id = groupcast.SubscribeAllMine
			}
			acc, rej, err := racing.Subscribe(ctx, "c-bob", []string{id})
			if err != nil {
				t.Fatal(err)
			}
			want := []groupcast.SubscriptionRejection{{GroupID: g.ID, Reason: "not_found"}}
			if len(acc) != 0 || !slices.Equal(rej, want) {
				t.Errorf("accepted %v rejected %+v, want only %+v", acc, rej, want)
			}
			if got := subscribers(t, store, g.ID); len(got) != 0 {
				t.Errorf("subscribers after the leave = %v, want none", got)
			}
		})
	}
}
