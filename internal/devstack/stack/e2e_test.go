package stack_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/internal/devstack/tokens"
	"github.com/groupcast/groupcast/internal/loadgen"
	"github.com/groupcast/groupcast/pkg/client"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// The end-to-end tests share one stack: building and starting the real
// function processes is the expensive part, and the tests keep out of each
// other's way by using fresh users and groups.
var shared *stack.Stack

// buildDir keeps function binaries across the stacks of one test run.
var buildDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	dir, err := os.MkdirTemp("", "devstack-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	buildDir = dir
	s, err := startStack(context.Background(), &sharedProgress, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start stack:", err)
		return 1
	}
	shared = s
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "close stack:", err)
		return 1
	}
	return code
}

// sharedProgress holds what the shared stack printed while it started.
var sharedProgress lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startStack(ctx context.Context, progress io.Writer, env map[string]map[string]string) (*stack.Stack, error) {
	return startStackWith(ctx, progress, env, nil)
}

// startStackWith is startStack with the options changed by edit.
func startStackWith(ctx context.Context, progress io.Writer, env map[string]map[string]string, edit func(*stack.Options)) (*stack.Stack, error) {
	logs := io.Discard
	if testing.Verbose() {
		logs = os.Stderr
	}
	opts := stack.Options{
		Template: filepath.Join("..", "..", "..", "template.yaml"),
		// Tests post faster than a person; the production limit is a template parameter.
		Parameters: map[string]string{"PostRateLimitPerMinute": "10000"},
		BuildDir:   buildDir,
		// In-process kumo servers share their tables, so each stack gets
		// its own table names.
		StackName:    fmt.Sprintf("e2e%d", stackSeq.Add(1)),
		Env:          env,
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FunctionLogs: logs,
		Progress:     progress,
	}
	if edit != nil {
		edit(&opts)
	}
	return stack.Start(ctx, opts)
}

// user is one signed-in person with an HTTP client.
type user struct {
	ID    string
	token string
	*client.HTTP
}

var userSeq, stackSeq atomic.Int64

func newUser(t *testing.T, s *stack.Stack, name string) *user {
	t.Helper()
	id := fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano()%1e6, userSeq.Add(1))
	tok, err := s.Mint(id, name)
	if err != nil {
		t.Fatal(err)
	}
	return &user{ID: id, token: tok, HTTP: &client.HTTP{BaseURL: s.Endpoints.HTTPAPI, Token: tok}}
}

func (u *user) connect(t *testing.T, s *stack.Stack, groupIDs ...string) *client.Conn {
	t.Helper()
	ctx := testContext(t)
	c, err := client.Dial(ctx, s.Endpoints.WebSocket, u.token)
	if err != nil {
		t.Fatalf("%s connect: %v", u.ID, err)
	}
	t.Cleanup(func() { c.Close() })
	if len(groupIDs) > 0 {
		r, err := c.Subscribe(ctx, groupIDs...)
		if err != nil || r.Type != "subscribed" || len(r.GroupIDs) != len(groupIDs) {
			t.Fatalf("%s subscribe %v: %v %+v", u.ID, groupIDs, err, r)
		}
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// awaitEvent waits for the next event of type typ on c, skipping others.
func awaitEvent(t *testing.T, c *client.Conn, typ string) client.Event {
	t.Helper()
	return awaitMatching(t, c, typ, "")
}

// awaitMatching waits for an event of type typ whose data contains the JSON
// fragment frag, skipping others: events of earlier set-up steps may still
// be in flight when a test starts listening.
func awaitMatching(t *testing.T, c *client.Conn, typ, frag string) client.Event {
	t.Helper()
	// Generous: on a loaded 2-core CI machine a cold function start can take
	// a second or two; this bounds a hung test, it does not measure speed.
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if ev.Event.Type == typ && containsJSON(ev.Event.Data, frag) {
				return ev.Event
			}
		case <-c.Done():
			t.Fatalf("connection closed while waiting for %s %s: %v", typ, frag, c.Err())
		case <-timeout:
			t.Fatalf("no %s event with %s arrived", typ, frag)
		}
	}
}

