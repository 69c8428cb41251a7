package wsgw

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Timing makes the @connections API as slow and as limited as API Gateway's
// (the local stack's AWS timing profile). The zero value adds nothing.
type Timing struct {
	// Latency is added to every @connections call, before it is handled:
	// the in-region round trip a function sees on AWS.
	Latency time.Duration
	// Limiter is the account's request rate, shared by every API of the
	// stack; nil is unlimited.
	Limiter *AccountLimiter
	// Sleep waits d or until ctx ends (tests inject it); nil sleeps.
	Sleep func(ctx context.Context, d time.Duration)
}

// AccountLimiter is API Gateway's account-level throttle: a token bucket
// refilled at the steady-state rate, holding at most the burst. Calls over
// it get 429 LimitExceededException.
// https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
type AccountLimiter struct {
	lim       *rate.Limiter
	now       func() time.Time
	throttled atomic.Int64
}

// NewAccountLimiter allows rps requests a second with bursts of burst; now
// is the clock (nil: time.Now).
func NewAccountLimiter(rps float64, burst int, now func() time.Time) *AccountLimiter {
	if now == nil {
		now = time.Now
	}
	return &AccountLimiter{lim: rate.NewLimiter(rate.Limit(rps), burst), now: now}
}

// Allow takes a token, or reports that the call is throttled.
func (l *AccountLimiter) Allow() bool {
	if l.lim.AllowN(l.now(), 1) {
		return true
	}
	l.throttled.Add(1)
	return false
}

// Throttled counts the calls refused so far.
func (l *AccountLimiter) Throttled() int64 { return l.throttled.Load() }

// timed wraps a @connections handler with the gateway's Timing: throttled
// calls answer 429 as API Gateway does (x-amzn-ErrorType
// LimitExceededException, {"message": ...}); every call first waits the
// round trip.
func (g *Gateway) timed(h http.HandlerFunc) http.HandlerFunc {
	t := g.cfg.Timing
	if t.Latency <= 0 && t.Limiter == nil {
		return h
	}
	sleep := t.Sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) {
			tm := time.NewTimer(d)
			defer tm.Stop()
			select {
			case <-tm.C:
			case <-ctx.Done():
			}
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if t.Latency > 0 {
			sleep(r.Context(), t.Latency)
		}
		if t.Limiter != nil && !t.Limiter.Allow() {
			writeAPIError(w, http.StatusTooManyRequests, "LimitExceededException", "Rate exceeded")
			return
		}
		h(w, r)
	}
}
