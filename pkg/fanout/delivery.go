package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// DeliveryResult sums what one Deliver call did.
type DeliveryResult struct {
	// Delivered and Gone count direct pushes; Dropped the connections
	// that refused the event for good (403, 413).
	Delivered, Gone, Dropped int
	// Queued counts connections handed to the push queue, in Chunks
	// messages: the whole audience above DirectPushLimit, else the
	// connections a direct push could not reach yet.
	Queued, Chunks int
	// Stale: the event was older than LiveMaxAge, so nobody was pushed.
	Stale bool
}

// Deliver delivers one event. It is the one entry point of delivery, for
// the stream consumer and for any caller that has the event in hand:
//
//  1. the inbox work goes to the inbox queue (its own retries, its own
//     dead-letter queue: a live push's failure never touches it);
//  2. the live audience is resolved (GSI1), and for a private group
//     checked against the base table's memberships;
//  3. an audience of at most DirectPushLimit connections is pushed here;
//     a larger one goes to the push queue in chunks for the push workers;
//  4. connections a direct push could not reach go to the push queue too,
//     so one bad connection never fails the event.
//
// An error means the event's work could not be stored (DynamoDB or SQS
// failed): the caller retries the whole event. A retry may push again to
// the direct audience (at most DirectPushLimit connections); clients drop
// the repeat by event id.
func (f *Fanout) Deliver(ctx context.Context, d groupcast.Delivery) (DeliveryResult, error) {
	var res DeliveryResult
	env := d.Envelope
	if d.Inbox != (groupcast.Inbox{}) {
		inbox := InboxTarget(d.Inbox)
		if err := f.enqueue(ctx, f.cfg.InboxQueueURL, []Task{{Kind: TaskInbox, Event: env, Inbox: &inbox}}, nil); err != nil {
			return res, fmt.Errorf("queue inbox of event %s: %w", env.ID, err)
		}
	}
	if age := f.cfg.Now().Sub(env.At); age > f.cfg.LiveMaxAge {
		// A live notification this late is noise; the inbox (queued above)
		// and the group's posts still have it.
		f.log.WarnContext(ctx, "event too old to push live", "eventId", env.ID, "age", age.String())
		res.Stale = true
		return res, nil
	}
	payload, err := json.Marshal(env)
	if err != nil {
		return res, fmt.Errorf("encode event %s: %w", env.ID, err)
	}
	ch, err := newChunker(env, 0, f.cfg.ChunkSize)
	if err != nil {
		return res, err
	}

	// Ids are buffered until the audience is known to exceed
	// DirectPushLimit; from then on full chunks are queued while the
	// lookup pages on, so the workers start before the last page is read.
	var direct []string
	queued := false
	flush := func(final bool) error {
		tasks := ch.take(final)
		for _, t := range tasks {
			res.Queued += len(t.Connections)
		}
		res.Chunks += len(tasks)
		if err := f.enqueue(ctx, f.cfg.PushQueueURL, tasks, nil); err != nil {
			return fmt.Errorf("queue push chunks of event %s: %w", env.ID, err)
		}
		return nil
	}
	add := func(ids []string) error {
		if !queued {
			direct = append(direct, ids...)
			if len(direct) <= f.cfg.DirectPushLimit {
				return nil
			}
			queued = true
			ids, direct = direct, nil
		}
		for _, id := range ids {
			ch.add(id)
		}
		return flush(false)
	}
	if err := f.resolveAudience(ctx, d.Audience, add); err != nil {
		return res, err
	}
	if queued {
		return res, flush(true)
	}

	r := f.pushIDs(ctx, payload, f.cfg.Retry.MaxAttempts, direct)
	res.Delivered, res.Gone, res.Dropped = int(r.delivered.Load()), int(r.gone.Load()), int(r.rejected.Load())
	// What the direct push could not reach continues in the push queue's
	// rounds, where the workers retry it with backoff; the record is done.
	if rest := append(r.exhausted, r.unattempted...); len(rest) > 0 {
		rc, err := newChunker(env, 1, f.cfg.ChunkSize)
		if err != nil {
			return res, err
		}
		for _, id := range rest {
			rc.add(id)
		}
		tasks := rc.take(true)
		res.Queued, res.Chunks = len(rest), len(tasks)
		if err := f.enqueue(context.WithoutCancel(ctx), f.cfg.PushQueueURL, tasks, f.roundDelay(1)); err != nil {
			return res, fmt.Errorf("queue failed pushes of event %s: %w", env.ID, err)
		}
	}
	return res, nil
}

// resolveAudience hands the audience's connection ids to add, page by page.
func (f *Fanout) resolveAudience(ctx context.Context, a groupcast.Audience, add func([]string) error) error {
	if a.UserID != "" {
		ids, err := f.store.UserConnectionIDs(ctx, a.UserID)
		if err != nil {
			return fmt.Errorf("connections of user %s: %w", a.UserID, err)
		}
		return add(ids)
	}
	if a.GroupID == "" {
		return nil // an event for nobody live (inbox only)
	}
	membersOnly, err := f.membersOnly(ctx, a.GroupID)
	if err != nil {
		return err
	}
	err = f.store.ForEachGroupSubscriber(ctx, a.GroupID, func(page []groupcast.Subscriber) error {
		var keep map[groupcast.MemberKey]bool
		if membersOnly {
			k, err := f.members(ctx, a.GroupID, page)
			if err != nil {
				return err
			}
			keep = k
		}
		ids := make([]string, 0, len(page))
		for _, s := range page {
			if a.ExceptUserID != "" && s.UserID == a.ExceptUserID {
				continue
			}
			if membersOnly && !keep[groupcast.MemberKey{GroupID: a.GroupID, UserID: s.UserID}] {
				continue
			}
			ids = append(ids, s.ConnectionID)
		}
		return add(ids)
	})
	if err != nil {
		return fmt.Errorf("subscribers of %s: %w", a.GroupID, err)
	}
	return nil
}

// membersOnly reports whether only members may receive the group's events.
// GSI1 is eventually consistent: right after a leave it can still list the
// ex-member's subscription, so a private group's audience is checked
// against the base table (strongly consistent reads). A group that is gone
// counts as private: nobody left to check is a member.
func (f *Fanout) membersOnly(ctx context.Context, groupID string) (bool, error) {
	if groupID == groupcast.SubscribePublic {
		return false, nil
	}
	g, err := f.store.GetGroup(ctx, groupID)
	switch {
	case groupcast.ErrorCode(err) == groupcast.CodeNotFound:
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get group %s: %w", groupID, err)
	}
	return g.Visibility != groupcast.Public, nil
}

// members reads the memberships of the page's distinct users.
func (f *Fanout) members(ctx context.Context, groupID string, page []groupcast.Subscriber) (map[groupcast.MemberKey]bool, error) {
	keys := make([]groupcast.MemberKey, 0, len(page))
	seen := map[string]bool{}
	for _, s := range page {
		if !seen[s.UserID] {
			seen[s.UserID] = true
			keys = append(keys, groupcast.MemberKey{GroupID: groupID, UserID: s.UserID})
		}
	}
	m, err := f.store.Memberships(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("memberships of %s: %w", groupID, err)
	}
	return m, nil
}

// roundDelay returns the DelaySeconds of a re-queued round: full jitter
// over [0, min(15 min, 2^round s)], so connections that failed together
// (a 429 burst) come back spread out rather than in step.
func (f *Fanout) roundDelay(round int) func() int32 {
	ceiling := maxDelaySeconds
	if round < 10 {
		ceiling = min(ceiling, 1<<round)
	}
	return func() int32 { return int32(rand.N(ceiling + 1)) }
}