func groupWith(t *testing.T, owner *user, visibility string, members ...*user) client.Group {
	t.Helper()
	ctx := testContext(t)
	g, err := owner.CreateGroup(ctx, "group of "+owner.ID, "e2e", visibility)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if err := m.JoinGroup(ctx, g.GroupID); err != nil {
			t.Fatalf("%s join: %v", m.ID, err)
		}
	}
	return g
}

func TestPostReachesEveryOtherSubscribedMember(t *testing.T) {
	s := shared
	ctx := testContext(t)
	a, b, c, d := newUser(t, s, "a"), newUser(t, s, "b"), newUser(t, s, "c"), newUser(t, s, "d")
	g := groupWith(t, a, "public", b, c, d)
	ca := a.connect(t, s, g.GroupID)
	others := []*client.Conn{b.connect(t, s, g.GroupID), c.connect(t, s, g.GroupID), d.connect(t, s, g.GroupID)}

	content := "Trail report: the ridge path is open again after the storm, bring water and a map. " +
		"Parking fills up by 8 so come early."
	p, err := a.CreatePost(ctx, g.GroupID, content)
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range others {
		ev := awaitEvent(t, conn, "group.post_created")
		var data struct {
			PostID, AuthorID, ContentPreview string
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		want := groupcast.Preview(content)
		if ev.GroupID != g.GroupID || data.PostID != p.PostID || data.AuthorID != a.ID || data.ContentPreview != want {
			t.Errorf("event %+v data %+v; want post %s preview %q", ev, data, p.PostID, want)
		}
	}
	// A second post proves the first reached everyone, and that the author
	// got neither (events arrive in order per connection).
	if _, err := b.CreatePost(ctx, g.GroupID, "marker"); err != nil {
		t.Fatal(err)
	}
	marker := awaitEvent(t, ca, "group.post_created")
	if !json.Valid(marker.Data) || !containsJSON(marker.Data, `"authorId":"`+b.ID+`"`) {
		t.Fatalf("author's first event is not b's marker post: %s", marker.Data)
	}
	for _, conn := range others {
		assertNoDuplicate(t, conn)
	}
}

// containsJSON reports whether an event's data holds the JSON fragment.
func containsJSON(data json.RawMessage, frag string) bool {
	return json.Valid(data) && strings.Contains(string(data), frag)
}

func assertNoDuplicate(t *testing.T, c *client.Conn) {
	t.Helper()
	for {
		select {
		case ev := <-c.Events():
			if ev.Event.Type == "group.post_created" && !containsJSON(ev.Event.Data, `"contentPreview":"marker"`) {
				t.Errorf("duplicate or unexpected post event: %s", ev.Event.Data)
			}
		default:
			return
		}
	}
}

func TestTenMembersOnePostsNineReceive(t *testing.T) {
	s := shared
	ctx := testContext(t)
	users := make([]*user, 10)
	for i := range users {
		users[i] = newUser(t, s, fmt.Sprintf("m%d", i))
	}
	g := groupWith(t, users[0], "private")
	for _, u := range users[1:] {
		if _, err := users[0].Invite(ctx, g.GroupID, u.ID); err != nil {
			t.Fatal(err)
		}
		if err := u.AnswerInvitation(ctx, g.GroupID, true); err != nil {
			t.Fatal(err)
		}
	}
	conns := make([]*client.Conn, len(users))
	for i, u := range users {
		conns[i] = u.connect(t, s, g.GroupID)
	}
	poster := 3
	p, err := users[poster].CreatePost(ctx, g.GroupID, "hello nine")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		if i == poster {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := awaitEventNoFatal(c, "group.post_created")
			if ev == nil || !containsJSON(ev.Data, `"postId":"`+p.PostID+`"`) {
				t.Errorf("member %d did not receive post %s: %v", i, p.PostID, ev)
			}
		}()
	}
	wg.Wait()
}

func awaitEventNoFatal(c *client.Conn, typ string) *client.Event {
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if ev.Event.Type == typ {
				return &ev.Event
			}
		case <-c.Done():
			return nil
		case <-timeout:
			return nil
		}
	}
}

