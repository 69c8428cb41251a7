package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// world: group g1 (public) has members alice, bob and carol; alice has two
// connections. bob and erin follow the public feed; dave is connected.
func newWorld() *memStore {
	m := newMemStore()
	m.groups["g1"] = groupcast.Group{ID: "g1", Visibility: groupcast.Public, OwnerID: "alice", MemberCount: 3}
	m.members["g1"] = []string{"alice", "bob", "carol"}
	m.subscribe("g1", "alice", "a1", "a2")
	m.subscribe("g1", "bob", "b1")
	m.subscribe("g1", "carol", "c1")
	m.subscribe("public", "bob", "b1")
	m.subscribe("public", "erin", "e1")
	m.subscribe("public", "dave", "d1")
	return m
}

func TestEventsPerRecordType(t *testing.T) {
	records := loadRecords(t)
	tests := []struct {
		record    string
		wantType  groupcast.EventType
		wantConns []string
		wantInbox []string
		wantData  map[string]any
	}{
		{"post-created", groupcast.EventPostCreated, []string{"b1", "c1"}, []string{"bob", "carol"},
			map[string]any{"postId": "01JDQ4ZK3M8X9V7T6R5P4N3M2A", "authorId": "alice", "authorName": "Alice", "createdAt": "2026-11-29T10:00:00.123456789Z"}},
		{"group-created-public", groupcast.EventGroupCreated, []string{"b1", "d1", "e1"}, nil,
			map[string]any{"groupId": "g2", "visibility": "public", "ownerId": "bob", "memberCount": 1.0, "name": "Group g2"}},
		{"group-created-private", groupcast.EventGroupCreated, []string{"b1"}, nil,
			map[string]any{"groupId": "g3", "visibility": "private"}},
		{"member-joined", groupcast.EventMemberJoined, []string{"a1", "a2", "b1", "c1"}, nil,
			map[string]any{"userId": "carol", "displayName": "Carol", "memberCount": 3.0}},
		{"member-left", groupcast.EventMemberLeft, []string{"a1", "a2", "b1", "c1"}, nil,
			map[string]any{"userId": "carol", "memberCount": 2.0}},
		{"invitation-received", groupcast.EventInvitationReceived, []string{"d1"}, []string{"dave"},
			map[string]any{"invitationId": "01JDQ50000INVITE000000000A", "groupName": "Group g1", "inviterId": "alice", "inviterName": "Alice"}},
		{"invitation-accepted", groupcast.EventInvitationAccepted, []string{"a1", "a2"}, []string{"alice"},
			map[string]any{"inviteeId": "dave", "answeredAt": "2026-11-29T10:06:00Z"}},
		{"invitation-declined", groupcast.EventInvitationDeclined, []string{"a1", "a2"}, []string{"alice"},
			map[string]any{"inviteeId": "dave", "answeredAt": "2026-11-29T10:07:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.record, func(t *testing.T) {
			store := newWorld()
			h := newHarness(t, store, Config{})
			resp, err := h.handle(context.Background(), batch(records, tt.record))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			got := h.conns.deliveredTo()
			if conns := sortedKeys(got); !slices.Equal(conns, tt.wantConns) {
				t.Errorf("delivered to %v, want %v", conns, tt.wantConns)
			}
			var first pushed
			for _, envs := range got {
				if len(envs) != 1 {
					t.Fatalf("want one message per connection, got %d", len(envs))
				}
				if first.ID == "" {
					first = envs[0]
				} else if envs[0].ID != first.ID {
					t.Errorf("connections got different event ids %s and %s", envs[0].ID, first.ID)
				}
			}
			if first.Type != tt.wantType || len(first.ID) != 32 || first.GroupID == "" || first.At == "" {
				t.Errorf("envelope = %+v, want type %s with id, groupId and at", first, tt.wantType)
			}
			for k, want := range tt.wantData {
				if first.Data[k] != want {
					t.Errorf("data[%s] = %v, want %v", k, first.Data[k], want)
				}
			}
			inbox := store.inboxUsers()
			if users := sortedKeys(inbox); !slices.Equal(users, tt.wantInbox) && len(tt.wantInbox)+len(users) > 0 {
				t.Errorf("inbox users %v, want %v", users, tt.wantInbox)
			}
			for _, types := range inbox {
				if !slices.Equal(types, []groupcast.EventType{tt.wantType}) {
					t.Errorf("inbox types %v, want [%s]", types, tt.wantType)
				}
			}
		})
	}
}

