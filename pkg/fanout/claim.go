package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Two paths deliver each event: the fast path (the function that made the
// change hands the event over right after its commit) and the stream (the
// at-least-once backstop, 0-250 ms later on AWS). A claim in the table
// decides which one pushes, so on the normal path no connection gets an
// event twice:
//
//   - whichever path takes the claim first delivers and then marks it done;
//   - the other skips an event whose claim is done;
//   - the holder's lease is short (claimLease) and renewed while it works
//     (a heartbeat every claimHeartbeat), and the holder stops pushing
//     before a lease it could not renew runs out (holdClaim);
//   - the stream waits on a started claim and takes it over once its lease
//     has run out: the holder died part-way (or lost touch with the
//     table), and only then may a connection get the event twice, with the
//     same id;
//   - a fast path that fails releases its claim, so the stream takes over
//     at once; a fast path that finds any claim simply stops, since the
//     stream is the path that must finish.

// Claims is the delivery-claim store; pkg/dynamostore implements it.
type Claims interface {
	TakeClaim(ctx context.Context, eventID, owner string, now, leaseUntil time.Time, retakeOwn bool) (dynamostore.Claim, bool, error)
	RenewClaim(ctx context.Context, c dynamostore.Claim, leaseUntil time.Time) error
	GetClaim(ctx context.Context, eventID string) (dynamostore.Claim, bool, error)
	FinishClaim(ctx context.Context, c dynamostore.Claim) error
	ReleaseClaim(ctx context.Context, c dynamostore.Claim) error
}

// Claim owners.
const (
	OwnerFast   = "fast"
	OwnerStream = "stream"
)

// The lease is a heartbeat, as in the AWS DynamoDB Lock Client
// (leaseDuration and heartbeatPeriod; its README heartbeats a 10 s lease
// every 3 s: https://github.com/awslabs/amazon-dynamodb-lock-client), so a
// dead holder is taken over within about claimLease, however long its
// function may run.
const (
	// claimLease is how long a claim holds without a renewal: the stream
	// takes a killed holder's event over about this long after the kill.
	// 3 s leaves three heartbeats per lease, each a ~10 ms UpdateItem.
	claimLease = 3 * time.Second
	// claimHeartbeat is the renewal period, claimLease/3 as in the lock
	// client's example: one renewal may fail (or take up to a period) and
	// the next still lands before the holder fences itself.
	claimHeartbeat = claimLease / 3
	// claimFenceMargin is how long before its lease could run out the
	// holder stops pushing (holdClaim cancels its delivery). It covers
	//   - clock differences: the lease is the holder's clock, the takeover
	//     the stream's; NTP (the Amazon Time Sync Service) keeps hosts
	//     within milliseconds;
	//   - calls in flight at the fence: the cancellation aborts them (each
	//     call's 2 s CallTimeout is capped by the delivery's context), so
	//     only a request already sent can still land, within its round
	//     trip (tens of ms). A hung call that API Gateway still carries out
	//     later than 1 s after the fence can only repeat the event (same
	//     id) to a connection, the duplicate a takeover allows anyway.
	// The lease itself is stamped before its write is sent, and the fence
	// is timed on this host's monotonic clock from that moment.
	claimFenceMargin = claimLease / 3
	// claimPollInterval is how often the stream re-reads a claim the fast
	// path holds. The fast path usually finishes within ~100 ms of taking
	// it, so 50 ms adds little to the stream's wait and costs two
	// strongly consistent reads a tenth of a second, only while waiting.
	claimPollInterval = 50 * time.Millisecond
)

// ClaimOutcome says what a claimed delivery did.
type ClaimOutcome int

const (
	// Delivered: this path held the claim and delivered.
	Delivered ClaimOutcome = iota
	// Skipped: the other path delivered, or (fast path) holds the claim.
	Skipped
)

// leaseClock is the heartbeat's time: the monotonic clock of the fences and
// renewals (the lease values themselves come from cfg.Now). Tests drive a
// fake.
type leaseClock interface {
	Now() time.Time
	// AfterFunc calls fn once d has passed, unless the returned stop is
	// called first (stop reports whether it prevented the call).
	AfterFunc(d time.Duration, fn func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, fn func()) func() bool {
	return time.AfterFunc(d, fn).Stop
}

// errLeaseEnding cancels a delivery whose lease could not be renewed.
var errLeaseEnding = errors.New("claim lease ending without a renewal")

// holding is one held claim: its heartbeat and its fence.
type holding struct {
	f      *Fanout
	cancel context.CancelCauseFunc
	stop   chan struct{} // closed by end
	done   chan struct{} // closed when the heartbeat has stopped

	mu        sync.Mutex
	claim     dynamostore.Claim
	stopFence func() bool
}

// holdClaim runs c's heartbeat until end: every claimHeartbeat it renews
// the lease to claimLease from then. The returned context is the
// delivery's: it is cancelled claimFenceMargin before the last lease that
// was written (the take's, stamped at sent, or a renewal's) could run out,
// so a holder that cannot renew (the table unreachable, the process
// stalled) stops pushing before anyone may take over, and at once when a
// renewal finds the claim lost.
func (f *Fanout) holdClaim(ctx context.Context, c dynamostore.Claim, sent time.Time) (context.Context, *holding) {
	dctx, cancel := context.WithCancelCause(ctx)
	h := &holding{f: f, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}), claim: c}
	h.fence(sent)
	go h.beat(dctx)
	return dctx, h
}

