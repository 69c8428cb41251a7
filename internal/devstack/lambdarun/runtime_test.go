package lambdarun

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaries holds the test functions, built once in TestMain.
var binaries map[string]string

// testFunctions are the main packages under testdata that the tests run.
var testFunctions = map[string]string{
	"echo":     "testdata/echo",
	"sleep":    "testdata/sleep",
	"panic":    "testdata/panic",
	"fail":     "testdata/fail",
	"initfail": "testdata/initfail",
	"logs":     "testdata/logs",
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lambdarun-test-")
	if err != nil {
		log.Print(err)
		return 1
	}
	defer os.RemoveAll(dir)
	rt, err := New(Options{})
	if err != nil {
		log.Print(err)
		return 1
	}
	// Building every function takes a while the first time (aws-lambda-go
	// compiles); later runs link from the build cache.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	binaries, err = rt.Build(ctx, BuildSpec{RepoRoot: ".", Functions: testFunctions, OutDir: dir})
	if cerr := rt.Close(ctx); err == nil {
		err = cerr
	}
	if err != nil {
		log.Printf("build test functions: %v", err)
		return 1
	}
	return m.Run()
}

// testTimeout bounds each test's invocations so a bug fails rather than hangs.
const testTimeout = 30 * time.Second

// syncBuffer is a log writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newRuntime returns a Runtime closed at the end of the test, and its log buffer.
func newRuntime(t *testing.T, opts Options) (*Runtime, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts.LogWriter = logs
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return rt, logs
}

