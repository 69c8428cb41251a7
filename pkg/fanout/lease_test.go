package fanout

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// fakeClock is a leaseClock that moves only when told (Advance), and the
// harness's cfg.Now: the heartbeat, the fence and the leases' values all
// follow it, so lease tests wait for events, never for wall-clock time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at  time.Time
	d   time.Duration // as asked for: tells heartbeat ticks from fences
	fn  func()
	off bool // fired or stopped
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, fn func()) func() bool {
	c.mu.Lock()
	t := &fakeTimer{at: c.now.Add(d), d: d, fn: fn}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	if d <= 0 {
		c.Advance(0)
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := t.off
		t.off = true
		return !was
	}
}

// Advance moves the clock on by d and runs the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, pending []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.off:
		case !t.at.After(c.now):
			t.off = true
			due = append(due, t)
		default:
			pending = append(pending, t)
		}
	}
	c.timers = pending
	c.mu.Unlock()
	for _, t := range due {
		t.fn()
	}
}

// awaitTick waits until the heartbeat's next tick is armed, due
// claimHeartbeat from now: the heartbeat arms it only after it has dealt
// with the last one (renewed and moved its fence, or failed).
func (c *fakeClock) awaitTick(t *testing.T) {
	t.Helper()
	waitFor(t, "the next heartbeat tick", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, tm := range c.timers {
			if !tm.off && tm.d == claimHeartbeat && tm.at.Equal(c.now.Add(claimHeartbeat)) {
				return true
			}
		}
		return false
	})
}

// waitFor polls cond; the bound only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// leaseHarness is a fan-out on clk whose pushes are held, so its delivery
// lasts as long as the test wants. Its calls time out only after the
// tests' waits (awaitResult): only the fence may cut a held post short.
func leaseHarness(t *testing.T, clk *fakeClock, claims Claims) (h *harness, release func()) {
	t.Helper()
	h = newHarness(t, newWorld(), Config{Claims: claims, Now: clk.Now, Retry: RetryPolicy{MaxAttempts: 1, CallTimeout: time.Minute}})
	h.f.clock = clk
	return h, h.conns.hold(t)
}

func deliverFastAsync(h *harness, d groupcast.Delivery) <-chan error {
	res := make(chan error, 1)
	go func() {
		_, err := h.f.DeliverFast(context.Background(), d)
		res <- err
	}()
	return res
}

func awaitResult(t *testing.T, what string, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// handleOnce runs the stream handler on rec with a real budget of wait
// beyond its deadline margin, and reports whether the record failed.
func handleOnce(t *testing.T, h *harness, rec events.DynamoDBEventRecord, wait time.Duration) (failed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadlineMargin+wait)
	defer cancel()
	resp, err := h.f.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.BatchItemFailures) != 0
}

func assertClaim(t *testing.T, cs *dynamostore.Store, id, owner string, state dynamostore.ClaimState) dynamostore.Claim {
	t.Helper()
	c, found, err := cs.GetClaim(context.Background(), id)
	if err != nil || !found || c.Owner != owner || c.State != state {
		t.Fatalf("claim %+v (found %v, %v), want %s by %s", c, found, err, state, owner)
	}
	return c
}

