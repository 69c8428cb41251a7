package wsgw

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Beyond the burst, @connections calls answer 429 LimitExceededException
// with {"message": ...}, until the bucket refills; the limiter is shared,
// so two gateways draw from one budget.
func TestAccountThrottle(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	lim := NewAccountLimiter(10, 3, clock.now) // 10 RPS, burst 3
	set := func(c *Config) { c.Timing = Timing{Limiter: lim} }
	f1, f2 := newFixture(t, set), newFixture(t, set)
	call := func(f *fixture) (int, string, string) {
		return rawManagementCall(t, f, http.MethodGet, "unknown", nil, signWith(t, f.admin, time.Now()))
	}
	// The burst: 3 calls pass (to a 410: the connection does not exist).
	for i, f := range []*fixture{f1, f2, f1} {
		if st, _, _ := call(f); st != http.StatusGone {
			t.Fatalf("call %d within the burst: status %d, want 410", i+1, st)
		}
	}
	st, typ, msg := call(f2)
	if st != http.StatusTooManyRequests || typ != "LimitExceededException" || msg == "" {
		t.Fatalf("over the budget: %d %s %q, want 429 LimitExceededException with a message", st, typ, msg)
	}
	if lim.Throttled() != 1 {
		t.Fatalf("throttled %d, want 1", lim.Throttled())
	}
	clock.add(100 * time.Millisecond) // one token at 10 RPS
	if st, _, _ := call(f1); st != http.StatusGone {
		t.Fatalf("after a refill: status %d, want 410", st)
	}
	if st, _, _ := call(f1); st != http.StatusTooManyRequests {
		t.Fatalf("second call after one token: status %d, want 429", st)
	}
}

// Every @connections call waits the configured round trip first.
func TestConnectionsLatency(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	f := newFixture(t, func(c *Config) {
		c.Timing = Timing{Latency: 25 * time.Millisecond, Sleep: func(_ context.Context, d time.Duration) {
			mu.Lock()
			slept = append(slept, d)
			mu.Unlock()
		}}
	})
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		rawManagementCall(t, f, m, "unknown", nil, signWith(t, f.admin, time.Now()))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(slept) != 3 || slept[0] != 25*time.Millisecond || slept[2] != 25*time.Millisecond {
		t.Fatalf("slept %v, want 25ms for each of 3 calls", slept)
	}
}