func register(t *testing.T, rt *Runtime, f Function, binary string) {
	t.Helper()
	f.Binary = binaries[binary]
	if err := rt.Register(f); err != nil {
		t.Fatal(err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

type echoReply struct {
	Payload     json.RawMessage   `json:"payload"`
	PID         int               `json:"pid"`
	RequestID   string            `json:"requestId"`
	FunctionArn string            `json:"functionArn"`
	HasDeadline bool              `json:"hasDeadline"`
	Env         map[string]string `json:"env"`
}

func invokeEcho(t *testing.T, ctx context.Context, rt *Runtime, name string, payload string) echoReply {
	t.Helper()
	out, err := rt.Invoke(ctx, name, []byte(payload))
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	var r echoReply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return r
}

// gate is an HTTP endpoint the echo function calls (payload "waitURL") and
// that holds each call until released, so a test controls how long
// invocations stay busy without relying on timing.
type gate struct {
	URL      string
	arrivals chan struct{}
	release  chan struct{}
	once     sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{arrivals: make(chan struct{}, 100), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.arrivals <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.open) // runs before srv.Close
	g.URL = srv.URL
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// waitArrivals waits until n invocations are held at the gate.
func (g *gate) waitArrivals(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.arrivals:
		case <-ctx.Done():
			t.Fatalf("waiting for %d invocations to reach the gate: %v", n, ctx.Err())
		}
	}
}

func (g *gate) payload() string { return fmt.Sprintf(`{"waitURL":%q}`, g.URL) }

func TestInvokeEcho(t *testing.T) {
	// Host configuration that must not reach the function.
	t.Setenv("AWS_PROFILE", "host-profile")
	t.Setenv("LAMBDARUN_HOST_ONLY", "leak")
	rt, _ := newRuntime(t, Options{Region: "eu-west-1"})
	register(t, rt, Function{Name: "EchoFunction", Env: map[string]string{"CUSTOM": "yes"}, MemoryMB: 256}, "echo")
	ctx := testContext(t)

	first := invokeEcho(t, ctx, rt, "EchoFunction", `{"hello":"world"}`)
	if got := string(first.Payload); got != `{"hello":"world"}` {
		t.Errorf("payload = %s", got)
	}
	if first.RequestID == "" || !first.HasDeadline {
		t.Errorf("request id %q, deadline %v: want both set from the runtime API headers", first.RequestID, first.HasDeadline)
	}
	if want := "arn:aws:lambda:eu-west-1:000000000000:function:EchoFunction"; first.FunctionArn != want {
		t.Errorf("arn = %q, want %q", first.FunctionArn, want)
	}
	for _, tc := range []struct{ key, want string }{
		{"AWS_LAMBDA_FUNCTION_NAME", "EchoFunction"},
		{"AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"},
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"},
		{"AWS_REGION", "eu-west-1"},
		{"AWS_DEFAULT_REGION", "eu-west-1"},
		{"AWS_ACCESS_KEY_ID", "AKIDLOCALSTACK"},
		{"AWS_SECRET_ACCESS_KEY", "localstack-secret"},
		{"AWS_SESSION_TOKEN", "localstack-session"},
		{"AWS_LAMBDA_LOG_FORMAT", "JSON"},
		{"_HANDLER", "bootstrap"},
		{"CUSTOM", "yes"},
		{"AWS_PROFILE", ""},
		{"LAMBDARUN_HOST_ONLY", ""},
	} {
		if got := first.Env[tc.key]; got != tc.want {
			t.Errorf("env %s = %q, want %q", tc.key, got, tc.want)
		}
	}
	if first.Env["LAMBDA_TASK_ROOT"] == "" {
		t.Error("LAMBDA_TASK_ROOT is empty")
	}

	second := invokeEcho(t, ctx, rt, "EchoFunction", `{}`)
	if second.PID != first.PID {
		t.Errorf("second invocation ran in pid %d, want the warm instance %d", second.PID, first.PID)
	}
	if second.RequestID == first.RequestID {
		t.Errorf("request id %s reused", second.RequestID)
	}
	if st, _ := rt.Stats("EchoFunction"); st.Started != 1 || st.Idle != 1 {
		t.Errorf("stats = %+v, want one started instance, idle", st)
	}
}

func TestConcurrencyLimitAndWarmReuse(t *testing.T) {
	const limit, invocations = 3, 7
	rt, _ := newRuntime(t, Options{})
	register(t, rt, Function{Name: "EchoFunction", MaxConcurrency: limit}, "echo")
	ctx := testContext(t)
	g := newGate(t)

	var wg sync.WaitGroup
	pids := make(chan int, invocations)
	errs := make(chan error, invocations)
	for range invocations {
		wg.Go(func() {
			out, err := rt.Invoke(ctx, "EchoFunction", []byte(g.payload()))
			if err != nil {
				errs <- err
				return
			}
			var r echoReply
			if err := json.Unmarshal(out, &r); err != nil {
				errs <- err
				return
			}
			pids <- r.PID
		})
	}
	g.waitArrivals(t, ctx, limit)
	if st, _ := rt.Stats("EchoFunction"); st.Instances != limit || st.Idle != 0 {
		t.Errorf("with %d invocations held: stats = %+v, want %d busy instances", limit, st, limit)
	}
	g.open()
	wg.Wait()
	close(errs)
	close(pids)
	for err := range errs {
		t.Errorf("invoke: %v", err)
	}
	distinct := map[int]bool{}
	for pid := range pids {
		distinct[pid] = true
	}
	st, _ := rt.Stats("EchoFunction")
	if st.Started != limit || len(distinct) != limit {
		t.Errorf("%d invocations: started %d instances in %d pids, want exactly the limit %d, reused warm", invocations, st.Started, len(distinct), limit)
	}
}

func TestInvokeWaitsForFreeInstanceUntilContextEnds(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	register(t, rt, Function{Name: "EchoFunction", MaxConcurrency: 1}, "echo")
	ctx := testContext(t)
	g := newGate(t)

	held := make(chan error, 1)
	go func() {
		_, err := rt.Invoke(ctx, "EchoFunction", []byte(g.payload()))
		held <- err
	}()
	g.waitArrivals(t, ctx, 1)

	waitCtx, cancel := context.WithCancel(ctx)
	cancel() // the only instance is busy, so this must give up rather than start another
	if _, err := rt.Invoke(waitCtx, "EchoFunction", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("invoke with the limit reached and a done context: err = %v, want context.Canceled", err)
	}
	g.open()
	if err := <-held; err != nil {
		t.Errorf("held invocation: %v", err)
	}
	if st, _ := rt.Stats("EchoFunction"); st.Started != 1 {
		t.Errorf("started %d instances, want 1", st.Started)
	}
}

func TestFunctionErrors(t *testing.T) {
	tests := []struct {
		name        string
		binary      string
		fn          Function
		wantType    string
		wantMessage string // substring
		wantStack   bool
		wantLog     string // substring of the function's log
		// after the failure: instances kept, and started after a second invoke
		wantInstances   int
		wantStartedNext int
	}{
		{
			name: "handler error keeps the instance", binary: "fail",
			fn:       Function{Name: "FailFunction"},
			wantType: "quotaError", wantMessage: "quota exceeded",
			wantInstances: 1, wantStartedNext: 1,
		},
		{
			name: "panic reports the library's errorType and replaces the instance", binary: "panic",
			fn:       Function{Name: "PanicFunction"},
			wantType: "string", wantMessage: "boom", wantStack: true,
			wantStartedNext: 2,
			wantInstances:   -1, // the process may still be exiting when Invoke returns
		},
		{
			name: "timeout kills the instance", binary: "sleep",
			fn:       Function{Name: "SleepFunction", Timeout: time.Second},
			wantType: ErrorTypeTimeout, wantMessage: "Task timed out after 1.00 seconds",
			wantLog:       "Task timed out after 1.00 seconds",
			wantInstances: 0, wantStartedNext: 2,
		},
		{
			name: "exit during init", binary: "initfail",
			fn:       Function{Name: "InitExitFunction", Env: map[string]string{"MODE": "exit"}},
			wantType: ErrorTypeExit, wantMessage: "Runtime exited with error: exit status 1",
			wantLog:       "config: TABLE_NAME is not set",
			wantInstances: 0, wantStartedNext: 2,
		},
		{
			name: "init error reported to the runtime API", binary: "initfail",
			fn:       Function{Name: "InitReportFunction", Env: map[string]string{"MODE": "report"}},
			wantType: "ConfigError", wantMessage: "TABLE_NAME is not set",
			wantLog:       "INIT_REPORT",
			wantInstances: 0, wantStartedNext: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, logs := newRuntime(t, Options{})
			register(t, rt, tc.fn, tc.binary)
			ctx := testContext(t)

			_, err := rt.Invoke(ctx, tc.fn.Name, []byte(`{}`))
			var fe *FunctionError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FunctionError", err)
			}
			if fe.Type != tc.wantType || !strings.Contains(fe.Message, tc.wantMessage) {
				t.Errorf("error = %+v, want type %q and message containing %q", fe, tc.wantType, tc.wantMessage)
			}
			if tc.wantStack != (len(fe.StackTrace) > 0) {
				t.Errorf("stack trace = %q, want present: %v", fe.StackTrace, tc.wantStack)
			}
			if st, _ := rt.Stats(tc.fn.Name); tc.wantInstances >= 0 && st.Instances != tc.wantInstances {
				t.Errorf("after the failure: %d instances, want %d", st.Instances, tc.wantInstances)
			}

			_, err = rt.Invoke(ctx, tc.fn.Name, []byte(`{}`))
			if !errors.As(err, &fe) || fe.Type != tc.wantType {
				t.Errorf("second invoke: err = %v, want the same failure again", err)
			}
			if st, _ := rt.Stats(tc.fn.Name); st.Started != tc.wantStartedNext {
				t.Errorf("after a second invoke: started %d instances, want %d", st.Started, tc.wantStartedNext)
			}
			if tc.wantLog != "" && !strings.Contains(logs.String(), "["+tc.fn.Name+"] ") {
				t.Errorf("log has no line labelled %s:\n%s", tc.fn.Name, logs)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log does not contain %q:\n%s", tc.wantLog, logs)
			}
		})
	}
}

