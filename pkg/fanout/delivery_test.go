package fanout

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// bigWorld: public group g1 with n subscribers u0..u(n-1), connections k0...
func bigWorld(n int) *memStore {
	m := newMemStore()
	m.pageSize = 3
	m.groups["g1"] = groupcast.Group{ID: "g1", Visibility: groupcast.Public, OwnerID: "alice", MemberCount: n}
	for i := range n {
		m.subscribe("g1", fmt.Sprint("u", i), fmt.Sprint("k", i))
	}
	return m
}

func post(t *testing.T) events.DynamoDBEvent { return batch(loadRecords(t), "post-created") }

// Above DirectPushLimit the stream consumer pushes nothing itself: the
// audience goes to the push queue in chunks of at most ChunkSize, and the
// workers push each connection exactly once.
func TestLargeAudienceGoesToThePushQueue(t *testing.T) {
	h := newHarness(t, bigWorld(11), Config{DirectPushLimit: 4, ChunkSize: 3})
	if resp, err := h.f.Handle(context.Background(), post(t)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	if got := h.conns.deliveredTo(); len(got) != 0 {
		t.Errorf("the stream consumer pushed to %v itself", sortedKeys(got))
	}
	tasks := h.queue.tasks(pushQueue)
	var all []string
	for _, task := range tasks {
		if task.Kind != TaskPush || len(task.Connections) > 3 || task.Round != 0 || task.Event.Type != groupcast.EventPostCreated {
			t.Errorf("task %+v, want a round-0 push of at most 3 connections", task)
		}
		all = append(all, task.Connections...)
	}
	slices.Sort(all)
	if len(all) != 11 || len(slices.Compact(all)) != 11 {
		t.Errorf("queued connections %v, want each of the 11 once", all)
	}
	h.drain(context.Background())
	got := h.conns.deliveredTo()
	for i := range 11 {
		if n := len(got[fmt.Sprint("k", i)]); n != 1 {
			t.Errorf("k%d got %d deliveries, want 1", i, n)
		}
	}
}

// At or under the limit, the consumer pushes directly and queues nothing.
func TestSmallAudienceIsPushedDirectly(t *testing.T) {
	h := newHarness(t, bigWorld(4), Config{DirectPushLimit: 4})
	if _, err := h.f.Handle(context.Background(), post(t)); err != nil {
		t.Fatal(err)
	}
	if len(h.conns.deliveredTo()) != 4 || h.queue.sent[pushQueue] != 0 {
		t.Errorf("delivered to %d, push tasks %d; want 4 direct pushes and no task", len(h.conns.deliveredTo()), h.queue.sent[pushQueue])
	}
}

// A chunk with a failing connection is not retried by SQS: the worker
// reports it done and queues a new task holding only the connection that
// did not accept, so nobody who has the event gets it again.
func TestRetriedChunkCarriesOnlyTheRest(t *testing.T) {
	h := newHarness(t, bigWorld(6), Config{DirectPushLimit: 1, ChunkSize: 6})
	// k2 fails the first round's attempts, then accepts.
	h.conns.script["k2"] = []int{500, 500, 500}
	if _, err := h.f.Handle(context.Background(), post(t)); err != nil {
		t.Fatal(err)
	}
	url, msgs := h.queue.receiveFrom(10, pushQueue)
	if url != pushQueue || len(msgs) != 1 {
		t.Fatalf("queued %s %d, want one push task", url, len(msgs))
	}
	resp, _ := h.f.HandleTasks(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: msgs[0].id, Body: msgs[0].body}}})
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("chunk reported failed %+v: SQS would push it to all six again", resp.BatchItemFailures)
	}
	rest := h.queue.tasks(pushQueue)
	if len(rest) != 1 || !slices.Equal(rest[0].Connections, []string{"k2"}) || rest[0].Round != 1 {
		t.Fatalf("re-queued %+v, want one round-1 task for k2 only", rest)
	}
	h.drain(context.Background())
	for id, envs := range h.conns.deliveredTo() {
		if len(envs) != 1 {
			t.Errorf("%s got %d deliveries, want 1", id, len(envs))
		}
	}
	if len(h.conns.deliveredTo()) != 6 {
		t.Errorf("delivered to %d connections, want 6", len(h.conns.deliveredTo()))
	}
}

