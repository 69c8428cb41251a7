package esm

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	localsqs "github.com/groupcast/groupcast/internal/devstack/sqs"
)

var queueSeq atomic.Int64

// sqsEnv is a local SQS endpoint (no IAM) with a queue and its DLQ.
type sqsEnv struct {
	srv      *localsqs.Server
	client   *sqs.Client
	url, arn string
	dlqURL   string
}

func newSQSEnv(t *testing.T, visibility, maxReceive int) *sqsEnv {
	t.Helper()
	srv, err := localsqs.Listen(context.Background(), localsqs.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	n := queueSeq.Add(1)
	// Unique names: kumo's queues live in one store per process.
	q, dlq := fmt.Sprintf("esmq%d-%d", n, time.Now().UnixNano()), fmt.Sprintf("esmdlq%d-%d", n, time.Now().UnixNano())
	if err := srv.CreateQueue(context.Background(), dlq, nil); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{"VisibilityTimeout": fmt.Sprint(visibility)}
	if maxReceive > 0 {
		attrs["RedrivePolicy"] = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, srv.QueueARN(dlq), maxReceive)
	}
	if err := srv.CreateQueue(context.Background(), q, attrs); err != nil {
		t.Fatal(err)
	}
	client := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	return &sqsEnv{srv: srv, client: client, url: srv.QueueURL(q), arn: srv.QueueARN(q), dlqURL: srv.QueueURL(dlq)}
}

