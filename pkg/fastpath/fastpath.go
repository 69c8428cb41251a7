// Package fastpath hands each committed event straight to delivery, beside
// the DynamoDB stream: the function that made the change enqueues the
// event's outbox item on an SQS queue (Sender), and the fast-path function
// consumes it (Handler) and delivers behind the event's claim. The stream
// still carries every event and delivers whatever the fast path did not:
// the fast path is best effort, the stream at least once.
package fastpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// SQSAPI is the part of the SQS client the sender calls.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

const (
	// SendTimeout bounds the hand-off inside the request. SendMessage takes
	// a few ms in-region; past 100 ms the stream (≤ 250 ms behind) is
	// about as quick, and the post API must stay under 200 ms at p99.
	SendTimeout = 100 * time.Millisecond
	// batchLimit is SendMessageBatch's maximum number of entries.
	// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
	batchLimit = 10
)

// Sender enqueues committed events; it is the store's EventSink.
type Sender struct {
	sqs      SQSAPI
	queueURL string
	log      *slog.Logger
}

// NewSender returns a Sender to queueURL.
func NewSender(client SQSAPI, queueURL string, log *slog.Logger) (*Sender, error) {
	if client == nil || queueURL == "" || log == nil {
		return nil, errors.New("fastpath: SQS client, queue URL and logger are required")
	}
	return &Sender{sqs: client, queueURL: queueURL, log: log}, nil
}

var _ dynamostore.EventSink = (*Sender)(nil)

// EventsCommitted enqueues items. A failure is logged only: the change is
// committed and the stream delivers its events anyway, so the request
// must not fail for it.
func (s *Sender) EventsCommitted(ctx context.Context, items []dynamostore.EventItem) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SendTimeout)
	defer cancel()
	for start := 0; start < len(items); start += batchLimit {
		chunk := items[start:min(start+batchLimit, len(items))]
		entries := make([]types.SendMessageBatchRequestEntry, 0, len(chunk))
		for i, it := range chunk {
			body, err := json.Marshal(it)
			if err != nil {
				s.log.WarnContext(ctx, "fast path: encode event", "eventId", it.EventID, "error", err)
				continue
			}
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))})
		}
		out, err := s.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: entries})
		if err != nil {
			s.log.WarnContext(ctx, "fast path: enqueue failed; the stream delivers", "events", len(entries), "error", err)
			continue
		}
		for _, f := range out.Failed {
			s.log.WarnContext(ctx, "fast path: enqueue refused; the stream delivers", "code", aws.ToString(f.Code), "error", aws.ToString(f.Message))
		}
	}
}

// Deliverer delivers one event on the fast path; *fanout.Fanout is one.
type Deliverer interface {
	DeliverFast(ctx context.Context, p groupcast.Delivery) (fanout.ClaimOutcome, error)
}

// Handler is the fast-path function's SQS handler.
type Handler struct {
	deliver Deliverer
	log     *slog.Logger
}

// NewHandler returns a Handler delivering through d.
func NewHandler(d Deliverer, log *slog.Logger) (*Handler, error) {
	if d == nil || log == nil {
		return nil, errors.New("fastpath: deliverer and logger are required")
	}
	return &Handler{deliver: d, log: log}, nil
}

// Handle delivers each message's event, in lanes per group (fanout.Lanes):
// a small group's event never waits behind a large group's in the same
// batch. SQS standard queues keep no order, so the lanes only keep the
// batch's own order within a group. It reports no failures: a failed fast
// delivery has released its claim and the stream delivers the event, so
// an SQS retry would only race the stream.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	type message struct {
		p   groupcast.Delivery
		err error
	}
	msgs := make([]message, len(ev.Records))
	for i, m := range ev.Records {
		msgs[i].p, msgs[i].err = decode(m.Body)
	}
	fanout.Lanes(ctx, len(msgs), func(i int) string { return orderKey(msgs[i].p.Envelope) }, func(ctx context.Context, i int) error {
		m := msgs[i]
		if m.err != nil {
			h.log.ErrorContext(ctx, "fast path: bad message; the stream delivers", "messageId", ev.Records[i].MessageId, "error", m.err)
			return nil
		}
		out, err := h.deliver.DeliverFast(ctx, m.p)
		if err != nil {
			h.log.WarnContext(ctx, "fast path: delivery failed; the stream delivers", "eventId", m.p.Envelope.ID, "error", err)
			return nil // the next event of the group still goes: the stream orders nothing on this path
		}
		h.log.DebugContext(ctx, "fast path", "eventId", m.p.Envelope.ID, "delivered", out == fanout.Delivered)
		return nil
	})
	return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}, nil
}

// orderKey is the lane of an event: its group, or its stream for events
// outside a group.
func orderKey(e groupcast.Envelope) string {
	if e.GroupID != "" {
		return "group:" + e.GroupID
	}
	return e.Stream
}

func decode(body string) (groupcast.Delivery, error) {
	var it dynamostore.EventItem
	if err := json.Unmarshal([]byte(body), &it); err != nil {
		return groupcast.Delivery{}, fmt.Errorf("decode message: %w", err)
	}
	if it.Type != dynamostore.TypeEvent || it.EventID == "" {
		return groupcast.Delivery{}, fmt.Errorf("message is no event item (type %q)", it.Type)
	}
	return it.Delivery()
}