func TestLogsAreLabelledWholeLines(t *testing.T) {
	const parallel = 3
	rt, logs := newRuntime(t, Options{})
	register(t, rt, Function{Name: "LogsFunction", MaxConcurrency: parallel}, "logs")
	register(t, rt, Function{Name: "OtherLogs"}, "logs")
	ctx := testContext(t)

	var wg sync.WaitGroup
	for i := range parallel * 2 {
		name := "LogsFunction"
		if i%2 == 1 {
			name = "OtherLogs"
		}
		wg.Go(func() {
			out, err := rt.Invoke(ctx, name, []byte(`{}`))
			if err != nil || string(out) != `"ok"` {
				t.Errorf("invoke %s = %s, %v", name, out, err)
			}
		})
	}
	wg.Wait()
	// A process's last lines may still be in its pipe when its response
	// arrives (as in Lambda, logs are asynchronous); Close drains them.
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}

	counts := map[string]int{}
	for line := range strings.Lines(logs.String()) {
		line = strings.TrimSuffix(line, "\n")
		prefix, msg, ok := strings.Cut(line, "] ")
		if !ok || (prefix != "[LogsFunction" && prefix != "[OtherLogs") {
			t.Errorf("unlabelled line %q", line)
			continue
		}
		switch {
		case msg == `{"level":"INFO","msg":"hello from stdout"}`, msg == "partial line joined":
			counts[msg]++
		case strings.HasPrefix(msg, "line "):
			if !strings.HasSuffix(msg, " 0123456789abcdef0123456789abcdef") || len(msg) != len("line 00 0123456789abcdef0123456789abcdef") {
				t.Errorf("torn line %q", line)
			}
			counts["numbered"]++
		}
	}
	want := map[string]int{
		`{"level":"INFO","msg":"hello from stdout"}`: parallel * 2,
		"partial line joined":                        parallel * 2,
		"numbered":                                   parallel * 2 * 50,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%q appears %d times, want %d", k, counts[k], n)
		}
	}
}

