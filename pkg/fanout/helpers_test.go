package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// connServer is a local API Gateway @connections endpoint. It records every
// message and answers with the scripted statuses of a connection, in order,
// then 200; a connection in alwaysFail answers 500 forever.
type connServer struct {
	srv *httptest.Server

	mu         sync.Mutex
	posts      map[string][][]byte // connection id -> bodies received (including failed attempts)
	delivered  map[string][][]byte // connection id -> bodies answered 200
	script     map[string][]int
	alwaysFail map[string]bool
	// gate, when set, holds every post until it is closed; a post whose
	// caller gives up first is not delivered. arrived hears of each held post.
	gate    chan struct{}
	arrived chan string
}

// hold makes every post wait until the returned release is called.
func (cs *connServer) hold(t testing.TB) (release func()) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.gate, cs.arrived = make(chan struct{}), make(chan string, 1024)
	var once sync.Once
	release = func() { once.Do(func() { close(cs.gate) }) }
	t.Cleanup(release)
	return release
}

// awaitHeld waits for a held post to arrive.
func (cs *connServer) awaitHeld(t testing.TB) {
	t.Helper()
	select {
	case <-cs.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no post arrived")
	}
}

func newConnServer(t testing.TB) *connServer {
	cs := &connServer{posts: map[string][][]byte{}, delivered: map[string][][]byte{}, script: map[string][]int{}, alwaysFail: map[string]bool{}}
	cs.srv = httptest.NewServer(http.HandlerFunc(cs.serve))
	t.Cleanup(cs.srv.Close)
	return cs
}

// endpoint is the management endpoint including the stage path.
func (cs *connServer) endpoint() string { return cs.srv.URL + "/dev" }

