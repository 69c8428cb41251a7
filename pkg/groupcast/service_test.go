package groupcast_test

import (
	"context"
	"encoding/json"
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

// fixture is one fresh table and a Service on it. Every subtest that
// changes state builds its own: on the in-process emulator that costs a few
// milliseconds, and it lets each case pass when run alone.
type fixture struct {
	svc   *groupcast.Service
	store *dynamostore.Store
	clock *clock
	// groupIDs maps the name of each group created with group to its id,
	// so cases can name groups whose ids are only known once created.
	groupIDs map[string]string
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
	return fixture{svc: svc, store: store, clock: clk, groupIDs: map[string]string{}}
}

func (f fixture) group(t *testing.T, owner groupcast.Caller, name string, v groupcast.Visibility) groupcast.Group {
	t.Helper()
	g, err := f.svc.CreateGroup(context.Background(), owner, groupcast.CreateGroupInput{Name: name, Visibility: v})
	if err != nil {
		t.Fatalf("create group %s: %v", name, err)
	}
	if _, dup := f.groupIDs[g.Name]; dup {
		t.Fatalf("two groups named %q: cases could not tell them apart", g.Name)
	}
	f.groupIDs[g.Name] = g.ID
	return g
}

// id returns the id of the group called name; any other string is returned
// as it is, so cases can also give literal ids (missing, malformed, "*").
func (f fixture) id(name string) string {
	if id, ok := f.groupIDs[name]; ok {
		return id
	}
	return name
}

func (f fixture) ids(names []string) []string {
	var ids []string
	for _, n := range names {
		ids = append(ids, f.id(n))
	}
	return ids
}

// name is the inverse of id: a group's name for its id, anything else as it is.
func (f fixture) name(id string) string {
	for n, gid := range f.groupIDs {
		if gid == id {
			return n
		}
	}
	return id
}

func (f fixture) join(t *testing.T, c groupcast.Caller, group string) {
	t.Helper()
	if _, err := f.svc.JoinGroup(context.Background(), c, f.id(group)); err != nil {
		t.Fatalf("%s joins %s: %v", c.UserID, group, err)
	}
}

func (f fixture) leave(t *testing.T, c groupcast.Caller, group string) {
	t.Helper()
	if err := f.svc.LeaveGroup(context.Background(), c, f.id(group)); err != nil {
		t.Fatalf("%s leaves %s: %v", c.UserID, group, err)
	}
}

func (f fixture) invite(t *testing.T, from groupcast.Caller, group string, users ...string) {
	t.Helper()
	invs, skipped, err := f.svc.Invite(context.Background(), from, f.id(group), users)
	if err != nil || len(invs) != len(users) {
		t.Fatalf("%s invites %v to %s: %d invitations, skipped %+v, %v", from.UserID, users, group, len(invs), skipped, err)
	}
}

func (f fixture) answer(t *testing.T, c groupcast.Caller, group string, accept bool) {
	t.Helper()
	if _, err := f.svc.AnswerInvitation(context.Background(), c, f.id(group), accept); err != nil {
		t.Fatalf("%s answers the invitation to %s (accept %v): %v", c.UserID, group, accept, err)
	}
}

func (f fixture) connect(t *testing.T, conns ...groupcast.Connection) {
	t.Helper()
	for _, c := range conns {
		if err := f.svc.Connect(context.Background(), c); err != nil {
			t.Fatalf("connect %s: %v", c.ID, err)
		}
	}
}

func (f fixture) subscribe(t *testing.T, conn string, targets ...string) {
	t.Helper()
	if _, rej, err := f.svc.Subscribe(context.Background(), conn, f.ids(targets)); err != nil || len(rej) != 0 {
		t.Fatalf("subscribe %s to %v: rejected %+v, %v", conn, targets, rej, err)
	}
}

// wantMembers checks the member count stored on a group.
func (f fixture) wantMembers(t *testing.T, group string, want int) {
	t.Helper()
	g, err := f.store.GetGroup(context.Background(), f.id(group))
	if err != nil || g.MemberCount != want {
		t.Fatalf("%s has %d members (%v), want %d", group, g.MemberCount, err, want)
	}
}

func wantCode(t *testing.T, err error, want groupcast.Code) {
	t.Helper()
	if got := groupcast.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

func TestGroupsVisibilityAndMembership(t *testing.T) {
	ctx := context.Background()
	created := newFixture(t, groupcast.ServiceConfig{}).group(t, alice, "  Hikers  ", groupcast.Public)
	if created.Name != "Hikers" || created.MemberCount != 1 || created.OwnerID != "alice" {
		t.Fatalf("created group = %+v", created)
	}

	// Every case starts from a fresh table in which alice owns the public
	// group "Hikers" and the private group "Secret".
	setup := func(t *testing.T) fixture {
		t.Helper()
		f := newFixture(t, groupcast.ServiceConfig{})
		f.group(t, alice, "Hikers", groupcast.Public)
		f.group(t, alice, "Secret", groupcast.Private)
		return f
	}

	f := setup(t)
	if _, err := f.svc.ListMembers(ctx, bob, f.id("Secret"), groupcast.PageRequest{}); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Fatalf("non-member lists private members: %v", err)
	}
	members, err := f.svc.ListMembers(ctx, alice, f.id("Secret"), groupcast.PageRequest{})
	if err != nil || len(members.Items) != 1 || members.Items[0].Role != groupcast.RoleOwner {
		t.Fatalf("members of private = %+v, %v", members, err)
	}

	gets := []struct {
		name   string
		caller groupcast.Caller
		group  string
		want   groupcast.Code
	}{
		{"member sees private", alice, "Secret", ""},
		{"non-member cannot see private", bob, "Secret", groupcast.CodeNotFound},
		{"anyone sees public", bob, "Hikers", ""},
		{"missing group", bob, "nope", groupcast.CodeNotFound},
		{"malformed id", bob, "a#b", groupcast.CodeInvalid},
		{"no identity", groupcast.Caller{}, "Hikers", groupcast.CodeUnauthorized},
	}
	for _, tt := range gets {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			_, err := f.svc.GetGroup(ctx, tt.caller, f.id(tt.group))
			wantCode(t, err, tt.want)
		})
	}

	// A join or leave, accepted or refused, leaves each group with the
	// member count given in the case.
	type membershipCase struct {
		name                   string
		given                  func(t *testing.T, f fixture) // nil: nothing beyond setup
		caller                 groupcast.Caller
		group                  string
		want                   groupcast.Code
		wantHikers, wantSecret int
	}
	bobJoined := func(t *testing.T, f fixture) { f.join(t, bob, "Hikers") }
	joins := []membershipCase{
		{name: "join public", caller: bob, group: "Hikers", wantHikers: 2, wantSecret: 1},
		{name: "join twice", given: bobJoined, caller: bob, group: "Hikers", want: groupcast.CodeConflict, wantHikers: 2, wantSecret: 1},
		{name: "join private", caller: bob, group: "Secret", want: groupcast.CodeForbidden, wantHikers: 1, wantSecret: 1},
		{name: "join missing", caller: bob, group: "nope", want: groupcast.CodeNotFound, wantHikers: 1, wantSecret: 1},
	}
	for _, tt := range joins {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			if tt.given != nil {
				tt.given(t, f)
			}
			_, err := f.svc.JoinGroup(ctx, tt.caller, f.id(tt.group))
			wantCode(t, err, tt.want)
			f.wantMembers(t, "Hikers", tt.wantHikers)
			f.wantMembers(t, "Secret", tt.wantSecret)
		})
	}

	leaves := []membershipCase{
		{name: "owner cannot leave", given: bobJoined, caller: alice, group: "Hikers", want: groupcast.CodeConflict, wantHikers: 2, wantSecret: 1},
		{name: "member leaves", given: bobJoined, caller: bob, group: "Hikers", wantHikers: 1, wantSecret: 1},
		{name: "leave when not a member", given: func(t *testing.T, f fixture) {
			f.join(t, bob, "Hikers")
			f.leave(t, bob, "Hikers")
		}, caller: bob, group: "Hikers", want: groupcast.CodeNotFound, wantHikers: 1, wantSecret: 1},
		{name: "leave invisible private", caller: bob, group: "Secret", want: groupcast.CodeNotFound, wantHikers: 1, wantSecret: 1},
	}
	for _, tt := range leaves {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			if tt.given != nil {
				tt.given(t, f)
			}
			wantCode(t, f.svc.LeaveGroup(ctx, tt.caller, f.id(tt.group)), tt.want)
			f.wantMembers(t, "Hikers", tt.wantHikers)
			f.wantMembers(t, "Secret", tt.wantSecret)
		})
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
	const club = "Book club"
	// Every case starts from a fresh table in which alice owns the private
	// group "Book club" and the public group "Open".
	setup := func(t *testing.T) fixture {
		t.Helper()
		f := newFixture(t, groupcast.ServiceConfig{})
		f.group(t, alice, club, groupcast.Private)
		f.group(t, alice, "Open", groupcast.Public)
		return f
	}
	eve := groupcast.Caller{UserID: "eve"}
	var fullCall []string
	for i := range groupcast.MaxInviteesPerCall {
		fullCall = append(fullCall, fmt.Sprintf("user-%02d", i))
	}

	// A successful call invites wantInvitees, in that order, each of whom
	// then has exactly one pending invitation: to the group, from the caller.
	invites := []struct {
		name         string
		given        func(t *testing.T, f fixture) // nil: nothing beyond setup
		caller       groupcast.Caller
		group        string
		ids          []string
		wantInvitees []string
		wantSkipped  []groupcast.SkippedInvite
		wantCode     groupcast.Code
	}{
		{
			name: "skips the inviter and repeated ids", caller: alice, group: club,
			ids:          []string{"bob", "alice", "carol", "bob"},
			wantInvitees: []string{"bob", "carol"},
			wantSkipped:  []groupcast.SkippedInvite{{UserID: "alice", Reason: groupcast.SkipSelf}},
		},
		{
			name: "skips members and pending invitees",
			given: func(t *testing.T, f fixture) {
				f.invite(t, alice, club, "bob", "carol")
				f.answer(t, bob, club, true)
			},
			caller: bob, group: club,
			ids:          []string{"alice", "carol", "dave"},
			wantInvitees: []string{"dave"},
			wantSkipped: []groupcast.SkippedInvite{
				{UserID: "alice", Reason: groupcast.SkipAlreadyMember},
				{UserID: "carol", Reason: groupcast.SkipAlreadyInvited},
			},
		},
		// Written concurrently, reported in the caller's order.
		{name: "a full call", caller: alice, group: club, ids: fullCall, wantInvitees: fullCall},
		{
			name: "a declined invitee can be invited again",
			given: func(t *testing.T, f fixture) {
				f.invite(t, alice, club, "carol")
				f.answer(t, carol, club, false)
			},
			caller: alice, group: club, ids: []string{"carol"}, wantInvitees: []string{"carol"},
		},
		{name: "non-member of private group", caller: eve, group: club, ids: []string{"x"}, wantCode: groupcast.CodeNotFound},
		{name: "no ids", caller: alice, group: club, ids: nil, wantCode: groupcast.CodeInvalid},
		{name: "too many ids", caller: alice, group: club, ids: make51(), wantCode: groupcast.CodeInvalid},
		{name: "bad id", caller: alice, group: club, ids: []string{""}, wantCode: groupcast.CodeInvalid},
		{name: "non-member of public group", caller: bob, group: "Open", ids: []string{"x"}, wantCode: groupcast.CodeForbidden},
	}
	for _, tt := range invites {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			if tt.given != nil {
				tt.given(t, f)
			}
			invs, skipped, err := f.svc.Invite(ctx, tt.caller, f.id(tt.group), tt.ids)
			wantCode(t, err, tt.wantCode)
			if err != nil {
				return
			}
			var invitees []string
			for _, inv := range invs {
				invitees = append(invitees, inv.InviteeID)
				if inv.GroupName != tt.group {
					t.Errorf("invitation of %s names group %q, want %q", inv.InviteeID, inv.GroupName, tt.group)
				}
			}
			if !slices.Equal(invitees, tt.wantInvitees) || !slices.Equal(skipped, tt.wantSkipped) {
				t.Fatalf("invited %v, skipped %+v; want %v, %+v", invitees, skipped, tt.wantInvitees, tt.wantSkipped)
			}
			for _, u := range tt.wantInvitees {
				pending, err := f.svc.ListInvitations(ctx, groupcast.Caller{UserID: u, DisplayName: u}, groupcast.InvitationPending)
				if err != nil || len(pending) != 1 || pending[0].GroupID != f.id(tt.group) || pending[0].InviterID != tt.caller.UserID {
					t.Fatalf("%s's pending invitations = %+v, %v", u, pending, err)
				}
			}
		})
	}

	// An accepted invitation makes the caller the group's second member; a
	// declined one leaves the group invisible and nothing pending.
	answers := []struct {
		name   string
		given  func(t *testing.T, f fixture)
		caller groupcast.Caller
		accept bool
		want   groupcast.Code
	}{
		{"bob accepts", func(t *testing.T, f fixture) { f.invite(t, alice, club, "bob") }, bob, true, ""},
		{"answer twice", func(t *testing.T, f fixture) {
			f.invite(t, alice, club, "bob")
			f.answer(t, bob, club, true)
		}, bob, false, groupcast.CodeConflict},
		{"someone without invitation", func(t *testing.T, f fixture) { f.invite(t, alice, club, "bob") }, eve, true, groupcast.CodeNotFound},
		{"carol declines", func(t *testing.T, f fixture) { f.invite(t, alice, club, "carol") }, carol, false, ""},
		{"carol accepts after declining", func(t *testing.T, f fixture) {
			f.invite(t, alice, club, "carol")
			f.answer(t, carol, club, false)
		}, carol, true, groupcast.CodeConflict},
		{"carol accepts a re-invitation", func(t *testing.T, f fixture) {
			f.invite(t, alice, club, "carol")
			f.answer(t, carol, club, false)
			f.invite(t, alice, club, "carol")
		}, carol, true, ""},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			tt.given(t, f)
			inv, err := f.svc.AnswerInvitation(ctx, tt.caller, f.id(club), tt.accept)
			wantCode(t, err, tt.want)
			if err != nil {
				return
			}
			wantStatus := groupcast.InvitationDeclined
			if tt.accept {
				wantStatus = groupcast.InvitationAccepted
			}
			if inv.Status != wantStatus || inv.AnsweredAt.IsZero() {
				t.Fatalf("answered invitation = %+v, want status %s and an answer time", inv, wantStatus)
			}
			g, err := f.svc.GetGroup(ctx, tt.caller, f.id(club))
			if tt.accept {
				if err != nil || g.MemberCount != 2 {
					t.Fatalf("group after accept = %+v, %v", g, err)
				}
				return
			}
			if groupcast.ErrorCode(err) != groupcast.CodeNotFound {
				t.Fatalf("declined invitee sees the private group: %v", err)
			}
			if pending, err := f.svc.ListInvitations(ctx, tt.caller, groupcast.InvitationPending); err != nil || len(pending) != 0 {
				t.Fatalf("pending invitations after declining = %+v, %v", pending, err)
			}
		})
	}
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
	// Every case starts from a fresh table whose inbox holds bob's five
	// notifications ev0 (oldest) to ev4, a minute apart, and one of carol's.
	setup := func(t *testing.T) fixture {
		t.Helper()
		f := newFixture(t, groupcast.ServiceConfig{})
		base := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
		var ns []groupcast.Notification
		for i := range 5 {
			ns = append(ns, groupcast.Notification{UserID: "bob", Envelope: groupcast.Envelope{
				ID: fmt.Sprintf("ev%d", i), Type: groupcast.EventPostCreated, GroupID: "g1",
				Data: json.RawMessage(fmt.Sprintf(`{"postId":"p%d"}`, i)), At: base.Add(time.Duration(i) * time.Minute),
			}})
		}
		ns = append(ns, groupcast.Notification{UserID: "carol", Envelope: groupcast.Envelope{ID: "other", Type: groupcast.EventPostCreated, At: base}})
		if err := f.store.PutNotifications(ctx, append(ns, ns[0])); err != nil { // a duplicate is harmless
			t.Fatal(err)
		}
		return f
	}

	f := setup(t)
	notifID := func(n groupcast.Notification) string { return n.ID }
	got := collect(t, 2, func(p groupcast.PageRequest) (groupcast.Page[groupcast.Notification], error) {
		page, _, err := f.svc.ListNotifications(ctx, bob, p)
		return page, err
	}, notifID)
	if want := []string{"ev4", "ev3", "ev2", "ev1", "ev0"}; !slices.Equal(got, want) {
		t.Fatalf("notifications = %v, want %v", got, want)
	}
	page, _, _ := f.svc.ListNotifications(ctx, bob, groupcast.PageRequest{Limit: 1})
	if string(page.Items[0].Data) != `{"postId":"p4"}` || page.Items[0].Type != groupcast.EventPostCreated {
		t.Fatalf("newest notification = %+v", page.Items[0])
	}

	// After each case bob has wantUnread unread notifications, by count and
	// by the listed items, and carol's one stays unread.
	marks := []struct {
		name       string
		given      []string // ids bob marked read before
		ids        []string
		all        bool
		wantUnread int
		wantCode   groupcast.Code
	}{
		{"mark two", nil, []string{"ev1", "ev3", "unknown"}, false, 3, ""},
		{"mark one again", []string{"ev1", "ev3"}, []string{"ev1"}, false, 3, ""},
		{"neither ids nor all", nil, nil, false, 5, groupcast.CodeInvalid},
		{"both ids and all", nil, []string{"ev0"}, true, 5, groupcast.CodeInvalid},
		{"mark all", []string{"ev1", "ev3"}, nil, true, 0, ""},
	}
	for _, tt := range marks {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			if tt.given != nil {
				if err := f.svc.MarkNotificationsRead(ctx, bob, tt.given, false); err != nil {
					t.Fatal(err)
				}
			}
			wantCode(t, f.svc.MarkNotificationsRead(ctx, bob, tt.ids, tt.all), tt.wantCode)
			page, unread, err := f.svc.ListNotifications(ctx, bob, groupcast.PageRequest{})
			if err != nil || unread != tt.wantUnread {
				t.Fatalf("unread = %d, %v; want %d", unread, err, tt.wantUnread)
			}
			listedUnread := 0
			for _, n := range page.Items {
				if !n.Read {
					listedUnread++
				}
			}
			if listedUnread != tt.wantUnread {
				t.Fatalf("%d listed notifications unread, want %d", listedUnread, tt.wantUnread)
			}
			if _, unread, _ := f.svc.ListNotifications(ctx, carol, groupcast.PageRequest{}); unread != 1 {
				t.Fatalf("carol's unread = %d, want 1 (bob's marks must not touch it)", unread)
			}
		})
	}
}

