// Package fanout delivers the events the domain wrote to the table's outbox:
// it reads them from the DynamoDB stream, pushes each envelope to its
// audience's WebSocket connections through the API Gateway @connections API
// and writes it to the inboxes it names.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/time/rate"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Store is what the fan-out reads and writes; pkg/dynamostore implements it.
type Store interface {
	// ForEachGroupSubscriber calls fn with each page of the connections
	// subscribed to groupID ("public" for the new-public-groups feed).
	ForEachGroupSubscriber(ctx context.Context, groupID string, fn func([]groupcast.Subscriber) error) error
	UserConnectionIDs(ctx context.Context, userID string) ([]string, error)
	GetConnection(ctx context.Context, connectionID string) (groupcast.Connection, error)
	// DeleteConnection removes a connection and its subscriptions.
	DeleteConnection(ctx context.Context, connectionID string) error
	ForEachGroupMemberID(ctx context.Context, groupID string, fn func([]string) error) error
	GetGroup(ctx context.Context, groupID string) (groupcast.Group, error)
	PutNotifications(ctx context.Context, ns []groupcast.Notification) error
	// Memberships reads memberships from the base table, strongly
	// consistent (GSI1 may still list a subscriber who left).
	Memberships(ctx context.Context, keys []groupcast.MemberKey) (map[groupcast.MemberKey]bool, error)
}

const (
	// DefaultConcurrency is the number of PostToConnection calls in flight
	// per record. A call takes ~10-30 ms in-region, so 64 workers push
	// roughly 2,000-6,000 messages a second: 10,000 connections in a few
	// seconds, while staying well under the account-wide @connections
	// throttle (10,000 RPS shared with the HTTP API and with other shards'
	// fan-outs). 64 keep-alive connections fit easily in a 512 MB function.
	DefaultConcurrency = 64
	// MaxConcurrency caps the setting: more workers than this would only
	// hit the account throttle (429s) sooner.
	MaxConcurrency = 1024
	// DefaultInboxFanoutLimit bounds the write cost of one post: inbox items
	// are written for every member only while the group has at most this
	// many members (1,000 writes ≈ 40 BatchWriteItem calls). Members of
	// bigger groups get live pushes and read the group's posts instead.
	DefaultInboxFanoutLimit = 1000
	// DefaultInboxRetention is how long an inbox entry is kept after its
	// event. The inbox is a catch-up list for someone who was away; a month
	// covers holidays, and older posts stay readable in their group (posts
	// do not expire), so only the pointer to them goes. Without a bound a
	// 1,000-member group accumulates about 1.4 GB per 1,000 posts.
	DefaultInboxRetention = 30 * 24 * time.Hour
	// MaxInboxRetention caps the setting at ten years: longer is "forever"
	// in practice and is better expressed by a deliberate template change.
	MaxInboxRetention = 3650 * 24 * time.Hour
	// DefaultDirectPushLimit is the largest audience the stream consumer
	// pushes itself; larger ones go to the push queue. At 64 calls in
	// flight of ~25 ms, 500 pushes take ~0.2 s, about what the queue hop
	// adds (SendMessageBatch plus the SQS poller's receive), so above it
	// the workers' parallelism wins and below it the hop only adds
	// latency. It also bounds the repeat when a record is retried.
	DefaultDirectPushLimit = 500
	// DefaultChunkSize is the connections per push task: 500 ids of ~20
	// bytes (10 KB) plus the envelope, so a SendMessageBatch of ten fits
	// SQS's 256 KiB, and a worker at 1,250 pushes/s finishes one in 0.4 s.
	DefaultChunkSize = 500
	// DefaultMaxRounds bounds how often a failing connection goes back to
	// the push queue: each round makes Retry.MaxAttempts calls, and the
	// rounds' delays (up to 2 s, 4 s) let a throttle or an API Gateway
	// blip pass. A connection failing 3 rounds (12 calls over seconds) is
	// dropped and counted; the client catches up through history.
	DefaultMaxRounds = 3
	// DefaultLiveMaxAge is how old an event may be and still be pushed
	// live: an hour-old notification is noise. Older events still reach
	// the inbox (queued first), so the stream mapping's record age limit
	// can be the stream's whole retention.
	DefaultLiveMaxAge = time.Hour
	// deadlineMargin is kept free before the Lambda deadline so the handler
	// can still return its partial batch response instead of timing out
	// (a timeout would retry the whole batch).
	deadlineMargin = 2 * time.Second
)