func TestInvitationsLive(t *testing.T) {
	s := shared
	ctx := testContext(t)
	a, b, c, watcher := newUser(t, s, "a"), newUser(t, s, "b"), newUser(t, s, "c"), newUser(t, s, "w")
	g := groupWith(t, a, "private")
	if _, err := a.Invite(ctx, g.GroupID, watcher.ID); err != nil {
		t.Fatal(err)
	}
	if err := watcher.AnswerInvitation(ctx, g.GroupID, true); err != nil {
		t.Fatal(err)
	}
	ca := a.connect(t, s, g.GroupID)
	cw := watcher.connect(t, s, g.GroupID)
	cb, cc := b.connect(t, s), c.connect(t, s)

	res, err := a.Invite(ctx, g.GroupID, b.ID, c.ID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Invitations) != 2 || len(res.Skipped) != 1 || res.Skipped[0].Reason != "self" {
		t.Fatalf("invite result %+v", res)
	}
	for _, conn := range []*client.Conn{cb, cc} {
		ev := awaitEvent(t, conn, "invitation.received")
		if ev.GroupID != g.GroupID || !containsJSON(ev.Data, `"inviterId":"`+a.ID+`"`) {
			t.Errorf("invitation.received %+v %s", ev, ev.Data)
		}
	}

	if err := b.AnswerInvitation(ctx, g.GroupID, true); err != nil {
		t.Fatal(err)
	}
	acc := awaitMatching(t, ca, "invitation.accepted", `"inviteeId":"`+b.ID+`"`)
	if acc.GroupID != g.GroupID {
		t.Errorf("invitation.accepted %+v", acc)
	}
	joined := awaitMatching(t, cw, "group.member_joined", `"userId":"`+b.ID+`"`)
	if !containsJSON(joined.Data, `"memberCount":3`) {
		t.Errorf("member_joined data %s, want memberCount 3", joined.Data)
	}

	if err := c.AnswerInvitation(ctx, g.GroupID, false); err != nil {
		t.Fatal(err)
	}
	awaitMatching(t, ca, "invitation.declined", `"inviteeId":"`+c.ID+`"`)
	if err := b.AnswerInvitation(ctx, g.GroupID, true); !client.IsStatus(err, http.StatusConflict) {
		t.Errorf("answering twice: %v, want 409", err)
	}
}

func TestConnectWithoutValidTokenIsRefused(t *testing.T) {
	s := shared
	for name, token := range map[string]string{
		"missing": "",
		"garbage": "not-a-jwt",
		"forged":  forge(t),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := client.Dial(testContext(t), s.Endpoints.WebSocket, token)
			if st := client.HandshakeStatus(err); st != http.StatusUnauthorized && st != http.StatusForbidden {
				t.Fatalf("dial with %s token: %v (status %d), want 401/403", name, err, st)
			}
		})
	}
}

