package loadgen

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/pkg/client"
)

// The end-to-end tests share one in-process stack with push faults on,
// started by the first test that needs it.
var (
	sharedOnce  sync.Once
	sharedStack *stack.Stack
	sharedErr   error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if sharedStack != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := sharedStack.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "close stack:", err)
			code = 1
		}
		cancel()
	}
	os.Exit(code)
}

func localStack(t *testing.T) *stack.Stack {
	t.Helper()
	sharedOnce.Do(func() {
		logs := io.Discard
		if testing.Verbose() {
			logs = os.Stderr
		}
		sharedStack, sharedErr = stack.Start(context.Background(), stack.Options{
			Template:     filepath.Join("..", "..", "template.yaml"),
			Parameters:   map[string]string{"PostRateLimitPerMinute": "100000"},
			StackName:    "loadgen-e2e",
			PushFaults:   true,
			Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
			FunctionLogs: logs,
		})
	})
	if sharedErr != nil {
		t.Fatalf("start stack: %v", sharedErr)
	}
	return sharedStack
}

func runAgainst(t *testing.T, s *stack.Stack, cfg Config) Report {
	t.Helper()
	cfg.HTTPURL, cfg.WSURL = s.Endpoints.HTTPAPI, s.Endpoints.WebSocket
	cfg.Tokens = client.TokenEndpoint{URL: s.Endpoints.Tokens}
	cfg.FaultedPushes = s.FaultedPushes
	if cfg.Rate == 0 {
		cfg.Rate = 10
	}
	// Deliveries on the fast local stack take milliseconds; the wait only
	// bounds a broken run.
	cfg.Wait = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

// Connections whose every push fails (500 or 410) cost the others nothing:
// each other connection gets every post exactly once, the failing ones
// are tried for every post and receive nothing.
func TestFailingConnections(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusGone} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := localStack(t)
			const posts, failing = 3, 2
			rep := runAgainst(t, s, Config{Members: 5, Connections: 20, Posts: posts,
				FailingConnections: failing, FailingStatus: status})
			// 20 connections over 5 members: the poster's 4 are owed nothing.
			if want := 16 * posts; rep.Expected != want || rep.Received != want || rep.Missing != 0 || rep.Duplicated != 0 {
				t.Fatalf("expected %d received %d missing %d duplicated %d, want %d received once each",
					rep.Expected, rep.Received, rep.Missing, rep.Duplicated, want)
			}
			f := rep.Failing
			if f == nil || f.Connections != failing || f.Status != status || f.Calls == nil {
				t.Fatalf("failing stats %+v, want %d connections answering %d with calls counted", f, failing, status)
			}
			t.Logf("failing connections got %d calls for %d posts", *f.Calls, posts)
			if *f.Calls < failing*posts {
				t.Fatalf("failing connections got %d calls, want at least one per post each (%d)", *f.Calls, failing*posts)
			}
		})
	}
}

// The small group's post goes out with the main group's each round and is
// reported apart.
func TestSmallGroup(t *testing.T) {
	s := localStack(t)
	const posts = 3
	rep := runAgainst(t, s, Config{Members: 4, Connections: 20, Posts: posts, SmallGroup: 3})
	if want := 15 * posts; rep.Received != want || rep.Missing != 0 {
		t.Fatalf("main group received %d missing %d, want %d", rep.Received, rep.Missing, want)
	}
	g := rep.SmallGroup
	// 3 members, one connection each; the poster's is owed nothing.
	if g == nil || g.Members != 3 || g.Expected != 2*posts || g.Received != 2*posts || g.Missing != 0 || g.Duplicated != 0 {
		t.Fatalf("small group %+v, want 3 members and %d deliveries once each", g, 2*posts)
	}
	if g.Latency.N != g.Received || g.Latency.Min <= 0 || g.Latency.Max < g.Latency.P50 {
		t.Fatalf("small group latency %+v, want one per delivery", g.Latency)
	}
}
