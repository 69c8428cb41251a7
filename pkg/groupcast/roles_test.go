package groupcast_test

import (
	"context"
	"slices"
	"testing"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// inboxOnly implements only the InboxStore role; the embedded nil Store
// makes any other store call panic, so these tests fail if an inbox use
// case starts to reach beyond its role.
type inboxOnly struct {
	groupcast.Store
	marked [][]string
}

func (f *inboxOnly) ListNotifications(context.Context, string, groupcast.PageRequest) (groupcast.Page[groupcast.Notification], error) {
	return groupcast.Page[groupcast.Notification]{Items: []groupcast.Notification{{Envelope: groupcast.Envelope{ID: "n1"}}}}, nil
}
func (f *inboxOnly) CountUnread(context.Context, string) (int, error) { return 1, nil }
func (f *inboxOnly) MarkRead(_ context.Context, _ string, ids []string) error {
	f.marked = append(f.marked, ids)
	return nil
}

func TestInboxUseCasesNeedOnlyTheInboxRole(t *testing.T) {
	tests := []struct {
		name       string
		run        func(*groupcast.Service) error
		wantMarked [][]string
	}{
		{"list", func(s *groupcast.Service) error {
			page, unread, err := s.ListNotifications(context.Background(), alice, groupcast.PageRequest{})
			if err == nil && (len(page.Items) != 1 || unread != 1) {
				t.Errorf("page %+v unread %d, want the fake's one item and count", page, unread)
			}
			return err
		}, nil},
		{"mark all", func(s *groupcast.Service) error {
			return s.MarkNotificationsRead(context.Background(), alice, nil, true)
		}, [][]string{nil}},
		{"mark some", func(s *groupcast.Service) error {
			return s.MarkNotificationsRead(context.Background(), alice, []string{"01JDQ4ZK3M8X9V7T6R5P4N3M2A"}, false)
		}, [][]string{{"01JDQ4ZK3M8X9V7T6R5P4N3M2A"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &inboxOnly{}
			svc, err := groupcast.NewService(fake, groupcast.ServiceConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.run(svc); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(fake.marked, tt.wantMarked, slices.Equal) {
				t.Errorf("marked %v, want %v", fake.marked, tt.wantMarked)
			}
		})
	}
}
