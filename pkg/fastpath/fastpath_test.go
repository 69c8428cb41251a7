package fastpath

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

var at = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func eventItem(t *testing.T, n int) dynamostore.EventItem {
	t.Helper()
	return eventItemIn(t, n, "g1")
}

func eventItemIn(t *testing.T, n int, groupID string) dynamostore.EventItem {
	t.Helper()
	post := groupcast.Post{ID: fmt.Sprintf("01JDQ4ZK3M8X9V7T6R5P4N%04d", n), GroupID: groupID, AuthorID: "alice", AuthorName: "Alice", Content: "hi", CreatedAt: at}
	ev := groupcast.PostCreatedEvent(post)
	ev.Seq, ev.ExpiresAt = fmt.Sprintf("01JDQ4ZK3M8X9V7T6R5P4R%04d", n), at.Add(time.Hour)
	it, err := dynamostore.NewEventItem(ev)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// fakeSQS records SendMessageBatch calls; err fails every call, and
// failFirst refuses the first entry of each.
type fakeSQS struct {
	mu        sync.Mutex
	batches   [][]types.SendMessageBatchRequestEntry
	err       error
	failFirst bool
	deadline  time.Duration // time left on the call's context
}

func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(dl)
	}
	f.batches = append(f.batches, in.Entries)
	if f.err != nil {
		return nil, f.err
	}
	out := &sqs.SendMessageBatchOutput{}
	if f.failFirst {
		out.Failed = []types.BatchResultErrorEntry{{Id: in.Entries[0].Id, Code: aws.String("InternalError"), Message: aws.String("boom")}}
	}
	return out, nil
}

func TestSenderEnqueuesEveryEvent(t *testing.T) {
	tests := []struct {
		name        string
		items       int
		sqs         *fakeSQS
		wantBatches []int
		wantLog     string
	}{
		{"one event", 1, &fakeSQS{}, []int{1}, ""},
		{"twelve events: batches of ten", 12, &fakeSQS{}, []int{10, 2}, ""},
		{"SQS down: logged, the request goes on", 3, &fakeSQS{err: errors.New("connection refused")}, []int{3}, "enqueue failed"},
		{"an entry refused: logged", 2, &fakeSQS{failFirst: true}, []int{2}, "enqueue refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, err := NewSender(tt.sqs, "https://sqs.example/q", slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var items []dynamostore.EventItem
			for i := range tt.items {
				items = append(items, eventItem(t, i))
			}
			s.EventsCommitted(context.Background(), items)
			var sizes []int
			n := 0
			for _, b := range tt.sqs.batches {
				sizes = append(sizes, len(b))
				for _, e := range b {
					// What the fast-path function decodes is the item sent.
					d, err := decode(aws.ToString(e.MessageBody))
					if err != nil || d.Envelope.ID != items[n].EventID {
						t.Errorf("message %d decodes to %+v, %v; want event %s", n, d.Envelope, err, items[n].EventID)
					}
					n++
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.wantBatches) {
				t.Errorf("batches %v, want %v", sizes, tt.wantBatches)
			}
			if tt.sqs.deadline <= 0 || tt.sqs.deadline > SendTimeout {
				t.Errorf("send had %s left, want at most SendTimeout (%s)", tt.sqs.deadline, SendTimeout)
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("logs %s lack %q", logs.String(), tt.wantLog)
			}
		})
	}
}

type fakeDeliverer struct {
	mu  sync.Mutex
	got []groupcast.Delivery
	err error
}

func (f *fakeDeliverer) DeliverFast(_ context.Context, p groupcast.Delivery) (fanout.ClaimOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, p)
	return fanout.Delivered, f.err
}

// blockingDeliverer holds every event of group "big" until an event of
// another group has been delivered.
type blockingDeliverer struct {
	other     chan struct{}
	once      sync.Once
	waitedOut atomic.Bool
}

func (b *blockingDeliverer) DeliverFast(ctx context.Context, p groupcast.Delivery) (fanout.ClaimOutcome, error) {
	if p.Envelope.GroupID != "big" {
		b.once.Do(func() { close(b.other) })
		return fanout.Delivered, nil
	}
	select {
	case <-b.other:
		return fanout.Delivered, nil
	case <-time.After(5 * time.Second):
		b.waitedOut.Store(true)
		return fanout.Skipped, errors.New("the other group's event waited behind this one")
	}
}

func TestHandlerDoesNotHoldASmallGroupBehindALargeOne(t *testing.T) {
	body := func(n int, group string) string {
		b, err := json.Marshal(eventItemIn(t, n, group))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	d := &blockingDeliverer{other: make(chan struct{})}
	h, err := NewHandler(d, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "1", Body: body(1, "big")}, {MessageId: "2", Body: body(2, "small")}}}
	if _, err := h.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if d.waitedOut.Load() {
		t.Fatal("the small group's event waited behind the large group's")
	}
}

func TestHandlerDeliversEachMessageAndNeverFails(t *testing.T) {
	good := func(n int) string {
		b, err := json.Marshal(eventItem(t, n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	notEvent, _ := json.Marshal(dynamostore.EventItem{Type: "POST", EventID: "x"})
	tests := []struct {
		name      string
		bodies    []string
		deliverer *fakeDeliverer
		wantIDs   int
	}{
		{"two events", []string{good(1), good(2)}, &fakeDeliverer{}, 2},
		{"a bad body is skipped", []string{"{not json", string(notEvent), good(3)}, &fakeDeliverer{}, 1},
		{"a failed delivery is the stream's", []string{good(4)}, &fakeDeliverer{err: errors.New("push failed")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHandler(tt.deliverer, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var ev events.SQSEvent
			for i, b := range tt.bodies {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i), Body: b})
			}
			resp, err := h.Handle(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v; want no failures (the stream is the retry)", resp, err)
			}
			if len(tt.deliverer.got) != tt.wantIDs {
				t.Fatalf("delivered %d events, want %d", len(tt.deliverer.got), tt.wantIDs)
			}
			for _, d := range tt.deliverer.got {
				if d.Envelope.Type != groupcast.EventPostCreated || d.Audience.GroupID != "g1" || d.Inbox.MembersOf != "g1" {
					t.Errorf("delivery %+v: want the post's envelope, audience and inbox", d)
				}
			}
		})
	}
}