// A fast-path delivery lasting two whole leases (a large audience) keeps
// its claim by renewing it: the stream, on the same clock, finds it live
// and does not push; the fast path then finishes it.
func TestClaimHolderKeepsItsClaimWhileItDelivers(t *testing.T) {
	clk := newFakeClock(harnessNow())
	cs := claimStore(t)
	fast, release := leaseHarness(t, clk, cs)
	rec, d := postRecord(t)
	res := deliverFastAsync(fast, d)
	fast.conns.awaitHeld(t)
	for range 2 * claimLease / claimHeartbeat {
		clk.awaitTick(t)
		clk.Advance(claimHeartbeat)
	}
	clk.awaitTick(t) // the last renewal is in
	if c := assertClaim(t, cs, d.Envelope.ID, OwnerFast, dynamostore.ClaimStarted); !c.LeaseUntil.After(clk.Now()) {
		t.Fatalf("lease %s not renewed past %s", c.LeaseUntil, clk.Now())
	}

	stream := newHarness(t, newWorld(), Config{Claims: cs, Now: clk.Now})
	if !handleOnce(t, stream, rec, 300*time.Millisecond) {
		t.Error("the stream's record was not reported while the fast path holds the claim")
	}
	if got := pushCounts(stream); len(got) != 0 {
		t.Errorf("the stream pushed %v while the fast path holds the claim", got)
	}
	release()
	if err := awaitResult(t, "DeliverFast", res); err != nil {
		t.Fatal(err)
	}
	if got := pushCounts(fast); !mapsEqual(got, bothOnce) {
		t.Errorf("fast path pushes %v, want %v", got, bothOnce)
	}
	assertClaim(t, cs, d.Envelope.ID, OwnerFast, dynamostore.ClaimDone)
}

// unreachableClaims is the claim store with DynamoDB gone after the take:
// renewals, finishing and releasing all fail.
type unreachableClaims struct{ *dynamostore.Store }

var errUnreachable = errors.New("dynamodb unreachable")

func (unreachableClaims) RenewClaim(context.Context, dynamostore.Claim, time.Time) error {
	return errUnreachable
}
func (unreachableClaims) FinishClaim(context.Context, dynamostore.Claim) error { return errUnreachable }
func (unreachableClaims) ReleaseClaim(context.Context, dynamostore.Claim) error {
	return errUnreachable
}

// A holder whose renewals fail stops pushing before its lease could end
// (its held posts are abandoned, undelivered), and the stream takes the
// event over once the lease has run out; a holder whose renewal finds the
// claim lost stops at the first heartbeat.
func TestClaimHolderThatCannotRenewStops(t *testing.T) {
	tests := []struct {
		name string
		// lose acts on the claim once the holder has started pushing.
		lose func(t *testing.T, cs *dynamostore.Store, c dynamostore.Claim)
		// unreachable: DynamoDB fails every call after the take.
		unreachable bool
		// beats is how many heartbeats pass before the holder stops.
		beats int
	}{
		{"the table unreachable: stopped at the fence", nil, true, int((claimLease - claimFenceMargin) / claimHeartbeat)},
		{"the claim lost: stopped at the next heartbeat", func(t *testing.T, cs *dynamostore.Store, c dynamostore.Claim) {
			// Another path took it over (its clock ran ahead of ours).
			if _, ok, err := cs.TakeClaim(context.Background(), c.EventID, OwnerStream, c.LeaseUntil.Add(time.Millisecond), c.LeaseUntil.Add(time.Minute), false); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock(harnessNow())
			cs := claimStore(t)
			var claims Claims = cs
			if tt.unreachable {
				claims = unreachableClaims{cs}
			}
			fast, _ := leaseHarness(t, clk, claims)
			rec, d := postRecord(t)
			res := deliverFastAsync(fast, d)
			fast.conns.awaitHeld(t)
			taken := assertClaim(t, cs, d.Envelope.ID, OwnerFast, dynamostore.ClaimStarted)
			if tt.lose != nil {
				tt.lose(t, cs, taken)
			}
			for range tt.beats {
				clk.awaitTick(t)
				clk.Advance(claimHeartbeat)
			}
			// The held posts were abandoned: the gate never opens.
			err := awaitResult(t, "DeliverFast", res)
			if tt.unreachable && !errors.Is(err, errUnreachable) {
				t.Errorf("DeliverFast = %v, want the unreachable table's error", err)
			}
			if !tt.unreachable && err != nil {
				t.Errorf("DeliverFast = %v, want nil (the successor delivers)", err)
			}
			if !clk.Now().Before(taken.LeaseUntil) {
				t.Errorf("stopped at %s, not before the lease's end %s", clk.Now(), taken.LeaseUntil)
			}
			if got := pushCounts(fast); len(got) != 0 {
				t.Errorf("fast path delivered %v after it stopped", got)
			}
			if !tt.unreachable {
				return
			}
			// The stream waits for the lease, then takes over.
			stream := newHarness(t, newWorld(), Config{Claims: cs, Now: clk.Now})
			if !handleOnce(t, stream, rec, 300*time.Millisecond) || len(pushCounts(stream)) != 0 {
				t.Fatalf("the stream did not wait for the lease: pushes %v", pushCounts(stream))
			}
			clk.Advance(taken.LeaseUntil.Sub(clk.Now()) + time.Millisecond)
			if handleOnce(t, stream, rec, 10*time.Second) {
				t.Fatal("the stream's record failed after the lease ran out")
			}
			if got := pushCounts(stream); !mapsEqual(got, bothOnce) {
				t.Errorf("stream pushes %v, want %v", got, bothOnce)
			}
			assertClaim(t, cs, d.Envelope.ID, OwnerStream, dynamostore.ClaimDone)
		})
	}
}

