package stack_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/pkg/client"
)

// TestPushWorkerPath runs the second level of delivery with real function
// processes: with DirectPushLimit 1 every group audience goes through the
// push queue to PushWorkerFunction. Then the worker is killed (SIGKILL)
// while it holds calls of a chunk, and the chunk still reaches everyone.
func TestPushWorkerPath(t *testing.T) {
	// The worker's @connections calls go through this proxy; while hold
	// is set, the first call passes and the others wait (until the killed
	// worker's connection drops).
	var hold atomic.Bool
	var passed atomic.Int64
	held := make(chan struct{}, 100)
	// release ends held calls whose connection outlives the kill.
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	var target atomic.Pointer[url.URL]
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() && passed.Add(1) > 1 {
			held <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
				http.Error(w, "released", http.StatusServiceUnavailable)
			}
			return
		}
		httputil.NewSingleHostReverseProxy(target.Load()).ServeHTTP(w, r)
	}))
	defer proxy.Close()

	logs := logSink(t)
	s, err := stack.Start(testContext(t), stack.Options{
		Template:     filepath.Join("..", "..", "..", "template.yaml"),
		Parameters:   map[string]string{"PostRateLimitPerMinute": "10000", "DirectPushLimit": "1"},
		BuildDir:     buildDir,
		StackName:    fmt.Sprintf("e2e%d", stackSeq.Add(1)),
		Env:          map[string]map[string]string{"PushWorkerFunction": {"WEBSOCKET_MANAGEMENT_ENDPOINT": proxy.URL + "/dev"}},
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FunctionLogs: logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	mgmt, _ := url.Parse(s.Endpoints.Management)
	mgmt.Path = ""
	target.Store(mgmt)

	a := newUser(t, s, "a")
	var members []*user
	for i := range 3 {
		members = append(members, newUser(t, s, fmt.Sprint("m", i)))
	}
	g := groupWith(t, a, "public", members...)
	var conns []*client.Conn
	for _, m := range members {
		conns = append(conns, m.connect(t, s, g.GroupID))
	}
	postAndAwait := func(t *testing.T, content string) {
		t.Helper()
		p, err := a.CreatePost(testContext(t), g.GroupID, content)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			awaitMatching(t, c, "group.post_created", `"postId":"`+p.PostID+`"`)
		}
	}

	t.Run("a queued audience is delivered", func(t *testing.T) {
		postAndAwait(t, "through the push queue")
		if st, _ := s.Runtime().Stats("PushWorkerFunction"); st.Invocations == 0 {
			t.Errorf("PushWorkerFunction was never invoked: the audience did not take the queue")
		}
	})

	t.Run("a worker killed mid-chunk loses nothing", func(t *testing.T) {
		// The chunk comes back after the visibility timeout; 180 s in the
		// template (6 × the worker's timeout), 2 s here so the test is short.
		setVisibility(t, s, "PushQueue", "2")
		hold.Store(true)
		passed.Store(0)
		defer hold.Store(false)
		p, err := a.CreatePost(testContext(t), g.GroupID, "killed mid-chunk")
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-held:
		case <-time.After(20 * time.Second):
			t.Fatal("the worker never called @connections")
		}
		pids := s.Runtime().PIDs("PushWorkerFunction")
		if len(pids) == 0 {
			t.Fatal("no push worker process to kill")
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill -9 %d: %v", pid, err)
			}
		}
		hold.Store(false)
		releaseOnce.Do(func() { close(release) })
		// Every member gets the post: the ones the killed worker had not
		// reached through the redelivered chunk (the first may get it twice;
		// clients drop the repeat by event id).
		for _, c := range conns {
			awaitMatching(t, c, "group.post_created", `"postId":"`+p.PostID+`"`)
		}
	})
}

func logSink(t *testing.T) *os.File {
	if testing.Verbose() {
		return os.Stderr
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// setVisibility sets a queue's VisibilityTimeout, as an operator would with
// `aws sqs set-queue-attributes`.
func setVisibility(t *testing.T, s *stack.Stack, logicalID, seconds string) {
	t.Helper()
	c, queueURL := adminQueue(t, s, logicalID)
	if _, err := c.SetQueueAttributes(testContext(t), &sqs.SetQueueAttributesInput{QueueUrl: &queueURL,
		Attributes: map[string]string{"VisibilityTimeout": seconds}}); err != nil {
		t.Fatal(err)
	}
}
