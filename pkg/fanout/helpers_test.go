package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/groupcast/groupcast/pkg/applog"
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

func (cs *connServer) deliveredTo() map[string][]envelope {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	out := map[string][]envelope{}
	for id, bodies := range cs.delivered {
		for _, b := range bodies {
			var e envelope
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
	conns   *connServer
	logs    *bytes.Buffer
	metrics *bytes.Buffer
}

func newHarness(t testing.TB, store Store, cfg Config) *harness {
	t.Helper()
	h := &harness{conns: newConnServer(t), logs: &bytes.Buffer{}, metrics: &bytes.Buffer{}}
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = fastRetry
	}
	concurrency := cfg.Concurrency
	if concurrency == 0 {
		concurrency = DefaultConcurrency
	}
	var err error
	h.f, err = New(store, NewManagementClient(testAWSConfig(), h.conns.endpoint(), concurrency),
		slog.New(slog.NewJSONHandler(h.logs, nil)), applog.NewEMF(h.metrics, "fanout-test", nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// loadRecords reads the fixture stream records, keyed by eventID.
func loadRecords(t testing.TB) map[string]events.DynamoDBEventRecord {
	t.Helper()
	ev := loadEvent(t, filepath.Join("testdata", "records.json"))
	out := map[string]events.DynamoDBEventRecord{}
	for _, r := range ev.Records {
		out[r.EventID] = r
	}
	return out
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
	mu            sync.Mutex
	pageSize      int
	subs          map[string][]groupcast.Subscriber // group id or "public" -> subscribers
	members       map[string][]string
	groups        map[string]groupcast.Group
	notifications []groupcast.Notification
	deleted       []string
	putErr        error
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

func (m *memStore) inboxUsers() map[string][]groupcast.EventType {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]groupcast.EventType{}
	for _, n := range m.notifications {
		out[n.UserID] = append(out[n.UserID], n.Type)
	}
	return out
}
