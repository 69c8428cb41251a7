package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/devstack/dynamo"
)

// waitLimit bounds waits for things that take milliseconds; generous
// because the machine is shared and noisy.
const waitLimit = 20 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a dynamo server with one streamed table.
type env struct {
	srv    *dynamo.Server
	client *dynamodb.Client
	table  dynamo.TableInfo
}

var tableSeq atomic.Int64

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := dynamo.Start(context.Background(), dynamo.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	info, err := srv.CreateTable(context.Background(), dynamo.TableSpec{Input: &dynamodb.CreateTableInput{
		TableName:            aws.String(fmt.Sprintf("esm%d", tableSeq.Add(1))),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, client: srv.Client(), table: info}
}

// put writes items {PK: key, type: typ}.
func (e *env) put(t *testing.T, typ string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		_, err := e.client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &e.table.Name, Item: map[string]types.AttributeValue{
			"PK": &types.AttributeValueMemberS{Value: k}, "type": &types.AttributeValueMemberS{Value: typ},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fakeFunction records invocations and answers with respond.
type fakeFunction struct {
	calls   chan []string // keys of each invocation's records
	respond func(call int, ev events.DynamoDBEvent) ([]byte, error)
	n       atomic.Int64

	mu     sync.Mutex
	events []events.DynamoDBEvent
}

func newFake(respond func(int, events.DynamoDBEvent) ([]byte, error)) *fakeFunction {
	if respond == nil {
		respond = func(int, events.DynamoDBEvent) ([]byte, error) { return nil, nil }
	}
	return &fakeFunction{calls: make(chan []string, 100), respond: respond}
}

func (f *fakeFunction) Invoke(_ context.Context, function string, payload []byte) ([]byte, error) {
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	f.mu.Unlock()
	keys := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		keys[i] = r.Change.Keys["PK"].String()
	}
	resp, err := f.respond(int(f.n.Add(1)), ev)
	f.calls <- keys
	return resp, err
}

// next waits for the next invocation.
func (f *fakeFunction) next(t *testing.T) []string {
	t.Helper()
	select {
	case k := <-f.calls:
		return k
	case <-time.After(waitLimit):
		t.Fatal("function not invoked")
		return nil
	}
}

// expectCalls waits for invocations with the given keys, in order.
func (f *fakeFunction) expectCalls(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := strings.Join(f.next(t), ","); got != w {
			t.Fatalf("invocation %d: records %q, want %q", i+1, got, w)
		}
	}
}

func start(t *testing.T, e *env, fn Invoker, m Mapping, opts Options) *Poller {
	t.Helper()
	m.FunctionName = "Fn"
	m.StreamARN = e.table.StreamARN
	if m.StartingPosition == "" {
		m.StartingPosition = TrimHorizon
	}
	if m.MaximumRetryAttempts == 0 {
		m.MaximumRetryAttempts = -1
	}
	opts.Logger = quiet
	opts.RetryBaseDelay, opts.RetryMaxDelay = time.Millisecond, 5*time.Millisecond // fast retries in tests
	p, err := Start(context.Background(), e.srv, fn, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestDeliversLambdaEventsInOrder(t *testing.T) {
	e := newEnv(t)
	fn := newFake(nil)
	start(t, e, fn, Mapping{}, Options{})
	keys := []string{"a", "b", "c", "d", "e"}
	e.put(t, "POST", keys...)
	var got []string
	for len(got) < len(keys) {
		got = append(got, fn.next(t)...)
	}
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Fatalf("delivered %v, want %v", got, keys)
	}
	fn.mu.Lock()
	r := fn.events[0].Records[0]
	fn.mu.Unlock()
	if r.EventSourceArn != e.table.StreamARN || r.EventName != "INSERT" || r.EventVersion != "1.1" || r.EventSource != "aws:dynamodb" ||
		r.Change.StreamViewType != "NEW_AND_OLD_IMAGES" || r.Change.SequenceNumber == "" || r.Change.SizeBytes <= 0 ||
		r.Change.NewImage["type"].String() != "POST" || r.AWSRegion != "us-east-1" {
		t.Errorf("event record = %+v", r)
	}
}

func TestBatchSizeAndWindow(t *testing.T) {
	e := newEnv(t)
	fn := newFake(nil)
	// A window far longer than the test: batches are sent because they are
	// full, so each holds exactly BatchSize records.
	start(t, e, fn, Mapping{BatchSize: 3, MaximumBatchingWindow: 5 * time.Minute}, Options{})
	e.put(t, "POST", "a", "b", "c", "d", "e", "f")
	fn.expectCalls(t, "a,b,c", "d,e,f")
}

func TestStartingPosition(t *testing.T) {
	tests := []struct {
		position string
		want     string
	}{
		{TrimHorizon, "old1,old2,new"},
		{Latest, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.position, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "POST", "old1", "old2")
			fn := newFake(nil)
			start(t, e, fn, Mapping{StartingPosition: tt.position, BatchSize: 3, MaximumBatchingWindow: 5 * time.Minute}, Options{})
			e.put(t, "POST", "new")
			if tt.position == Latest {
				// Latest's batch holds one record; the long window would hold
				// it back, so fill the batch with two more.
				e.put(t, "POST", "x", "y")
				tt.want += ",x,y"
			}
			fn.expectCalls(t, tt.want)
		})
	}
}

func TestFilterCriteriaDropRecords(t *testing.T) {
	e := newEnv(t)
	fn := newFake(nil)
	start(t, e, fn, Mapping{FilterPatterns: []string{
		`{"eventName":["INSERT"],"dynamodb":{"NewImage":{"type":{"S":["POST"]}}}}`,
		`{"dynamodb":{"NewImage":{"type":{"S":[{"prefix":"GRO"}]}}}}`,
	}}, Options{})
	e.put(t, "OTHER", "o1")
	e.put(t, "POST", "p1")
	e.put(t, "MEMBER", "o2")
	e.put(t, "GROUP", "g1")
	var got []string
	for len(got) < 2 {
		got = append(got, fn.next(t)...)
	}
	if strings.Join(got, ",") != "p1,g1" {
		t.Fatalf("delivered %v, want [p1 g1]", got)
	}
}

func TestPartialBatchResponse(t *testing.T) {
	// The function's first answer, and the records the second call gets.
	tests := []struct {
		name   string
		answer func(ev events.DynamoDBEvent) string
		want   string
	}{
		{"resume at the lowest failed record", func(ev events.DynamoDBEvent) string {
			return fmt.Sprintf(`{"batchItemFailures":[{"itemIdentifier":%q},{"itemIdentifier":%q}]}`, ev.Records[3].Change.SequenceNumber, ev.Records[2].Change.SequenceNumber)
		}, "c,d"},
		{"unknown identifier fails the whole batch", func(events.DynamoDBEvent) string {
			return `{"batchItemFailures":[{"itemIdentifier":"nope"}]}`
		}, "a,b,c,d"},
		{"empty identifier fails the whole batch", func(events.DynamoDBEvent) string {
			return `{"batchItemFailures":[{"itemIdentifier":""}]}`
		}, "a,b,c,d"},
		{"not a batch response fails the whole batch", func(events.DynamoDBEvent) string { return `"ok"` }, "a,b,c,d"},
		{"empty list is success", func(events.DynamoDBEvent) string { return `{"batchItemFailures":[]}` }, "e"},
		{"null is success", func(events.DynamoDBEvent) string { return `null` }, "e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "POST", "a", "b", "c", "d") // before Start: one read gets all four
			fn := newFake(func(call int, ev events.DynamoDBEvent) ([]byte, error) {
				if call == 1 {
					return []byte(tt.answer(ev)), nil
				}
				return nil, nil
			})
			start(t, e, fn, Mapping{ReportBatchItemFailures: true}, Options{})
			fn.expectCalls(t, "a,b,c,d")
			e.put(t, "POST", "e")
			fn.expectCalls(t, tt.want)
		})
	}
}