func TestIdleInstancesAreReaped(t *testing.T) {
	rt, _ := newRuntime(t, Options{IdleTimeout: 20 * time.Millisecond})
	register(t, rt, Function{Name: "EchoFunction"}, "echo")
	ctx := testContext(t)
	invokeEcho(t, ctx, rt, "EchoFunction", `{}`)

	// Poll until the reaper has stopped the instance; the bound only turns a
	// broken reaper into a failure instead of a hang.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, _ := rt.Stats("EchoFunction"); st.Instances == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("idle instance was never reaped")
		}
	}
	// The next invocation starts a fresh instance.
	invokeEcho(t, ctx, rt, "EchoFunction", `{}`)
	if st, _ := rt.Stats("EchoFunction"); st.Started != 2 {
		t.Errorf("started %d, want 2", st.Started)
	}
}

func TestRegisterRejects(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	register(t, rt, Function{Name: "EchoFunction"}, "echo")
	tests := []struct {
		name string
		fn   Function
		want string
	}{
		{"reserved variable", Function{Name: "A", Binary: binaries["echo"], Env: map[string]string{"AWS_REGION": "x"}}, "AWS_REGION is reserved"},
		{"missing binary", Function{Name: "B", Binary: "/nonexistent/bootstrap"}, "no such file"},
		{"empty name", Function{Binary: binaries["echo"]}, "name is empty"},
		{"duplicate", Function{Name: "EchoFunction", Binary: binaries["echo"]}, "already registered"},
		{"negative timeout", Function{Name: "C", Binary: binaries["echo"], Timeout: -time.Second}, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := rt.Register(tc.fn)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := rt.Invoke(testContext(t), "Unknown", nil); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("invoke unknown: err = %v", err)
	}
}

func TestBuildReportsFailuresByFunction(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	ctx := testContext(t)
	bins, err := rt.Build(ctx, BuildSpec{RepoRoot: ".", Functions: map[string]string{
		"BrokenFunction":  "testdata/broken",
		"MissingFunction": "testdata/does-not-exist",
		"EchoFunction":    "./testdata/echo",
	}})
	for _, want := range []string{"build BrokenFunction", "cannot use \"not a number\"", "build MissingFunction"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	if _, err := os.Stat(bins["EchoFunction"]); err != nil || len(bins) != 1 {
		t.Errorf("built = %v (%v), want only EchoFunction", bins, err)
	}
}

// TestBuildReportsProgress: each function says when it starts and, with its
// time and a count, when it is done, whether it built or not.
func TestBuildReportsProgress(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	var progress syncBuffer
	_, err := rt.Build(testContext(t), BuildSpec{RepoRoot: ".", Progress: &progress, Functions: map[string]string{
		"BrokenFunction": "testdata/broken",
		"EchoFunction":   "./testdata/echo",
	}})
	if err == nil {
		t.Fatal("Build succeeded with a broken function")
	}
	out := progress.String()
	for _, re := range []string{
		`(?m)^  building EchoFunction$`,
		`(?m)^  building BrokenFunction$`,
		`(?m)^  built EchoFunction in \d+\.\d s \([12]/2\)$`,
		`(?m)^  BrokenFunction failed after \d+\.\d s \([12]/2\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("progress lacks %s:\n%s", re, out)
		}
	}
}

func TestInvokeOnce(t *testing.T) {
	tests := []struct {
		name     string
		pkg      string
		wantErr  string // FunctionError type, "" for success
		wantText []string
	}{
		{"response and logs", "./testdata/logs", "", []string{"[LogsFunction] partial line joined", "[LogsFunction] line 49", "\n\"ok\"\n"}},
		{"function error", "./testdata/fail", "quotaError", []string{`"errorType": "quotaError"`, `"errorMessage": "quota exceeded"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			err := InvokeOnce(testContext(t), OneShot{
				RepoRoot: ".", Package: tc.pkg,
				Function: Function{Name: "LogsFunction"},
				Payload:  []byte(`{}`),
			}, &out)
			var fe *FunctionError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.wantErr != "" && (!errors.As(err, &fe) || fe.Type != tc.wantErr):
				t.Fatalf("err = %v, want a %s FunctionError", err, tc.wantErr)
			}
			// Each text in order: the logs come before the response.
			rest := out.String()
			for _, want := range tc.wantText {
				_, after, found := strings.Cut(rest, want)
				if !found {
					t.Errorf("output does not contain %q after the previous expected text:\n%s", want, out.String())
					break
				}
				rest = after
			}
		})
	}
}

