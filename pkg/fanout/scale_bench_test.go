package fanout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/time/rate"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// timedConnServer is @connections under the AWS timing profile: each call
// takes latency, and the account's token bucket (rate, burst) answers 429
// LimitExceededException beyond it. It counts accepted pushes per
// connection, so repeats to a connection that accepted are visible.
type timedConnServer struct {
	srv      *httptest.Server
	limiter  *rate.Limiter
	latency  time.Duration
	mu       sync.Mutex
	accepted map[string]int
	first    time.Time
	last     time.Time
	// perSecond counts accepted pushes per second since start, the
	// timeline that shows where the rate fell under the budget.
	start     time.Time
	perSecond []int
	throttle  atomic.Int64
}

func newTimedConnServer(b *testing.B, latency time.Duration, rps, burst int) *timedConnServer {
	cs := &timedConnServer{limiter: rate.NewLimiter(rate.Limit(rps), burst), latency: latency, accepted: map[string]int{}}
	cs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strings.CutPrefix(r.URL.Path, "/dev/@connections/")
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(cs.latency)
		if !cs.limiter.Allow() {
			cs.throttle.Add(1)
			w.Header().Set("X-Amzn-Errortype", "LimitExceededException")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"message":"LimitExceededException"}`))
			return
		}
		cs.mu.Lock()
		cs.accepted[id]++
		now := time.Now()
		if cs.first.IsZero() {
			cs.first = now
		}
		cs.last = now
		if sec := int(now.Sub(cs.start) / time.Second); sec >= 0 {
			for len(cs.perSecond) <= sec {
				cs.perSecond = append(cs.perSecond, 0)
			}
			cs.perSecond[sec]++
		}
		cs.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(cs.srv.Close)
	return cs
}

// stampedQueue is the push queue, stamping the first and last send: when
// the workers could first start, and when the consumer was done queuing.
type stampedQueue struct {
	*memQueue
	mu          sync.Mutex
	first, last time.Time
}

func (q *stampedQueue) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out, err := q.memQueue.SendMessageBatch(ctx, in, opts...)
	q.mu.Lock()
	if q.first.IsZero() {
		q.first = time.Now()
	}
	q.last = time.Now()
	q.mu.Unlock()
	return out, err
}

// workerLog is one worker's timeline: first and last invocation, busy
// time, messages and pushes handled.
type workerLog struct {
	first, last   time.Time
	busy          time.Duration
	invocations   int
	messages, ids int
}

// BenchmarkLargeGroupPost delivers one post to 100,000 subscriptions stored
// in the table (kumo) through the real path: the stream consumer's Deliver
// reads GSI1 and queues chunks, and PushWorkers workers (each with its
// share of PushRatePerSecond = 10,000) push them against @connections at
// 25 ms a call with the account's 10,000 RPS / 5,000 burst throttle.
// It reports the time from Deliver to the last accepted push, the repeats
// to connections that had accepted, the longest worker invocation, and the
// bytes GSI1 read (the read units of one post).
//
//	go test ./pkg/fanout -run '^$' -bench LargeGroupPost -benchtime 1x -timeout 30m
func BenchmarkLargeGroupPost(b *testing.B) {
	const (
		subscribers = 100_000
		budget      = 10_000 // PushRatePerSecond of the run
		workers     = 4      // PushWorkers
		latency     = 25 * time.Millisecond
		// batchSize is the template's PushQueueMapping BatchSize: Lambda's
		// poller hands each batch to one invocation.
		batchSize = 1
	)
	ctx := context.Background()
	client, table := dynamotest.NewTable(b)
	store, err := dynamostore.New(client, table)
	if err != nil {
		b.Fatal(err)
	}
	g := groupcast.Group{ID: "big", Name: "big", Visibility: groupcast.Public, OwnerID: "owner", MemberCount: subscribers, CreatedAt: fixtureAt}
	if err := store.CreateGroup(ctx, g, groupcast.Member{GroupID: g.ID, UserID: "owner", Role: groupcast.RoleOwner, JoinedAt: fixtureAt}, stamped(groupcast.GroupCreatedEvent(g))); err != nil {
		b.Fatal(err)
	}
	expires := time.Now().Add(24 * time.Hour)
	var wg sync.WaitGroup
	ids := make(chan int)
	var putErr atomic.Value
	for range 16 {
		wg.Go(func() {
			for i := range ids {
				c := groupcast.Connection{ID: fmt.Sprintf("Zx%014d=", i), UserID: fmt.Sprintf("user-%06d", i), ConnectedAt: fixtureAt}
				if _, err := store.PutSubscriptions(ctx, c, []groupcast.SubscriptionTarget{{GroupID: g.ID}}, expires); err != nil {
					putErr.Store(err)
				}
			}
		})
	}
	for i := range subscribers {
		ids <- i
	}
	close(ids)
	wg.Wait()
	if err, _ := putErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	// The projected bytes of one subscription item (attribute names plus
	// values, as DynamoDB sizes items; ttl counts ~ 6 bytes).
	item := dynamostore.SubscriptionItem{PK: "CONN#Zx00000000000000=", SK: "SUB#" + g.ID, GSI1PK: "SUBS#" + g.ID, GSI1SK: "CONN#Zx00000000000000=",
		Type: "SUB", ConnectionID: "Zx00000000000000=", UserID: "user-000000", GroupID: g.ID}
	itemBytes := len("PK"+"SK"+"GSI1PK"+"GSI1SK"+"type"+"connectionId"+"userId"+"groupId"+"ttl") +
		len(item.PK+item.SK+item.GSI1PK+item.GSI1SK+item.Type+item.ConnectionID+item.UserID+item.GroupID) + 6

	env := groupcast.Envelope{ID: "e-big", Type: groupcast.EventPostCreated, GroupID: g.ID, At: time.Now(), Data: []byte(`{"postId":"p"}`)}
	for b.Loop() {
		// Label the post's goroutines (the client, workers and @connections
		// server, not kumo's, started before) so -cpuprofile can be read
		// for the post alone: go tool pprof -tagfocus phase=post.
		pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("phase", "post")))
		cs := newTimedConnServer(b, latency, 10_000, 5_000)
		queue := &stampedQueue{memQueue: newMemQueue()}
		newFanout := func(rps float64) *Fanout {
			f, err := New(store, NewManagementClient(testAWSConfig(), cs.srv.URL+"/dev", 100), queue,
				slog.New(slog.NewJSONHandler(io.Discard, nil)), applog.NewEMF(io.Discard, "bench", nil),
				Config{PushQueueURL: pushQueue, InboxQueueURL: inboxQueue, Concurrency: 100, RatePerSecond: rps})
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
		consumer := newFanout(0)
		start := time.Now()
		cs.mu.Lock()
		cs.start = start
		cs.mu.Unlock()
		logs := make([]workerLog, workers)
		var longest atomic.Int64
		var done atomic.Bool
		var ww sync.WaitGroup
		for wi := range workers {
			w := newFanout(budget / workers)
			wl := &logs[wi]
			ww.Go(func() {
				for !done.Load() {
					_, msgs := queue.receiveFrom(batchSize, pushQueue)
					if len(msgs) == 0 {
						time.Sleep(5 * time.Millisecond) // the poller's long poll, in short
						continue
					}
					ev := events.SQSEvent{}
					for _, m := range msgs {
						ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, Body: m.body})
					}
					ictx, cancel := context.WithTimeout(ctx, 30*time.Second) // the worker's Timeout
					t0 := time.Now()
					resp, _ := w.HandleTasks(ictx, ev)
					cancel()
					d := time.Since(t0)
					if d > time.Duration(longest.Load()) {
						longest.Store(int64(d))
					}
					if wl.first.IsZero() {
						wl.first = t0
					}
					wl.last = t0.Add(d)
					wl.busy += d
					wl.invocations++
					wl.messages += len(msgs)
					for _, m := range msgs {
						wl.ids += strings.Count(m.body, `"Zx`)
					}
					failed := map[string]bool{}
					for _, f := range resp.BatchItemFailures {
						failed[f.ItemIdentifier] = true
					}
					for _, m := range msgs {
						if failed[m.id] {
							queue.retry(pushQueue, m)
						}
					}
				}
			})
		}
		res, err := consumer.Deliver(ctx, groupcast.Delivery{Envelope: env, Audience: groupcast.Audience{GroupID: g.ID}})
		if err != nil {
			b.Fatal(err)
		}
		consumerTime := time.Since(start)
		for {
			cs.mu.Lock()
			n := len(cs.accepted)
			cs.mu.Unlock()
			_, pending := queue.receiveFrom(0, pushQueue)
			if n == subscribers || (len(queue.queues[pushQueue]) == 0 && pending == nil && time.Since(cs.last) > 5*time.Second) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		done.Store(true)
		ww.Wait()
		since := func(t time.Time) string { return t.Sub(start).Round(time.Millisecond).String() }
		b.Logf("chunks queued %s..%s, pushes accepted %s..%s", since(queue.first), since(queue.last), since(cs.first), since(cs.last))
		for i, l := range logs {
			b.Logf("worker %d: %s..%s, busy %s, %d invocations, %d messages, %d pushes", i, since(l.first), since(l.last),
				l.busy.Round(time.Millisecond), l.invocations, l.messages, l.ids)
		}
		b.Logf("accepted per second: %v", cs.perSecond)
		repeats := 0
		for _, n := range cs.accepted {
			repeats += n - 1
		}
		b.ReportMetric(cs.last.Sub(start).Seconds(), "s-to-last-push")
		b.ReportMetric(consumerTime.Seconds(), "s-consumer")
		// The split of s-to-last-push: until the first chunk is queued (the
		// lookup; kumo answers the 100,000 items in one page, where
		// DynamoDB pages at 1 MB) and from there the pushes at the budget.
		b.ReportMetric(queue.first.Sub(start).Seconds(), "s-to-first-chunk")
		b.ReportMetric(cs.last.Sub(queue.first).Seconds(), "s-first-chunk-to-last-push")
		b.ReportMetric(float64(subscribers-len(cs.accepted)), "missing")
		b.ReportMetric(float64(repeats), "repeats")
		b.ReportMetric(float64(cs.throttle.Load()), "429s")
		b.ReportMetric(time.Duration(longest.Load()).Seconds(), "s-longest-worker")
		b.ReportMetric(float64(res.Chunks), "chunks")
		b.ReportMetric(float64(itemBytes), "B/item")
		// Eventually consistent Query: 0.5 RCU per 4 KB read.
		b.ReportMetric(float64(subscribers*itemBytes)/4096*0.5, "RCU/post")
	}
}
