package groupcast_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// peek reads the clock without advancing it.
func (c *clock) peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// historyFixture is a fixture whose sequence ids follow the test clock, so
// positions and retention can be tested with moved time.
func historyFixture(t *testing.T, cfg groupcast.ServiceConfig) fixture {
	t.Helper()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	entropy := ulid.Monotonic(rand.Reader, 0)
	cfg.Now = clk.Now
	cfg.NewID = func() string {
		mu.Lock()
		defer mu.Unlock()
		return ulid.MustNew(ulid.Timestamp(clk.peek()), entropy).String()
	}
	if cfg.PostsPerMinute == 0 {
		cfg.PostsPerMinute = 1000 // the cap case posts 101 times
	}
	svc, err := groupcast.NewService(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, store: store, clock: clk, groupIDs: map[string]string{}}
}

func (f fixture) advance(d time.Duration) { f.clock.Set(f.clock.peek().Add(d)) }

func (f fixture) connectAs(t *testing.T, cid string, c groupcast.Caller) {
	t.Helper()
	f.connect(t, groupcast.Connection{ID: cid, UserID: c.UserID, DisplayName: c.DisplayName})
}

func (f fixture) post(t *testing.T, c groupcast.Caller, groupID, content string) groupcast.Post {
	t.Helper()
	p, err := f.svc.CreatePost(context.Background(), c, groupID, content)
	if err != nil {
		t.Fatalf("post %q: %v", content, err)
	}
	return p
}

// replayedPosts lists the post ids of the replayed post events, in order.
func replayedPosts(t *testing.T, evs []groupcast.Envelope) []string {
	t.Helper()
	var ids []string
	for _, e := range evs {
		if e.Type == groupcast.EventPostCreated {
			var d groupcast.PostCreatedData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, d.PostID)
		}
	}
	return ids
}