var errBoom = errors.New("boom")

func TestBisectIsolatesThePoisonRecord(t *testing.T) {
	e := newEnv(t)
	e.put(t, "POST", "a", "b", "c", "d")
	fn := newFake(func(_ int, ev events.DynamoDBEvent) ([]byte, error) {
		for _, r := range ev.Records {
			if r.Change.Keys["PK"].String() == "c" {
				return nil, errBoom
			}
		}
		return nil, nil
	})
	p := start(t, e, fn, Mapping{BisectBatchOnFunctionError: true, MaximumRetryAttempts: 1, OnFailureDestination: "arn:aws:sqs:us-east-1:000000000000:dlq"}, Options{})
	// Whole batch fails; halves; c fails, is retried once, given up; d goes on.
	fn.expectCalls(t, "a,b,c,d", "a,b", "c,d", "c", "c", "d")
	f := p.Failures()
	if len(f) != 1 {
		t.Fatalf("failures = %+v", f)
	}
	info := f[0].DDBStreamBatchInfo
	if f[0].RequestContext.Condition != "RetryAttemptsExhausted" || info.BatchSize != 1 || info.StartSequenceNumber != info.EndSequenceNumber ||
		info.StreamARN != e.table.StreamARN || info.ShardID == "" || f[0].Destination != "arn:aws:sqs:us-east-1:000000000000:dlq" ||
		f[0].ResponseContext.FunctionError != "Unhandled" || f[0].RequestContext.FunctionARN != "arn:aws:lambda:us-east-1:000000000000:function:Fn" {
		t.Errorf("failure record = %+v", f[0])
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name        string
		maxRetries  int
		failures    int // calls that fail before the function recovers (for "next")
		wantCalls   int
		wantFailure bool
	}{
		{"gives up after the retry limit", 2, 3, 3, true},
		{"zero retries gives up at once", 0, 1, 1, true},
		{"retries forever until success", -1, 4, 5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "POST", "a", "b")
			failed := make(chan FailureRecord, 1)
			fn := newFake(func(call int, _ events.DynamoDBEvent) ([]byte, error) {
				if call <= tt.failures {
					return nil, errBoom
				}
				return nil, nil
			})
			p := startExact(t, e, fn, Mapping{MaximumRetryAttempts: tt.maxRetries}, Options{OnFailure: func(f FailureRecord) { failed <- f }})
			for range tt.wantCalls {
				if got := strings.Join(fn.next(t), ","); got != "a,b" {
					t.Fatalf("records %q, want a,b", got)
				}
			}
			if tt.wantFailure {
				select {
				case f := <-failed:
					if f.DDBStreamBatchInfo.BatchSize != 2 || f.RequestContext.ApproximateInvokeCount != tt.wantCalls {
						t.Errorf("failure record = %+v", f)
					}
				case <-time.After(waitLimit):
					t.Fatal("no failure record")
				}
			}
			// The mapping moves on either way.
			e.put(t, "POST", "next")
			for {
				keys := fn.next(t)
				if strings.Join(keys, ",") == "next" {
					break
				}
				if tt.wantFailure {
					t.Fatalf("batch %v retried after it was given up", keys)
				}
			}
			if got := len(p.Failures()); got != map[bool]int{true: 1, false: 0}[tt.wantFailure] {
				t.Errorf("%d failure records", got)
			}
		})
	}
}