func (cs *connServer) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/dev/@connections/")
	if r.Method != http.MethodPost || !ok {
		http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(r.Body)
	cs.mu.Lock()
	gate, arrived := cs.gate, cs.arrived
	cs.mu.Unlock()
	if gate != nil {
		arrived <- id
		select {
		case <-gate:
		case <-r.Context().Done():
			return // the caller gave up: nothing delivered
		}
	}
	cs.mu.Lock()
	cs.posts[id] = append(cs.posts[id], body)
	status := http.StatusOK
	if cs.alwaysFail[id] {
		status = http.StatusInternalServerError
	} else if s := cs.script[id]; len(s) > 0 {
		status, cs.script[id] = s[0], s[1:]
	}
	if status == http.StatusOK {
		cs.delivered[id] = append(cs.delivered[id], body)
	}
	cs.mu.Unlock()

	errorType := map[int]string{http.StatusGone: "GoneException", http.StatusTooManyRequests: "LimitExceededException", http.StatusForbidden: "ForbiddenException"}[status]
	if errorType == "" && status >= 500 {
		errorType = "InternalServerErrorException"
	}
	if errorType != "" {
		w.Header().Set("X-Amzn-Errortype", errorType)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"message":"` + errorType + `"}`))
		return
	}
	w.WriteHeader(status)
}

// pushed is a delivered envelope with its data decoded, for assertions.
type pushed struct {
	ID      string              `json:"id"`
	Type    groupcast.EventType `json:"type"`
	GroupID string              `json:"groupId"`
	At      string              `json:"at"`
	Data    map[string]any      `json:"data"`
}

func (cs *connServer) deliveredTo() map[string][]pushed {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := map[string][]pushed{}
	for id, bodies := range cs.delivered {
		for _, b := range bodies {
			var e pushed
			if err := json.Unmarshal(b, &e); err != nil {
				panic(err)
			}
			out[id] = append(out[id], e)
		}
	}
	return out
}

func (cs *connServer) attempts(id string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.posts[id])
}

// testAWSConfig needs no real credentials or network configuration.
func testAWSConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
}

// fastRetry keeps the retry path real but short so tests stay quick.
var fastRetry = RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, CallTimeout: 5 * time.Second}

type harness struct {
	f       *Fanout
	queue   *memQueue
	conns   *connServer
	logs    *bytes.Buffer
	metrics *bytes.Buffer
}

func newHarness(t testing.TB, store Store, cfg Config) *harness {
	t.Helper()
	h := &harness{conns: newConnServer(t), queue: newMemQueue(), logs: &bytes.Buffer{}, metrics: &bytes.Buffer{}}
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = fastRetry
	}
	cfg.PushQueueURL, cfg.InboxQueueURL = pushQueue, inboxQueue
	if cfg.Now == nil {
		// The fixtures' events happened a minute ago (LiveMaxAge).
		cfg.Now = harnessNow
	}
	concurrency := cfg.Concurrency
	if concurrency == 0 {
		concurrency = DefaultConcurrency
	}
	var err error
	h.f, err = New(store, NewManagementClient(testAWSConfig(), h.conns.endpoint(), concurrency), h.queue,
		slog.New(slog.NewJSONHandler(h.logs, nil)), applog.NewEMF(h.metrics, "fanout-test", nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// handle runs the stream handler on ev, then the push worker on what it
// queued until both queues are empty, as the two mappings would.
func (h *harness) handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	resp, err := h.f.Handle(ctx, ev)
	h.drain(ctx)
	return resp, err
}

// drain runs the worker on the queued tasks, ten at a time, like the SQS
// mapping: a reported message goes back to its queue, and to the dead
// letters after maxReceive receives.
func (h *harness) drain(ctx context.Context) {
	for {
		url, batch := h.queue.receive(sqsBatchMax)
		if len(batch) == 0 {
			return
		}
		ev := events.SQSEvent{}
		for _, m := range batch {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, Body: m.body})
		}
		resp, _ := h.f.HandleTasks(ctx, ev)
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for _, m := range batch {
			if failed[m.id] {
				h.queue.retry(url, m)
			}
		}
	}
}

const (
	pushQueue  = "https://sqs.test/push"
	inboxQueue = "https://sqs.test/inbox"
	maxReceive = 5
)

type queuedMessage struct {
	id, body string
	delay    int32
	receives int
}

// memQueue is SQS for unit tests: FIFO per queue URL, delays recorded but
// not waited for, and a dead-letter list per queue.
type memQueue struct {
	mu      sync.Mutex
	n       int
	queues  map[string][]queuedMessage
	dead    map[string][]queuedMessage
	sendErr error
	// sent counts every message sent per queue URL.
	sent map[string]int
}

func newMemQueue() *memQueue {
	return &memQueue{queues: map[string][]queuedMessage{}, dead: map[string][]queuedMessage{}, sent: map[string]int{}}
}

func (q *memQueue) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sendErr != nil {
		return nil, q.sendErr
	}
	if len(in.Entries) > sqsBatchMax {
		return nil, fmt.Errorf("%d entries: SendMessageBatch takes at most 10", len(in.Entries))
	}
	total := 0
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		total += len(aws.ToString(e.MessageBody))
		q.n++
		url := aws.ToString(in.QueueUrl)
		q.queues[url] = append(q.queues[url], queuedMessage{id: fmt.Sprint("m", q.n), body: aws.ToString(e.MessageBody), delay: e.DelaySeconds})
		q.sent[url]++
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id})
	}
	if total > maxMessageBytes {
		return nil, fmt.Errorf("batch of %d bytes is over SQS's 256 KiB", total)
	}
	return out, nil
}

// receive takes up to n messages of the first non-empty queue.
func (q *memQueue) receive(n int) (string, []queuedMessage) {
	return q.receiveFrom(n, inboxQueue, pushQueue)
}

func (q *memQueue) receiveFrom(n int, urls ...string) (string, []queuedMessage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, url := range urls {
		if msgs := q.queues[url]; len(msgs) > 0 {
			k := min(n, len(msgs))
			batch := append([]queuedMessage(nil), msgs[:k]...)
			q.queues[url] = msgs[k:]
			return url, batch
		}
	}
	return "", nil
}

func (q *memQueue) retry(url string, m queuedMessage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m.receives++
	if m.receives >= maxReceive {
		q.dead[url] = append(q.dead[url], m)
		return
	}
	q.queues[url] = append(q.queues[url], m)
}

func (q *memQueue) tasks(url string) []Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Task
	for _, m := range q.queues[url] {
		var t Task
		if err := json.Unmarshal([]byte(m.body), &t); err != nil {
			panic(err)
		}
		out = append(out, t)
	}
	return out
}

var (
	fixtureAt = time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	carol     = groupcast.Caller{UserID: "carol", DisplayName: "Carol"}
	invite    = groupcast.Invitation{ID: "01JDQ50000INVITE000000000A", GroupID: "g1", GroupName: "Group g1", InviteeID: "dave",
		InviterID: "alice", InviterName: "Alice", Status: groupcast.InvitationPending, CreatedAt: fixtureAt}
)

func answered(status groupcast.InvitationStatus, at time.Time) groupcast.Event {
	inv := invite
	inv.Status, inv.AnsweredAt = status, at
	ev, err := groupcast.InvitationAnsweredEvent(inv)
	if err != nil {
		panic(err)
	}
	return ev
}

// fixtureEvents are the domain's events for the world of newWorld, keyed
// by record name, with the sequence number of their stream record.
func fixtureEvents() map[string]struct {
	seq string
	ev  groupcast.Event
} {
	post := groupcast.Post{ID: "01JDQ4ZK3M8X9V7T6R5P4N3M2A", GroupID: "g1", AuthorID: "alice", AuthorName: "Alice",
		Content: strings.Repeat("long post ", 20), CreatedAt: fixtureAt}
	group := func(id, owner string, v groupcast.Visibility) groupcast.Group {
		return groupcast.Group{ID: id, Name: "Group " + id, Visibility: v, OwnerID: owner, MemberCount: 1, CreatedAt: fixtureAt}
	}
	type fixture = struct {
		seq string
		ev  groupcast.Event
	}
	return map[string]fixture{
		"post-created":          {"100000000000000000100", groupcast.PostCreatedEvent(post)},
		"group-created-public":  {"100000000000000000200", groupcast.GroupCreatedEvent(group("g2", "bob", groupcast.Public))},
		"group-created-private": {"100000000000000000300", groupcast.GroupCreatedEvent(group("g3", "bob", groupcast.Private))},
		"member-joined":         {"100000000000000000400", groupcast.MemberJoinedEvent("g1", carol, 3, "01JDQ4ZK3M8X9V7T6R5P4CHG01", fixtureAt)},
		"member-left":           {"100000000000000000450", groupcast.MemberLeftEvent("g1", carol, 2, "01JDQ4ZK3M8X9V7T6R5P4CHG02", fixtureAt)},
		"invitation-received":   {"100000000000000000600", groupcast.InvitationReceivedEvent(invite)},
		"invitation-accepted":   {"100000000000000000700", answered(groupcast.InvitationAccepted, time.Date(2026, 11, 29, 10, 6, 0, 0, time.UTC))},
		"invitation-declined":   {"100000000000000000800", answered(groupcast.InvitationDeclined, time.Date(2026, 11, 29, 10, 7, 0, 0, time.UTC))},
	}
}

// loadRecords builds the fixture stream records, keyed by name: an INSERT
// of each fixture event's outbox item, as the store writes it, plus records
// the fan-out must skip (an entity item, an expired event's REMOVE, a
// MODIFY of an event item).
func loadRecords(t testing.TB) map[string]events.DynamoDBEventRecord {
	t.Helper()
	out := map[string]events.DynamoDBEventRecord{}
	n := 0
	var anEvent map[string]types.AttributeValue
	fixtures := fixtureEvents()
	// Sorted, so each fixture's sequence id (its pushed "position") is stable.
	for _, name := range slices.Sorted(maps.Keys(fixtures)) {
		f := fixtures[name]
		n++
		f.ev.Seq = fmt.Sprintf("01JDQ4ZK3M8X9V7T6R5P4SEQ%02d", n)
		f.ev.ExpiresAt = f.ev.At.Add(24 * time.Hour)
		it, err := dynamostore.NewEventItem(f.ev)
		if err != nil {
			t.Fatal(err)
		}
		image, err := attributevalue.MarshalMap(it)
		if err != nil {
			t.Fatal(err)
		}
		anEvent = image
		out[name] = streamRecord(t, name, "INSERT", f.seq, nil, image)
	}
	post, err := attributevalue.MarshalMap(dynamostore.PostItem{PK: "GROUP#g1", SK: "POST#P9", Type: dynamostore.TypePost, PostID: "P9", GroupID: "g1", AuthorID: "alice", Content: "x"})
	if err != nil {
		t.Fatal(err)
	}
	out["entity-post"] = streamRecord(t, "entity-post", "INSERT", "100000000000000000500", nil, post)
	out["event-expired"] = streamRecord(t, "event-expired", "REMOVE", "100000000000000000900", anEvent, nil)
	out["event-modified"] = streamRecord(t, "event-modified", "MODIFY", "100000000000000001000", anEvent, anEvent)
	return out
}

// streamRecord is the record Lambda would hand over for the change old → new.
func streamRecord(t testing.TB, id, name, seq string, old, new map[string]types.AttributeValue) events.DynamoDBEventRecord {
	t.Helper()
	keysOf := old
	if new != nil {
		keysOf = new
	}
	return events.DynamoDBEventRecord{
		EventID: id, EventName: name, EventSource: "aws:dynamodb", AWSRegion: "us-east-1",
		Change: events.DynamoDBStreamRecord{
			Keys:           fromSDKImage(t, map[string]types.AttributeValue{"PK": keysOf["PK"], "SK": keysOf["SK"]}),
			NewImage:       fromSDKImage(t, new),
			OldImage:       fromSDKImage(t, old),
			SequenceNumber: seq, StreamViewType: "NEW_AND_OLD_IMAGES",
		},
	}
}

// fromSDKImage is toSDKImage's inverse, for building records in tests.
func fromSDKImage(t testing.TB, image map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if image == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(image))
	for k, v := range image {
		out[k] = fromSDKValue(t, v)
	}
	return out
}

func fromSDKValue(t testing.TB, v types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberNULL:
		return events.NewNullAttribute()
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(fromSDKImage(t, v.Value))
	case *types.AttributeValueMemberL:
		list := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			list[i] = fromSDKValue(t, e)
		}
		return events.NewListAttribute(list)
	}
	t.Fatalf("fixture attribute %T not supported", v)
	return events.DynamoDBAttributeValue{}
}

func loadEvent(t testing.TB, path string) events.DynamoDBEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func batch(records map[string]events.DynamoDBEventRecord, ids ...string) events.DynamoDBEvent {
	var ev events.DynamoDBEvent
	for _, id := range ids {
		r, ok := records[id]
		if !ok {
			panic("no fixture record " + id)
		}
		ev.Records = append(ev.Records, r)
	}
	return ev
}

func failedSeqs(resp events.DynamoDBEventResponse) []string {
	out := []string{}
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

// memStore is an in-memory Store for isolated unit tests and the benchmark.
// It pages subscribers pageSize at a time, like a paginated Query.
type memStore struct {
	mu              sync.Mutex
	pageSize        int
	subs            map[string][]groupcast.Subscriber // group id or "public" -> subscribers
	members         map[string][]string
	groups          map[string]groupcast.Group
	notifications   []groupcast.Notification
	deleted         []string
	putErr          error
	membershipReads int
	// connectedAt of a connection; absent means long ago.
	connectedAt map[string]time.Time
}

func newMemStore() *memStore {
	return &memStore{pageSize: 2, subs: map[string][]groupcast.Subscriber{}, members: map[string][]string{}, groups: map[string]groupcast.Group{}, connectedAt: map[string]time.Time{}}
}

func (m *memStore) subscribe(groupID, userID string, connectionIDs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range connectionIDs {
		m.subs[groupID] = append(m.subs[groupID], groupcast.Subscriber{ConnectionID: c, UserID: userID})
	}
}

func (m *memStore) ForEachGroupSubscriber(ctx context.Context, groupID string, fn func([]groupcast.Subscriber) error) error {
	m.mu.Lock()
	all := append([]groupcast.Subscriber(nil), m.subs[groupID]...)
	m.mu.Unlock()
	for start := 0; start < len(all); start += m.pageSize {
		if err := fn(all[start:min(start+m.pageSize, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

// UserConnectionIDs lists every connection of the user, in any group or
// feed (a connection exists here once it has a subscription).
func (m *memStore) UserConnectionIDs(ctx context.Context, userID string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, subs := range m.subs {
		for _, s := range subs {
			if s.UserID == userID && !seen[s.ConnectionID] {
				seen[s.ConnectionID] = true
				out = append(out, s.ConnectionID)
			}
		}
	}
	return out, nil
}

// GetConnection finds a connection by its subscriptions.
func (m *memStore) GetConnection(ctx context.Context, connectionID string) (groupcast.Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, subs := range m.subs {
		for _, s := range subs {
			if s.ConnectionID == connectionID {
				return groupcast.Connection{ID: connectionID, UserID: s.UserID, ConnectedAt: m.connectedAt[connectionID]}, nil
			}
		}
	}
	return groupcast.Connection{}, groupcast.Errorf(groupcast.CodeNotFound, "connection %s not found", connectionID)
}

func (m *memStore) DeleteConnection(ctx context.Context, connectionID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleted = append(m.deleted, connectionID)
	for g, subs := range m.subs {
		kept := subs[:0:0]
		for _, s := range subs {
			if s.ConnectionID != connectionID {
				kept = append(kept, s)
			}
		}
		m.subs[g] = kept
	}
	return nil
}

func (m *memStore) ForEachGroupMemberID(ctx context.Context, groupID string, fn func([]string) error) error {
	m.mu.Lock()
	all := append([]string(nil), m.members[groupID]...)
	m.mu.Unlock()
	for start := 0; start < len(all); start += m.pageSize {
		if err := fn(all[start:min(start+m.pageSize, len(all))]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) GetGroup(ctx context.Context, groupID string) (groupcast.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.groups[groupID]
	if !ok {
		return groupcast.Group{}, groupcast.Errorf(groupcast.CodeNotFound, "group not found")
	}
	return g, nil
}

func (m *memStore) PutNotifications(ctx context.Context, ns []groupcast.Notification) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.putErr != nil {
		return m.putErr
	}
	m.notifications = append(m.notifications, ns...)
	return nil
}

// Memberships answers from members: the base table's view. A subscriber
// in subs but not in members is what a lagging GSI1 shows after a leave.
func (m *memStore) Memberships(ctx context.Context, keys []groupcast.MemberKey) (map[groupcast.MemberKey]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.membershipReads++
	out := map[groupcast.MemberKey]bool{}
	for _, k := range keys {
		if slices.Contains(m.members[k.GroupID], k.UserID) {
			out[k] = true
		}
	}
	return out, nil
}

func (m *memStore) inboxUsers() map[string][]groupcast.EventType {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]groupcast.EventType{}
	for _, n := range m.notifications {
		out[n.UserID] = append(out[n.UserID], n.Type)
	}
	return out
}