// Config configures a Fanout. Zero values take the defaults above.
type Config struct {
	// PushQueueURL and InboxQueueURL are the SQS queues of push and inbox
	// tasks (required).
	PushQueueURL, InboxQueueURL string
	DirectPushLimit             int
	ChunkSize                   int
	MaxRounds                   int
	LiveMaxAge                  time.Duration
	// RatePerSecond caps this process's PostToConnection calls (a token
	// bucket; burst half a second's worth, see burstOf); 0 means no cap.
	RatePerSecond    float64
	Concurrency      int
	InboxFanoutLimit int
	// InboxRetention sets each inbox entry's expiry after its event time;
	// the entry's key and expiry both derive from the event, so a
	// redelivered record rewrites the same item.
	InboxRetention time.Duration
	Retry          RetryPolicy
	// Now is the clock of the fan-out lag metric, of the handshake grace
	// for 410s and of delivery claims; nil means time.Now.
	Now func() time.Time
	// Claims, when set, puts a delivery claim in front of every event
	// (claim.go), so the fast path and the stream never both deliver it.
	Claims Claims
}

// burstOf is the token bucket's burst for a rate: half a second's worth.
// The account's @connections throttle is 10,000 RPS with a burst of 5,000,
// half a second of its rate (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).
// The workers' buckets start full, so together they can send their total
// burst at once: half a second each keeps that total (PushRatePerSecond / 2)
// within the account's burst for any PushRatePerSecond up to the account
// rate, where a second's worth let 4 fresh workers at a 10,000 budget send
// 10,000 calls at once, twice the account's burst. The burst also covers
// the gap between two invocations (SQS poll and invoke, tens of ms), so a
// worker's share is not lost between chunks.
func burstOf(perSecond float64) int {
	return max(1, int(perSecond/2))
}

// Fanout is the stream handler. Build it once per execution environment.
type Fanout struct {
	store   Store
	poster  Poster
	queue   Queue
	limiter *rate.Limiter
	log     *slog.Logger
	metrics *applog.EMF
	cfg     Config
	// clock times the claims' heartbeats and fences (claim.go).
	clock leaseClock
}

