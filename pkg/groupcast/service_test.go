package groupcast_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

var (
	alice = groupcast.Caller{UserID: "alice", DisplayName: "Alice"}
	bob   = groupcast.Caller{UserID: "bob", DisplayName: "Bob"}
	carol = groupcast.Caller{UserID: "carol", DisplayName: "Carol"}
)

// clock is a settable test clock; each reading advances it by a millisecond
// so consecutive writes have distinct, increasing times.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	svc   *groupcast.Service
	store *dynamostore.Store
	clock *clock
}

func newFixture(t *testing.T, cfg groupcast.ServiceConfig) fixture {
	t.Helper()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	svc, err := groupcast.NewService(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, store: store, clock: clk}
}

func (f fixture) group(t *testing.T, owner groupcast.Caller, name string, v groupcast.Visibility) groupcast.Group {
	t.Helper()
	g, err := f.svc.CreateGroup(context.Background(), owner, groupcast.CreateGroupInput{Name: name, Visibility: v})
	if err != nil {
		t.Fatalf("create group %s: %v", name, err)
	}
	return g
}

func wantCode(t *testing.T, err error, want groupcast.Code) {
	t.Helper()
	if got := groupcast.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

func TestGroupsVisibilityAndMembership(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{})
	pub := f.group(t, alice, "  Hikers  ", groupcast.Public)
	priv := f.group(t, alice, "Secret", groupcast.Private)
	if pub.Name != "Hikers" || pub.MemberCount != 1 || pub.OwnerID != "alice" {
		t.Fatalf("created group = %+v", pub)
	}

	tests := []struct {
		name   string
		caller groupcast.Caller
		id     string
		want   groupcast.Code
	}{
		{"member sees private", alice, priv.ID, ""},
		{"non-member cannot see private", bob, priv.ID, groupcast.CodeNotFound},
		{"anyone sees public", bob, pub.ID, ""},
		{"missing group", bob, "nope", groupcast.CodeNotFound},
		{"malformed id", bob, "a#b", groupcast.CodeInvalid},
		{"no identity", groupcast.Caller{}, pub.ID, groupcast.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.GetGroup(ctx, tt.caller, tt.id)
			wantCode(t, err, tt.want)
		})
	}

	joins := []struct {
		name   string
		caller groupcast.Caller
		id     string
		want   groupcast.Code
	}{
		{"join public", bob, pub.ID, ""},
		{"join twice", bob, pub.ID, groupcast.CodeConflict},
		{"join private", bob, priv.ID, groupcast.CodeForbidden},
		{"join missing", bob, "nope", groupcast.CodeNotFound},
	}
	for _, tt := range joins {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.JoinGroup(ctx, tt.caller, tt.id)
			wantCode(t, err, tt.want)
		})
	}
	g, err := f.svc.GetGroup(ctx, bob, pub.ID)
	if err != nil || g.MemberCount != 2 {
		t.Fatalf("after join: %+v, %v; want memberCount 2", g, err)
	}

	leaves := []struct {
		name   string
		caller groupcast.Caller
		id     string
		want   groupcast.Code
	}{
		{"owner cannot leave", alice, pub.ID, groupcast.CodeConflict},
		{"member leaves", bob, pub.ID, ""},
		{"leave when not a member", bob, pub.ID, groupcast.CodeNotFound},
		{"leave invisible private", bob, priv.ID, groupcast.CodeNotFound},
	}
	for _, tt := range leaves {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, f.svc.LeaveGroup(ctx, tt.caller, tt.id), tt.want)
		})
	}
	if g, _ := f.store.GetGroup(ctx, pub.ID); g.MemberCount != 1 {
		t.Fatalf("after leave memberCount = %d, want 1", g.MemberCount)
	}

	if _, err := f.svc.ListMembers(ctx, bob, priv.ID, groupcast.PageRequest{}); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("non-member lists private members: %v", err)
	}
	members, err := f.svc.ListMembers(ctx, alice, priv.ID, groupcast.PageRequest{})
	if err != nil || len(members.Items) != 1 || members.Items[0].Role != groupcast.RoleOwner {
		t.Fatalf("members of private = %+v, %v", members, err)
	}
}

