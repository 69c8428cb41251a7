package dynamostore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// StreamEvents reads only the stream's event items (the group partition
// also holds META, MEMBER# and POST# items), strictly after the given
// sequence id, oldest first, at most limit of them.
func TestStreamEvents(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	g := groupcast.Group{ID: "g1", Name: "G", Visibility: groupcast.Public, OwnerID: "owner", MemberCount: 1, CreatedAt: t0}
	if err := e.store.CreateGroup(ctx, g, groupcast.Member{GroupID: "g1", UserID: "owner", Role: groupcast.RoleOwner, JoinedAt: t0}, stamp(groupcast.GroupCreatedEvent(g))); err != nil {
		t.Fatal(err)
	}
	var seqsOf []string
	for i := range 5 {
		p := groupcast.Post{ID: fmt.Sprintf("01TEST%020d", i+1), GroupID: "g1", AuthorID: "owner", Content: "x", CreatedAt: t0}
		ev := stamp(groupcast.PostCreatedEvent(p))
		if err := e.store.PutPost(ctx, p, ev); err != nil {
			t.Fatal(err)
		}
		seqsOf = append(seqsOf, ev.Seq)
	}
	tests := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"from the start", "00000000000000000000000000", 10, seqsOf},
		{"strictly after a sequence id", seqsOf[1], 10, seqsOf[2:]},
		{"at most limit", seqsOf[0], 2, seqsOf[1:3]},
		{"after the last", seqsOf[4], 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := e.store.StreamEvents(ctx, groupcast.StreamGroup, "g1", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				if d.Envelope.Type != groupcast.EventPostCreated || d.Envelope.Stream != "group:g1" {
					t.Errorf("read %+v, want only the group's post events", d.Envelope)
				}
				got = append(got, d.Envelope.Position)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("positions %v, want %v", got, tt.want)
			}
		})
	}
}