func onlyStream(t *testing.T, r groupcast.Replay, name string) groupcast.StreamReplay {
	t.Helper()
	if len(r.Streams) != 1 || r.Streams[0].Stream != name {
		t.Fatalf("replay streams = %+v, want only %s", r.Streams, name)
	}
	return r.Streams[0]
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, f fixture)
	}{
		{"replays what came after the position, in order, with the live ids and positions", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Public", groupcast.Public)
			f.advance(time.Minute) // the group's creation lies beyond the margin
			f.connectAs(t, "c-bob", bob)
			pos := groupcast.PositionAt(f.clock.peek())
			f.advance(time.Minute)
			var want []string
			for _, c := range []string{"one", "two", "three"} {
				want = append(want, f.post(t, alice, g.ID, c).ID)
			}
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			s := onlyStream(t, r, "group:"+g.ID)
			if !s.Recovered || !slices.Equal(replayedPosts(t, s.Events), want) || len(s.Events) != 3 {
				t.Fatalf("replay = %+v, want recovered posts %v", s, want)
			}
			for _, e := range s.Events {
				if e.Stream != "group:"+g.ID || groupcast.ValidateULID("position", e.Position) != nil || e.Position <= pos {
					t.Errorf("event %s: stream %q position %q, want group:%s and a position after %s", e.ID, e.Stream, e.Position, g.ID, pos)
				}
			}
			if !slices.IsSortedFunc(s.Events, func(a, b groupcast.Envelope) int { return cmpString(a.Position, b.Position) }) {
				t.Errorf("events not in position order: %+v", s.Events)
			}
		}},
		{"reads from the margin before the position (commit skew)", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Public", groupcast.Public)
			f.advance(time.Minute)
			old := f.post(t, alice, g.ID, "twenty seconds before")
			f.advance(10 * time.Second)
			near := f.post(t, alice, g.ID, "ten seconds before")
			f.advance(10 * time.Second)
			f.connectAs(t, "c-bob", bob)
			// A client that saw a later position may have missed "near" if it
			// committed late; it comes again, "old" does not.
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{groupcast.GroupStreamName(g.ID): groupcast.PositionAt(f.clock.peek())})
			if err != nil {
				t.Fatal(err)
			}
			s := onlyStream(t, r, "group:"+g.ID)
			if got := replayedPosts(t, s.Events); !s.Recovered || !slices.Equal(got, []string{near.ID}) {
				t.Errorf("replayed posts %v (recovered %v), want only %s (not %s)", got, s.Recovered, near.ID, old.ID)
			}
		}},
		{"more than the cap answers recovered false and replays nothing", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Public", groupcast.Public)
			f.advance(time.Minute)
			f.connectAs(t, "c-bob", bob)
			pos := groupcast.PositionAt(f.clock.peek())
			f.advance(time.Minute)
			for range groupcast.MaxReplayPerStream + 1 {
				f.post(t, alice, g.ID, "flood")
			}
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "group:"+g.ID); s.Recovered || len(s.Events) != 0 {
				t.Errorf("replay = recovered %v with %d events, want recovered false and none", s.Recovered, len(s.Events))
			}
		}},
		{"exactly the cap is recovered", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Public", groupcast.Public)
			f.advance(time.Minute)
			f.connectAs(t, "c-bob", bob)
			pos := groupcast.PositionAt(f.clock.peek())
			f.advance(time.Minute)
			for range groupcast.MaxReplayPerStream {
				f.post(t, alice, g.ID, "busy")
			}
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "group:"+g.ID); !s.Recovered || len(s.Events) != groupcast.MaxReplayPerStream {
				t.Errorf("replay = recovered %v with %d events, want all %d", s.Recovered, len(s.Events), groupcast.MaxReplayPerStream)
			}
		}},
		{"a position older than the retention answers recovered false", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Public", groupcast.Public)
			f.connectAs(t, "c-bob", bob)
			pos := groupcast.PositionAt(f.clock.peek())
			f.post(t, alice, g.ID, "long ago")
			f.advance(groupcast.DefaultEventRetention)
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "group:"+g.ID); s.Recovered || len(s.Events) != 0 {
				t.Errorf("replay = %+v, want recovered false", s)
			}
		}},
		{"a private group's history only to members", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Private", groupcast.Private)
			f.connectAs(t, "c-carol", carol)
			pos := groupcast.PositionAt(f.clock.peek())
			f.post(t, alice, g.ID, "members only")
			r, err := f.svc.Resume(ctx, "c-carol", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "group:"+g.ID); s.Recovered || len(s.Events) != 0 {
				t.Errorf("non-member replay = %+v, want recovered false and nothing", s)
			}
		}},
		{"a member who left gets no more of a private group", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Private", groupcast.Private)
			if _, _, err := f.svc.Invite(ctx, alice, g.ID, []string{"bob"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.AnswerInvitation(ctx, bob, g.ID, true); err != nil {
				t.Fatal(err)
			}
			f.connectAs(t, "c-bob", bob)
			pos := groupcast.PositionAt(f.clock.peek())
			f.post(t, alice, g.ID, "before the leave")
			if err := f.svc.LeaveGroup(ctx, bob, g.ID); err != nil {
				t.Fatal(err)
			}
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "group:"+g.ID); s.Recovered || len(s.Events) != 0 {
				t.Errorf("ex-member replay = %+v, want recovered false and nothing", s)
			}
		}},
		{"the author's own posts are not replayed to the author, as live", func(t *testing.T, f fixture) {
			g := f.group(t, alice, "Public", groupcast.Public)
			f.advance(time.Minute)
			f.connectAs(t, "c-alice", alice)
			pos := groupcast.PositionAt(f.clock.peek())
			f.post(t, alice, g.ID, "mine")
			r, err := f.svc.Resume(ctx, "c-alice", groupcast.Positions{groupcast.GroupStreamName(g.ID): pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "group:"+g.ID); !s.Recovered || len(s.Events) != 0 {
				t.Errorf("author replay = %+v, want recovered with nothing", s)
			}
		}},
		{"user and public streams", func(t *testing.T, f fixture) {
			f.connectAs(t, "c-bob", bob)
			pos := groupcast.PositionAt(f.clock.peek())
			g := f.group(t, alice, "Private", groupcast.Private)
			pub := f.group(t, carol, "Public", groupcast.Public)
			if _, _, err := f.svc.Invite(ctx, alice, g.ID, []string{"bob"}); err != nil {
				t.Fatal(err)
			}
			r, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{"user": pos, "public": pos})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Streams) != 2 || r.Streams[0].Stream != "public" || r.Streams[1].Stream != "user" {
				t.Fatalf("streams = %+v, want public and user", r.Streams)
			}
			if evs := r.Streams[0].Events; len(evs) != 1 || evs[0].Type != groupcast.EventGroupCreated || evs[0].GroupID != pub.ID || evs[0].Stream != "public" {
				t.Errorf("public replay = %+v, want %s's group.created only (not the private group)", evs, pub.ID)
			}
			if evs := r.Streams[1].Events; len(evs) != 1 || evs[0].Type != groupcast.EventInvitationReceived || evs[0].Stream != "user" {
				t.Errorf("user replay = %+v, want the invitation", evs)
			}
		}},
		{"another user's stream is not readable: user is always the caller's own", func(t *testing.T, f fixture) {
			f.connectAs(t, "c-carol", carol)
			pos := groupcast.PositionAt(f.clock.peek())
			g := f.group(t, alice, "Private", groupcast.Private)
			if _, _, err := f.svc.Invite(ctx, alice, g.ID, []string{"bob"}); err != nil {
				t.Fatal(err)
			}
			r, err := f.svc.Resume(ctx, "c-carol", groupcast.Positions{"user": pos})
			if err != nil {
				t.Fatal(err)
			}
			if s := onlyStream(t, r, "user"); !s.Recovered || len(s.Events) != 0 {
				t.Errorf("carol's user replay = %+v, want nothing of bob's", s)
			}
		}},
		{"a position in the future is refused", func(t *testing.T, f fixture) {
			f.connectAs(t, "c-bob", bob)
			_, err := f.svc.Resume(ctx, "c-bob", groupcast.Positions{"user": groupcast.PositionAt(f.clock.peek().Add(time.Hour))})
			if groupcast.ErrorCode(err) != groupcast.CodeInvalid {
				t.Errorf("err = %v, want invalid", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, historyFixture(t, groupcast.ServiceConfig{}))
		})
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestValidatePositions(t *testing.T) {
	const ok = "01JDQ4ZK3M8X9V7T6R5P4N3M2A"
	tests := []struct {
		name  string
		p     groupcast.Positions
		valid bool
	}{
		{"user, public and a group", groupcast.Positions{"user": ok, "public": ok, "group:g1": ok}, true},
		{"none", nil, true},
		{"garbage", groupcast.Positions{"user": "garbage"}, false},
		{"lower case", groupcast.Positions{"user": "01jdq4zk3m8x9v7t6r5p4n3m2a"}, false},
		{"an event id", groupcast.Positions{"user": "96471733c7244900d56ece61cf148caa"}, false},
		{"too long", groupcast.Positions{"user": ok + "A"}, false},
		{"a letter Crockford excludes", groupcast.Positions{"user": "01JDQ4ZK3M8X9V7T6R5P4N3M2U"}, false},
		{"time overflow", groupcast.Positions{"user": "81JDQ4ZK3M8X9V7T6R5P4N3M2A"}, false},
		{"unknown stream", groupcast.Positions{"users": ok}, false},
		{"empty group", groupcast.Positions{"group:": ok}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := groupcast.ValidatePositions(tt.p)
			if (err == nil) != tt.valid || (err != nil && groupcast.ErrorCode(err) != groupcast.CodeInvalid) {
				t.Errorf("ValidatePositions(%v) = %v, want valid %v", tt.p, err, tt.valid)
			}
		})
	}
}
