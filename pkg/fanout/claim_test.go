package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// claimStore is the real claim store on a fresh kumo table: the claim's
// semantics are DynamoDB's conditional writes, not a fake's.
func claimStore(t *testing.T) *dynamostore.Store {
	t.Helper()
	client, table := dynamotest.NewTable(t)
	s, err := dynamostore.New(client, table)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// postRecord is the fixture post in g1: b1 and c1 receive it.
func postRecord(t *testing.T) (events.DynamoDBEventRecord, groupcast.Delivery) {
	t.Helper()
	rec := loadRecords(t)["post-created"]
	d, ok, err := deliveryFor(rec)
	if err != nil || !ok {
		t.Fatalf("fixture: %v %v", ok, err)
	}
	return rec, d
}

func pushCounts(h *harness) map[string]int {
	out := map[string]int{}
	for id, ps := range h.conns.deliveredTo() {
		out[id] = len(ps)
	}
	return out
}

var bothOnce = map[string]int{"b1": 1, "c1": 1}

// TestStreamPathClaims: what the stream does with each state of the claim
// it finds. given runs before Handle (and may start a goroutine acting as
// the fast path); each case has its own table.
func TestStreamPathClaims(t *testing.T) {
	now := harnessNow()
	live, stale := now.Add(time.Minute), now.Add(-time.Second)
	take := func(t *testing.T, cs *dynamostore.Store, owner string, lease time.Time) dynamostore.Claim {
		c, ok, err := cs.TakeClaim(context.Background(), mustID(t), owner, now, lease, false)
		if err != nil || !ok {
			t.Fatalf("given claim: %v %v", ok, err)
		}
		return c
	}
	later := func(f func()) { go func() { time.Sleep(150 * time.Millisecond); f() }() }
	tests := []struct {
		name       string
		given      func(t *testing.T, cs *dynamostore.Store)
		wantPushes map[string]int
		wantOwner  string
	}{
		{"no claim: the stream delivers", func(*testing.T, *dynamostore.Store) {}, bothOnce, OwnerStream},
		{"done by the fast path: skipped", func(t *testing.T, cs *dynamostore.Store) {
			if err := cs.FinishClaim(context.Background(), take(t, cs, OwnerFast, live)); err != nil {
				t.Fatal(err)
			}
		}, map[string]int{}, OwnerFast},
		{"fast path finishes while the stream waits: skipped", func(t *testing.T, cs *dynamostore.Store) {
			c := take(t, cs, OwnerFast, live)
			later(func() { _ = cs.FinishClaim(context.Background(), c) })
		}, map[string]int{}, OwnerFast},
		{"fast path releases after failing: the stream delivers", func(t *testing.T, cs *dynamostore.Store) {
			c := take(t, cs, OwnerFast, live)
			later(func() { _ = cs.ReleaseClaim(context.Background(), c) })
		}, bothOnce, OwnerStream},
		{"fast path died (stale lease): the stream takes over", func(t *testing.T, cs *dynamostore.Store) {
			take(t, cs, OwnerFast, stale)
		}, bothOnce, OwnerStream},
		{"the stream's own claim (a retry): retaken", func(t *testing.T, cs *dynamostore.Store) {
			take(t, cs, OwnerStream, live)
		}, bothOnce, OwnerStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := claimStore(t)
			h := newHarness(t, newWorld(), Config{Claims: cs})
			rec, d := postRecord(t)
			tt.given(t, cs)
			resp, err := h.f.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			if got := pushCounts(h); !mapsEqual(got, tt.wantPushes) {
				t.Errorf("pushes %v, want %v", got, tt.wantPushes)
			}
			c, found, err := cs.GetClaim(context.Background(), d.Envelope.ID)
			if err != nil || !found || c.Owner != tt.wantOwner || c.State != dynamostore.ClaimDone {
				t.Errorf("claim %+v (found %v, %v), want done by %s", c, found, err, tt.wantOwner)
			}
		})
	}
}

// A live fast-path claim that outlasts the stream's invocation: the record
// is reported failed (Lambda retries it), and nothing is pushed.
func TestStreamPathReportsTheRecordWhenTheClaimOutlastsIt(t *testing.T) {
	cs := claimStore(t)
	h := newHarness(t, newWorld(), Config{Claims: cs})
	rec, d := postRecord(t)
	now := harnessNow()
	if _, ok, err := cs.TakeClaim(context.Background(), d.Envelope.ID, OwnerFast, now, now.Add(time.Hour), false); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Handle keeps deadlineMargin (2 s) free: 300 ms are left to wait.
	ctx, cancel := context.WithTimeout(context.Background(), deadlineMargin+300*time.Millisecond)
	defer cancel()
	resp, err := h.f.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle = %+v, %v; want the record reported", resp, err)
	}
	if got := pushCounts(h); len(got) != 0 {
		t.Errorf("pushes %v, want none", got)
	}
}