func TestMaximumRecordAge(t *testing.T) {
	e := newEnv(t)
	e.put(t, "POST", "old")
	failed := make(chan FailureRecord, 1)
	fn := newFake(nil)
	// The poller's clock runs two hours ahead: every record is older than 60 s.
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	start(t, e, fn, Mapping{MaximumRecordAgeInSeconds: 60}, Options{Now: later, OnFailure: func(f FailureRecord) { failed <- f }})
	select {
	case f := <-failed:
		if f.RequestContext.Condition != "RecordAgeExceeded" || f.RequestContext.ApproximateInvokeCount != 0 || f.DDBStreamBatchInfo.BatchSize != 1 {
			t.Errorf("failure record = %+v", f)
		}
	case <-time.After(waitLimit):
		t.Fatal("no failure record")
	}
	select {
	case keys := <-fn.calls:
		t.Fatalf("function invoked with expired records %v", keys)
	default:
	}
}

func TestMappingValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		m    Mapping
	}{
		{"bad starting position", Mapping{StartingPosition: "AT_TIMESTAMP"}},
		{"batch too large", Mapping{BatchSize: 10001}},
		{"record age below 60", Mapping{MaximumRecordAgeInSeconds: 10}},
		{"retries below -1", Mapping{MaximumRetryAttempts: -2}},
		{"bad filter", Mapping{FilterPatterns: []string{`{"eventName":"INSERT"}`}}},
		{"unknown stream", Mapping{StreamARN: "arn:aws:dynamodb:us-east-1:000000000000:table/x/stream/y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			m.FunctionName = "Fn"
			if m.StreamARN == "" {
				m.StreamARN = e.table.StreamARN
			}
			if m.StartingPosition == "" {
				m.StartingPosition = TrimHorizon
			}
			if p, err := Start(context.Background(), e.srv, newFake(nil), m, Options{Logger: quiet}); err == nil {
				p.Close()
				t.Fatal("Start accepted an invalid mapping")
			}
		})
	}
}