// forge returns a token with the stack's issuer and audience, signed by
// another key.
func forge(t *testing.T) string {
	iss, err := tokens.New(tokens.Options{Issuer: strings.TrimSuffix(shared.Endpoints.Tokens, "/token"), Audience: "local"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint("mallory", "Mallory")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestNonMemberCannotSubscribeToPrivateGroup(t *testing.T) {
	s := shared
	ctx := testContext(t)
	owner, stranger := newUser(t, s, "owner"), newUser(t, s, "stranger")
	priv := groupWith(t, owner, "private")
	pub := groupWith(t, owner, "public")
	c := stranger.connect(t, s)
	r, err := c.Subscribe(ctx, priv.GroupID, pub.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GroupIDs) != 1 || r.GroupIDs[0] != pub.GroupID || len(r.Rejected) != 1 || r.Rejected[0].GroupID != priv.GroupID {
		t.Fatalf("subscribe reply %+v: want only the public group accepted", r)
	}
}

func TestClosedAndStaleConnectionsAreCleanedUp(t *testing.T) {
	s := shared
	ctx := testContext(t)
	store := storeOf(t, s)
	a, b := newUser(t, s, "a"), newUser(t, s, "b")
	g := groupWith(t, a, "public", b)

	// A connection the client closes is removed by $disconnect.
	c := b.connect(t, s, g.GroupID)
	c.Close()
	eventually(t, "closed connection removed", func() bool {
		ids, err := store.UserConnectionIDs(ctx, b.ID)
		return err == nil && len(ids) == 0
	})

	// A connection the table still lists but API Gateway no longer knows
	// (its $disconnect was lost) is removed by the fan-out after a 410,
	// once it is older than a handshake can be.
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// One that connected a moment ago also answers 410 while API Gateway
	// finishes its handshake, and must be kept.
	stale, young := "StaleConnId0=", "YoungConnId0="
	for id, at := range map[string]time.Time{stale: time.Now().Add(-time.Minute), young: time.Now()} {
		if err := svc.Connect(ctx, groupcast.Connection{ID: id, UserID: b.ID, DisplayName: "b", ConnectedAt: at}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Subscribe(ctx, id, []string{g.GroupID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreatePost(ctx, g.GroupID, "anyone there?"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stale connection removed after 410", func() bool {
		ids, err := store.UserConnectionIDs(ctx, b.ID)
		return err == nil && slices.Equal(ids, []string{young})
	})
	// The shard's records are handled in order, so once a later post
	// reaches a live subscriber the first post's 410s have been handled.
	watcher := newUser(t, s, "w")
	cw := watcher.connect(t, s, g.GroupID)
	p, err := a.CreatePost(ctx, g.GroupID, "still here?")
	if err != nil {
		t.Fatal(err)
	}
	awaitMatching(t, cw, "group.post_created", `"postId":"`+p.PostID+`"`)
	if _, err := store.GetConnection(ctx, young); err != nil {
		t.Errorf("connection in its handshake window was deleted after a 410: %v", err)
	}
}

func storeOf(t *testing.T, s *stack.Stack) *dynamostore.Store {
	t.Helper()
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoints.DynamoDB),
		// The harness reads the table as the stack's admin; functions get
		// only what their policies grant.
		Credentials: credentials.StaticCredentialsProvider{Value: s.AdminCredentials()},
	})
	store, err := dynamostore.New(db, s.Tables[0])
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 20*time.Second, what, cond)
}

func eventuallyWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeliveryFailureLosesNothing runs a second stack whose fan-out and
// fast path reach @connections and SQS through switchable proxies. While
// delivery fails, posts are still created and listed. A record fails only
// when its work cannot be queued: while @connections is down, the failed
// pushes wait in the push queue and arrive on recovery; while SQS is down
// for the delivering functions, the fast path releases its claim, the
// stream's record is retried and finally lands in the on-failure
// destination, listed at /_devstack/failures.
func TestDeliveryFailureLosesNothing(t *testing.T) {
	var mgmtDown, sqsDown atomic.Bool
	var mgmtTarget, sqsTarget atomic.Pointer[url.URL]
	proxy := func(down *atomic.Bool, target *atomic.Pointer[url.URL]) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				http.Error(w, `{"message":"Internal server error"}`, http.StatusInternalServerError)
				return
			}
			httputil.NewSingleHostReverseProxy(target.Load()).ServeHTTP(w, r)
		}))
	}
	mgmtProxy, sqsProxy := proxy(&mgmtDown, &mgmtTarget), proxy(&sqsDown, &sqsTarget)
	defer mgmtProxy.Close()
	defer sqsProxy.Close()

	s, err := startStack(testContext(t), nil, map[string]map[string]string{
		// The fast path delivers through the same code, so it goes through
		// the same failing proxies (else it would deliver, or queue, for
		// the stream).
		"FanoutFunction":     {"WEBSOCKET_MANAGEMENT_ENDPOINT": mgmtProxy.URL + "/dev", "AWS_ENDPOINT_URL_SQS": sqsProxy.URL},
		"FastPathFunction":   {"WEBSOCKET_MANAGEMENT_ENDPOINT": mgmtProxy.URL + "/dev", "AWS_ENDPOINT_URL_SQS": sqsProxy.URL},
		"PushWorkerFunction": {"WEBSOCKET_MANAGEMENT_ENDPOINT": mgmtProxy.URL + "/dev"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	mgmt, _ := url.Parse(s.Endpoints.Management)
	mgmt.Path = ""
	mgmtTarget.Store(mgmt)
	sqsURL, _ := url.Parse(s.Endpoints.SQS)
	sqsTarget.Store(sqsURL)

	a, b := newUser(t, s, "a"), newUser(t, s, "b")
	g := groupWith(t, a, "public", b)
	cb := b.connect(t, s, g.GroupID)

	postWhileDown := func(t *testing.T, down *atomic.Bool, content string) client.Post {
		t.Helper()
		ctx := testContext(t)
		down.Store(true)
		p, err := a.CreatePost(ctx, g.GroupID, content)
		if err != nil {
			t.Fatalf("post while delivery is down: %v", err)
		}
		posts, err := b.ListPosts(ctx, g.GroupID, "")
		if err != nil || len(posts) == 0 || posts[0].PostID != p.PostID {
			t.Fatalf("post not listed while delivery is down: %v %+v", err, posts)
		}
		return p
	}

	t.Run("recovery delivers", func(t *testing.T) {
		p := postWhileDown(t, &mgmtDown, "posted while delivery is down")
		// Let the direct push fail before recovering: its connection then
		// waits in the push queue for the worker's next round.
		time.Sleep(500 * time.Millisecond)
		mgmtDown.Store(false)
		ev := awaitEvent(t, cb, "group.post_created")
		if !containsJSON(ev.Data, `"postId":"`+p.PostID+`"`) {
			t.Fatalf("after recovery got %s, want post %s", ev.Data, p.PostID)
		}
	})

	t.Run("exhausted retries land in the on-failure record", func(t *testing.T) {
		postWhileDown(t, &sqsDown, "posted while the queues stay down")
		defer sqsDown.Store(false)
		failuresURL := strings.TrimSuffix(s.Endpoints.Tokens, "/token") + "/_devstack/failures"
		var fails []struct {
			RequestContext     struct{ Condition string }
			DDBStreamBatchInfo struct{ BatchSize int }
		}
		// 11 invocations (10 retries), each trying SQS sendAttempts times
		// with backoff: longer than eventually's bound; this one only
		// bounds a hung test.
		eventuallyWithin(t, 90*time.Second, "an on-failure record", func() bool {
			resp, err := http.Get(failuresURL)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			return json.NewDecoder(resp.Body).Decode(&fails) == nil && len(fails) > 0
		})
		if fails[0].RequestContext.Condition != "RetryAttemptsExhausted" || fails[0].DDBStreamBatchInfo.BatchSize < 1 {
			t.Fatalf("on-failure record %+v", fails[0])
		}
		// The same record reached the FanoutDeadLetterQueue in the local SQS.
		body := receiveFromQueue(t, s, "FanoutDeadLetterQueue")
		var rec map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &rec); err != nil {
			t.Fatalf("queue message %q: %v", body, err)
		}
		for _, k := range []string{"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"} {
			if rec[k] == nil {
				t.Errorf("queue message lacks %s: %s", k, body)
			}
		}
	})
}

// TestLoadgenCountsEveryDelivery runs the load tool against the stack: its
// bookkeeping (expected, received, duplicates, latencies) must add up.
func TestLoadgenCountsEveryDelivery(t *testing.T) {
	rep, err := loadgen.Run(testContext(t), loadgen.Config{
		HTTPURL: shared.Endpoints.HTTPAPI, WSURL: shared.Endpoints.WebSocket,
		Tokens:  client.TokenEndpoint{URL: shared.Endpoints.Tokens},
		Members: 5, Connections: 10, Posts: 3, Rate: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Connections go round-robin to members; the poster's two see nothing.
	const want = 3 * 8
	if rep.Expected != want || rep.Received != want || rep.Missing != 0 || rep.Duplicated != 0 || rep.Latency.N != want || rep.PostErrors != 0 {
		t.Fatalf("report %+v, want %d deliveries, none missing or duplicated", rep, want)
	}
	if rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Latency.P99 < rep.Latency.P50 {
		t.Fatalf("latency percentiles out of order: %+v", rep.Latency)
	}
}

// TestLoadgenCountsRefusedPostsAsRefused puts a throttle in front of the
// HTTP API that refuses every second post with 429, as API Gateway's
// throttle does: those posts are refused, not missing deliveries.
func TestLoadgenCountsRefusedPostsAsRefused(t *testing.T) {
	target, err := url.Parse(shared.Endpoints.HTTPAPI)
	if err != nil {
		t.Fatal(err)
	}
	upstream := httputil.NewSingleHostReverseProxy(target)
	var posts atomic.Int64
	throttle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/posts") && posts.Add(1)%2 == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"Too Many Requests"}`)
			return
		}
		upstream.ServeHTTP(w, r)
	}))
	defer throttle.Close()

	rep, err := loadgen.Run(testContext(t), loadgen.Config{
		HTTPURL: throttle.URL, WSURL: shared.Endpoints.WebSocket,
		Tokens:  client.TokenEndpoint{URL: shared.Endpoints.Tokens},
		Members: 5, Connections: 10, Posts: 5, Rate: 20, Wait: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Posts 2 and 4 are refused; 3 accepted posts reach 8 connections each.
	const want = 3 * 8
	if rep.Refused != 2 || rep.PostErrors != 0 || rep.Expected != want || rep.Received != want || rep.Missing != 0 {
		t.Fatalf("report %+v, want 2 refused, %d expected and received, none missing", rep, want)
	}
}

// TestStartReportsProgress: the shared stack said what it was doing while it
// started: each function as it built, with its time, and "ready" with the
// endpoints.
func TestStartReportsProgress(t *testing.T) {
	out := sharedProgress.String()
	want := []string{"starting DynamoDB\n", "building ", "starting the HTTP APIs\n"}
	for _, fn := range shared.Functions {
		want = append(want, "  building "+fn+"\n", "  built "+fn+" in ")
	}
	e := shared.Endpoints
	want = append(want, "HTTP API "+e.HTTPAPI, "WebSocket "+e.WebSocket, "tokens "+e.Tokens)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("progress lacks %q:\n%s", w, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "ready in ") {
		t.Errorf("last progress line %q, want ready with the endpoints", last)
	}
}

// TestGatewayBodyRules sends bodies through the local HTTP API as a client
// would: a 7 MB body is refused with API Gateway's 413, and invalid UTF-8
// never becomes a user id, whatever the content type.
func TestGatewayBodyRules(t *testing.T) {
	owner := newUser(t, shared, "bodyrules")
	ctx := testContext(t)
	g, err := owner.CreateGroup(ctx, "body rules", "", "private")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantBody    string // fragment
	}{
		{"7 MB body", "/groups", "application/json", strings.Repeat("x", 7<<20), 413, `{"message": "Request Too Long"}`},
		{"invalid UTF-8 as JSON", "/groups/" + g.GroupID + "/invitations", "application/json", "{\"userIds\":[\"u\xff\"]}", 400, "U+FFFD"},
		{"invalid UTF-8 without a content type", "/groups/" + g.GroupID + "/invitations", "", "{\"userIds\":[\"u\xff\"]}", 400, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, shared.Endpoints.HTTPAPI+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+owner.token)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(b), tt.wantBody) {
				t.Fatalf("got %d %s, want %d containing %q", resp.StatusCode, b, tt.wantStatus, tt.wantBody)
			}
		})
	}
	// Nobody sent the id "u\uFFFD", so nobody by that id was invited.
	tok, err := shared.Mint("u\uFFFD", "Nobody")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Items []json.RawMessage }
	if err := (&client.HTTP{BaseURL: shared.Endpoints.HTTPAPI, Token: tok}).Do(ctx, http.MethodGet, "/invitations", nil, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 0 {
		t.Fatalf("u\\uFFFD has invitations %s", got.Items)
	}
}

