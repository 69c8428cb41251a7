package stack_test

import (
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/groupcast/groupcast/pkg/client"
)

// drain collects the events that arrive on c until none has come for quiet.
func drain(c *client.Conn, quiet time.Duration) []client.Event {
	var out []client.Event
	for {
		select {
		case ev := <-c.Events():
			out = append(out, ev.Event)
		case <-time.After(quiet):
			return out
		}
	}
}

// TestReconnectResumesEveryMissedEvent: a user's socket drops; meanwhile
// others post, leave, create a public group and invite the user. The user
// reconnects with its last positions and receives each missed event once,
// with the ids live pushes carry, in stream order; then live events go on.
func TestReconnectResumesEveryMissedEvent(t *testing.T) {
	s := shared
	ctx := testContext(t)
	a, b, c := newUser(t, s, "a"), newUser(t, s, "b"), newUser(t, s, "c")
	g := groupWith(t, b, "public", a, c)

	ca := a.connect(t, s)
	r, err := ca.Request(ctx, map[string]any{"action": "subscribe", "requestId": "first", "groupIds": []string{"*", "public"}})
	if err != nil || r.Type != "subscribed" || r.RequestID != "first" {
		t.Fatalf("subscribe: %v %+v", err, r)
	}
	positions := maps.Clone(r.Positions)
	for _, name := range []string{"user", "public", "group:" + g.GroupID} {
		if positions[name] == "" {
			t.Fatalf("subscribe reply positions %v lack %s", positions, name)
		}
	}
	// One live post, so a has seen an event and holds its position.
	seen := map[string]bool{}
	live, err := b.CreatePost(ctx, g.GroupID, "before the drop")
	if err != nil {
		t.Fatal(err)
	}
	ev := awaitMatching(t, ca, "group.post_created", `"postId":"`+live.PostID+`"`)
	if ev.Stream != "group:"+g.GroupID || ev.Position == "" {
		t.Fatalf("live event stream %q position %q", ev.Stream, ev.Position)
	}
	seen[ev.ID] = true
	positions[ev.Stream] = ev.Position
	if err := ca.Close(); err != nil {
		t.Fatal(err)
	}

	// While a is away.
	p1, err := b.CreatePost(ctx, g.GroupID, "missed one")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := b.CreatePost(ctx, g.GroupID, "missed two")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, http.MethodDelete, "/groups/"+g.GroupID+"/members/me", nil, nil); err != nil {
		t.Fatal(err)
	}
	pub, err := b.CreateGroup(ctx, "new public group", "", "public")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := b.CreateGroup(ctx, "new private group", "", "private")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Invite(ctx, priv.GroupID, a.ID); err != nil {
		t.Fatal(err)
	}

	ca2 := a.connect(t, s)
	r, err = ca2.Request(ctx, map[string]any{"action": "subscribe", "requestId": "again", "groupIds": []string{"*", "public"}, "positions": positions})
	if err != nil || r.Type != "subscribed" || r.RequestID != "again" {
		t.Fatalf("resubscribe: %v %+v", err, r)
	}
	for name, ok := range r.Recovered {
		if !ok {
			t.Errorf("stream %s not recovered", name)
		}
	}
	if len(r.Recovered) != len(positions) {
		t.Errorf("recovered %v, want one entry per position %v", r.Recovered, positions)
	}
	// The replay is pushed before the reply; anything else arriving now
	// would be a duplicate or a stray.
	replayed := drain(ca2, 2*time.Second)
	// An event committed just before the reconnect may also reach the new
	// socket live while it is replayed (the subscription is written before
	// history is read, so there is no gap): a repeat carries the same id,
	// and the client drops it, as this test does. Order is checked on first
	// arrivals.
	count := map[string]int{}
	var fresh []client.Event // not seen before the drop
	last := map[string]string{}
	repeats := 0
	for _, e := range replayed {
		if count[e.ID] > 0 {
			repeats++
			continue
		}
		count[e.ID]++
		if p := last[e.Stream]; e.Position <= p {
			t.Errorf("%s: position %s after %s, out of order", e.Stream, e.Position, p)
		}
		last[e.Stream] = e.Position
		if !seen[e.ID] {
			fresh = append(fresh, e)
		}
	}
	if repeats > 0 {
		t.Logf("%d events arrived both live and replayed (same ids)", repeats)
	}
	want := []struct{ typ, stream, frag string }{
		{"group.post_created", "group:" + g.GroupID, `"postId":"` + p1.PostID + `"`},
		{"group.post_created", "group:" + g.GroupID, `"postId":"` + p2.PostID + `"`},
		{"group.member_left", "group:" + g.GroupID, `"userId":"` + c.ID + `"`},
		{"group.created", "public", `"groupId":"` + pub.GroupID + `"`},
		{"invitation.received", "user", `"groupId":"` + priv.GroupID + `"`},
	}
	for _, w := range want {
		var found []client.Event
		for _, e := range fresh {
			if e.Type == w.typ && e.Stream == w.stream && containsJSON(e.Data, w.frag) {
				found = append(found, e)
			}
		}
		if len(found) != 1 || count[found[0].ID] != 1 {
			t.Errorf("missed %s %s: replayed %d times (%+v), want exactly once", w.typ, w.frag, len(found), found)
		}
	}
	// The post that came live before the drop may come again (the margin)
	// with its id, and nothing of the private group leaks to the public feed.
	for _, e := range replayed {
		if e.GroupID == priv.GroupID && e.Type != "invitation.received" {
			t.Errorf("replayed %+v of a private group a is not in", e)
		}
	}
	// Live events continue on the new socket.
	p3, err := b.CreatePost(ctx, g.GroupID, "after the reconnect")
	if err != nil {
		t.Fatal(err)
	}
	awaitMatching(t, ca2, "group.post_created", `"postId":"`+p3.PostID+`"`)
	if slices.ContainsFunc(replayed, func(e client.Event) bool { return e.Position == "" }) {
		t.Errorf("a replayed event has no position")
	}
}