// New validates cfg and returns a Fanout.
func New(store Store, poster Poster, queue Queue, log *slog.Logger, metrics *applog.EMF, cfg Config) (*Fanout, error) {
	if store == nil || poster == nil || queue == nil || log == nil || metrics == nil {
		return nil, errors.New("fanout: store, poster, queue, logger and metrics are required")
	}
	if cfg.PushQueueURL == "" || cfg.InboxQueueURL == "" {
		return nil, errors.New("fanout: the push and inbox queue URLs are required")
	}
	for _, v := range []struct {
		name string
		p    *int
		def  int
	}{{"direct push limit", &cfg.DirectPushLimit, DefaultDirectPushLimit}, {"chunk size", &cfg.ChunkSize, DefaultChunkSize}, {"max rounds", &cfg.MaxRounds, DefaultMaxRounds}} {
		if *v.p == 0 {
			*v.p = v.def
		}
		if *v.p < 1 {
			return nil, fmt.Errorf("fanout: %s %d must be positive", v.name, *v.p)
		}
	}
	if cfg.LiveMaxAge == 0 {
		cfg.LiveMaxAge = DefaultLiveMaxAge
	}
	if cfg.LiveMaxAge < 0 || cfg.RatePerSecond < 0 {
		return nil, errors.New("fanout: live max age and rate must not be negative")
	}
	var limiter *rate.Limiter
	if cfg.RatePerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.RatePerSecond), burstOf(cfg.RatePerSecond))
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("fanout: concurrency %d is outside 1..%d", cfg.Concurrency, MaxConcurrency)
	}
	if cfg.InboxFanoutLimit == 0 {
		cfg.InboxFanoutLimit = DefaultInboxFanoutLimit
	}
	if cfg.InboxFanoutLimit < 0 {
		return nil, fmt.Errorf("fanout: inbox fan-out limit %d is negative", cfg.InboxFanoutLimit)
	}
	if cfg.InboxRetention == 0 {
		cfg.InboxRetention = DefaultInboxRetention
	}
	if cfg.InboxRetention < 0 || cfg.InboxRetention > MaxInboxRetention {
		return nil, fmt.Errorf("fanout: inbox retention %s is outside (0, %s]", cfg.InboxRetention, MaxInboxRetention)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Retry = cfg.Retry.withDefaults()
	return &Fanout{store: store, poster: poster, queue: queue, limiter: limiter, log: log, metrics: metrics, cfg: cfg, clock: realClock{}}, nil
}

// invocationStats sums one invocation's outcomes for the metrics line.
type invocationStats struct {
	delivered, gone, dropped, queued, chunks int
	maxLag                                   time.Duration
	posts                                    int
}

func (s *invocationStats) add(o invocationStats) {
	s.delivered += o.delivered
	s.gone += o.gone
	s.dropped += o.dropped
	s.queued += o.queued
	s.chunks += o.chunks
	s.posts += o.posts
	s.maxLag = max(s.maxLag, o.maxLag)
}

// withMargin shortens ctx's deadline by deadlineMargin.
func (f *Fanout) withMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-deadlineMargin))
	}
	return context.WithCancel(ctx)
}

// Handle is the stream consumer: it delivers each record's event, in order
// per partition key (a group's events share one), different keys at once
// (Lanes). A record fails only when its work could not be stored (Deliver's
// error), never because of a connection. When a record fails, it and every
// later record of the batch are reported in BatchItemFailures: Lambda
// resumes from the lowest reported sequence number, so it retries them all
// anyway; those of other keys that were delivered meanwhile find their
// claim done and are skipped. The handler never returns an error, so one
// bad record never fails the whole batch.
func (f *Fanout) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	ctx, cancel := f.withMargin(ctx)
	defer cancel()
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	laneStats := make([]invocationStats, len(ev.Records))
	errs := Lanes(ctx, len(ev.Records), func(i int) string { return partitionKey(ev.Records[i]) }, func(ctx context.Context, i int) error {
		return f.processRecord(ctx, ev.Records[i], &laneStats[i])
	})
	var stats invocationStats
	for _, s := range laneStats {
		stats.add(s)
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		rec := ev.Records[i]
		f.log.ErrorContext(ctx, "record failed; reporting it and the rest of the batch",
			"eventId", rec.EventID, "sequenceNumber", rec.Change.SequenceNumber, "reported", len(ev.Records)-i, "error", err)
		for _, r := range ev.Records[i:] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
		}
		break
	}
	f.emitMetrics(ctx, stats)
	f.log.InfoContext(ctx, "batch done", "records", len(ev.Records), "failedRecords", len(resp.BatchItemFailures),
		"delivered", stats.delivered, "gone", stats.gone, "dropped", stats.dropped, "queued", stats.queued, "chunks", stats.chunks)
	return resp, nil
}

// partitionKey is the record's item's partition key, the unit Lambda keeps
// in order.
func partitionKey(rec events.DynamoDBEventRecord) string {
	if pk, ok := rec.Change.Keys["PK"]; ok && pk.DataType() == events.DataTypeString {
		return pk.String()
	}
	return ""
}

