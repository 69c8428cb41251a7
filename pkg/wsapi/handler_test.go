package wsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/wsapi"
)

type env struct {
	h      *wsapi.Handler
	svc    *groupcast.Service
	store  *dynamostore.Store
	poster *recordingPoster
}

// recordingPoster stands in for @connections: it keeps what each
// connection was sent, in order.
type recordingPoster struct {
	mu   sync.Mutex
	sent map[string][][]byte
}

func (p *recordingPoster) PostToConnection(_ context.Context, in *apigatewaymanagementapi.PostToConnectionInput, _ ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent == nil {
		p.sent = map[string][][]byte{}
	}
	cid := aws.ToString(in.ConnectionId)
	p.sent[cid] = append(p.sent[cid], in.Data)
	return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
}

// envelopes returns what cid was pushed, decoded.
func (p *recordingPoster) envelopes(t *testing.T, cid string) []groupcast.Envelope {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []groupcast.Envelope
	for _, b := range p.sent[cid] {
		var e groupcast.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// newEnv wires the handlers to the real service and a fresh table.
func newEnv(t *testing.T, maxSubscriptions int) *env {
	t.Helper()
	client, table := dynamotest.NewTable(t)
	store, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{MaxSubscriptions: maxSubscriptions})
	if err != nil {
		t.Fatal(err)
	}
	poster := &recordingPoster{}
	h, err := wsapi.New(svc, poster, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, svc: svc, store: store, poster: poster}
}

// loadEvent reads a sample event from the repository's events/ folder.
func loadEvent(t *testing.T, name string) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// forUser points a sample event at connection cid of user.
func forUser(ev events.APIGatewayWebsocketProxyRequest, cid, user string) events.APIGatewayWebsocketProxyRequest {
	ev.RequestContext.ConnectionID = cid
	ev.RequestContext.Authorizer = map[string]any{"principalId": user, "userId": user, "displayName": user + " Example"}
	return ev
}

func (e *env) connect(t *testing.T, cid, user string) {
	t.Helper()
	resp, err := e.h.Connect(context.Background(), forUser(loadEvent(t, "connect.json"), cid, user))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connect %s: %d %v", cid, resp.StatusCode, err)
	}
}

// send delivers a message body on connection cid and returns the reply.
func (e *env) send(t *testing.T, cid, user, body string) map[string]any {
	t.Helper()
	ev := forUser(loadEvent(t, "message-ping.json"), cid, user)
	ev.Body = body
	return e.message(t, ev)
}

func (e *env) message(t *testing.T, ev events.APIGatewayWebsocketProxyRequest) map[string]any {
	t.Helper()
	resp, err := e.h.Message(context.Background(), ev)
	if err != nil {
		t.Fatalf("message returned error %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("message status %d, want 200 (the reply is in the body)", resp.StatusCode)
	}
	var reply map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &reply); err != nil {
		t.Fatalf("reply %q: %v", resp.Body, err)
	}
	return reply
}

func (e *env) group(t *testing.T, owner string, v groupcast.Visibility) string {
	t.Helper()
	g, err := e.svc.CreateGroup(context.Background(), groupcast.Caller{UserID: owner, DisplayName: owner},
		groupcast.CreateGroupInput{Name: "group of " + owner, Visibility: v})
	if err != nil {
		t.Fatal(err)
	}
	return g.ID
}