// fence (re)arms the cancellation for a lease written at sent.
func (h *holding) fence(sent time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopFence != nil && !h.stopFence() {
		return // the old fence fired: the delivery has stopped for good
	}
	d := sent.Add(claimLease - claimFenceMargin).Sub(h.f.clock.Now())
	h.stopFence = h.f.clock.AfterFunc(d, func() {
		h.f.log.Warn("claim not renewed; delivery stopped before its lease ends", "eventId", h.claim.EventID, "path", h.claim.Owner)
		h.cancel(errLeaseEnding)
	})
}

func (h *holding) beat(ctx context.Context) {
	defer close(h.done)
	for {
		tick := make(chan struct{})
		stopTick := h.f.clock.AfterFunc(claimHeartbeat, func() { close(tick) })
		select {
		case <-h.stop:
			stopTick()
			return
		case <-ctx.Done():
			stopTick()
			return
		case <-tick:
		}
		sent := h.f.clock.Now()
		until := h.f.cfg.Now().Add(claimLease)
		// A renewal gets one period: a slow one gives way to the next.
		rctx, cancel := context.WithTimeout(ctx, claimHeartbeat)
		err := h.f.cfg.Claims.RenewClaim(rctx, h.claim, until)
		cancel()
		switch {
		case errors.Is(err, dynamostore.ErrClaimLost):
			h.f.log.WarnContext(ctx, "claim lost; delivery stopped", "eventId", h.claim.EventID, "path", h.claim.Owner)
			h.cancel(err)
			return
		case err != nil:
			// The fence stays where the last written lease put it.
			h.f.log.WarnContext(ctx, "renew claim", "eventId", h.claim.EventID, "path", h.claim.Owner, "error", err)
			continue
		}
		h.mu.Lock()
		h.claim.LeaseUntil = until
		h.mu.Unlock()
		h.fence(sent)
	}
}

// end stops the heartbeat and the fence, and returns the claim as held.
// The delivery's context must not be used after.
func (h *holding) end() dynamostore.Claim {
	close(h.stop)
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopFence()
	h.cancel(context.Canceled)
	return h.claim
}