// A permanently failing connection (410 or 500 every time) in a large
// group: every other connection gets exactly one delivery, the 500 is
// dropped after the last round and counted, the 410 is cleaned up.
func TestPermanentlyFailingConnectionInALargeGroup(t *testing.T) {
	for _, status := range []int{http.StatusGone, http.StatusInternalServerError} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			store := bigWorld(50)
			h := newHarness(t, store, Config{DirectPushLimit: 10, ChunkSize: 7})
			if status == http.StatusGone {
				h.conns.script["k13"] = []int{http.StatusGone}
			} else {
				h.conns.alwaysFail["k13"] = true
			}
			if resp, err := h.handle(context.Background(), post(t)); err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v", resp, err)
			}
			got := h.conns.deliveredTo()
			for i := range 50 {
				id := fmt.Sprint("k", i)
				if want := 1 - btoi(id == "k13"); len(got[id]) != want {
					t.Errorf("%s got %d deliveries, want %d", id, len(got[id]), want)
				}
			}
			switch status {
			case http.StatusGone:
				if !slices.Equal(store.deleted, []string{"k13"}) || h.conns.attempts("k13") != 1 {
					t.Errorf("deleted %v after %d attempts, want [k13] after 1", store.deleted, h.conns.attempts("k13"))
				}
			default:
				if n, want := h.conns.attempts("k13"), fastRetry.MaxAttempts*DefaultMaxRounds; n != want {
					t.Errorf("k13 attempts %d, want %d", n, want)
				}
				if len(h.queue.dead[pushQueue]) != 0 {
					t.Errorf("push dead letters %d: a dropped connection must not fail its chunk", len(h.queue.dead[pushQueue]))
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A worker cut off by its deadline queues the connections it did not
// reach, in the same round, and reports the chunk done.
func TestWorkerDeadlineQueuesTheUnreached(t *testing.T) {
	h := newHarness(t, bigWorld(5), Config{DirectPushLimit: 1, ChunkSize: 5})
	if _, err := h.f.Handle(context.Background(), post(t)); err != nil {
		t.Fatal(err)
	}
	_, msgs := h.queue.receiveFrom(10, pushQueue)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the deadline has passed before any call
	task := events.SQSEvent{Records: []events.SQSMessage{{MessageId: msgs[0].id, Body: msgs[0].body}}}
	resp, _ := h.f.HandleTasks(ctx, task)
	if len(resp.BatchItemFailures) != 1 {
		// Not started at all: SQS redelivers it, which repeats nothing.
		t.Fatalf("failures %+v, want the untouched message reported", resp.BatchItemFailures)
	}
	// Started, then cut off: the rest goes on in a new message.
	h.f.cfg.Concurrency = 1
	h.conns.script["k0"] = []int{500, 500, 500}
	tctx, tcancel := context.WithTimeout(context.Background(), time.Hour)
	defer tcancel()
	stop := make(chan struct{})
	go func() {
		for h.conns.attempts("k0") == 0 {
			time.Sleep(time.Millisecond)
		}
		tcancel()
		close(stop)
	}()
	resp, _ = h.f.HandleTasks(tctx, task)
	<-stop
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %+v, want the started chunk done", resp.BatchItemFailures)
	}
	var queued []string
	for _, rt := range h.queue.tasks(pushQueue) {
		queued = append(queued, rt.Connections...)
	}
	slices.Sort(queued)
	delivered := sortedKeys(h.conns.deliveredTo())
	all := append(append([]string(nil), queued...), delivered...)
	slices.Sort(all)
	if !slices.Equal(all, []string{"k0", "k1", "k2", "k3", "k4"}) {
		t.Errorf("delivered %v + queued %v, want each of k0..k4 exactly once", delivered, queued)
	}
}

// staleIndex is GSI1 right after a leave: it still lists mallory's
// subscription, while the base table no longer has her membership.
type staleIndex struct{ *memStore }

func (s staleIndex) ForEachGroupSubscriber(ctx context.Context, groupID string, fn func([]groupcast.Subscriber) error) error {
	if err := s.memStore.ForEachGroupSubscriber(ctx, groupID, fn); err != nil {
		return err
	}
	return fn([]groupcast.Subscriber{{ConnectionID: "m1", UserID: "mallory"}})
}

func TestPrivateGroupSkipsExMembers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		visibility groupcast.Visibility
		direct     int
		want       []string
		wantReads  bool
	}{
		{"private, direct", groupcast.Private, 100, []string{"b1", "c1"}, true},
		{"private, queued", groupcast.Private, 1, []string{"b1", "c1"}, true},
		// A public group's subscribers need no membership.
		{"public", groupcast.Public, 100, []string{"b1", "c1", "m1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			world := newWorld()
			g := world.groups["g1"]
			g.Visibility = tc.visibility
			world.groups["g1"] = g
			h := newHarness(t, staleIndex{world}, Config{DirectPushLimit: tc.direct})
			if _, err := h.handle(context.Background(), post(t)); err != nil {
				t.Fatal(err)
			}
			if got := sortedKeys(h.conns.deliveredTo()); !slices.Equal(got, tc.want) {
				t.Errorf("delivered to %v, want %v", got, tc.want)
			}
			if reads := world.membershipReads > 0; reads != tc.wantReads {
				t.Errorf("membership reads %d, want reads %v", world.membershipReads, tc.wantReads)
			}
		})
	}
}

// An event older than LiveMaxAge is not pushed, but still reaches the inbox.
func TestStaleEventStillReachesTheInbox(t *testing.T) {
	store := newWorld()
	h := newHarness(t, store, Config{Now: func() time.Time { return fixtureAt.Add(2 * time.Hour) }})
	if _, err := h.handle(context.Background(), post(t)); err != nil {
		t.Fatal(err)
	}
	if got := h.conns.deliveredTo(); len(got) != 0 {
		t.Errorf("stale event pushed to %v", sortedKeys(got))
	}
	if users := sortedKeys(store.inboxUsers()); !slices.Equal(users, []string{"bob", "carol"}) {
		t.Errorf("inbox %v, want [bob carol]", users)
	}
}

// Chunks stay within SQS's limits whatever the id lengths: ten of them
// (one SendMessageBatch) fit 256 KiB; memQueue refuses a larger batch.
func TestChunksFitSQS(t *testing.T) {
	store := newMemStore()
	store.pageSize = 1000
	store.groups["g1"] = groupcast.Group{ID: "g1", Visibility: groupcast.Public}
	long := string(make([]byte, 200))
	for i := range 3000 {
		store.subscribe("g1", fmt.Sprint("u", i), fmt.Sprintf("%s%d", long, i))
	}
	h := newHarness(t, store, Config{DirectPushLimit: 1, ChunkSize: 1000})
	if resp, err := h.f.Handle(context.Background(), post(t)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	n := 0
	for _, task := range h.queue.tasks(pushQueue) {
		n += len(task.Connections)
	}
	if n != 3000 {
		t.Errorf("queued %d connections, want 3000", n)
	}
}