// withoutStartPositions checks that the reply gives exactly the streams a
// position (a ULID) and returns the reply without them.
func withoutStartPositions(t *testing.T, reply map[string]any, streams ...string) map[string]any {
	t.Helper()
	got, _ := reply["positions"].(map[string]any)
	if len(got) != len(streams) {
		t.Errorf("positions = %v, want one for each of %v", got, streams)
	}
	for _, name := range streams {
		p, _ := got[name].(string)
		if groupcast.ValidateULID("position", p) != nil {
			t.Errorf("positions[%q] = %v, want a ULID", name, got[name])
		}
	}
	delete(reply, "positions")
	return reply
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSampleEvents(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	// The samples' connection belongs to user-alice. The subscribe sample
	// names a fixed group id that does not exist here (rejected as
	// not_found) next to "*" (her one group) and "public".
	connect := loadEvent(t, "connect.json")
	if resp, err := e.h.Connect(ctx, connect); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connect.json: %d %v", resp.StatusCode, err)
	}
	gid := e.group(t, "user-alice", groupcast.Private)

	reply := withoutStartPositions(t, e.message(t, loadEvent(t, "message-subscribe.json")), "user", "group:"+gid, "public")
	want := `{"groupIds":["` + gid + `","public"],"recovered":{},"rejected":[{"groupId":"01JQ3ZK8Y6V5T9M2N4P7R8S0AB","reason":"not_found"}],"type":"subscribed"}`
	if got := jsonString(t, reply); got != want {
		t.Errorf("message-subscribe.json reply\n got %s\nwant %s", got, want)
	}
	if got := jsonString(t, e.message(t, loadEvent(t, "message-ping.json"))); got != `{"type":"pong"}` {
		t.Errorf("message-ping.json reply = %s", got)
	}
	if got := jsonString(t, e.message(t, loadEvent(t, "message-unsubscribe.json"))); got != `{"groupIds":["01JQ3ZK8Y6V5T9M2N4P7R8S0AB"],"type":"unsubscribed"}` {
		t.Errorf("message-unsubscribe.json reply = %s", got)
	}

	if resp, err := e.h.Disconnect(ctx, loadEvent(t, "disconnect.json")); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("disconnect.json: %d %v", resp.StatusCode, err)
	}
	cid := connect.RequestContext.ConnectionID
	if _, err := e.store.GetConnection(ctx, cid); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Errorf("connection after disconnect: err %v, want not_found", err)
	}
	if subs, err := e.store.Subscriptions(ctx, cid); err != nil || len(subs) != 0 {
		t.Errorf("subscriptions after disconnect = %v, %v; want none", subs, err)
	}
}

func TestConnect(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		authorizer any
		status     int
		wantName   string
	}{
		{"authorizer context", map[string]any{"principalId": "u1", "userId": "u1", "displayName": "Ada", "integrationLatency": 12}, 200, "Ada"},
		{"no display name", map[string]any{"userId": "u2"}, 200, "u2"},
		{"no authorizer", nil, 401, ""},
		{"no userId", map[string]any{"principalId": "u3"}, 401, ""},
		{"userId not a string", map[string]any{"userId": 42}, 401, ""},
		{"malformed userId", map[string]any{"userId": "a#b"}, 403, ""},
		// Never trimmed into another user's id.
		{"userId with leading space", map[string]any{"userId": " u5"}, 401, ""},
		{"userId with trailing tab", map[string]any{"userId": "u5\t"}, 401, ""},
		{"userId with no-break space", map[string]any{"userId": "\u00a0u5"}, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := loadEvent(t, "connect.json")
			cid := "conn-" + strings.ReplaceAll(tc.name, " ", "-")
			ev.RequestContext.ConnectionID = cid
			ev.RequestContext.Authorizer = tc.authorizer
			resp, err := e.h.Connect(ctx, ev)
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d (err %v), want %d", resp.StatusCode, err, tc.status)
			}
			conn, err := e.store.GetConnection(ctx, cid)
			if tc.status != 200 {
				if groupcast.ErrorCode(err) != groupcast.CodeNotFound {
					t.Errorf("refused connect wrote a connection: %+v, %v", conn, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if conn.DisplayName != tc.wantName || !conn.ConnectedAt.Equal(time.UnixMilli(ev.RequestContext.ConnectedAt)) {
				t.Errorf("connection = %+v, want name %q connected at the event's connectedAt", conn, tc.wantName)
			}
		})
	}
}

