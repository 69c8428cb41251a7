package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Queue sends delivery tasks to SQS; *sqs.Client implements it.
type Queue interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Task kinds. A push task carries the connections still to be pushed; an
// inbox task carries the event and whose inbox keeps it, so a task in the
// inbox dead-letter queue holds the data itself and can be replayed.
const (
	TaskPush  = "push"
	TaskInbox = "inbox"
)

// Task is one SQS message of the push or inbox queue. The envelope travels
// in the message: the domain bounds it (previews, not bodies) to a few KB,
// far under SQS's 256 KiB, and the outbox item it came from expires after
// EventRetentionHours, while a dead-lettered task is kept 14 days.
type Task struct {
	Kind  string             `json:"kind"`
	Event groupcast.Envelope `json:"event"`
	// Push: the connections that have not accepted the event yet, and the
	// round (0 for the first hand-off; each re-enqueue of failures adds one).
	Connections []string `json:"connections,omitempty"`
	Round       int      `json:"round,omitempty"`
	// Inbox: whose inbox keeps the event.
	Inbox *InboxTarget `json:"inbox,omitempty"`
}

// InboxTarget is groupcast.Inbox in a task, with stable JSON names: a
// dead-lettered task may be replayed by a later version.
type InboxTarget struct {
	UserID       string `json:"userId,omitempty"`
	MembersOf    string `json:"membersOf,omitempty"`
	ExceptUserID string `json:"exceptUserId,omitempty"`
}

const (
	// maxMessageBytes is SQS's message size limit, which is also the
	// limit of a whole SendMessageBatch request.
	// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
	maxMessageBytes = 256 * 1024
	// maxChunkBytes keeps ten chunks (one SendMessageBatch) under
	// maxMessageBytes together.
	maxChunkBytes = maxMessageBytes/sqsBatchMax - 1024
	// sqsBatchMax: SendMessageBatch takes at most 10 entries.
	sqsBatchMax = 10
	// sendAttempts bounds the retries of entries SQS reports as failed
	// (throttling, internal errors); beyond that the caller fails and its
	// own retry (the stream record or the SQS message) takes over.
	sendAttempts = 4
	// maxDelaySeconds is SQS's DelaySeconds limit (15 minutes).
	maxDelaySeconds = 900
)

// chunker splits connection ids into push tasks of at most size ids and
// maxChunkBytes of JSON each.
type chunker struct {
	env      groupcast.Envelope
	round    int
	size     int
	envBytes int
	cur      []string
	curBytes int
	out      []Task
}

func newChunker(env groupcast.Envelope, round, size int) (*chunker, error) {
	b, err := json.Marshal(Task{Kind: TaskPush, Event: env, Round: round})
	if err != nil {
		return nil, fmt.Errorf("encode task of event %s: %w", env.ID, err)
	}
	if len(b) > maxChunkBytes/2 {
		return nil, fmt.Errorf("event %s: envelope of %d bytes leaves no room for connections in an SQS message", env.ID, len(b))
	}
	return &chunker{env: env, round: round, size: size, envBytes: len(b) + len(`,"connections":[]`)}, nil
}

// add appends an id; full chunks move to out.
func (c *chunker) add(id string) {
	n := len(id) + 3 // quotes and comma; API Gateway ids need no escaping
	if b, err := json.Marshal(id); err == nil && len(b) != len(id)+2 {
		n = len(b) + 1
	}
	if len(c.cur) > 0 && (len(c.cur) >= c.size || c.envBytes+c.curBytes+n > maxChunkBytes) {
		c.cut()
	}
	c.cur = append(c.cur, id)
	c.curBytes += n
}

func (c *chunker) cut() {
	if len(c.cur) == 0 {
		return
	}
	c.out = append(c.out, Task{Kind: TaskPush, Event: c.env, Connections: c.cur, Round: c.round})
	c.cur, c.curBytes = nil, 0
}

// take returns the full chunks so far (and the partial one when final).
func (c *chunker) take(final bool) []Task {
	if final {
		c.cut()
	}
	out := c.out
	c.out = nil
	return out
}

// enqueue sends tasks to queueURL, ten per SendMessageBatch, retrying the
// entries SQS reports as failed. delay is each message's DelaySeconds.
func (f *Fanout) enqueue(ctx context.Context, queueURL string, tasks []Task, delay func() int32) error {
	for start := 0; start < len(tasks); start += sqsBatchMax {
		entries := make([]types.SendMessageBatchRequestEntry, 0, sqsBatchMax)
		for i, t := range tasks[start:min(start+sqsBatchMax, len(tasks))] {
			body, err := json.Marshal(t)
			if err != nil {
				return fmt.Errorf("encode task of event %s: %w", t.Event.ID, err)
			}
			e := types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
			if delay != nil {
				e.DelaySeconds = delay()
			}
			entries = append(entries, e)
		}
		if err := f.sendBatch(ctx, queueURL, entries); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fanout) sendBatch(ctx context.Context, queueURL string, entries []types.SendMessageBatchRequestEntry) error {
	for attempt := 1; ; attempt++ {
		out, err := f.queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
		var failed []types.BatchResultErrorEntry
		if err == nil {
			failed = out.Failed
			if len(failed) == 0 {
				return nil
			}
			retry := entries[:0:0]
			for _, e := range entries {
				for _, fe := range failed {
					if aws.ToString(fe.Id) == aws.ToString(e.Id) {
						if fe.SenderFault {
							return fmt.Errorf("send to %s: entry refused: %s", queueURL, aws.ToString(fe.Message))
						}
						retry = append(retry, e)
					}
				}
			}
			entries = retry
			err = fmt.Errorf("%d entries failed: %s", len(failed), aws.ToString(failed[0].Message))
		}
		if attempt >= sendAttempts {
			return fmt.Errorf("send to %s: %w", queueURL, err)
		}
		t := time.NewTimer(f.cfg.Retry.backoff(attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(fmt.Errorf("send to %s: %w", queueURL, err), ctx.Err())
		case <-t.C:
		}
	}
}