// collect pages through a listing and returns every item's id.
func collect[T any](t *testing.T, limit int, list func(groupcast.PageRequest) (groupcast.Page[T], error), id func(T) string) []string {
	t.Helper()
	var ids []string
	p := groupcast.PageRequest{Limit: limit}
	for range 100 {
		page, err := list(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > limit {
			t.Fatalf("page of %d items, limit %d", len(page.Items), limit)
		}
		for _, it := range page.Items {
			ids = append(ids, id(it))
		}
		if page.NextCursor == "" {
			return ids
		}
		p.Cursor = page.NextCursor
	}
	t.Fatal("pagination did not end")
	return nil
}

func TestListGroupsPaginates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{})
	var public, mine []string
	for i := range 5 {
		g := f.group(t, alice, fmt.Sprintf("public %d", i), groupcast.Public)
		public = append([]string{g.ID}, public...) // newest first
	}
	priv := f.group(t, bob, "bob's private", groupcast.Private)
	if _, err := f.svc.JoinGroup(ctx, bob, public[4]); err != nil {
		t.Fatal(err)
	}
	mine = []string{public[4], priv.ID} // most recently joined first
	groupID := func(g groupcast.Group) string { return g.ID }

	tests := []struct {
		name   string
		caller groupcast.Caller
		scope  groupcast.GroupScope
		want   []string
	}{
		{"public newest first, private excluded", carol, groupcast.ScopePublic, public},
		{"mine", bob, groupcast.ScopeMine, mine},
		{"mine, none", carol, groupcast.ScopeMine, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, 2, func(p groupcast.PageRequest) (groupcast.Page[groupcast.Group], error) {
				return f.svc.ListGroups(ctx, tt.caller, tt.scope, p)
			}, groupID)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("groups = %v, want %v", got, tt.want)
			}
		})
	}

	bad := []struct {
		name  string
		scope groupcast.GroupScope
		p     groupcast.PageRequest
	}{
		{"unknown scope", "all", groupcast.PageRequest{}},
		{"limit too large", groupcast.ScopePublic, groupcast.PageRequest{Limit: 101}},
		{"garbage cursor", groupcast.ScopePublic, groupcast.PageRequest{Cursor: "!!!"}},
		{"cursor of another listing", groupcast.ScopePublic, groupcast.PageRequest{Cursor: mineCursor(t, f, bob)}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.ListGroups(ctx, bob, tt.scope, tt.p)
			wantCode(t, err, groupcast.CodeInvalid)
		})
	}
}

func mineCursor(t *testing.T, f fixture, c groupcast.Caller) string {
	t.Helper()
	page, err := f.svc.ListGroups(context.Background(), c, groupcast.ScopeMine, groupcast.PageRequest{Limit: 1})
	if err != nil || page.NextCursor == "" {
		t.Fatalf("need a cursor of %s's groups: %+v, %v", c.UserID, page, err)
	}
	return page.NextCursor
}