// Each function runs with the credentials it was registered with, so the
// local endpoints can tell which function signed a request.
func TestFunctionCredentials(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	creds := aws.Credentials{AccessKeyID: "ASIAONE", SecretAccessKey: "one-secret", SessionToken: "one-token"}
	register(t, rt, Function{Name: "One", Credentials: creds}, "echo")
	got := invokeEcho(t, testContext(t), rt, "One", `{}`)
	for k, want := range map[string]string{"AWS_ACCESS_KEY_ID": "ASIAONE", "AWS_SECRET_ACCESS_KEY": "one-secret", "AWS_SESSION_TOKEN": "one-token"} {
		if got.Env[k] != want {
			t.Errorf("env %s = %q, want %q", k, got.Env[k], want)
		}
	}
}

// Replace swaps a function's code: idle instances of the old code stop at
// once, a busy one finishes its invocation on the old code and then stops,
// and new invocations run the new code.
func TestReplaceSwapsCodeLettingInvocationsFinish(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	register(t, rt, Function{Name: "F"}, "echo")
	ctx := testContext(t)
	g := newGate(t)
	held := make(chan echoReply, 1)
	go func() { held <- invokeEcho(t, ctx, rt, "F", g.payload()) }()
	g.waitArrivals(t, ctx, 1)
	invokeEcho(t, ctx, rt, "F", `{}`) // a second old instance, idle after this
	if st, _ := rt.Stats("F"); st.Instances != 2 || st.Idle != 1 {
		t.Fatalf("before Replace: %+v, want 2 instances, 1 idle", st)
	}

	if err := rt.Replace("F", binaries["fail"]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle old instance to stop", func() bool { st, _ := rt.Stats("F"); return st.Instances == 1 })
	_, err := rt.Invoke(ctx, "F", []byte(`{}`))
	var fe *FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("invocation after Replace: %v, want the new code's function error", err)
	}
	g.open()
	if r := <-held; r.PID == 0 {
		t.Fatalf("the held invocation did not finish on the old code: %+v", r)
	}
	waitFor(t, "the busy old instance to stop after its invocation", func() bool {
		st, _ := rt.Stats("F")
		return st.Instances == 1 && st.Idle == 1
	})
	if err := rt.Replace("Nope", binaries["fail"]); err == nil {
		t.Error("Replace of an unregistered function succeeded")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKillBusyKillsARunningInvocation(t *testing.T) {
	rt, _ := newRuntime(t, Options{})
	register(t, rt, Function{Name: "SleepFunction", Timeout: time.Minute}, "sleep")
	if _, ok := rt.KillBusy("SleepFunction"); ok {
		t.Fatal("KillBusy killed something with no invocation running")
	}
	if _, ok := rt.KillBusy("NoSuchFunction"); ok {
		t.Fatal("KillBusy of an unknown function reported a kill")
	}
	done := make(chan error, 1)
	go func() {
		_, err := rt.Invoke(testContext(t), "SleepFunction", []byte(`{}`))
		done <- err
	}()
	deadline := time.Now().Add(testTimeout)
	var pid int
	for ok := false; !ok; pid, ok = rt.KillBusy("SleepFunction") {
		if time.Now().After(deadline) {
			t.Fatal("the invocation never became busy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var fe *FunctionError
	if err := <-done; !errors.As(err, &fe) || fe.Type != ErrorTypeExit {
		t.Fatalf("invocation of a killed instance: %v, want a %s function error", err, ErrorTypeExit)
	}
	if pid <= 0 {
		t.Errorf("pid %d", pid)
	}
}