func TestPostPreviewIsCut(t *testing.T) {
	h := newHarness(t, newWorld(), Config{})
	if _, err := h.handle(context.Background(), batch(loadRecords(t), "post-created")); err != nil {
		t.Fatal(err)
	}
	preview, _ := h.conns.deliveredTo()["b1"][0].Data["contentPreview"].(string)
	if !strings.HasSuffix(preview, "…") || len([]rune(preview)) != groupcast.PreviewLength+1 {
		t.Errorf("contentPreview = %q, want %d runes plus …", preview, groupcast.PreviewLength)
	}
}

func TestSkippedRecords(t *testing.T) {
	store := newWorld()
	h := newHarness(t, store, Config{})
	resp, err := h.handle(context.Background(), batch(loadRecords(t), "entity-post", "event-expired", "event-modified"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if got := h.conns.deliveredTo(); len(got) != 0 {
		t.Errorf("skipped records delivered %v", got)
	}
	if len(store.inboxUsers()) != 0 {
		t.Errorf("skipped records wrote notifications")
	}
}

func TestDuplicateRecordGivesSameEventID(t *testing.T) {
	h := newHarness(t, newWorld(), Config{})
	records := loadRecords(t)
	if _, err := h.handle(context.Background(), batch(records, "post-created", "post-created", "member-joined", "member-joined")); err != nil {
		t.Fatal(err)
	}
	got := h.conns.deliveredTo()["b1"]
	if len(got) != 4 || got[0].ID != got[1].ID || got[2].ID != got[3].ID || got[0].ID == got[2].ID {
		t.Errorf("b1 got ids %v; want pairs of equal ids, different between events", ids(got))
	}
	want := groupcast.EventID(groupcast.EventPostCreated, "g1", "01JDQ4ZK3M8X9V7T6R5P4N3M2A")
	if got[0].ID != want {
		t.Errorf("post event id %s, want %s", got[0].ID, want)
	}
}

func TestGoneConnectionIsDeleted(t *testing.T) {
	store := newWorld()
	h := newHarness(t, store, Config{})
	h.conns.script["c1"] = []int{http.StatusGone}
	resp, err := h.handle(context.Background(), batch(loadRecords(t), "post-created"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; a gone connection is not a failure", resp, err)
	}
	if !slices.Equal(store.deleted, []string{"c1"}) {
		t.Errorf("deleted %v, want [c1]", store.deleted)
	}
	if n := h.conns.attempts("c1"); n != 1 {
		t.Errorf("c1 posted %d times; a 410 must not be retried", n)
	}
	if _, ok := h.conns.deliveredTo()["b1"]; !ok {
		t.Error("b1 missed the event after c1 was gone")
	}
	if !strings.Contains(h.metrics.String(), `"Gone":1`) || !strings.Contains(h.metrics.String(), `"Delivered":1`) {
		t.Errorf("metrics line %s, want Gone 1 and Delivered 1", h.metrics.String())
	}
}

// A connection whose $connect has written its item answers 410 until API
// Gateway completes the handshake; that 410 must not delete it, or the
// socket that opens a moment later is unreachable.
func TestGoneDuringHandshakeKeepsConnection(t *testing.T) {
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		connectedAt time.Time
		wantDeleted []string
	}{
		{"just connected", now.Add(-time.Second), nil},
		{"inside the integration timeout", now.Add(-29 * time.Second), nil},
		{"past the handshake", now.Add(-handshakeGrace), []string{"c1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newWorld()
			store.connectedAt["c1"] = tc.connectedAt
			h := newHarness(t, store, Config{Now: func() time.Time { return now }})
			h.conns.script["c1"] = []int{http.StatusGone}
			if _, err := h.handle(context.Background(), batch(loadRecords(t), "post-created")); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(store.deleted, tc.wantDeleted) {
				t.Errorf("deleted %v, want %v", store.deleted, tc.wantDeleted)
			}
			if !strings.Contains(h.metrics.String(), `"Gone":1`) {
				t.Errorf("metrics line %s, want Gone 1", h.metrics.String())
			}
		})
	}
}

func TestRetriesThrottlingAndServerErrors(t *testing.T) {
	tests := []struct {
		name   string
		script []int
	}{
		{"429 then success", []int{http.StatusTooManyRequests}},
		{"500 then success", []int{http.StatusInternalServerError}},
		{"503 twice then success", []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newWorld(), Config{})
			h.conns.script["b1"] = tt.script
			resp, err := h.handle(context.Background(), batch(loadRecords(t), "post-created"))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			if n := h.conns.attempts("b1"); n != len(tt.script)+1 {
				t.Errorf("b1 attempts = %d, want %d", n, len(tt.script)+1)
			}
			if len(h.conns.deliveredTo()["b1"]) != 1 {
				t.Error("b1 never got the event")
			}
		})
	}
}

