package fanout

import (
	"context"
	"errors"
	"fmt"
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
//   - the stream waits on a started claim and takes it over once its lease
//     (the holder's function timeout) has run out: the holder died
//     part-way, and only then may a connection get the event twice, with
//     the same id;
//   - a fast path that fails releases its claim, so the stream takes over
//     at once; a fast path that finds any claim simply stops, since the
//     stream is the path that must finish.

// Claims is the delivery-claim store; pkg/dynamostore implements it.
type Claims interface {
	TakeClaim(ctx context.Context, eventID, owner string, now, leaseUntil time.Time, retakeOwn bool) (dynamostore.Claim, bool, error)
	GetClaim(ctx context.Context, eventID string) (dynamostore.Claim, bool, error)
	FinishClaim(ctx context.Context, c dynamostore.Claim) error
	ReleaseClaim(ctx context.Context, c dynamostore.Claim) error
}

// Claim owners.
const (
	OwnerFast   = "fast"
	OwnerStream = "stream"
)

const (
	// leaseMargin is added to the holder's deadline to make its lease:
	// Lambda stops an invocation at its timeout, so after deadline+margin
	// the holder is surely gone. 2 s covers the runtime's shutdown and
	// clock differences between hosts (NTP keeps them within milliseconds).
	leaseMargin = 2 * time.Second
	// defaultLease applies when the context has no deadline (tests, local
	// tools): the stream mapping's function timeout (60 s) is the longest
	// any holder runs.
	defaultLease = 60 * time.Second
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

func (f *Fanout) leaseUntil(ctx context.Context, now time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl.Add(leaseMargin)
	}
	return now.Add(defaultLease)
}

// deliverClaimed delivers p as owner, behind the claim.
func (f *Fanout) deliverClaimed(ctx context.Context, owner string, p groupcast.Delivery, stats *invocationStats) (ClaimOutcome, error) {
	id := p.Envelope.ID
	for {
		now := f.cfg.Now()
		// The stream may retake its own claim: a retry of its record.
		c, taken, err := f.cfg.Claims.TakeClaim(ctx, id, owner, now, f.leaseUntil(ctx, now), owner == OwnerStream)
		if err != nil {
			return Skipped, fmt.Errorf("claim event %s: %w", id, err)
		}
		if taken {
			return Delivered, f.deliverHolding(ctx, c, p, stats)
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

// deliverHolding delivers while holding c, then marks it done; a failed
// delivery releases it (the stream's own claim stays, for its retry).
func (f *Fanout) deliverHolding(ctx context.Context, c dynamostore.Claim, p groupcast.Delivery, stats *invocationStats) error {
	err := f.deliver(ctx, p, stats)
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