func TestPosts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{})
	pub := f.group(t, alice, "Public", groupcast.Public)
	priv := f.group(t, alice, "Private", groupcast.Private)

	var ids []string
	for i := range 5 {
		p, err := f.svc.CreatePost(ctx, alice, pub.ID, fmt.Sprintf("  post %d  ", i))
		if err != nil {
			t.Fatal(err)
		}
		if p.Content != fmt.Sprintf("post %d", i) || p.AuthorName != "Alice" {
			t.Fatalf("post = %+v", p)
		}
		ids = append(ids, p.ID)
	}
	postID := func(p groupcast.Post) string { return p.ID }
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	lists := []struct {
		name  string
		after string
		want  []string
	}{
		{"all newest first", "", newestFirst},
		{"after the second", ids[1], []string{ids[4], ids[3], ids[2]}},
		{"after the newest", ids[4], nil},
	}
	for _, tt := range lists {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(t, 2, func(p groupcast.PageRequest) (groupcast.Page[groupcast.Post], error) {
				return f.svc.ListPosts(ctx, bob, pub.ID, p, tt.after)
			}, postID)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("posts = %v, want %v", got, tt.want)
			}
		})
	}

	creates := []struct {
		name    string
		caller  groupcast.Caller
		group   string
		content string
		want    groupcast.Code
	}{
		{"non-member of public group", bob, pub.ID, "hi", groupcast.CodeForbidden},
		{"non-member of private group", bob, priv.ID, "hi", groupcast.CodeNotFound},
		{"missing group", alice, "nope", "hi", groupcast.CodeNotFound},
		{"blank content", alice, pub.ID, "   ", groupcast.CodeInvalid},
		{"invalid utf-8", alice, pub.ID, "a\xffb", groupcast.CodeInvalid},
		{"member of private group", alice, priv.ID, "hi", ""},
	}
	for _, tt := range creates {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.CreatePost(ctx, tt.caller, tt.group, tt.content)
			wantCode(t, err, tt.want)
		})
	}
	if _, err := f.svc.ListPosts(ctx, bob, priv.ID, groupcast.PageRequest{}, ""); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("non-member lists private posts: %v", err)
	}
	page, err := f.svc.ListPosts(ctx, bob, pub.ID, groupcast.PageRequest{Limit: 10}, "")
	if err != nil || len(page.Items) != 5 {
		t.Fatalf("rejected posts were stored: %d posts, %v", len(page.Items), err)
	}
}

func TestPostRateLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{PostsPerMinute: 2})
	g := f.group(t, alice, "Chatty", groupcast.Public)
	f.clock.Set(time.Date(2026, 11, 29, 10, 5, 15, 0, time.UTC))

	for i := range 2 {
		if _, err := f.svc.CreatePost(ctx, alice, g.ID, "ok"); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	_, err := f.svc.CreatePost(ctx, alice, g.ID, "one too many")
	wantCode(t, err, groupcast.CodeRateLimited)
	var e *groupcast.Error
	if !asError(err, &e) || e.RetryAfterSeconds != 45 {
		t.Fatalf("retry after = %+v, want 45 s (to the next minute)", e)
	}
	f.clock.Set(time.Date(2026, 11, 29, 10, 6, 0, 0, time.UTC))
	if _, err := f.svc.CreatePost(ctx, alice, g.ID, "next minute"); err != nil {
		t.Fatalf("post in the next window: %v", err)
	}
	// The limit is per user.
	if _, err := f.svc.JoinGroup(ctx, bob, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreatePost(ctx, bob, g.ID, "bob"); err != nil {
		t.Fatalf("bob's post: %v", err)
	}
}

func TestInvitations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{})
	priv := f.group(t, alice, "Book club", groupcast.Private)

	invs, skipped, err := f.svc.Invite(ctx, alice, priv.ID, []string{"bob", "alice", "carol", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if len(invs) != 2 || invs[0].InviteeID != "bob" || invs[1].InviteeID != "carol" || invs[0].GroupName != "Book club" {
		t.Fatalf("invitations = %+v", invs)
	}
	if want := []groupcast.SkippedInvite{{UserID: "alice", Reason: groupcast.SkipSelf}}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped = %+v, want %+v", skipped, want)
	}

	// bob accepts; carol's invitation stays pending.
	inv, err := f.svc.AnswerInvitation(ctx, bob, priv.ID, true)
	if err != nil || inv.Status != groupcast.InvitationAccepted || inv.AnsweredAt.IsZero() {
		t.Fatalf("accept = %+v, %v", inv, err)
	}
	if g, err := f.svc.GetGroup(ctx, bob, priv.ID); err != nil || g.MemberCount != 2 {
		t.Fatalf("group after accept = %+v, %v", g, err)
	}

	_, skipped, err = f.svc.Invite(ctx, bob, priv.ID, []string{"alice", "carol", "dave"})
	if err != nil {
		t.Fatal(err)
	}
	want := []groupcast.SkippedInvite{
		{UserID: "alice", Reason: groupcast.SkipAlreadyMember},
		{UserID: "carol", Reason: groupcast.SkipAlreadyInvited},
	}
	if !slices.Equal(skipped, want) {
		t.Fatalf("skipped = %+v, want %+v", skipped, want)
	}

	// A full call: written concurrently, reported in the caller's order.
	var many []string
	for i := range groupcast.MaxInviteesPerCall {
		many = append(many, fmt.Sprintf("user-%02d", i))
	}
	invs, skipped, err = f.svc.Invite(ctx, alice, priv.ID, many)
	if err != nil || len(skipped) != 0 || len(invs) != len(many) {
		t.Fatalf("inviting %d: %d invitations, skipped %+v, %v", len(many), len(invs), skipped, err)
	}
	for i, inv := range invs {
		if inv.InviteeID != many[i] {
			t.Fatalf("invitation %d is for %s, want %s", i, inv.InviteeID, many[i])
		}
		if got, err := f.svc.ListInvitations(ctx, groupcast.Caller{UserID: many[i], DisplayName: many[i]}, groupcast.InvitationPending); err != nil || len(got) != 1 {
			t.Fatalf("%s's pending invitations = %+v, %v", many[i], got, err)
		}
	}

	answers := []struct {
		name   string
		caller groupcast.Caller
		accept bool
		want   groupcast.Code
	}{
		{"answer twice", bob, false, groupcast.CodeConflict},
		{"someone without invitation", groupcast.Caller{UserID: "eve"}, true, groupcast.CodeNotFound},
		{"carol declines", carol, false, ""},
		{"carol accepts after declining", carol, true, groupcast.CodeConflict},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.AnswerInvitation(ctx, tt.caller, priv.ID, tt.accept)
			wantCode(t, err, tt.want)
		})
	}
	if _, err := f.svc.GetGroup(ctx, carol, priv.ID); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("declined invitee sees the private group: %v", err)
	}

	pending, err := f.svc.ListInvitations(ctx, groupcast.Caller{UserID: "dave"}, groupcast.InvitationPending)
	if err != nil || len(pending) != 1 || pending[0].InviterID != "bob" {
		t.Fatalf("dave's pending invitations = %+v, %v", pending, err)
	}
	declined, err := f.svc.ListInvitations(ctx, carol, groupcast.InvitationPending)
	if err != nil || len(declined) != 0 {
		t.Fatalf("carol's pending invitations = %+v, %v", declined, err)
	}

	// A declined invitee can be invited again.
	invs, _, err = f.svc.Invite(ctx, alice, priv.ID, []string{"carol"})
	if err != nil || len(invs) != 1 {
		t.Fatalf("re-invite carol = %+v, %v", invs, err)
	}
	if _, err := f.svc.AnswerInvitation(ctx, carol, priv.ID, true); err != nil {
		t.Fatalf("accept re-invitation: %v", err)
	}

	denied := []struct {
		name   string
		caller groupcast.Caller
		ids    []string
		want   groupcast.Code
	}{
		{"non-member of private group", groupcast.Caller{UserID: "eve"}, []string{"x"}, groupcast.CodeNotFound},
		{"no ids", alice, nil, groupcast.CodeInvalid},
		{"too many ids", alice, make51(), groupcast.CodeInvalid},
		{"bad id", alice, []string{""}, groupcast.CodeInvalid},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.svc.Invite(ctx, tt.caller, priv.ID, tt.ids)
			wantCode(t, err, tt.want)
		})
	}
	pub := f.group(t, alice, "Open", groupcast.Public)
	_, _, err = f.svc.Invite(ctx, bob, pub.ID, []string{"x"})
	wantCode(t, err, groupcast.CodeForbidden)
}

