package stack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/pkg/client"
)

// startWith starts a stack like startStack, with changes to its options.
func startWith(t *testing.T, change func(*stack.Options)) *stack.Stack {
	t.Helper()
	logs := io.Discard
	if testing.Verbose() {
		logs = os.Stderr
	}
	opts := stack.Options{
		Template:     filepath.Join("..", "..", "..", "template.yaml"),
		Parameters:   map[string]string{"PostRateLimitPerMinute": "10000"},
		BuildDir:     buildDir,
		StackName:    fmt.Sprintf("e2e%d", stackSeq.Add(1)),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FunctionLogs: logs,
	}
	change(&opts)
	s, err := stack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeStack(t *testing.T, s *stack.Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRestartWithDataDirKeepsDataTokensAndPosition: a stack restarted on
// the same data directory has the groups and posts made before, accepts
// the tokens minted before, and its fan-out neither replays the posts it
// had delivered nor misses a new one.
func TestRestartWithDataDirKeepsDataTokensAndPosition(t *testing.T) {
	dir := t.TempDir()
	// The token issuer's URL is the tokens' "iss": it must not change.
	tokensAddr := freeAddr(t)
	name := fmt.Sprintf("e2e%d", stackSeq.Add(1))
	opts := func(o *stack.Options) { o.DataDir, o.TokensAddr, o.StackName = dir, tokensAddr, name }

	s := startWith(t, opts)
	a, b := newUser(t, s, "persist-a"), newUser(t, s, "persist-b")
	g := groupWith(t, a, "public", b)
	cb, err := client.Dial(testContext(t), s.Endpoints.WebSocket, b.token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Subscribe(testContext(t), g.GroupID); err != nil {
		t.Fatal(err)
	}
	p1, err := a.CreatePost(testContext(t), g.GroupID, "before the restart")
	if err != nil {
		t.Fatal(err)
	}
	awaitMatching(t, cb, "group.post_created", `"postId":"`+p1.PostID+`"`)
	closeStack(t, s)
	select {
	case <-cb.Done(): // the socket did not survive the restart
	case <-time.After(10 * time.Second):
		t.Fatal("socket still open after the stack closed")
	}

	s = startWith(t, opts)
	defer closeStack(t, s)
	// Everything the fan-out saw before was delivered and checkpointed:
	// a replay would invoke it at once, with nothing new in the stream.
	time.Sleep(2 * time.Second)
	if st, _ := s.Runtime().Stats("FanoutFunction"); st.Invocations != 0 {
		t.Fatalf("fan-out invoked %d times after the restart before anything new was written: the stream was replayed", st.Invocations)
	}
	// The old tokens, against the new process.
	a.BaseURL, b.BaseURL = s.Endpoints.HTTPAPI, s.Endpoints.HTTPAPI
	posts, err := a.ListPosts(testContext(t), g.GroupID, "")
	if err != nil {
		t.Fatalf("old token or old data after restart: %v", err)
	}
	if len(posts) != 1 || posts[0].PostID != p1.PostID {
		t.Fatalf("posts after restart %+v, want %s", posts, p1.PostID)
	}
	cb2 := b.connect(t, s, g.GroupID)
	p2, err := a.CreatePost(testContext(t), g.GroupID, "after the restart")
	if err != nil {
		t.Fatal(err)
	}
	// Events arrive in stream order: a replayed p1 would come first.
	ev := awaitEvent(t, cb2, "group.post_created")
	if !containsJSON(ev.Data, `"postId":"`+p2.PostID+`"`) {
		t.Fatalf("first event after restart %s, want post %s (an old post was replayed)", ev.Data, p2.PostID)
	}
}