func (f *Fanout) emitMetrics(ctx context.Context, s invocationStats) {
	metrics := []applog.Metric{
		{Name: "Delivered", Unit: applog.Count, Value: float64(s.delivered)},
		{Name: "Gone", Unit: applog.Count, Value: float64(s.gone)},
		{Name: "Failed", Unit: applog.Count, Value: float64(s.dropped)},
		{Name: "Queued", Unit: applog.Count, Value: float64(s.queued)},
	}
	if s.posts > 0 {
		// The worst post of the batch: alarms care about the slowest one.
		metrics = append(metrics, applog.Metric{Name: "FanoutLagMs", Unit: applog.Milliseconds, Value: float64(s.maxLag.Milliseconds())})
	}
	if err := f.metrics.Emit(metrics...); err != nil {
		f.log.WarnContext(ctx, "emit metrics", "error", err)
	}
}

// processRecord reads one record's event and delivers it, behind the
// stream's claim when claims are on.
func (f *Fanout) processRecord(ctx context.Context, rec events.DynamoDBEventRecord, stats *invocationStats) error {
	p, ok, err := deliveryFor(rec)
	if err != nil {
		return fmt.Errorf("read event record: %w", err)
	}
	if !ok {
		return nil
	}
	if f.cfg.Claims == nil {
		return f.deliver(ctx, p, stats)
	}
	_, err = f.deliverClaimed(ctx, OwnerStream, p, stats)
	return err
}

// deliver runs Deliver for one event (both paths deliver through it,
// claim.go puts the claim in front) and adds its counts to the
// invocation's stats.
func (f *Fanout) deliver(ctx context.Context, p groupcast.Delivery, stats *invocationStats) error {
	ev := p.Envelope
	r, err := f.Deliver(ctx, p)
	stats.delivered += r.Delivered
	stats.gone += r.Gone
	stats.dropped += r.Dropped
	stats.queued += r.Queued
	stats.chunks += r.Chunks
	if ev.Type == groupcast.EventPostCreated {
		stats.posts++
		stats.maxLag = max(stats.maxLag, f.cfg.Now().Sub(ev.At))
	}
	f.log.DebugContext(ctx, "event delivered", "eventId", ev.ID, "type", ev.Type, "groupId", ev.GroupID,
		"delivered", r.Delivered, "gone", r.Gone, "dropped", r.Dropped, "queued", r.Queued, "chunks", r.Chunks)
	return err
}

// writeInbox stores the event as a notification for each user it names.
func (f *Fanout) writeInbox(ctx context.Context, p groupcast.Delivery) error {
	notification := func(userID string) groupcast.Notification {
		return groupcast.Notification{Envelope: p.Envelope, UserID: userID, ExpiresAt: p.Envelope.At.Add(f.cfg.InboxRetention)}
	}
	if p.Inbox.UserID != "" {
		return f.store.PutNotifications(ctx, []groupcast.Notification{notification(p.Inbox.UserID)})
	}
	if p.Inbox.MembersOf == "" {
		return nil
	}
	g, err := f.store.GetGroup(ctx, p.Inbox.MembersOf)
	if groupcast.ErrorCode(err) == groupcast.CodeNotFound {
		return nil // group deleted since the post: nobody to notify
	}
	if err != nil {
		return fmt.Errorf("get group %s: %w", p.Inbox.MembersOf, err)
	}
	if g.MemberCount > f.cfg.InboxFanoutLimit {
		return nil
	}
	return f.store.ForEachGroupMemberID(ctx, g.ID, func(ids []string) error {
		ns := make([]groupcast.Notification, 0, len(ids))
		for _, id := range ids {
			if id != p.Inbox.ExceptUserID {
				ns = append(ns, notification(id))
			}
		}
		if len(ns) == 0 {
			return nil
		}
		return f.store.PutNotifications(ctx, ns)
	})
}