func (e *sqsEnv) send(t *testing.T, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := e.client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &e.url, MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

// sqsFunction records invocations (bodies per call) and answers with respond.
type sqsFunction struct {
	respond func(ev events.SQSEvent) ([]byte, error)
	calls   chan events.SQSEvent
	hold    chan struct{} // when set, each invocation waits for it

	mu       sync.Mutex
	conc     int
	maxConc  int
	received map[string]int // body -> deliveries
}

func newSQSFunction(respond func(events.SQSEvent) ([]byte, error)) *sqsFunction {
	if respond == nil {
		respond = func(events.SQSEvent) ([]byte, error) { return nil, nil }
	}
	return &sqsFunction{respond: respond, calls: make(chan events.SQSEvent, 1000), received: map[string]int{}}
}

func (f *sqsFunction) Invoke(_ context.Context, _ string, payload []byte) ([]byte, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.conc++
	f.maxConc = max(f.maxConc, f.conc)
	for _, r := range ev.Records {
		f.received[r.Body]++
	}
	f.mu.Unlock()
	if f.hold != nil {
		<-f.hold
	}
	resp, err := f.respond(ev)
	f.mu.Lock()
	f.conc--
	f.mu.Unlock()
	f.calls <- ev
	return resp, err
}

func (f *sqsFunction) next(t *testing.T) events.SQSEvent {
	t.Helper()
	select {
	case ev := <-f.calls:
		return ev
	case <-time.After(waitLimit):
		t.Fatal("function not invoked")
		return events.SQSEvent{}
	}
}

func bodies(ev events.SQSEvent) string {
	var b []string
	for _, r := range ev.Records {
		b = append(b, r.Body)
	}
	sort.Strings(b)
	return strings.Join(b, ",")
}

func startSQS(t *testing.T, e *sqsEnv, fn Invoker, m SQSMapping) {
	t.Helper()
	m.FunctionName, m.QueueARN, m.QueueURL = "Fn", e.arn, e.url
	p, err := StartSQS(context.Background(), e.client, fn, m, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
}

// queueDepth is ApproximateNumberOfMessages + NotVisible of a queue.
func queueDepth(t *testing.T, c *sqs.Client, url string) int {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"} {
		var v int
		fmt.Sscan(out.Attributes[k], &v)
		n += v
	}
	return n
}

func TestSQSDeliversLambdaEvent(t *testing.T) {
	e := newSQSEnv(t, 30, 0)
	fn := newSQSFunction(nil)
	e.send(t, "a", "b", "c")
	startSQS(t, e, fn, SQSMapping{BatchSize: 3, MaximumBatchingWindow: time.Second, MaximumConcurrency: 2})
	got := map[string]bool{}
	var rec events.SQSMessage
	for len(got) < 3 {
		ev := fn.next(t)
		for _, r := range ev.Records {
			got[r.Body] = true
			rec = r
		}
	}
	if rec.EventSource != "aws:sqs" || rec.EventSourceARN != e.arn || rec.AWSRegion != "us-east-1" || rec.MessageId == "" ||
		rec.ReceiptHandle == "" || rec.Md5OfBody == "" || rec.Attributes["ApproximateReceiveCount"] != "1" ||
		rec.Attributes["SentTimestamp"] == "" || rec.Attributes["ApproximateFirstReceiveTimestamp"] == "" {
		t.Errorf("record = %+v", rec)
	}
	// Deleted after success.
	deadline := time.Now().Add(waitLimit)
	for queueDepth(t, e.client, e.url) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("processed messages were not deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Only the messages listed in batchItemFailures come back (after the
// visibility timeout); an invalid response fails the whole batch.
func TestSQSReportBatchItemFailures(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(ev events.SQSEvent) []byte
		redeliver string // bodies delivered again
	}{
		{"partial", func(ev events.SQSEvent) []byte {
			var r events.SQSEventResponse
			for _, m := range ev.Records {
				if m.Body == "bad" {
					r.BatchItemFailures = append(r.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
				}
			}
			b, _ := json.Marshal(r)
			return b
		}, "bad"},
		{"unknown id", func(events.SQSEvent) []byte {
			return []byte(`{"batchItemFailures":[{"itemIdentifier":"nope"}]}`)
		}, "bad,good"},
		{"not json", func(events.SQSEvent) []byte { return []byte(`oops`) }, "bad,good"},
		{"empty list", func(events.SQSEvent) []byte { return []byte(`{"batchItemFailures":[]}`) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSQSEnv(t, 1, 0)
			first := true
			var mu sync.Mutex
			fn := newSQSFunction(func(ev events.SQSEvent) ([]byte, error) {
				mu.Lock()
				defer mu.Unlock()
				if first {
					first = false
					return tt.respond(ev), nil
				}
				return nil, nil
			})
			e.send(t, "good", "bad")
			startSQS(t, e, fn, SQSMapping{BatchSize: 2, MaximumBatchingWindow: time.Second, ReportBatchItemFailures: true, MaximumConcurrency: 2})
			var all []string
			for len(all) < 2 {
				all = append(all, strings.Split(bodies(fn.next(t)), ",")...)
			}
			if tt.redeliver == "" {
				time.Sleep(1500 * time.Millisecond) // past the 1 s visibility timeout
				select {
				case ev := <-fn.calls:
					t.Fatalf("redelivered %s", bodies(ev))
				default:
				}
				return
			}
			var again []string
			for len(again) < len(strings.Split(tt.redeliver, ",")) {
				again = append(again, strings.Split(bodies(fn.next(t)), ",")...)
			}
			sort.Strings(again)
			if got := strings.Join(again, ","); got != tt.redeliver {
				t.Fatalf("redelivered %q, want %q", got, tt.redeliver)
			}
		})
	}
}

// A message that keeps failing moves to the dead-letter queue once it has
// been received maxReceiveCount times.
func TestSQSRedriveToDLQ(t *testing.T) {
	e := newSQSEnv(t, 1, 2)
	fn := newSQSFunction(func(events.SQSEvent) ([]byte, error) { return nil, fmt.Errorf("boom") })
	e.send(t, "poison")
	startSQS(t, e, fn, SQSMapping{MaximumConcurrency: 2})
	deadline := time.Now().Add(waitLimit)
	for {
		out, err := e.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &e.dlqURL, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 1 && aws.ToString(out.Messages[0].Body) == "poison" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message never reached the dead-letter queue")
		}
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if n := fn.received["poison"]; n != 2 {
		t.Fatalf("invoked %d times with the message, want maxReceiveCount = 2", n)
	}
}

// MaximumConcurrency caps the invocations in flight.
func TestSQSMaximumConcurrency(t *testing.T) {
	e := newSQSEnv(t, 30, 0)
	fn := newSQSFunction(nil)
	fn.hold = make(chan struct{})
	var msgs []string
	for i := range 20 {
		msgs = append(msgs, fmt.Sprint(i))
	}
	e.send(t, msgs...)
	startSQS(t, e, fn, SQSMapping{BatchSize: 1, MaximumConcurrency: 3})
	// Wait until three are in flight, then let everything through.
	deadline := time.Now().Add(waitLimit)
	for {
		fn.mu.Lock()
		c := fn.conc
		fn.mu.Unlock()
		if c == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d invocations in flight, want 3", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(fn.hold)
	for range msgs {
		fn.next(t)
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.maxConc != 3 {
		t.Fatalf("at most %d invocations at once, want MaximumConcurrency 3 reached and never exceeded", fn.maxConc)
	}
}

func TestSQSMappingValidation(t *testing.T) {
	tests := []struct {
		name string
		m    SQSMapping
	}{
		{"batch too large", SQSMapping{BatchSize: 10001, MaximumBatchingWindow: time.Second}},
		{"fifo batch too large", SQSMapping{FIFO: true, BatchSize: 11, MaximumBatchingWindow: time.Second}},
		{"batch over 10 without window", SQSMapping{BatchSize: 11}},
		{"concurrency 1", SQSMapping{MaximumConcurrency: 1}},
		{"concurrency 1001", SQSMapping{MaximumConcurrency: 1001}},
		{"window too long", SQSMapping{MaximumBatchingWindow: 301 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.FunctionName, m.QueueARN, m.QueueURL = "Fn", "arn:aws:sqs:us-east-1:0:q", "http://x/0/q"
			if err := normalizeSQS(&m); err == nil {
				t.Fatalf("%+v accepted", tt.m)
			}
		})
	}
}