// A record fails only when its work cannot be stored (the queue is down);
// a connection or an inbox write that fails never fails it, so Lambda never
// re-pushes a record to everyone because of one of them.
func TestPartialBatchFailure(t *testing.T) {
	records := loadRecords(t)
	tests := []struct {
		name      string
		setup     func(*memStore, *connServer, *memQueue)
		batch     []string
		wantFail  []string
		wantConns []string // connections that got the event
	}{
		{
			name:      "persistent 500 fails no record",
			setup:     func(_ *memStore, cs *connServer, _ *memQueue) { cs.alwaysFail["c1"] = true },
			batch:     []string{"invitation-received", "post-created", "group-created-public"},
			wantConns: []string{"b1", "d1", "e1"},
		},
		{
			name:      "non-retryable 403 fails no record",
			setup:     func(_ *memStore, cs *connServer, _ *memQueue) { cs.script["d1"] = []int{http.StatusForbidden} },
			batch:     []string{"member-joined", "invitation-received"},
			wantConns: []string{"a1", "a2", "b1", "c1"},
		},
		{
			name:      "inbox write failure fails no record",
			setup:     func(m *memStore, _ *connServer, _ *memQueue) { m.putErr = errors.New("throttled") },
			batch:     []string{"group-created-private", "invitation-received", "member-left"},
			wantConns: []string{"a1", "a2", "b1", "c1", "d1"},
		},
		{
			// The invitation's inbox task cannot be queued: it and every
			// later record are reported (Lambda resumes from the lowest).
			// member-left is another group's lane, so it was delivered
			// meanwhile; on the retry its claim is done and it is skipped.
			name:      "queue failure fails the record and every later one",
			setup:     func(_ *memStore, _ *connServer, q *memQueue) { q.sendErr = errors.New("sqs down") },
			batch:     []string{"group-created-private", "invitation-received", "member-left"},
			wantFail:  []string{"100000000000000000600", "100000000000000000450"},
			wantConns: []string{"a1", "a2", "b1", "c1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newWorld()
			h := newHarness(t, store, Config{})
			tt.setup(store, h.conns, h.queue)
			resp, err := h.handle(context.Background(), batch(records, tt.batch...))
			if err != nil {
				t.Fatalf("Handle returned error %v; failures must go in the batch response", err)
			}
			if got := failedSeqs(resp); !slices.Equal(got, tt.wantFail) && len(got)+len(tt.wantFail) > 0 {
				t.Errorf("failed sequence numbers %v, want %v", got, tt.wantFail)
			}
			if got := sortedKeys(h.conns.deliveredTo()); !slices.Equal(got, tt.wantConns) {
				t.Errorf("delivered to %v, want %v", got, tt.wantConns)
			}
			for id, envs := range h.conns.deliveredTo() {
				seen := map[string]bool{}
				for _, e := range envs {
					if seen[e.ID] {
						t.Errorf("%s got event %s twice", id, e.ID)
					}
					seen[e.ID] = true
				}
			}
		})
	}
}