// adminQueue returns an SQS client with the admin credentials and the URL
// of the stack's queue whose name contains logicalID.
func adminQueue(t *testing.T, s *stack.Stack, logicalID string) (*sqs.Client, string) {
	t.Helper()
	var name string
	for _, q := range s.Queues {
		if strings.Contains(q, "-"+logicalID+"-") {
			name = q
		}
	}
	if name == "" {
		t.Fatalf("no queue %s in %v", logicalID, s.Queues)
	}
	c := sqs.New(sqs.Options{Region: s.Region(), BaseEndpoint: aws.String(s.Endpoints.SQS),
		Credentials: credentials.StaticCredentialsProvider{Value: s.AdminCredentials()}})
	queueURL := s.Endpoints.SQS + "/" + s.AccountID() + "/" + name
	return c, queueURL
}

// receiveFromQueue long-polls the stack's queue whose name contains
// logicalID, with the admin credentials, and returns one message body.
func receiveFromQueue(t *testing.T, s *stack.Stack, logicalID string) string {
	t.Helper()
	c, queueURL := adminQueue(t, s, logicalID)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &queueURL, WaitTimeSeconds: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			return aws.ToString(out.Messages[0].Body)
		}
	}
	t.Fatalf("no message in %s", queueURL)
	return ""
}