func TestSubscriptions(t *testing.T) {
	ctx := context.Background()
	// Every case starts from a fresh table in which alice owns the public
	// groups "Hikers" and "Cyclists" and the private "Secret", and bob owns
	// the private "Bob's"; alice is connected as c-alice, bob as c-bob and
	// c-bob2. A connection holds at most 3 subscriptions.
	setup := func(t *testing.T) fixture {
		t.Helper()
		f := newFixture(t, groupcast.ServiceConfig{MaxSubscriptions: 3})
		f.group(t, alice, "Hikers", groupcast.Public)
		f.group(t, alice, "Secret", groupcast.Private)
		f.group(t, bob, "Bob's", groupcast.Private)
		f.group(t, alice, "Cyclists", groupcast.Public)
		f.connect(t,
			groupcast.Connection{ID: "c-alice", UserID: "alice", DisplayName: "Alice"},
			groupcast.Connection{ID: "c-bob", UserID: "bob", DisplayName: "Bob"},
			groupcast.Connection{ID: "c-bob2", UserID: "bob", DisplayName: "Bob"},
		)
		return f
	}

	f := setup(t)
	conns, err := f.store.UserConnectionIDs(ctx, "bob")
	slices.Sort(conns)
	if err != nil || !slices.Equal(conns, []string{"c-bob", "c-bob2"}) {
		t.Fatalf("bob's connections = %v, %v", conns, err)
	}

	// Cases name groups; after a successful call the connection is the one
	// subscriber of each accepted target and of no rejected one.
	type rejection = groupcast.SubscriptionRejection
	steps := []struct {
		name         string
		given        func(t *testing.T, f fixture) // nil: nothing beyond setup
		conn         string
		ids          []string
		wantAccepted []string
		wantRejected []rejection
		wantCode     groupcast.Code
	}{
		{name: "star expands to own groups", conn: "c-bob", ids: []string{"*"}, wantAccepted: []string{"Bob's"}, wantRejected: []rejection{}},
		{
			name: "public group, invisible private, missing, bad id", conn: "c-bob",
			ids:          []string{"Hikers", "Secret", "missing", "a#b"},
			wantAccepted: []string{"Hikers"},
			wantRejected: []rejection{{GroupID: "a#b", Reason: "invalid"}, {GroupID: "Secret", Reason: "not_found"}, {GroupID: "missing", Reason: "not_found"}},
		},
		{
			name:  "repeat counts once; cap reached",
			given: func(t *testing.T, f fixture) { f.subscribe(t, "c-bob", "Bob's", "Hikers") },
			conn:  "c-bob", ids: []string{"Hikers", "public", "Cyclists"},
			wantAccepted: []string{"Hikers", "public"},
			wantRejected: []rejection{{GroupID: "Cyclists", Reason: "limit"}},
		},
		{name: "member subscribes to private", conn: "c-alice", ids: []string{"Secret"}, wantAccepted: []string{"Secret"}, wantRejected: []rejection{}},
		{name: "unknown connection", conn: "c-nobody", ids: []string{"Hikers"}, wantCode: groupcast.CodeNotFound},
		{name: "empty list", conn: "c-bob", ids: nil, wantCode: groupcast.CodeInvalid},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			if tt.given != nil {
				tt.given(t, f)
			}
			acc, rej, err := f.svc.Subscribe(ctx, tt.conn, f.ids(tt.ids))
			wantCode(t, err, tt.wantCode)
			if err != nil {
				return
			}
			for i := range acc {
				acc[i] = f.name(acc[i])
			}
			for i := range rej {
				rej[i].GroupID = f.name(rej[i].GroupID)
			}
			if !slices.Equal(acc, tt.wantAccepted) || !slices.Equal(rej, tt.wantRejected) {
				t.Fatalf("accepted %v rejected %+v; want %v %+v", acc, rej, tt.wantAccepted, tt.wantRejected)
			}
			for _, target := range tt.wantAccepted {
				if got := subscribers(t, f.store, f.id(target)); !slices.Equal(got, []string{tt.conn}) {
					t.Errorf("subscribers of %s = %v, want [%s]", target, got, tt.conn)
				}
			}
			for _, r := range tt.wantRejected {
				if got := subscribers(t, f.store, f.id(r.GroupID)); slices.Contains(got, tt.conn) {
					t.Errorf("rejected %s has subscribers %v", r.GroupID, got)
				}
			}
		})
	}

	t.Run("unsubscribe", func(t *testing.T) {
		f := setup(t)
		f.subscribe(t, "c-bob", "Hikers")
		removed, err := f.svc.Unsubscribe(ctx, "c-bob", []string{f.id("Hikers")})
		if err != nil || !slices.Equal(removed, []string{f.id("Hikers")}) {
			t.Fatalf("unsubscribe = %v, %v", removed, err)
		}
		if got := subscribers(t, f.store, f.id("Hikers")); len(got) != 0 {
			t.Fatalf("subscribers after unsubscribe = %v", got)
		}
	})

	t.Run("leaving a group drops the leaver's subscriptions to it", func(t *testing.T) {
		f := setup(t)
		f.join(t, bob, "Cyclists")
		f.subscribe(t, "c-bob2", "Cyclists")
		f.leave(t, bob, "Cyclists")
		if got := subscribers(t, f.store, f.id("Cyclists")); len(got) != 0 {
			t.Fatalf("subscribers after leaving = %v", got)
		}
	})

	t.Run("disconnect drops the subscriptions and is idempotent", func(t *testing.T) {
		f := setup(t)
		f.subscribe(t, "c-bob", "*")
		for range 2 {
			if err := f.svc.Disconnect(ctx, "c-bob"); err != nil {
				t.Fatal(err)
			}
		}
		if got := subscribers(t, f.store, f.id("Bob's")); len(got) != 0 {
			t.Fatalf("subscribers after disconnect = %v", got)
		}
		if _, err := f.store.GetConnection(ctx, "c-bob"); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
			t.Fatalf("connection after disconnect: %v", err)
		}
		if _, _, err := f.svc.Subscribe(ctx, "c-bob", []string{f.id("Hikers")}); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
			t.Fatalf("subscribe on closed connection: %v", err)
		}
	})
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