// An inbox write that keeps failing lands in the inbox dead-letter queue
// with the event and the inbox it belongs to: the data, not a pointer.
func TestInboxFailureKeepsTheDataInTheDeadLetterQueue(t *testing.T) {
	store := newWorld()
	h := newHarness(t, store, Config{})
	store.putErr = errors.New("throttled")
	if _, err := h.handle(context.Background(), batch(loadRecords(t), "post-created")); err != nil {
		t.Fatal(err)
	}
	dead := h.queue.dead[inboxQueue]
	if len(dead) != 1 {
		t.Fatalf("inbox dead letters = %d, want 1", len(dead))
	}
	var task Task
	if err := json.Unmarshal([]byte(dead[0].body), &task); err != nil {
		t.Fatal(err)
	}
	want := InboxTarget{MembersOf: "g1", ExceptUserID: "alice"}
	if task.Kind != TaskInbox || task.Inbox == nil || *task.Inbox != want || task.Event.Type != groupcast.EventPostCreated || len(task.Event.Data) == 0 {
		t.Errorf("dead letter = %+v, want the post event and inbox %+v", task, want)
	}
	// Replayed once the store is back, the task writes the inbox.
	store.putErr = nil
	resp, _ := h.f.HandleTasks(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "r", Body: dead[0].body}}})
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("replay failed: %+v", resp)
	}
	if users := sortedKeys(store.inboxUsers()); !slices.Equal(users, []string{"bob", "carol"}) {
		t.Errorf("inbox after replay %v, want [bob carol]", users)
	}
}

func TestPersistentFailureIsRetriedBounded(t *testing.T) {
	h := newHarness(t, newWorld(), Config{})
	h.conns.alwaysFail["b1"] = true
	if _, err := h.handle(context.Background(), batch(loadRecords(t), "post-created")); err != nil {
		t.Fatal(err)
	}
	// The direct push's attempts, then the push queue's rounds.
	if n, want := h.conns.attempts("b1"), fastRetry.MaxAttempts*DefaultMaxRounds; n != want {
		t.Errorf("b1 attempts = %d, want MaxAttempts × MaxRounds = %d", n, want)
	}
	if !strings.Contains(h.metrics.String(), `"Failed":1`) {
		t.Errorf("metrics %s, want Failed 1", h.metrics.String())
	}
	if len(h.conns.deliveredTo()["c1"]) != 1 {
		t.Errorf("c1 deliveries %d, want 1", len(h.conns.deliveredTo()["c1"]))
	}
}

func TestInboxFanoutLimit(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		wantInbox []string
	}{
		{"group at the limit", 3, []string{"bob", "carol"}},
		{"group above the limit", 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newWorld()
			h := newHarness(t, store, Config{InboxFanoutLimit: tt.limit})
			if _, err := h.handle(context.Background(), batch(loadRecords(t), "post-created")); err != nil {
				t.Fatal(err)
			}
			if got := sortedKeys(store.inboxUsers()); !slices.Equal(got, tt.wantInbox) && len(got)+len(tt.wantInbox) > 0 {
				t.Errorf("inbox users %v, want %v", got, tt.wantInbox)
			}
			if got := sortedKeys(h.conns.deliveredTo()); !slices.Equal(got, []string{"b1", "c1"}) {
				t.Errorf("live delivery must not depend on the inbox limit: got %v", got)
			}
		})
	}
}

var update = flag.Bool("update", false, "rewrite the golden push envelopes and events/fanout.json")

