package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/groupcast/groupcast/internal/devstack/localaws"
)

// SQSAPI is the part of the SQS API an SQS mapping uses; *sqs.Client
// implements it.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// SQS mapping limits and defaults, Lambda's.
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
// https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
const (
	DefaultSQSBatchSize = 10    // "Default: 10" for Amazon SQS
	maxSQSBatchSize     = 10000 // standard queues; FIFO queues take at most 10
	maxFIFOBatchSize    = 10
	// receiveMax: one ReceiveMessage returns at most 10 messages, so a
	// larger batch takes several calls within the batching window.
	receiveMax = 10
	// longPoll: Lambda polls SQS with long polling, 20 s (the maximum),
	// which returns as soon as a message arrives.
	// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
	longPoll = 20
	// minMaximumConcurrency..maxMaximumConcurrency: ScalingConfig's range.
	// https://docs.aws.amazon.com/lambda/latest/api/API_ScalingConfig.html
	minMaximumConcurrency = 2
	maxMaximumConcurrency = 1000
	// defaultSQSPollers: without MaximumConcurrency Lambda starts with five
	// concurrent batches and scales up with the backlog; the local stack
	// keeps five, below lambdarun's per-function instance cap.
	// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
	defaultSQSPollers = 5
	// receiveErrorDelay: a failing ReceiveMessage (queue deleted, endpoint
	// down) is retried every second so the log stays readable.
	receiveErrorDelay = time.Second
)

// SQSMapping is one SQS event source mapping, with the template's settings.
type SQSMapping struct {
	FunctionName string
	QueueARN     string
	QueueURL     string
	FIFO         bool
	BatchSize    int // 0 = 10
	// MaximumBatchingWindow: how long to gather records after the first;
	// 0 invokes with what one receive returned.
	MaximumBatchingWindow   time.Duration
	ReportBatchItemFailures bool
	MaximumConcurrency      int // ScalingConfig.MaximumConcurrency; 0 = not set
}

// SQSPoller runs one SQS mapping: MaximumConcurrency (or five) pollers,
// each gathering a batch and invoking the function with it, so at most
// that many invocations are in flight.
type SQSPoller struct {
	m      SQSMapping
	opts   Options
	log    *slog.Logger
	client SQSAPI
	inv    Invoker
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartSQS validates the mapping and starts polling.
func StartSQS(ctx context.Context, client SQSAPI, inv Invoker, m SQSMapping, opts Options) (*SQSPoller, error) {
	if err := normalizeSQS(&m); err != nil {
		return nil, err
	}
	if opts.Region == "" {
		opts.Region = localaws.Region
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &SQSPoller{m: m, opts: opts, client: client, inv: inv,
		log: opts.Logger.With("function", m.FunctionName, "queue", m.QueueARN)}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	n := defaultSQSPollers
	if m.MaximumConcurrency > 0 {
		n = m.MaximumConcurrency
	}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.poll(runCtx)
		}()
	}
	return p, nil
}

func normalizeSQS(m *SQSMapping) error {
	maxBatch := maxSQSBatchSize
	if m.FIFO {
		maxBatch = maxFIFOBatchSize
	}
	switch {
	case m.FunctionName == "" || m.QueueARN == "" || m.QueueURL == "":
		return errors.New("esm: FunctionName and the queue are required")
	case m.BatchSize < 0 || m.BatchSize > maxBatch:
		return fmt.Errorf("esm %s: BatchSize %d outside 1..%d", m.FunctionName, m.BatchSize, maxBatch)
	case m.MaximumBatchingWindow < 0 || m.MaximumBatchingWindow > maxBatchingWindow:
		return fmt.Errorf("esm %s: MaximumBatchingWindowInSeconds %s outside 0..%s", m.FunctionName, m.MaximumBatchingWindow, maxBatchingWindow)
	case m.MaximumConcurrency != 0 && (m.MaximumConcurrency < minMaximumConcurrency || m.MaximumConcurrency > maxMaximumConcurrency):
		return fmt.Errorf("esm %s: ScalingConfig.MaximumConcurrency %d outside %d..%d", m.FunctionName, m.MaximumConcurrency, minMaximumConcurrency, maxMaximumConcurrency)
	}
	if m.BatchSize == 0 {
		m.BatchSize = DefaultSQSBatchSize
	}
	// "When you set BatchSize to a value greater than 10, you must set
	// MaximumBatchingWindowInSeconds to at least 1."
	// https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
	if m.BatchSize > receiveMax && m.MaximumBatchingWindow < time.Second {
		return fmt.Errorf("esm %s: BatchSize %d above 10 needs MaximumBatchingWindowInSeconds of at least 1", m.FunctionName, m.BatchSize)
	}
	return nil
}

// Close stops polling and waits for the batches in flight.
func (p *SQSPoller) Close() {
	p.cancel()
	p.wg.Wait()
}

func (p *SQSPoller) poll(ctx context.Context) {
	for ctx.Err() == nil {
		batch := p.collect(ctx)
		if len(batch) == 0 {
			continue
		}
		if ctx.Err() != nil {
			return // shutting down: the messages become visible again
		}
		p.deliver(ctx, batch)
	}
}