// pollCounter counts the stream's reads of a claim it waits on.
type pollCounter struct {
	*dynamostore.Store
	n atomic.Int64
}

func (p *pollCounter) GetClaim(ctx context.Context, id string) (dynamostore.Claim, bool, error) {
	p.n.Add(1)
	return p.Store.GetClaim(ctx, id)
}

// A killed fast path (frozen: no renewals, no fence) is taken over about
// claimLease after it took the claim, whatever its function timeout: the
// stream still waits a moment before the lease ends and delivers just
// after it.
func TestKilledClaimHolderIsTakenOverAfterTheLease(t *testing.T) {
	cs := claimStore(t)
	frozen := newFakeClock(harnessNow())
	fast, release := leaseHarness(t, frozen, cs)
	rec, d := postRecord(t)
	// A Lambda deadline far beyond the lease: it must not set the lease.
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := make(chan error, 1)
	go func() { _, err := fast.f.DeliverFast(fctx, d); res <- err }()
	fast.conns.awaitHeld(t)
	taken := assertClaim(t, cs, d.Envelope.ID, OwnerFast, dynamostore.ClaimStarted)
	if want := harnessNow().Add(claimLease).Truncate(time.Millisecond); !taken.LeaseUntil.Equal(want) {
		t.Errorf("lease until %s, want the take plus claimLease, %s", taken.LeaseUntil, want)
	}

	clk := newFakeClock(harnessNow())
	polls := &pollCounter{Store: cs}
	stream := newHarness(t, newWorld(), Config{Claims: polls, Now: clk.Now})
	sres := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadlineMargin+20*time.Second)
		defer cancel()
		resp, err := stream.f.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
		if err == nil && len(resp.BatchItemFailures) != 0 {
			err = errors.New("record reported failed")
		}
		sres <- err
	}()
	clk.Advance(claimLease - time.Millisecond)
	from := polls.n.Load()
	waitFor(t, "two polls of the claim", func() bool { return polls.n.Load() >= from+2 })
	if got := pushCounts(stream); len(got) != 0 {
		t.Fatalf("the stream pushed %v before the lease ran out", got)
	}
	assertClaim(t, cs, d.Envelope.ID, OwnerFast, dynamostore.ClaimStarted)
	clk.Advance(2 * time.Millisecond)
	if err := awaitResult(t, "the stream's Handle", sres); err != nil {
		t.Fatal(err)
	}
	if got := pushCounts(stream); !mapsEqual(got, bothOnce) {
		t.Errorf("stream pushes %v, want %v", got, bothOnce)
	}
	assertClaim(t, cs, d.Envelope.ID, OwnerStream, dynamostore.ClaimDone)
	// The frozen holder wakes up: it finds its claim lost and finishes
	// nothing of its successor's.
	release()
	if err := awaitResult(t, "DeliverFast", res); err != nil {
		t.Errorf("DeliverFast after the takeover = %v, want nil", err)
	}
	assertClaim(t, cs, d.Envelope.ID, OwnerStream, dynamostore.ClaimDone)
}
