package stack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
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
	// The stream alone delivers (FastPath=false): with the fast path, p1's
	// receipt would not show that the stream has checkpointed past it.
	opts := func(o *stack.Options) {
		o.DataDir, o.TokensAddr, o.StackName = dir, tokensAddr, name
		o.Parameters["FastPath"] = "false"
	}

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

// copyModule copies what the stack builds from (the module files, the
// template, functions/ and pkg/) into a temporary directory, so a test
// can edit sources without touching the real tree.
func copyModule(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "..")
	dst := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "template.yaml"} {
		copyFile(t, filepath.Join(src, f), filepath.Join(dst, f))
	}
	for _, d := range []string{"functions", "pkg"} {
		err := filepath.WalkDir(filepath.Join(src, d), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			copyFile(t, p, filepath.Join(dst, rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWatchSwapsChangedCodeKeepingState: with Watch, editing a package a
// function imports changes that function's behaviour within seconds, on
// the same open socket, with the data and subscriptions made before.
func TestWatchSwapsChangedCodeKeepingState(t *testing.T) {
	root := copyModule(t)
	var progress lockedBuffer
	s := startWith(t, func(o *stack.Options) {
		o.Template, o.Watch, o.Progress, o.BuildDir = filepath.Join(root, "template.yaml"), true, &progress, t.TempDir()
	})
	defer closeStack(t, s)
	a, b := newUser(t, s, "watch-a"), newUser(t, s, "watch-b")
	g := groupWith(t, a, "public", b)
	cb := b.connect(t, s, g.GroupID)
	ctx := testContext(t)
	if r, err := cb.Request(ctx, map[string]string{"action": "ping"}); err != nil || r.Type != "pong" {
		t.Fatalf("ping before the change: %+v %v", r, err)
	}

	handler := filepath.Join(root, "pkg", "wsapi", "handler.go")
	src, err := os.ReadFile(handler)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(src), `typeReply{Type: "pong",`, `typeReply{Type: "pong-v2",`, 1)
	if changed == string(src) {
		t.Fatal("the ping reply is not where the test expects it")
	}
	if err := os.WriteFile(handler, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	// A rebuild links a binary or two on a shared 2-core machine: allow it
	// minutes; the loop ends as soon as the new code answers.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := cb.Request(ctx, map[string]string{"action": "ping"})
		if err != nil {
			t.Fatalf("socket lost during the swap: %v\n%s", err, progress.String())
		}
		if r.Type == "pong-v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q after the change:\n%s", r.Type, progress.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Same socket, same subscription, same table: a post made before the
	// change is listed, and a new one is pushed to the open socket.
	before, err := a.CreatePost(ctx, g.GroupID, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	awaitMatching(t, cb, "group.post_created", `"postId":"`+before.PostID+`"`)
	if posts, err := b.ListPosts(ctx, g.GroupID, ""); err != nil || len(posts) != 1 {
		t.Fatalf("posts after the swap: %+v %v", posts, err)
	}
	eventually(t, "the swap to be reported", func() bool { return strings.Contains(progress.String(), "watch: swapped ") })
	out := progress.String()
	for _, want := range []string{"watch: pkg/wsapi/handler.go changed: rebuilding ", "  built WsMessageFunction in ", "watch: swapped "} {
		if !strings.Contains(out, want) {
			t.Errorf("progress lacks %q:\n%s", want, out)
		}
	}
}