// collect gathers one batch: it long-polls for the first messages, then,
// with a batching window, keeps receiving until BatchSize, the window or
// the 6 MB payload limit.
func (p *SQSPoller) collect(ctx context.Context) []types.Message {
	var batch []types.Message
	var deadline time.Time
	size := 0
	for len(batch) < p.m.BatchSize && size < maxPayloadBytes {
		wait := int32(longPoll)
		if len(batch) > 0 {
			if p.m.MaximumBatchingWindow == 0 {
				break
			}
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			// WaitTimeSeconds is whole seconds: round up, so a window ends
			// at most a second late rather than early.
			wait = int32(min(longPoll, (left+time.Second-1)/time.Second))
		}
		out, err := p.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(p.m.QueueURL),
			MaxNumberOfMessages:         int32(min(receiveMax, p.m.BatchSize-len(batch))),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Error("esm: receiving from the queue failed", "err", err)
			if len(batch) > 0 {
				return batch
			}
			sleep(ctx, receiveErrorDelay)
			continue
		}
		if len(out.Messages) > 0 && len(batch) == 0 {
			deadline = time.Now().Add(p.m.MaximumBatchingWindow)
		}
		for _, m := range out.Messages {
			batch = append(batch, m)
			size += len(aws.ToString(m.Body))
		}
	}
	return batch
}

// lambdaAttributes are the message attributes Lambda puts in an SQS event.
// https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#example-standard-queue-message-event
var lambdaAttributes = []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
	"AWSTraceHeader", "SequenceNumber", "MessageGroupId", "MessageDeduplicationId"}

// event is the events.SQSEvent Lambda sends for a batch.
func (p *SQSPoller) event(batch []types.Message) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(batch))}
	for i, m := range batch {
		attrs := map[string]string{}
		for _, k := range lambdaAttributes {
			if v, ok := m.Attributes[k]; ok {
				attrs[k] = v
			}
		}
		mattrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			a := events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue,
				StringListValues: v.StringListValues, BinaryListValues: v.BinaryListValues, DataType: aws.ToString(v.DataType)}
			// Lambda sends empty lists, not null.
			if a.StringListValues == nil {
				a.StringListValues = []string{}
			}
			if a.BinaryListValues == nil {
				a.BinaryListValues = [][]byte{}
			}
			mattrs[k] = a
		}
		ev.Records[i] = events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			Attributes: attrs, MessageAttributes: mattrs,
			EventSourceARN: p.m.QueueARN, EventSource: "aws:sqs", AWSRegion: p.opts.Region,
		}
	}
	return ev
}

// deliver invokes the function once with the batch and deletes what
// succeeded. Failed messages are left alone: they become visible again
// after the queue's visibility timeout, and once received more than
// maxReceiveCount times SQS moves them to the dead-letter queue.
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html
func (p *SQSPoller) deliver(ctx context.Context, batch []types.Message) {
	payload, err := json.Marshal(p.event(batch))
	if err != nil {
		p.log.Error("esm: cannot encode event", "err", err)
		return
	}
	resp, err := p.inv.Invoke(ctx, p.m.FunctionName, payload)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.log.Warn("esm: function error; the batch returns to the queue after its visibility timeout", "messages", len(batch), "err", err)
		return
	}
	done, ok := p.succeeded(resp, batch)
	if !ok {
		return
	}
	p.delete(ctx, done)
}

// succeeded returns the messages to delete after a successful invocation,
// and false when the response fails the whole batch. With
// ReportBatchItemFailures, as Lambda does: a null or empty response or
// list is complete success; a response that is not valid JSON, or an
// itemIdentifier that is empty, null or not a message of the batch, is
// complete failure; otherwise every message not listed succeeded.
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
func (p *SQSPoller) succeeded(resp []byte, batch []types.Message) ([]types.Message, bool) {
	if !p.m.ReportBatchItemFailures {
		return batch, true
	}
	if t := strings.TrimSpace(string(resp)); t == "" || t == "null" {
		return batch, true
	}
	var r events.SQSEventResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		p.log.Warn("esm: response is not a batch item failure response; whole batch failed", "err", err)
		return nil, false
	}
	failed := map[string]bool{}
	for _, f := range r.BatchItemFailures {
		found := false
		for _, m := range batch {
			if f.ItemIdentifier != "" && aws.ToString(m.MessageId) == f.ItemIdentifier {
				found = true
			}
		}
		if !found {
			p.log.Warn("esm: itemIdentifier not in the batch; whole batch failed", "itemIdentifier", f.ItemIdentifier)
			return nil, false
		}
		failed[f.ItemIdentifier] = true
	}
	var done []types.Message
	for _, m := range batch {
		if !failed[aws.ToString(m.MessageId)] {
			done = append(done, m)
		}
	}
	if len(failed) > 0 {
		p.log.Warn("esm: batch partly failed; the failed messages return to the queue", "failed", len(failed), "messages", len(batch))
	}
	return done, true
}

func (p *SQSPoller) delete(ctx context.Context, msgs []types.Message) {
	for len(msgs) > 0 {
		n := min(receiveMax, len(msgs)) // DeleteMessageBatch takes at most 10 entries
		entries := make([]types.DeleteMessageBatchRequestEntry, n)
		for i, m := range msgs[:n] {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle}
		}
		out, err := p.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.m.QueueURL), Entries: entries})
		switch {
		case err != nil:
			p.log.Error("esm: deleting processed messages failed; they will be delivered again", "err", err)
		case len(out.Failed) > 0:
			p.log.Error("esm: some processed messages could not be deleted; they will be delivered again", "failed", len(out.Failed))
		}
		msgs = msgs[n:]
	}
}