func TestFastPathClaims(t *testing.T) {
	now := harnessNow()
	tests := []struct {
		name       string
		given      func(t *testing.T, cs *dynamostore.Store, id string)
		failing    bool // every push answers 500
		queueDown  bool // every SQS send fails
		want       ClaimOutcome
		wantErr    bool
		wantPushes map[string]int
		wantClaim  string // owner of the done claim after; "" for no claim
	}{
		{"no claim: delivered", nil, false, false, Delivered, false, bothOnce, OwnerFast},
		{"the stream holds it: skipped", func(t *testing.T, cs *dynamostore.Store, id string) {
			if _, ok, err := cs.TakeClaim(context.Background(), id, OwnerStream, now, now.Add(time.Minute), false); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}, false, false, Skipped, false, map[string]int{}, ""},
		{"done: skipped", func(t *testing.T, cs *dynamostore.Store, id string) {
			c, _, err := cs.TakeClaim(context.Background(), id, OwnerStream, now, now.Add(time.Minute), false)
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.FinishClaim(context.Background(), c); err != nil {
				t.Fatal(err)
			}
		}, false, false, Skipped, false, map[string]int{}, OwnerStream},
		// Deliver stores what it could not push in the push queue: the
		// event is delivered as far as the claim goes.
		{"failing pushes: queued for the workers, the claim done", nil, true, false, Delivered, false, map[string]int{}, OwnerFast},
		// The work cannot be stored: the stream must take over at once.
		{"queues down: the claim is released for the stream", nil, false, true, Delivered, true, map[string]int{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := claimStore(t)
			h := newHarness(t, newWorld(), Config{Claims: cs})
			_, d := postRecord(t)
			if tt.failing {
				h.conns.alwaysFail["b1"], h.conns.alwaysFail["c1"] = true, true
			}
			if tt.queueDown {
				h.queue.sendErr = errors.New("sqs down")
			}
			if tt.given != nil {
				tt.given(t, cs, d.Envelope.ID)
			}
			out, err := h.f.DeliverFast(context.Background(), d)
			if out != tt.want || (err != nil) != tt.wantErr {
				t.Fatalf("DeliverFast = %v, %v; want %v, error %v", out, err, tt.want, tt.wantErr)
			}
			if got := pushCounts(h); !mapsEqual(got, tt.wantPushes) {
				t.Errorf("pushes %v, want %v", got, tt.wantPushes)
			}
			if tt.failing && h.queue.sent[pushQueue] == 0 {
				t.Errorf("failed pushes not queued: sent %v", h.queue.sent)
			}
			c, found, err := cs.GetClaim(context.Background(), d.Envelope.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantClaim == "" && tt.want == Skipped:
				// The stream's claim stands untouched.
				if !found || c.Owner != OwnerStream || c.State != dynamostore.ClaimStarted {
					t.Errorf("claim %+v found %v, want the stream's, started", c, found)
				}
			case tt.wantClaim == "":
				if found {
					t.Errorf("claim %+v still there, want it released", c)
				}
			case !found || c.Owner != tt.wantClaim || c.State != dynamostore.ClaimDone:
				t.Errorf("claim %+v found %v, want done by %s", c, found, tt.wantClaim)
			}
		})
	}
}

// The fast path and the stream racing on one event, many times (neither
// has started before the other): every connection gets it exactly once.
func TestFastPathAndStreamRaceDeliverOnce(t *testing.T) {
	const trials = 30
	cs := claimStore(t)
	for trial := range trials {
		h := newHarness(t, newWorld(), Config{Claims: cs})
		rec, d := freshPost(t, trial)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := h.f.DeliverFast(context.Background(), d); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if resp, err := h.f.Handle(context.Background(), events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}}); err != nil || len(resp.BatchItemFailures) != 0 {
				t.Errorf("Handle = %+v, %v", resp, err)
			}
		})
		wg.Wait()
		if got := pushCounts(h); !mapsEqual(got, bothOnce) {
			t.Fatalf("trial %d: pushes %v, want each connection once", trial, got)
		}
	}
}

// harnessNow is the harness's clock (newHarness): claims' leases are
// judged by cfg.Now, so the given claims must be taken on the same clock.
func harnessNow() time.Time { return fixtureAt.Add(time.Minute) }

func mustID(t *testing.T) string {
	t.Helper()
	_, d := postRecord(t)
	return d.Envelope.ID
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// freshPost is a post event of its own id (post n) in g1, as a stream
// record and as the fast path's delivery.
func freshPost(t *testing.T, n int) (events.DynamoDBEventRecord, groupcast.Delivery) {
	t.Helper()
	post := groupcast.Post{ID: fmt.Sprintf("01JDQ4ZK3M8X9V7T6R5P4N%04d", n), GroupID: "g1", AuthorID: "alice", AuthorName: "Alice", Content: "race", CreatedAt: fixtureAt}
	ev := groupcast.PostCreatedEvent(post)
	ev.Seq, ev.ExpiresAt = fmt.Sprintf("01JDQ4ZK3M8X9V7T6R5P4R%04d", n), ev.At.Add(24*time.Hour)
	it, err := dynamostore.NewEventItem(ev)
	if err != nil {
		t.Fatal(err)
	}
	image, err := attributevalue.MarshalMap(it)
	if err != nil {
		t.Fatal(err)
	}
	d, err := it.Delivery()
	if err != nil {
		t.Fatal(err)
	}
	return streamRecord(t, "race", "INSERT", fmt.Sprintf("2%020d", n), nil, image), d
}
