package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/internal/golden"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/httpapi"
)

// start is the fixed instant the test clock starts from.
var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a deterministic time source: each reading is one second after
// the previous one, so createdAt values and ULID-like ids are stable.
type clock struct {
	mu sync.Mutex
	t  time.Time
	n  int
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// NewID returns ids that sort in creation order, as ULIDs do.
func (c *clock) NewID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return fmt.Sprintf("01TEST%020d", c.n)
}

type env struct {
	h     *httpapi.Handler
	store *dynamostore.Store
	logs  *bytes.Buffer
}

// newEnv wires the handler to the real service and a fresh table.
func newEnv(t *testing.T, postsPerMinute int) *env {
	t.Helper()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: start}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{Now: c.Now, NewID: c.NewID, PostsPerMinute: postsPerMinute})
	if err != nil {
		t.Fatal(err)
	}
	logs := new(bytes.Buffer)
	h, err := httpapi.New(svc, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, store: store, logs: logs}
}

// loadEvent reads a sample event from the repository's events/ folder, the
// same files `sam local invoke` uses.
func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// call describes one API request.
type call struct {
	as      string // caller's sub; "" sends no claims at all
	route   string // e.g. "POST /groups/{groupId}/posts"
	groupID string
	query   map[string]string
	body    string
}

// event turns c into the event API Gateway would send, starting from the
// sample event so every field AWS sets is present.
func (c call) event(t *testing.T) events.APIGatewayV2HTTPRequest {
	t.Helper()
	ev := loadEvent(t, "api-create-group.json")
	method, path, _ := strings.Cut(c.route, " ")
	raw := strings.ReplaceAll(path, "{groupId}", c.groupID)
	ev.RouteKey, ev.RequestContext.RouteKey = c.route, c.route
	ev.RawPath, ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = raw, method, raw
	ev.PathParameters = nil
	if strings.Contains(path, "{groupId}") {
		ev.PathParameters = map[string]string{"groupId": c.groupID}
	}
	ev.QueryStringParameters = c.query
	ev.Body = c.body
	if c.as == "" {
		ev.RequestContext.Authorizer = nil
	} else {
		ev.RequestContext.Authorizer.JWT.Claims = map[string]string{
			"sub": c.as, "name": displayName(c.as), "iss": "https://issuer.example", "aud": "groupcast-local",
		}
	}
	return ev
}

// displayName is the name claim the tests give each user.
func displayName(sub string) string {
	return strings.ToUpper(sub[:1]) + sub[1:] + " Example"
}

func (e *env) do(t *testing.T, c call) events.APIGatewayV2HTTPResponse {
	t.Helper()
	return e.serve(t, c.event(t))
}

func (e *env) serve(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("%s: handler returned error %v (must always answer with a response)", ev.RouteKey, err)
	}
	return resp
}

// must performs c and fails the test unless it answers want.
func (e *env) must(t *testing.T, c call, want int) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp := e.do(t, c)
	if resp.StatusCode != want {
		t.Fatalf("%s as %q: status %d, want %d; body %s", c.route, c.as, resp.StatusCode, want, resp.Body)
	}
	return resp
}

func decode[T any](t *testing.T, resp events.APIGatewayV2HTTPResponse) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(resp.Body), &v); err != nil {
		t.Fatalf("response body %q: %v", resp.Body, err)
	}
	return v
}

// assertGolden compares a response body, re-indented, with testdata/<name>.golden.
func assertGolden(t *testing.T, name string, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(resp.Body), "", "  "); err != nil {
		t.Fatalf("%s: body is not JSON: %v: %q", name, err, resp.Body)
	}
	buf.WriteByte('\n')
	golden.Assert(t, filepath.Join("testdata", name+".golden"), buf.Bytes())
}

type groupResp struct {
	GroupID     string `json:"groupId"`
	MemberCount int    `json:"memberCount"`
}

type errorResp struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type listResp struct {
	Items      []map[string]any `json:"items"`
	NextCursor *string          `json:"nextCursor"`
}