// TestPushEnvelopeGolden pins the JSON pushed for every event type, from
// the domain's event through its outbox item and stream record to the
// socket (testdata/push/<type>.json; go test -update rewrites them).
func TestPushEnvelopeGolden(t *testing.T) {
	records := loadRecords(t)
	covered := map[groupcast.EventType]bool{}
	for name, f := range fixtureEvents() {
		covered[f.ev.Type] = true
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, newWorld(), Config{})
			if _, err := h.handle(context.Background(), batch(records, name)); err != nil {
				t.Fatal(err)
			}
			var body []byte
			h.conns.mu.Lock()
			for _, bodies := range h.conns.delivered {
				body = bodies[0]
			}
			h.conns.mu.Unlock()
			var out bytes.Buffer
			if err := json.Indent(&out, body, "", "  "); err != nil {
				t.Fatalf("pushed %q: %v", body, err)
			}
			out.WriteByte('\n')
			path := filepath.Join("testdata", "push", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if out.String() != string(want) {
				t.Errorf("pushed envelope differs from %s:\n got: %s\nwant: %s", path, out.String(), want)
			}
		})
	}
	for _, typ := range groupcast.EventTypes {
		if !covered[typ] {
			t.Errorf("no fixture (and so no golden envelope) for event type %s", typ)
		}
	}
}

// TestSampleEvent runs the sam local invoke sample (events/fanout.json, the
// post-created fixture record) through the handler; -update rewrites it.
func TestSampleEvent(t *testing.T) {
	path := filepath.Join("..", "..", "events", "fanout.json")
	if *update {
		b, err := json.MarshalIndent(batch(loadRecords(t), "post-created"), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 11, 29, 10, 0, 0, 323456789, time.UTC)
	h := newHarness(t, newWorld(), Config{Now: func() time.Time { return now }})
	resp, err := h.handle(context.Background(), loadEvent(t, path))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if got := sortedKeys(h.conns.deliveredTo()); !slices.Equal(got, []string{"b1", "c1"}) {
		t.Errorf("delivered to %v, want [b1 c1]", got)
	}
	var line map[string]any // the stream handler's line (the worker's follows)
	if err := json.Unmarshal(bytes.SplitN(h.metrics.Bytes(), []byte("\n"), 2)[0], &line); err != nil {
		t.Fatalf("metrics line %q: %v", h.metrics.String(), err)
	}
	if line["Delivered"] != 2.0 || line["FanoutLagMs"] != 200.0 {
		t.Errorf("metrics Delivered=%v FanoutLagMs=%v, want 2 and 200", line["Delivered"], line["FanoutLagMs"])
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative concurrency", Config{Concurrency: -1}},
		{"huge concurrency", Config{Concurrency: MaxConcurrency + 1}},
		{"negative inbox limit", Config{InboxFanoutLimit: -5}},
		{"negative inbox retention", Config{InboxRetention: -time.Hour}},
		{"inbox retention over ten years", Config{InboxRetention: MaxInboxRetention + time.Second}},
		{"no push queue", Config{PushQueueURL: "-"}},
		{"no inbox queue", Config{InboxQueueURL: "-"}},
		{"negative direct push limit", Config{DirectPushLimit: -1}},
		{"negative chunk size", Config{ChunkSize: -1}},
		{"negative rounds", Config{MaxRounds: -1}},
		{"negative rate", Config{RatePerSecond: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newWorld(), Config{})
			cfg := tt.cfg
			// "-" marks the queue the case leaves out; the others are set.
			for _, u := range []*string{&cfg.PushQueueURL, &cfg.InboxQueueURL} {
				if *u == "-" {
					*u = ""
				} else {
					*u = "https://sqs.test/q"
				}
			}
			if _, err := New(h.f.store, h.f.poster, h.queue, h.f.log, h.f.metrics, cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestBackoffIsBounded(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	for retry := range 40 {
		ceiling := min(p.MaxDelay, p.BaseDelay<<min(retry, 30))
		if retry >= 30 {
			ceiling = p.MaxDelay
		}
		for range 50 {
			if d := p.backoff(retry); d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", retry, d, ceiling)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ids(envs []pushed) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}