func make51() []string {
	ids := make([]string, 51)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	return ids
}

func TestNotifications(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{})
	base := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	var ns []groupcast.Notification
	for i := range 5 {
		ns = append(ns, groupcast.Notification{
			ID: fmt.Sprintf("ev%d", i), UserID: "bob", Type: groupcast.EventPostCreated, GroupID: "g1",
			Data: map[string]any{"postId": fmt.Sprintf("p%d", i)}, CreatedAt: base.Add(time.Duration(i) * time.Minute),
		})
	}
	ns = append(ns, groupcast.Notification{ID: "other", UserID: "carol", Type: groupcast.EventPostCreated, CreatedAt: base})
	if err := f.store.PutNotifications(ctx, append(ns, ns[0])); err != nil { // a duplicate is harmless
		t.Fatal(err)
	}
	notifID := func(n groupcast.Notification) string { return n.ID }
	got := collect(t, 2, func(p groupcast.PageRequest) (groupcast.Page[groupcast.Notification], error) {
		page, _, err := f.svc.ListNotifications(ctx, bob, p)
		return page, err
	}, notifID)
	if want := []string{"ev4", "ev3", "ev2", "ev1", "ev0"}; !slices.Equal(got, want) {
		t.Fatalf("notifications = %v, want %v", got, want)
	}
	page, _, _ := f.svc.ListNotifications(ctx, bob, groupcast.PageRequest{Limit: 1})
	if page.Items[0].Data["postId"] != "p4" || page.Items[0].Type != groupcast.EventPostCreated {
		t.Fatalf("newest notification = %+v", page.Items[0])
	}

	steps := []struct {
		name       string
		ids        []string
		all        bool
		wantUnread int
		wantCode   groupcast.Code
	}{
		{"mark two", []string{"ev1", "ev3", "unknown"}, false, 3, ""},
		{"mark one again", []string{"ev1"}, false, 3, ""},
		{"neither ids nor all", nil, false, 3, groupcast.CodeInvalid},
		{"both ids and all", []string{"ev0"}, true, 3, groupcast.CodeInvalid},
		{"mark all", nil, true, 0, ""},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, f.svc.MarkNotificationsRead(ctx, bob, tt.ids, tt.all), tt.wantCode)
			_, unread, err := f.svc.ListNotifications(ctx, bob, groupcast.PageRequest{})
			if err != nil || unread != tt.wantUnread {
				t.Fatalf("unread = %d, %v; want %d", unread, err, tt.wantUnread)
			}
		})
	}
	page, _, _ = f.svc.ListNotifications(ctx, bob, groupcast.PageRequest{})
	for _, n := range page.Items {
		if !n.Read {
			t.Errorf("notification %s still unread", n.ID)
		}
	}
	if _, unread, _ := f.svc.ListNotifications(ctx, carol, groupcast.PageRequest{}); unread != 1 {
		t.Fatalf("carol's unread = %d, want 1 (bob's mark-all must not touch it)", unread)
	}
}

