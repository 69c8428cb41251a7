package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// requeueTimeout bounds the re-enqueue of a chunk's remainder, which runs
// after the push deadline (inside deadlineMargin).
const requeueTimeout = deadlineMargin / 2

// workerStats sums one worker invocation's outcomes for the metrics line.
type workerStats struct {
	delivered, gone, dropped, requeued int64
	inbox                              int
}

// HandleTasks is the push worker: the SQS handler of the push and inbox
// queues. Each message is one task, reported on its own (partial batch
// response, ReportBatchItemFailures):
//
//   - a push task pushes to its connections. Whatever did not accept the
//     event is sent on as a new message (the next round, after a jittered
//     delay) and the original is reported done, so SQS never redelivers a
//     chunk whose connections already have the event. After MaxRounds a
//     connection is dropped and counted (metric Failed).
//   - an inbox task writes the notifications; a failure reports the
//     message, and SQS retries it until maxReceiveCount moves it to the
//     inbox dead-letter queue, which keeps the task (event and inbox) for
//     replay.
//
// A message is reported failed, and so redelivered whole, only when its
// remainder could not be queued (SQS failing): then it may push again to
// connections that accepted it, which drop the repeat by event id.
func (f *Fanout) HandleTasks(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	ctx, cancel := f.withMargin(ctx)
	defer cancel()
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	var stats workerStats
	for _, m := range ev.Records {
		fail := func(err error) {
			f.log.ErrorContext(ctx, "task failed; SQS will redeliver it", "messageId", m.MessageId, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
		if ctx.Err() != nil {
			// Not started: redelivering it repeats nothing.
			fail(fmt.Errorf("deadline before the task started: %w", ctx.Err()))
			continue
		}
		var t Task
		if err := json.Unmarshal([]byte(m.Body), &t); err != nil {
			fail(fmt.Errorf("decode task: %w", err)) // lands in the dead-letter queue
			continue
		}
		var err error
		switch t.Kind {
		case TaskPush:
			err = f.runPush(ctx, t, &stats)
		case TaskInbox:
			if t.Inbox == nil {
				err = errors.New("inbox task without inbox")
				break
			}
			err = f.writeInbox(ctx, groupcast.Delivery{Envelope: t.Event, Inbox: groupcast.Inbox(*t.Inbox)})
			stats.inbox++
		default:
			err = fmt.Errorf("unknown task kind %q", t.Kind)
		}
		if err != nil {
			fail(err)
		}
	}
	if err := f.metrics.Emit(
		applog.Metric{Name: "Delivered", Unit: applog.Count, Value: float64(stats.delivered)},
		applog.Metric{Name: "Gone", Unit: applog.Count, Value: float64(stats.gone)},
		applog.Metric{Name: "Failed", Unit: applog.Count, Value: float64(stats.dropped)},
		applog.Metric{Name: "Requeued", Unit: applog.Count, Value: float64(stats.requeued)},
	); err != nil {
		f.log.WarnContext(ctx, "emit metrics", "error", err)
	}
	f.log.InfoContext(ctx, "tasks done", "messages", len(ev.Records), "failedMessages", len(resp.BatchItemFailures),
		"delivered", stats.delivered, "gone", stats.gone, "dropped", stats.dropped, "requeued", stats.requeued, "inbox", stats.inbox)
	return resp, nil
}

// runPush pushes one chunk and queues what is left of it.
func (f *Fanout) runPush(ctx context.Context, t Task, stats *workerStats) error {
	payload, err := json.Marshal(t.Event)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", t.Event.ID, err)
	}
	r := f.pushIDs(ctx, payload, f.cfg.Retry.MaxAttempts, t.Connections)
	stats.delivered += r.delivered.Load()
	stats.gone += r.gone.Load()
	stats.dropped += r.rejected.Load()

	var tasks []Task
	var delay []int32
	queue := func(ids []string, round int, d func() int32) error {
		ch, err := newChunker(t.Event, round, f.cfg.ChunkSize)
		if err != nil {
			return err
		}
		for _, id := range ids {
			ch.add(id)
		}
		for _, nt := range ch.take(true) {
			tasks = append(tasks, nt)
			if d != nil {
				delay = append(delay, d())
			} else {
				delay = append(delay, 0)
			}
		}
		return nil
	}
	if n := len(r.exhausted); n > 0 {
		if t.Round+1 >= f.cfg.MaxRounds {
			stats.dropped += int64(n)
			f.log.WarnContext(ctx, "connections dropped after the last round", "eventId", t.Event.ID, "connections", n, "rounds", f.cfg.MaxRounds)
		} else if err := queue(r.exhausted, t.Round+1, f.roundDelay(t.Round+1)); err != nil {
			return err
		}
	}
	// Cut off by the deadline before their first call: the same round again.
	if len(r.unattempted) > 0 {
		if err := queue(r.unattempted, t.Round, nil); err != nil {
			return err
		}
	}
	if len(tasks) == 0 {
		return nil
	}
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requeueTimeout)
	defer cancel()
	i := 0
	if err := f.enqueue(qctx, f.cfg.PushQueueURL, tasks, func() int32 { d := delay[i]; i++; return d }); err != nil {
		return fmt.Errorf("queue the rest of event %s: %w", t.Event.ID, err)
	}
	for _, nt := range tasks {
		stats.requeued += int64(len(nt.Connections))
	}
	return nil
}