// deliverClaimed delivers p as owner, behind the claim.
func (f *Fanout) deliverClaimed(ctx context.Context, owner string, p groupcast.Delivery, stats *invocationStats) (ClaimOutcome, error) {
	id := p.Envelope.ID
	for {
		sent, now := f.clock.Now(), f.cfg.Now()
		// The stream may retake its own claim: a retry of its record.
		c, taken, err := f.cfg.Claims.TakeClaim(ctx, id, owner, now, now.Add(claimLease), owner == OwnerStream)
		if err != nil {
			return Skipped, fmt.Errorf("claim event %s: %w", id, err)
		}
		if taken {
			return Delivered, f.deliverHolding(ctx, c, sent, p, stats)
		}
		if c.State == dynamostore.ClaimDone {
			f.log.DebugContext(ctx, "event already delivered", "eventId", id, "by", c.Owner, "path", owner)
			return Skipped, nil
		}
		if owner != OwnerStream {
			// The other path is on it, and the stream always finishes.
			f.log.DebugContext(ctx, "event claimed by the other path", "eventId", id, "by", c.Owner)
			return Skipped, nil
		}
		if err := f.awaitClaim(ctx, id); err != nil {
			return Skipped, err
		}
	}
}

// deliverHolding delivers while holding c (taken at sent), then marks it
// done; a failed delivery releases it (the stream's own claim stays, for
// its retry). A delivery stopped by its fence ends as Deliver does at a
// deadline: the connections left go to the push queue (then the claim is
// done, unless a successor took it) or it fails.
func (f *Fanout) deliverHolding(ctx context.Context, c dynamostore.Claim, sent time.Time, p groupcast.Delivery, stats *invocationStats) error {
	dctx, h := f.holdClaim(ctx, c, sent)
	err := f.deliver(dctx, p, stats)
	c = h.end()
	// The claim's writes must happen even when the delivery ran out of time.
	cctx := context.WithoutCancel(ctx)
	if err != nil {
		if c.Owner == OwnerFast {
			if rerr := f.cfg.Claims.ReleaseClaim(cctx, c); rerr != nil {
				f.log.WarnContext(ctx, "release claim", "eventId", c.EventID, "error", rerr)
			}
		}
		return err
	}
	if err := f.cfg.Claims.FinishClaim(cctx, c); err != nil {
		if errors.Is(err, dynamostore.ErrClaimLost) {
			// Our lease ran out mid-delivery and the stream took over: it
			// delivers again, so the event is not lost.
			f.log.WarnContext(ctx, "claim lost during delivery", "eventId", c.EventID, "path", c.Owner)
			return nil
		}
		// Delivered, but not marked: the stream will redeliver after the
		// lease. Reporting the error to the stream path retries the record.
		return fmt.Errorf("finish claim: %w", err)
	}
	return nil
}

// awaitClaim waits until eventID's claim is done, gone or stale (the caller
// then tries to take it again), or ctx ends.
func (f *Fanout) awaitClaim(ctx context.Context, eventID string) error {
	t := time.NewTicker(claimPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the claim of event %s: %w", eventID, ctx.Err())
		case <-t.C:
		}
		c, found, err := f.cfg.Claims.GetClaim(ctx, eventID)
		if err != nil {
			return fmt.Errorf("read claim of event %s: %w", eventID, err)
		}
		if !found || c.State == dynamostore.ClaimDone || f.cfg.Now().After(c.LeaseUntil) {
			return nil
		}
	}
}

// DeliverFast delivers p on the fast path: behind a claim, and giving way
// to the stream whenever the stream has claimed it. Its error is for the
// log: the stream delivers a failed event.
func (f *Fanout) DeliverFast(ctx context.Context, p groupcast.Delivery) (ClaimOutcome, error) {
	if f.cfg.Claims == nil {
		return Skipped, errors.New("fast path: claims are required")
	}
	var stats invocationStats
	out, err := f.deliverClaimed(ctx, OwnerFast, p, &stats)
	f.emitMetrics(ctx, stats)
	return out, err
}