func TestSubscriptions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, groupcast.ServiceConfig{MaxSubscriptions: 3})
	pub := f.group(t, alice, "Public", groupcast.Public)
	priv := f.group(t, alice, "Private", groupcast.Private)
	bobs := f.group(t, bob, "Bob's", groupcast.Private)
	other := f.group(t, alice, "Other public", groupcast.Public)

	for _, c := range []groupcast.Connection{
		{ID: "c-alice", UserID: "alice", DisplayName: "Alice"},
		{ID: "c-bob", UserID: "bob", DisplayName: "Bob"},
		{ID: "c-bob2", UserID: "bob", DisplayName: "Bob"},
	} {
		if err := f.svc.Connect(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	type rejection = groupcast.SubscriptionRejection
	steps := []struct {
		name         string
		conn         string
		ids          []string
		wantAccepted []string
		wantRejected []rejection
		wantCode     groupcast.Code
	}{
		{"star expands to own groups", "c-bob", []string{"*"}, []string{bobs.ID}, []rejection{}, ""},
		{"public group, invisible private, missing, bad id", "c-bob",
			[]string{pub.ID, priv.ID, "missing", "a#b"},
			[]string{pub.ID},
			[]rejection{{GroupID: "a#b", Reason: "invalid"}, {GroupID: priv.ID, Reason: "not_found"}, {GroupID: "missing", Reason: "not_found"}}, ""},
		{"repeat counts once; cap reached", "c-bob", []string{pub.ID, "public", other.ID},
			[]string{pub.ID, "public"}, []rejection{{GroupID: other.ID, Reason: "limit"}}, ""},
		{"member subscribes to private", "c-alice", []string{priv.ID}, []string{priv.ID}, []rejection{}, ""},
		{"unknown connection", "c-nobody", []string{pub.ID}, nil, nil, groupcast.CodeNotFound},
		{"empty list", "c-bob", nil, nil, nil, groupcast.CodeInvalid},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			acc, rej, err := f.svc.Subscribe(ctx, tt.conn, tt.ids)
			wantCode(t, err, tt.wantCode)
			if err != nil {
				return
			}
			if !slices.Equal(acc, tt.wantAccepted) || !slices.Equal(rej, tt.wantRejected) {
				t.Fatalf("accepted %v rejected %+v; want %v %+v", acc, rej, tt.wantAccepted, tt.wantRejected)
			}
		})
	}

	if got := subscribers(t, f.store, pub.ID); !slices.Equal(got, []string{"c-bob"}) {
		t.Fatalf("subscribers of public group = %v", got)
	}
	if got := subscribers(t, f.store, "public"); !slices.Equal(got, []string{"c-bob"}) {
		t.Fatalf("subscribers of the public feed = %v", got)
	}
	conns, err := f.store.UserConnectionIDs(ctx, "bob")
	slices.Sort(conns)
	if err != nil || !slices.Equal(conns, []string{"c-bob", "c-bob2"}) {
		t.Fatalf("bob's connections = %v, %v", conns, err)
	}

	removed, err := f.svc.Unsubscribe(ctx, "c-bob", []string{pub.ID})
	if err != nil || !slices.Equal(removed, []string{pub.ID}) {
		t.Fatalf("unsubscribe = %v, %v", removed, err)
	}
	if got := subscribers(t, f.store, pub.ID); len(got) != 0 {
		t.Fatalf("subscribers after unsubscribe = %v", got)
	}

	// Leaving a group drops the leaver's live subscriptions to it.
	if _, err := f.svc.JoinGroup(ctx, bob, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Subscribe(ctx, "c-bob2", []string{other.ID}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.LeaveGroup(ctx, bob, other.ID); err != nil {
		t.Fatal(err)
	}
	if got := subscribers(t, f.store, other.ID); len(got) != 0 {
		t.Fatalf("subscribers after leaving = %v", got)
	}

	for range 2 { // idempotent
		if err := f.svc.Disconnect(ctx, "c-bob"); err != nil {
			t.Fatal(err)
		}
	}
	if got := subscribers(t, f.store, bobs.ID); len(got) != 0 {
		t.Fatalf("subscribers after disconnect = %v", got)
	}
	if _, err := f.store.GetConnection(ctx, "c-bob"); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("connection after disconnect: %v", err)
	}
	if _, _, err := f.svc.Subscribe(ctx, "c-bob", []string{pub.ID}); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("subscribe on closed connection: %v", err)
	}
}

func subscribers(t *testing.T, s *dynamostore.Store, groupID string) []string {
	t.Helper()
	var ids []string
	err := s.ForEachGroupSubscriber(context.Background(), groupID, func(subs []groupcast.Subscriber) error {
		for _, sub := range subs {
			ids = append(ids, sub.ConnectionID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}