func TestSubscribe(t *testing.T) {
	e := newEnv(t, 3)
	alicePrivate := e.group(t, "alice", groupcast.Private)
	alicePublic := e.group(t, "alice", groupcast.Public)
	bobPrivate := e.group(t, "bob", groupcast.Private)
	bobPublic := e.group(t, "bob", groupcast.Public)

	for _, tc := range []struct {
		name     string
		user     string
		groupIDs []string
		accepted []string          // in any order
		rejected map[string]string // groupId -> reason
	}{
		{"member's private group", "alice", []string{alicePrivate}, []string{alicePrivate}, nil},
		{"non-member's private group is not revealed", "alice", []string{bobPrivate}, nil, map[string]string{bobPrivate: "not_found"}},
		{"anyone's public group", "alice", []string{bobPublic}, []string{bobPublic}, nil},
		{"unknown group", "alice", []string{"01NOSUCHGROUP"}, nil, map[string]string{"01NOSUCHGROUP": "not_found"}},
		{"malformed id", "alice", []string{"a#b"}, nil, map[string]string{"a#b": "invalid"}},
		{"star expands to the caller's groups", "alice", []string{"*"}, []string{alicePrivate, alicePublic}, nil},
		{"public feed", "bob", []string{"public"}, []string{"public"}, nil},
		{"duplicates count once", "bob", []string{bobPublic, bobPublic, "*"}, []string{bobPublic, bobPrivate}, nil},
		{"cap of 3 per connection", "carol", []string{"public", alicePublic, bobPublic, bobPrivate, "01NOSUCHGROUP"},
			[]string{"public", alicePublic, bobPublic}, map[string]string{bobPrivate: "not_found", "01NOSUCHGROUP": "not_found"}},
		{"over the cap", "alice", []string{"*", "public", bobPublic},
			[]string{alicePrivate, alicePublic, "public"}, map[string]string{bobPublic: "limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cid := "c-" + strings.ReplaceAll(tc.name, " ", "-")
			e.connect(t, cid, tc.user)
			body := jsonString(t, map[string]any{"action": "subscribe", "groupIds": tc.groupIDs})
			var reply struct {
				Type     string   `json:"type"`
				GroupIDs []string `json:"groupIds"`
				Rejected []struct {
					GroupID string `json:"groupId"`
					Reason  string `json:"reason"`
				} `json:"rejected"`
			}
			raw := jsonString(t, e.send(t, cid, tc.user, body))
			if err := json.Unmarshal([]byte(raw), &reply); err != nil {
				t.Fatal(err)
			}
			if reply.Type != "subscribed" || reply.GroupIDs == nil || reply.Rejected == nil {
				t.Fatalf("reply %s: want type subscribed with groupIds and rejected arrays", raw)
			}
			rejected := map[string]string{}
			for _, r := range reply.Rejected {
				rejected[r.GroupID] = r.Reason
			}
			if !sameSet(reply.GroupIDs, tc.accepted) || !maps.Equal(rejected, tc.rejected) && len(rejected)+len(tc.rejected) > 0 {
				t.Errorf("reply %s: want accepted %v and rejected %v", raw, tc.accepted, tc.rejected)
			}
			stored, err := e.store.Subscriptions(context.Background(), cid)
			if err != nil || !sameSet(stored, tc.accepted) {
				t.Errorf("stored subscriptions = %v, %v; want %v", stored, err, tc.accepted)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSubscriptionCap(t *testing.T) {
	const limit = 2
	e := newEnv(t, limit)
	g1, g2, g3 := e.group(t, "alice", groupcast.Public), e.group(t, "alice", groupcast.Public), e.group(t, "alice", groupcast.Public)
	e.connect(t, "c1", "bob")
	reply := jsonString(t, withoutStartPositions(t, e.send(t, "c1", "bob", `{"action":"subscribe","groupIds":["`+g1+`","`+g2+`","`+g3+`"]}`), "user", "group:"+g1, "group:"+g2))
	want := `{"groupIds":["` + g1 + `","` + g2 + `"],"recovered":{},"rejected":[{"groupId":"` + g3 + `","reason":"limit"}],"type":"subscribed"}`
	if reply != want {
		t.Errorf("reply\n got %s\nwant %s", reply, want)
	}
	// Unsubscribing frees a slot.
	if got := jsonString(t, e.send(t, "c1", "bob", `{"action":"unsubscribe","groupIds":["`+g1+`"]}`)); got != `{"groupIds":["`+g1+`"],"type":"unsubscribed"}` {
		t.Errorf("unsubscribe reply = %s", got)
	}
	reply = jsonString(t, withoutStartPositions(t, e.send(t, "c1", "bob", `{"action":"subscribe","groupIds":["`+g3+`"]}`), "user", "group:"+g3))
	if want := `{"groupIds":["` + g3 + `"],"recovered":{},"rejected":[],"type":"subscribed"}`; reply != want {
		t.Errorf("after unsubscribe\n got %s\nwant %s", reply, want)
	}
	subs, err := e.store.Subscriptions(context.Background(), "c1")
	if err != nil || len(subs) != limit {
		t.Errorf("stored subscriptions = %v, %v; want %d", subs, err, limit)
	}
}

func TestBadMessages(t *testing.T) {
	e := newEnv(t, 0)
	e.connect(t, "c1", "alice")
	for _, tc := range []struct {
		name, body string
		code       string
		message    string
	}{
		{"ping", `{"action":"ping"}`, "", ""},
		{"unknown action", `{"action":"dance"}`, "unknown_action", "subscribe, unsubscribe, resume or ping"},
		{"not JSON", `hello`, "bad_request", "JSON object"},
		{"JSON array", `[1]`, "bad_request", "JSON object"},
		{"two objects", `{"action":"ping"}{"action":"ping"}`, "bad_request", "single JSON object"},
		{"missing action", `{"groupIds":["g"]}`, "bad_request", "action"},
		{"action not a string", `{"action":1}`, "bad_request", "action"},
		{"subscribe without groupIds", `{"action":"subscribe"}`, "bad_request", "groupIds"},
		{"subscribe with empty groupIds", `{"action":"subscribe","groupIds":[]}`, "bad_request", "groupIds"},
		{"groupIds not an array", `{"action":"subscribe","groupIds":"g1"}`, "bad_request", "array of strings"},
		{"groupIds of numbers", `{"action":"unsubscribe","groupIds":[1]}`, "bad_request", "array of strings"},
		{"too many groupIds", `{"action":"subscribe","groupIds":[` + strings.Repeat(`"g",`, 100) + `"g"]}`, "bad_request", "100"},
		{"unsubscribe without groupIds", `{"action":"unsubscribe"}`, "bad_request", "groupIds"},
		{"over 32 KiB", `{"action":"ping","pad":"` + strings.Repeat("x", 32<<10) + `"}`, "bad_request", "exceeds"},
		{"invalid UTF-8", "{\"action\":\"p\xffng\"}", "bad_request", "UTF-8"},
		{"requestId not a string", `{"action":"ping","requestId":7}`, "bad_request", "requestId"},
		{"requestId too long", `{"action":"ping","requestId":"` + strings.Repeat("r", wsapi.MaxRequestIDBytes+1) + `"}`, "bad_request", "requestId"},
		{"requestId with a newline", `{"action":"ping","requestId":"a\nb"}`, "bad_request", "requestId"},
		{"positions not an object", `{"action":"subscribe","groupIds":["public"],"positions":["x"]}`, "bad_request", "positions"},
		{"position not a string", `{"action":"subscribe","groupIds":["public"],"positions":{"user":1}}`, "bad_request", "positions"},
		{"position garbage", `{"action":"subscribe","groupIds":["public"],"positions":{"user":"garbage"}}`, "bad_request", "ULID"},
		{"position lower-cased", `{"action":"subscribe","groupIds":["public"],"positions":{"user":"01jdq4zk3m8x9v7t6r5p4n3m2a"}}`, "bad_request", "ULID"},
		{"position is an event id", `{"action":"subscribe","groupIds":["public"],"positions":{"user":"96471733c7244900d56ece61cf148caa"}}`, "bad_request", "ULID"},
		{"unknown stream", `{"action":"subscribe","groupIds":["public"],"positions":{"everything":"01JDQ4ZK3M8X9V7T6R5P4N3M2A"}}`, "bad_request", "stream"},
		{"group stream with a bad id", `{"action":"subscribe","groupIds":["public"],"positions":{"group:a#b":"01JDQ4ZK3M8X9V7T6R5P4N3M2A"}}`, "bad_request", "'#'"},
		{"resume without positions", `{"action":"resume"}`, "bad_request", "positions"},
		{"resume with a bad position", `{"action":"resume","positions":{"public":"01JDQ4ZK3M8X9V7T6R5P4N3M2"}}`, "bad_request", "ULID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := e.send(t, "c1", "alice", tc.body)
			if tc.code == "" {
				if reply["type"] != "pong" {
					t.Errorf("reply = %v, want pong", reply)
				}
				return
			}
			if reply["type"] != "error" || reply["code"] != tc.code || !strings.Contains(reply["message"].(string), tc.message) {
				t.Errorf("reply = %v, want error %q mentioning %q", reply, tc.code, tc.message)
			}
		})
	}

	t.Run("binary frame", func(t *testing.T) {
		ev := forUser(loadEvent(t, "message-ping.json"), "c1", "alice")
		ev.IsBase64Encoded = true
		if reply := e.message(t, ev); reply["code"] != "bad_request" {
			t.Errorf("reply = %v, want bad_request", reply)
		}
	})

	// No message above subscribed anything.
	if subs, err := e.store.Subscriptions(context.Background(), "c1"); err != nil || len(subs) != 0 {
		t.Errorf("subscriptions after bad messages = %v, %v; want none", subs, err)
	}
}

func TestDisconnectCleansUp(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	gid := e.group(t, "alice", groupcast.Public)
	e.connect(t, "c1", "alice")
	e.connect(t, "c2", "alice")
	for _, cid := range []string{"c1", "c2"} {
		e.send(t, cid, "alice", `{"action":"subscribe","groupIds":["*","public"]}`)
	}

	ev := forUser(loadEvent(t, "disconnect.json"), "c1", "alice")
	if resp, err := e.h.Disconnect(ctx, ev); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("disconnect: %d %v", resp.StatusCode, err)
	}
	// Disconnect is idempotent: API Gateway may deliver it after the TTL ran.
	if resp, err := e.h.Disconnect(ctx, ev); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("second disconnect: %d %v", resp.StatusCode, err)
	}

	if _, err := e.store.GetConnection(ctx, "c1"); groupcast.ErrorCode(err) != groupcast.CodeNotFound {
		t.Errorf("c1 after disconnect: %v, want not_found", err)
	}
	if subs, _ := e.store.Subscriptions(ctx, "c1"); len(subs) != 0 {
		t.Errorf("c1 subscriptions after disconnect = %v", subs)
	}
	var subscribers []string
	err := e.store.ForEachGroupSubscriber(ctx, gid, func(batch []groupcast.Subscriber) error {
		for _, s := range batch {
			subscribers = append(subscribers, s.ConnectionID)
		}
		return nil
	})
	if err != nil || len(subscribers) != 1 || subscribers[0] != "c2" {
		t.Errorf("subscribers of %s = %v, %v; want only c2", gid, subscribers, err)
	}
	// A message on the closed connection is answered, not crashed on.
	if reply := e.send(t, "c1", "alice", `{"action":"subscribe","groupIds":["public"]}`); reply["type"] != "error" {
		t.Errorf("subscribe on a closed connection = %v, want an error reply", reply)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