// startExact starts a mapping without start's defaulting of
// MaximumRetryAttempts, for tests that need 0.
func startExact(t *testing.T, e *env, fn Invoker, m Mapping, opts Options) *Poller {
	t.Helper()
	m.FunctionName, m.StreamARN, m.StartingPosition = "Fn", e.table.StreamARN, TrimHorizon
	opts.Logger = quiet
	opts.RetryBaseDelay, opts.RetryMaxDelay = time.Millisecond, 5*time.Millisecond
	p, err := Start(context.Background(), e.srv, fn, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// A mapping restarted from its last checkpoint delivers what came after it
// and nothing before, whatever its starting position; a checkpoint past the
// stream's end resumes at the end.
func TestResumeAfterCheckpoint(t *testing.T) {
	tests := []struct {
		name     string
		position string
		ahead    bool // the checkpoint is past the stream's last record
		want     string
	}{
		{"trim horizon", TrimHorizon, false, "c"},
		{"latest", Latest, false, "c"},
		{"checkpoint past the end", TrimHorizon, true, "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			first := newFake(nil)
			checkpoints := make(chan string, 10)
			p := start(t, e, first, Mapping{}, Options{OnCheckpoint: func(seq string) { checkpoints <- seq }})
			e.put(t, "POST", "a", "b")
			var last string
			for got := ""; got != "a,b"; {
				for _, k := range first.next(t) {
					got = strings.TrimPrefix(got+","+k, ",")
				}
			}
			latest, _ := e.srv.LatestSequenceNumber(e.table.StreamARN)
			for last != latest {
				select {
				case last = <-checkpoints:
				case <-time.After(waitLimit):
					t.Fatalf("checkpoint %q, want %q", last, latest)
				}
			}
			p.Close()
			if tt.ahead {
				last = "1" + strings.Repeat("9", 20)
			}
			second := newFake(nil)
			if !tt.ahead {
				e.put(t, "POST", "c")
			}
			start(t, e, second, Mapping{StartingPosition: tt.position}, Options{ResumeAfter: last})
			if tt.ahead {
				e.put(t, "POST", "d")
			}
			second.expectCalls(t, tt.want)
		})
	}
}