// TestWildcardFollowsMembershipLive: a connection subscribed with "*"
// receives posts of a group the user joins, and of one it accepts an
// invitation to, without subscribing again; after leaving, nothing more.
func TestWildcardFollowsMembershipLive(t *testing.T) {
	s := shared
	ctx := testContext(t)
	a, b := newUser(t, s, "a"), newUser(t, s, "b")
	ca := a.connect(t, s)
	if r, err := ca.Subscribe(ctx, "*"); err != nil || r.Type != "subscribed" {
		t.Fatalf("subscribe *: %v %+v", err, r)
	}
	pub := groupWith(t, b, "public", a)
	priv := groupWith(t, b, "private")
	if _, err := b.Invite(ctx, priv.GroupID, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.AnswerInvitation(ctx, priv.GroupID, true); err != nil {
		t.Fatal(err)
	}
	for _, g := range []client.Group{pub, priv} {
		p, err := b.CreatePost(ctx, g.GroupID, "to the joiner")
		if err != nil {
			t.Fatal(err)
		}
		awaitMatching(t, ca, "group.post_created", `"postId":"`+p.PostID+`"`)
	}
	if err := a.Do(ctx, http.MethodDelete, "/groups/"+pub.GroupID+"/members/me", nil, nil); err != nil {
		t.Fatal(err)
	}
	after, err := b.CreatePost(ctx, pub.GroupID, "after the leave")
	if err != nil {
		t.Fatal(err)
	}
	// A later post in the other group proves delivery ran past the first.
	marker, err := b.CreatePost(ctx, priv.GroupID, "marker")
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev := awaitEvent(t, ca, "group.post_created")
		if containsJSON(ev.Data, `"postId":"`+after.PostID+`"`) {
			t.Fatalf("post after the leave reached the ex-member")
		}
		if containsJSON(ev.Data, `"postId":"`+marker.PostID+`"`) {
			break
		}
	}
}
