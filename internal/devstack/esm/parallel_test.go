package esm

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/internal/devstack/dynamo"
)

// countingSource counts reads and reports each one. Once armed, a read
// before ticked is set counts as early: a read the tick did not cause.
type countingSource struct {
	Source
	reads         chan struct{}
	armed, ticked atomic.Bool
	early         atomic.Int32
}

func (c *countingSource) Read(arn, after string, limit int) ([]dynamo.Record, <-chan struct{}, error) {
	if c.armed.Load() && !c.ticked.Load() {
		c.early.Add(1)
	}
	recs, wake, err := c.Source.Read(arn, after, limit)
	c.reads <- struct{}{}
	return recs, wake, err
}

// With a poll tick, a write does not wake the mapping: the record waits
// for the next tick. The tick channel is unbuffered, so a send completes
// only when the poller waits for it; a poller woken by the write would
// have read and invoked instead, and never take the tick.
func TestPollTickIgnoresWrites(t *testing.T) {
	e := newEnv(t)
	fn := newFake(nil)
	ticks := make(chan time.Time)
	src := &countingSource{Source: e.srv, reads: make(chan struct{}, 100)}
	m := Mapping{FunctionName: "Fn", StreamARN: e.table.StreamARN, StartingPosition: TrimHorizon, MaximumRetryAttempts: -1}
	p, err := Start(context.Background(), src, fn, m, Options{Logger: quiet, Ticks: ticks})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	<-src.reads // the first read, before any write
	src.armed.Store(true)
	e.put(t, "POST", "a")
	// A poller wrongly woken by the write reads within microseconds; 50 ms
	// lets it show itself. (This wait can only hide a bug under extreme
	// load, never fail a correct poller.)
	time.Sleep(50 * time.Millisecond)
	// Set before the send: the poller can only read because of the tick
	// once the send completes, so any read seen while ticked is false
	// happened without a tick (checked by the flag, not by timing: after
	// the send the poller runs concurrently with this goroutine).
	src.ticked.Store(true)
	select {
	case ticks <- time.Now():
	case <-time.After(waitLimit):
		t.Fatal("the poller never waited for a tick")
	}
	if n := src.early.Load(); n != 0 {
		t.Fatalf("%d reads between the write and the tick", n)
	}
	fn.expectCalls(t, "a")
	// Back to waiting for the next tick.
	select {
	case ticks <- time.Now():
	case <-time.After(waitLimit):
		t.Fatal("the poller did not wait for the next tick")
	}
}

// laneKeys returns one key per lane of n.
func laneKeys(t *testing.T, n int) []string {
	t.Helper()
	keys := make([]string, n)
	found := 0
	for i := 0; found < n && i < 10000; i++ {
		k := fmt.Sprintf("k%d", i)
		raw, _ := json.Marshal(map[string]string{"S": k})
		lane := laneOf(dynamo.Record{PartitionKey: "PK", Keys: map[string]json.RawMessage{"PK": raw}}, n)
		if keys[lane] == "" {
			keys[lane] = k
			found++
		}
	}
	if found < n {
		t.Fatal("no key for every lane")
	}
	return keys
}

// blockingFunction holds invocations whose first record has key hold
// until release is closed, and records which keys are in flight.
type blockingFunction struct {
	hold    string
	release chan struct{}
	started chan string

	mu       sync.Mutex
	inFlight map[string]bool
	overlap  string
	seen     map[string][]string // key -> sequence numbers, in delivery order
	maxConc  int
	conc     int
}

func (f *blockingFunction) Invoke(_ context.Context, _ string, payload []byte) ([]byte, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	f.mu.Lock()
	f.conc++
	f.maxConc = max(f.maxConc, f.conc)
	for _, r := range ev.Records {
		k := r.Change.Keys["PK"].String()
		if f.inFlight[k] {
			f.overlap = k
		}
		keys[k] = true
		f.seen[k] = append(f.seen[k], r.Change.SequenceNumber)
	}
	for k := range keys {
		f.inFlight[k] = true
	}
	f.mu.Unlock()
	first := ev.Records[0].Change.Keys["PK"].String()
	f.started <- first
	if first == f.hold {
		<-f.release
	}
	f.mu.Lock()
	for k := range keys {
		delete(f.inFlight, k)
	}
	f.conc--
	f.mu.Unlock()
	return nil, nil
}

// ParallelizationFactor runs batches of different keys at once (the held
// lane does not stop the others) and keeps one key's records in order and
// never in two invocations at once.
func TestParallelizationFactor(t *testing.T) {
	const n = 3
	e := newEnv(t)
	keys := laneKeys(t, n)
	fn := &blockingFunction{hold: keys[0], release: make(chan struct{}), started: make(chan string, 100),
		inFlight: map[string]bool{}, seen: map[string][]string{}}
	start(t, e, fn, Mapping{BatchSize: 2, ParallelizationFactor: n}, Options{})
	var once sync.Once
	release := func() { once.Do(func() { close(fn.release) }) }
	t.Cleanup(release)        // runs before the poller's Close, even when the test fails
	e.put(t, "POST", keys[0]) // holds its lane
	if got := <-fn.started; got != keys[0] {
		t.Fatalf("first invocation for %s, want %s", got, keys[0])
	}
	// Two more writes per key: the other lanes deliver while lane 0 is held.
	for round := range 2 {
		for _, k := range keys {
			e.put(t, "MODIFY"+fmt.Sprint(round), k)
		}
	}
	others := map[string]bool{}
	deadline := time.After(waitLimit)
	for len(others) < n-1 {
		select {
		case k := <-fn.started:
			if k == keys[0] {
				t.Fatal("the held key was invoked again while its batch ran")
			}
			others[k] = true
		case <-deadline:
			t.Fatalf("other lanes did not run while lane 0 was held (ran: %v)", others)
		}
	}
	release()
	// Wait until every record of every key is delivered.
	deadline = time.After(waitLimit)
	for {
		fn.mu.Lock()
		total := 0
		for _, s := range fn.seen {
			total += len(s)
		}
		fn.mu.Unlock()
		if total == 1+2*n {
			break
		}
		select {
		case <-fn.started:
		case <-deadline:
			t.Fatalf("delivered %d of %d records: %v", total, 1+2*n, fn.seen)
		}
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.overlap != "" {
		t.Errorf("key %s was in two invocations at once", fn.overlap)
	}
	if fn.maxConc < 2 {
		t.Errorf("at most %d invocations at once, want concurrency", fn.maxConc)
	}
	for k, seqs := range fn.seen {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Errorf("key %s delivered out of order: %v", k, seqs)
			}
		}
	}
}

func TestParallelizationFactorRange(t *testing.T) {
	for _, pf := range []int{-1, 11} {
		t.Run(fmt.Sprint(pf), func(t *testing.T) {
			m := Mapping{FunctionName: "Fn", StreamARN: "arn", StartingPosition: TrimHorizon, ParallelizationFactor: pf}
			if err := normalize(&m); err == nil {
				t.Fatalf("ParallelizationFactor %d accepted", pf)
			}
		})
	}
}