// createGroup creates a group owned by owner and returns its id.
func (e *env) createGroup(t *testing.T, owner, name, visibility string) string {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"description":"about %s","visibility":%q}`, name, name, visibility)
	return decode[groupResp](t, e.must(t, call{as: owner, route: "POST /groups", body: body}, http.StatusCreated)).GroupID
}

func TestSampleEventsAreServed(t *testing.T) {
	e := newEnv(t, 30)
	resp := e.serve(t, loadEvent(t, "api-create-group.json"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("api-create-group.json: status %d: %s", resp.StatusCode, resp.Body)
	}
	gid := decode[groupResp](t, resp).GroupID

	// The other samples name a fixed group id; point them at the new group.
	for _, tc := range []struct {
		file string
		want int
	}{
		{"api-list-groups.json", http.StatusOK},
		{"api-get-group.json", http.StatusOK},
		{"api-join-group.json", http.StatusCreated},
		{"api-create-post.json", http.StatusCreated},
		{"api-list-posts.json", http.StatusOK},
		{"api-invite.json", http.StatusCreated},
		{"api-list-notifications.json", http.StatusOK},
	} {
		ev := loadEvent(t, tc.file)
		if ev.PathParameters != nil {
			ev.PathParameters["groupId"] = gid
		}
		if resp := e.serve(t, ev); resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.file, resp.StatusCode, tc.want, resp.Body)
		}
	}
}

// TestEveryRoute walks one realistic session through every route and pins
// the response shapes with golden files.
func TestEveryRoute(t *testing.T) {
	e := newEnv(t, 30)

	created := e.must(t, call{as: "alice", route: "POST /groups",
		body: `{"name":"  Climbing Club ","description":"Weekend trips","visibility":"public"}`}, http.StatusCreated)
	assertGolden(t, "create_group", created)
	gid := decode[groupResp](t, created).GroupID

	assertGolden(t, "join_group", e.must(t, call{as: "bob", route: "POST /groups/{groupId}/members", groupID: gid}, http.StatusCreated))
	assertGolden(t, "get_group", e.must(t, call{as: "carol", route: "GET /groups/{groupId}", groupID: gid}, http.StatusOK))

	assertGolden(t, "create_post", e.must(t, call{as: "alice", route: "POST /groups/{groupId}/posts", groupID: gid,
		body: `{"content":"Gym night moved to Thursday."}`}, http.StatusCreated))
	e.must(t, call{as: "bob", route: "POST /groups/{groupId}/posts", groupID: gid, body: `{"content":"See you there"}`}, http.StatusCreated)
	assertGolden(t, "list_posts", e.must(t, call{as: "bob", route: "GET /groups/{groupId}/posts", groupID: gid}, http.StatusOK))

	assertGolden(t, "invite", e.must(t, call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: gid,
		body: `{"userIds":["carol","bob","alice","carol"]}`}, http.StatusCreated))
	assertGolden(t, "list_invitations", e.must(t, call{as: "carol", route: "GET /invitations", query: map[string]string{"status": "pending"}}, http.StatusOK))
	assertGolden(t, "accept_invitation", e.must(t, call{as: "carol", route: "POST /groups/{groupId}/invitations/accept", groupID: gid}, http.StatusOK))

	assertGolden(t, "list_members", e.must(t, call{as: "carol", route: "GET /groups/{groupId}/members", groupID: gid}, http.StatusOK))
	assertGolden(t, "list_groups_mine", e.must(t, call{as: "carol", route: "GET /groups", query: map[string]string{"scope": "mine"}}, http.StatusOK))
	public := decode[listResp](t, e.must(t, call{as: "dave", route: "GET /groups", query: map[string]string{"scope": "public"}}, http.StatusOK))
	if len(public.Items) != 1 || public.Items[0]["memberCount"] != float64(3) {
		t.Errorf("public groups = %+v, want the one group with 3 members", public.Items)
	}

	// A declined invitation is answered too, and shows in ?status=declined.
	e.must(t, call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: gid, body: `{"userIds":["dave"]}`}, http.StatusCreated)
	assertGolden(t, "decline_invitation", e.must(t, call{as: "dave", route: "POST /groups/{groupId}/invitations/decline", groupID: gid}, http.StatusOK))
	declined := decode[listResp](t, e.must(t, call{as: "dave", route: "GET /invitations", query: map[string]string{"status": "declined"}}, http.StatusOK))
	if len(declined.Items) != 1 {
		t.Errorf("declined invitations = %+v, want 1", declined.Items)
	}

	leave := e.must(t, call{as: "bob", route: "DELETE /groups/{groupId}/members/me", groupID: gid}, http.StatusNoContent)
	if leave.Body != "" {
		t.Errorf("leave body = %q, want empty", leave.Body)
	}
	if got := decode[groupResp](t, e.must(t, call{as: "alice", route: "GET /groups/{groupId}", groupID: gid}, http.StatusOK)); got.MemberCount != 2 {
		t.Errorf("memberCount after leave = %d, want 2", got.MemberCount)
	}
}

func TestNotifications(t *testing.T) {
	e := newEnv(t, 30)
	ctx := context.Background()
	// The inbox is written by the fan-out; seed it the same way.
	at := start.Add(time.Hour)
	var ns []groupcast.Notification
	for i := range 3 {
		ns = append(ns, groupcast.Notification{UserID: "bob", Envelope: groupcast.Envelope{
			ID: fmt.Sprintf("evt%d", i), Type: groupcast.EventPostCreated, GroupID: "g1",
			Data: json.RawMessage(fmt.Sprintf(`{"postId":"p%d","contentPreview":"hello"}`, i)),
			At:   at.Add(time.Duration(i) * time.Minute),
		}})
	}
	if err := e.store.PutNotifications(ctx, ns); err != nil {
		t.Fatal(err)
	}

	page := e.must(t, call{as: "bob", route: "GET /notifications", query: map[string]string{"limit": "2"}}, http.StatusOK)
	assertGolden(t, "list_notifications", page)
	first := decode[struct {
		listResp
		UnreadCount int `json:"unreadCount"`
	}](t, page)
	if first.NextCursor == nil {
		t.Fatal("nextCursor is null on a page of 2 of 3")
	}
	rest := decode[listResp](t, e.must(t, call{as: "bob", route: "GET /notifications",
		query: map[string]string{"limit": "2", "cursor": *first.NextCursor}}, http.StatusOK))
	if len(rest.Items) != 1 || rest.NextCursor != nil || rest.Items[0]["id"] != "evt0" {
		t.Errorf("second page = %+v, want only evt0 and no cursor", rest)
	}

	unread := func() int {
		return decode[struct {
			UnreadCount int `json:"unreadCount"`
		}](t, e.must(t, call{as: "bob", route: "GET /notifications"}, http.StatusOK)).UnreadCount
	}
	resp := e.must(t, call{as: "bob", route: "POST /notifications/read", body: `{"ids":["evt2"]}`}, http.StatusNoContent)
	if resp.Body != "" {
		t.Errorf("mark read body = %q, want empty", resp.Body)
	}
	if got := unread(); got != 2 {
		t.Errorf("unread after marking one = %d, want 2", got)
	}
	e.must(t, call{as: "bob", route: "POST /notifications/read", body: `{"all":true}`}, http.StatusNoContent)
	if got := unread(); got != 0 {
		t.Errorf("unread after marking all = %d, want 0", got)
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t, 30)
	for i := range 3 {
		e.createGroup(t, "alice", fmt.Sprintf("group %d", i), "public")
	}
	seen := map[string]bool{}
	q := map[string]string{"scope": "public", "limit": "2"}
	for page := 0; ; page++ {
		l := decode[listResp](t, e.must(t, call{as: "bob", route: "GET /groups", query: q}, http.StatusOK))
		for _, it := range l.Items {
			seen[it["groupId"].(string)] = true
		}
		if l.NextCursor == nil {
			break
		}
		if page > 3 {
			t.Fatal("pagination does not end")
		}
		q = map[string]string{"scope": "public", "limit": "2", "cursor": *l.NextCursor}
	}
	if len(seen) != 3 {
		t.Errorf("paged through %d distinct groups, want 3", len(seen))
	}
}

func TestListPostsAfter(t *testing.T) {
	e := newEnv(t, 30)
	gid := e.createGroup(t, "alice", "g", "public")
	var ids []string
	for i := range 3 {
		resp := e.must(t, call{as: "alice", route: "POST /groups/{groupId}/posts", groupID: gid, body: fmt.Sprintf(`{"content":"post %d"}`, i)}, http.StatusCreated)
		ids = append(ids, decode[struct {
			PostID string `json:"postId"`
		}](t, resp).PostID)
	}
	l := decode[listResp](t, e.must(t, call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid,
		query: map[string]string{"after": ids[0]}}, http.StatusOK))
	var got []string
	for _, it := range l.Items {
		got = append(got, it["postId"].(string))
	}
	if want := []string{ids[2], ids[1]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("posts after %s = %v, want newest first %v", ids[0], got, want)
	}
}

func TestAuthorizationFailures(t *testing.T) {
	e := newEnv(t, 30)
	public := e.createGroup(t, "alice", "open", "public")
	private := e.createGroup(t, "alice", "secret", "private")
	e.must(t, call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: private, body: `{"userIds":["carol"]}`}, http.StatusCreated)

	for _, tc := range []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"non-member posts", call{as: "mallory", route: "POST /groups/{groupId}/posts", groupID: public, body: `{"content":"hi"}`}, 403, "forbidden"},
		{"accept someone else's invitation", call{as: "mallory", route: "POST /groups/{groupId}/invitations/accept", groupID: private}, 404, "not_found"},
		{"read a private group", call{as: "mallory", route: "GET /groups/{groupId}", groupID: private}, 404, "not_found"},
		{"list a private group's members", call{as: "mallory", route: "GET /groups/{groupId}/members", groupID: private}, 404, "not_found"},
		{"list a private group's posts", call{as: "mallory", route: "GET /groups/{groupId}/posts", groupID: private}, 404, "not_found"},
		{"non-member invites", call{as: "mallory", route: "POST /groups/{groupId}/invitations", groupID: public, body: `{"userIds":["bob"]}`}, 403, "forbidden"},
		{"join a private group", call{as: "mallory", route: "POST /groups/{groupId}/members", groupID: private}, 403, "forbidden"},
		{"owner leaves", call{as: "alice", route: "DELETE /groups/{groupId}/members/me", groupID: public}, 409, "conflict"},
		{"join twice", call{as: "alice", route: "POST /groups/{groupId}/members", groupID: public}, 409, "conflict"},
		{"unknown group", call{as: "alice", route: "GET /groups/{groupId}", groupID: "01NOSUCHGROUP"}, 404, "not_found"},
		{"no claims", call{route: "GET /groups"}, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(t, tc.c)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			if got := decode[errorResp](t, resp).Error; got.Code != tc.code || got.Message == "" {
				t.Errorf("error = %+v, want code %q and a message", got, tc.code)
			}
		})
	}

	// None of the refused calls changed the groups.
	for gid, want := range map[string]int{public: 1, private: 1} {
		if got := decode[groupResp](t, e.must(t, call{as: "alice", route: "GET /groups/{groupId}", groupID: gid}, http.StatusOK)); got.MemberCount != want {
			t.Errorf("group %s memberCount = %d, want %d", gid, got.MemberCount, want)
		}
	}

	// Answering twice is a conflict.
	e.must(t, call{as: "carol", route: "POST /groups/{groupId}/invitations/accept", groupID: private}, http.StatusOK)
	e.must(t, call{as: "carol", route: "POST /groups/{groupId}/invitations/decline", groupID: private}, http.StatusConflict)
}

func TestIdentityClaims(t *testing.T) {
	e := newEnv(t, 30)
	for _, tc := range []struct {
		name   string
		claims map[string]string
		status int
		author string
	}{
		{"name wins", map[string]string{"sub": "u1", "name": "Ada", "preferred_username": "ada"}, 201, "Ada"},
		{"preferred_username next", map[string]string{"sub": "u2", "preferred_username": "bea"}, 201, "bea"},
		{"sub last", map[string]string{"sub": "u3"}, 201, "u3"},
		{"no sub", map[string]string{"name": "Nobody"}, 401, ""},
		{"blank sub", map[string]string{"sub": "  ", "name": "Nobody"}, 401, ""},
		{"empty sub", map[string]string{"sub": "", "name": "Nobody"}, 401, ""},
		// Whitespace never turns one subject into another (" u1" is not u1).
		{"sub with leading space", map[string]string{"sub": " u1"}, 401, ""},
		{"sub with trailing space", map[string]string{"sub": "u1 "}, 401, ""},
		{"sub with leading tab", map[string]string{"sub": "\tu1"}, 401, ""},
		{"sub with no-break space", map[string]string{"sub": "\u00a0u1"}, 401, ""},
		{"display name trimmed", map[string]string{"sub": "u4", "name": "  Dee  "}, 201, "Dee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := call{as: "x", route: "POST /groups", body: `{"name":"n","visibility":"public"}`}.event(t)
			ev.RequestContext.Authorizer.JWT.Claims = tc.claims
			resp := e.serve(t, ev)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			if tc.status != 201 {
				return
			}
			gid := decode[groupResp](t, resp).GroupID
			members := decode[listResp](t, e.must(t, call{as: tc.claims["sub"], route: "GET /groups/{groupId}/members", groupID: gid}, http.StatusOK))
			if len(members.Items) != 1 || members.Items[0]["displayName"] != tc.author {
				t.Errorf("members = %+v, want one named %q", members.Items, tc.author)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t, 30)
	gid := e.createGroup(t, "alice", "g", "public")
	long := func(n int) string { return strings.Repeat("é", n) }
	ids := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, strconv.Quote(fmt.Sprintf("user%d", i)))
		}
		return `{"userIds":[` + strings.Join(s, ",") + `]}`
	}
	createGroup := func(body string) call { return call{as: "alice", route: "POST /groups", body: body} }
	post := func(body string) call {
		return call{as: "alice", route: "POST /groups/{groupId}/posts", groupID: gid, body: body}
	}
	invite := func(body string) call {
		return call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: gid, body: body}
	}
	big := `{"content":"` + strings.Repeat("a", 65<<10) + `"}`

	for _, tc := range []struct {
		name    string
		c       call
		base64  bool
		status  int
		message string // a fragment the message must contain
	}{
		{"empty name", createGroup(`{"name":"","visibility":"public"}`), false, 400, "name"},
		{"blank name", createGroup(`{"name":"   ","visibility":"public"}`), false, 400, "name"},
		{"101-char name", createGroup(`{"name":"` + long(101) + `","visibility":"public"}`), false, 400, "name"},
		{"1001-char description", createGroup(`{"name":"n","description":"` + long(1001) + `","visibility":"public"}`), false, 400, "description"},
		{"bad visibility", createGroup(`{"name":"n","visibility":"secret"}`), false, 400, "visibility"},
		{"missing visibility", createGroup(`{"name":"n"}`), false, 400, "visibility"},
		{"unknown field", createGroup(`{"name":"n","visiblity":"public"}`), false, 400, `unknown field "visiblity"`},
		{"wrong type", createGroup(`{"name":5,"visibility":"public"}`), false, 400, `"name" must be a string`},
		{"not an object", createGroup(`["n"]`), false, 400, "JSON object"},
		{"bad JSON", createGroup(`{"name":`), false, 400, "malformed JSON"},
		{"trailing data", createGroup(`{"name":"n","visibility":"public"}{}`), false, 400, "single JSON object"},
		{"empty body", createGroup(``), false, 400, "required"},
		{"empty content", post(`{"content":""}`), false, 400, "content"},
		{"whitespace content", post(`{"content":" \n\t "}`), false, 400, "content"},
		{"5001-char content", post(`{"content":"` + long(5001) + `"}`), false, 400, "content"},
		{"invalid UTF-8", post("{\"content\":\"caf\xe9\"}"), false, 400, "UTF-8"},
		{"invalid UTF-8 after base64", invite(base64.StdEncoding.EncodeToString([]byte("{\"userIds\":[\"u\xff\"]}"))), true, 400, "UTF-8"},
		{"U+FFFD that API Gateway put for invalid bytes", invite("{\"userIds\":[\"u\uFFFD\"]}"), false, 400, "U+FFFD"},
		{"U+FFFD in content", post("{\"content\":\"caf\uFFFD\"}"), false, 400, "U+FFFD"},
		{"65 KiB body", post(big), false, 413, "exceeds"},
		{"65 KiB base64 body", post(base64.StdEncoding.EncodeToString([]byte(big))), true, 413, "exceeds"},
		{"bad base64", post("!!!"), true, 400, "base64"},
		{"51 userIds", call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: gid, body: ids(51)}, false, 400, "50"},
		{"no userIds", call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: gid, body: `{"userIds":[]}`}, false, 400, "userIds"},
		{"bad cursor", call{as: "alice", route: "GET /groups", query: map[string]string{"cursor": "not-a-cursor"}}, false, 400, "cursor"},
		{"empty cursor", call{as: "alice", route: "GET /groups", query: map[string]string{"cursor": ""}}, false, 400, "cursor"},
		{"limit 0", call{as: "alice", route: "GET /groups", query: map[string]string{"limit": "0"}}, false, 400, "limit"},
		{"limit 101", call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid, query: map[string]string{"limit": "101"}}, false, 400, "limit"},
		{"limit not a number", call{as: "alice", route: "GET /notifications", query: map[string]string{"limit": "ten"}}, false, 400, "limit"},
		{"bad scope", call{as: "alice", route: "GET /groups", query: map[string]string{"scope": "all"}}, false, 400, "scope"},
		{"bad status", call{as: "alice", route: "GET /invitations", query: map[string]string{"status": "maybe"}}, false, 400, "status"},
		{"empty after", call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid, query: map[string]string{"after": ""}}, false, 400, "after"},
		// Post ids are ULIDs (the domain's ValidateULID): the transport has no rule of its own.
		{"after longer than an id", call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid, query: map[string]string{"after": strings.Repeat("A", groupcast.MaxIDLength+1)}}, false, 400, "after"},
		{"after garbage", call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid, query: map[string]string{"after": "garbage"}}, false, 400, "ULID"},
		{"after lower-cased", call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid, query: map[string]string{"after": "01test00000000000000000001"}}, false, 400, "ULID"},
		{"after an event id", call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid, query: map[string]string{"after": "96471733c7244900d56ece61cf148caa"}}, false, 400, "ULID"},
		{"read neither ids nor all", call{as: "alice", route: "POST /notifications/read", body: `{}`}, false, 400, "ids"},
		{"read both ids and all", call{as: "alice", route: "POST /notifications/read", body: `{"ids":["a"],"all":true}`}, false, 400, "ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.c.event(t)
			ev.IsBase64Encoded = tc.base64
			resp := e.serve(t, ev)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, resp.Body)
			}
			got := decode[errorResp](t, resp).Error
			wantCode := map[int]string{400: "invalid", 413: "too_large"}[tc.status]
			if got.Code != wantCode || !strings.Contains(got.Message, tc.message) {
				t.Errorf("error = %+v, want code %q and a message mentioning %q", got, wantCode, tc.message)
			}
		})
	}

	// Bad input changed nothing: still one group with no posts.
	mine := decode[listResp](t, e.must(t, call{as: "alice", route: "GET /groups"}, http.StatusOK))
	posts := decode[listResp](t, e.must(t, call{as: "alice", route: "GET /groups/{groupId}/posts", groupID: gid}, http.StatusOK))
	if len(mine.Items) != 1 || len(posts.Items) != 0 {
		t.Errorf("after bad input: %d groups and %d posts, want 1 and 0", len(mine.Items), len(posts.Items))
	}
	// Nobody sent the id "u\uFFFD": it must not have been invited.
	got := decode[listResp](t, e.must(t, call{as: "u\uFFFD", route: "GET /invitations"}, http.StatusOK))
	if len(got.Items) != 0 {
		t.Errorf("u\\uFFFD has %d invitations, want none", len(got.Items))
	}
}

// TestInvalidUTF8AsLambdaDeliversIt sends invalid UTF-8 the way it reaches
// the function: the event is JSON, so the bytes arrive as U+FFFD, and the
// handler must still refuse them.
func TestInvalidUTF8AsLambdaDeliversIt(t *testing.T) {
	e := newEnv(t, 30)
	g := decode[groupResp](t, e.must(t, call{as: "alice", route: "POST /groups", body: `{"name":"g","visibility":"private"}`}, http.StatusCreated))
	ev := call{as: "alice", route: "POST /groups/{groupId}/invitations", groupID: g.GroupID, body: "{\"userIds\":[\"u\xff\"]}"}.event(t)
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var delivered events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &delivered); err != nil {
		t.Fatal(err)
	}
	if resp := e.serve(t, delivered); resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, "U+FFFD") {
		t.Fatalf("status %d %s, want 400 naming U+FFFD", resp.StatusCode, resp.Body)
	}
}

// TestEscapedReplacementCharAccepted: a client that means U+FFFD can still
// send it, as the JSON escape.
func TestEscapedReplacementCharAccepted(t *testing.T) {
	e := newEnv(t, 30)
	g := decode[groupResp](t, e.must(t, call{as: "alice", route: "POST /groups", body: `{"name":"g","visibility":"private"}`}, http.StatusCreated))
	e.must(t, call{as: "alice", route: "POST /groups/{groupId}/posts", groupID: g.GroupID, body: `{"content":"caf\ufffd"}`}, http.StatusCreated)
}

func TestBase64BodyAccepted(t *testing.T) {
	e := newEnv(t, 30)
	ev := call{as: "alice", route: "POST /groups"}.event(t)
	ev.Body = base64.StdEncoding.EncodeToString([]byte(`{"name":"b64","visibility":"private"}`))
	ev.IsBase64Encoded = true
	if resp := e.serve(t, ev); resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
	}
}

func TestRateLimit(t *testing.T) {
	const limit = 2
	e := newEnv(t, limit)
	gid := e.createGroup(t, "alice", "g", "public")
	p := call{as: "alice", route: "POST /groups/{groupId}/posts", groupID: gid, body: `{"content":"hi"}`}
	for range limit {
		e.must(t, p, http.StatusCreated)
	}
	resp := e.must(t, p, http.StatusTooManyRequests)
	if got := decode[errorResp](t, resp).Error.Code; got != "rate_limited" {
		t.Errorf("code = %q, want rate_limited", got)
	}
	secs, err := strconv.Atoi(resp.Headers["Retry-After"])
	if err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After = %q, want 1..60 seconds", resp.Headers["Retry-After"])
	}
	// The limit is per user: another member may still post.
	e.must(t, call{as: "bob", route: "POST /groups/{groupId}/members", groupID: gid}, http.StatusCreated)
	e.must(t, call{as: "bob", route: "POST /groups/{groupId}/posts", groupID: gid, body: `{"content":"hi"}`}, http.StatusCreated)
}

func TestUnknownRoute(t *testing.T) {
	e := newEnv(t, 30)
	for _, route := range []string{"$default", "PATCH /groups/{groupId}", ""} {
		resp := e.do(t, call{as: "alice", route: route, groupID: "g1"})
		if resp.StatusCode != http.StatusNotFound || decode[errorResp](t, resp).Error.Code != "not_found" {
			t.Errorf("route %q: %d %s, want 404 not_found", route, resp.StatusCode, resp.Body)
		}
	}
}

// TestInternalErrorsAreHidden points the service at a table that does not
// exist: the client gets a generic 500 and the cause goes to the log only.
func TestInternalErrorsAreHidden(t *testing.T) {
	client, _ := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, "no-such-table")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{Now: time.Now, NewID: (&clock{}).NewID, PostsPerMinute: 30})
	if err != nil {
		t.Fatal(err)
	}
	logs := new(bytes.Buffer)
	h, err := httpapi.New(svc, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), call{as: "alice", route: "GET /groups"}.event(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %s", resp.StatusCode, resp.Body)
	}
	if got := decode[errorResp](t, resp).Error; got.Code != "internal" || got.Message != "internal error" {
		t.Errorf("error = %+v, want the generic internal error", got)
	}
	if strings.Contains(resp.Body, "no-such-table") {
		t.Errorf("response leaks the cause: %s", resp.Body)
	}
	if !strings.Contains(logs.String(), "no-such-table") || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("log does not record the cause: %s", logs.String())
	}
}
