// Command loadgen measures post-to-notification latency and fan-out
// throughput. By default it starts the local stack in-process; given
// --http and --ws it measures a running stack or a deployed stage.
//
//	go run ./cmd/loadgen --connections 100 --posts 50
//	go run ./cmd/loadgen --connections 10000 --members 100 --posts 5 --rate 1
//	go run ./cmd/loadgen --http https://abc.execute-api.eu-west-1.amazonaws.com/prod \
//	    --ws wss://def.execute-api.eu-west-1.amazonaws.com/prod --token-command ./get-token.sh
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/internal/loadgen"
	"github.com/groupcast/groupcast/pkg/client"
)

// Exit statuses, most serious first when several apply.
const (
	exitError      = 1 // the run could not be made (flags, set-up, a connection)
	exitMissing    = 2 // posts the API accepted did not reach every subscriber
	exitPostErrors = 4 // posts failed with something other than 429
	exitRefused    = 3 // posts were refused with 429; everything accepted arrived
)

const exitHelp = `
Exit status:
  0  every accepted post reached every subscriber; no post refused or failed
  1  the run could not be made (bad flags, set-up or connection failure)
  2  deliveries missing: posts the API accepted did not reach every subscriber
  3  posts refused with 429 (rate limit or throttle); all accepted posts arrived
  4  posts failed with another error (5xx, network); all accepted posts arrived
When several apply, 2 wins over 4, and 4 over 3.
`

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	var out *outcomeError
	if errors.As(err, &out) {
		os.Exit(out.code)
	}
	os.Exit(exitError)
}

// outcomeError is a run that completed but did not deliver cleanly.
type outcomeError struct {
	code int
	msg  string
}

func (e *outcomeError) Error() string { return e.msg }

// outcome tells missing deliveries apart from refused and failed posts.
func outcome(reports []loadgen.Report) error {
	var missing, refused, failed int
	for _, r := range reports {
		missing += r.Missing
		refused += r.Refused
		failed += r.PostErrors
		if g := r.SmallGroup; g != nil {
			missing += g.Missing
			refused += g.Refused
			failed += g.PostErrors
		}
	}
	msg := fmt.Sprintf("%d deliveries missing, %d posts refused with 429, %d posts failed", missing, refused, failed)
	switch {
	case missing > 0:
		return &outcomeError{exitMissing, msg}
	case failed > 0:
		return &outcomeError{exitPostErrors, msg}
	case refused > 0:
		return &outcomeError{exitRefused, msg}
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage of loadgen:")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), exitHelp)
	}
	var cfg loadgen.Config
	httpURL := fs.String("http", "", "HTTP API base URL of a running stack or stage (default: start the local stack in-process)")
	wsURL := fs.String("ws", "", "WebSocket URL (ws://... or wss://...)")
	tokenURL := fs.String("token-url", "", "issuer endpoint speaking the local stack's POST /token protocol")
	tokenCmd := fs.String("token-command", "", "shell command printing a JWT for $GROUPCAST_SUB / $GROUPCAST_NAME (deployed stages)")
	readyFile := fs.String("ready-file", "", "measure a running devstack: the file its --ready-file wrote")
	retention := fs.Duration("stream-retention", 24*time.Hour, "in-process stack: how long stream records are kept (shorter separates data growth from leaks)")
	template := fs.String("template", "template.yaml", "template for the in-process local stack")
	fastPath := fs.Bool("fast-path", true, "in-process stack: the template's FastPath parameter (false: the stream alone delivers)")
	killFastPath := fs.Int("kill-fast-path", 0, "in-process stack: kill -9 a busy FastPathFunction process this many times during each run")
	params := map[string]string{}
	fs.Func("param", "in-process stack: template parameter `Name=Value` (repeatable), e.g. FanoutConcurrency=256", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want Name=Value, got %q", v)
		}
		params[k] = val
		return nil
	})
	var timing stack.Timing
	fs.BoolVar(&timing.AWS, "aws-timing", false, "in-process stack: AWS timing profile (stream polled every 250 ms, @connections latency and account throttle)")
	fs.DurationVar(&timing.ConnectionsLatency, "connections-latency", stack.DefaultConnectionsLatency, "in-process stack with --aws-timing: round trip of each @connections call")
	fs.Float64Var(&timing.ConnectionsRPS, "connections-rps", stack.DefaultConnectionsRPS, "in-process stack with --aws-timing: account @connections rate")
	fs.IntVar(&timing.ConnectionsBurst, "connections-burst", stack.DefaultConnectionsBurst, "in-process stack with --aws-timing: account throttle burst")
	fs.IntVar(&cfg.Members, "members", 10, "users in the group (the first one posts)")
	fs.IntVar(&cfg.Connections, "connections", 100, "WebSocket connections, spread over the members")
	fs.IntVar(&cfg.Posts, "posts", 20, "posts to make")
	fs.Float64Var(&cfg.Rate, "rate", 5, "posts per second")
	fs.DurationVar(&cfg.Wait, "wait", 15*time.Second, "how long to wait for deliveries after the last post")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 100, "parallel WebSocket handshakes")
	fs.IntVar(&cfg.FailingConnections, "failing-connections", 0, "open this many extra connections (for members other than the poster) whose every @connections push fails; needs devstack --push-faults (the in-process stack turns it on)")
	fs.IntVar(&cfg.FailingStatus, "failing-status", 500, "with --failing-connections: the status their pushes get, 500 or 410")
	fs.IntVar(&cfg.SmallGroup, "small-group", 0, "also post, at the same moment each round, to a second group of this many members (one connection each) and report its deliveries apart (head-of-line blocking)")
	repeat := fs.Int("repeat", 1, "run this many times (the local stack's memory is reported after each run)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	quiet := fs.Bool("q", false, "no progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (and an in-process stack) to the file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	raiseFileLimit(stderr)
	if !*quiet {
		cfg.Progress = stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var local *stack.Stack
	if *readyFile != "" {
		data, err := os.ReadFile(*readyFile)
		if err != nil {
			return err
		}
		var e stack.Endpoints
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("%s: %w", *readyFile, err)
		}
		*httpURL, *wsURL, *tokenURL = e.HTTPAPI, e.WebSocket, e.Tokens
	}
	switch {
	case *httpURL != "" || *wsURL != "":
		if *httpURL == "" || *wsURL == "" {
			return errors.New("--http and --ws go together")
		}
		cfg.HTTPURL, cfg.WSURL = *httpURL, *wsURL
		switch {
		case *tokenCmd != "":
			cfg.Tokens = loadgen.CommandTokens{Command: *tokenCmd}
		case *tokenURL != "":
			cfg.Tokens = client.TokenEndpoint{URL: *tokenURL}
		default:
			return errors.New("a running stack needs --token-url or --token-command")
		}
	default:
		fmt.Fprintln(stderr, "starting the local stack in-process...")
		var err error
		opts := inProcessOptions(*template, *retention, timing, stackParams(params, *fastPath), stderr, cfg.Progress)
		opts.PushFaults = cfg.FailingConnections > 0
		local, err = stack.Start(ctx, opts)
		if err != nil {
			return err
		}
		cfg.FaultedPushes = local.FaultedPushes
		defer local.Close(context.Background())
		cfg.HTTPURL, cfg.WSURL = local.Endpoints.HTTPAPI, local.Endpoints.WebSocket
		cfg.Tokens = client.TokenEndpoint{URL: local.Endpoints.Tokens}
	}

	var reports []loadgen.Report
	for i := range *repeat {
		killed := make(chan int, 1)
		kctx, stopKilling := context.WithCancel(ctx)
		if local != nil && *killFastPath > 0 {
			go func() { killed <- stack.KillBusyRepeatedly(kctx, local, "FastPathFunction", *killFastPath) }()
		} else {
			killed <- 0
		}
		rep, err := loadgen.Run(ctx, cfg)
		stopKilling()
		if n := <-killed; *killFastPath > 0 {
			fmt.Fprintf(stderr, "killed %d of %d busy FastPathFunction processes\n", n, *killFastPath)
		}
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		if local != nil {
			rep.Stack = stackStats(local)
		}
		reports = append(reports, rep)
		if !*asJSON {
			fmt.Fprintf(stdout, "run %d of %d\n", i+1, *repeat)
			if err := loadgen.WriteTable(stdout, rep); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			return err
		}
	}
	return outcome(reports)
}

// stackParams are the in-process stack's template parameters: the load
// test posts faster than the production per-user limit; --param and
// --fast-path come on top.
func stackParams(params map[string]string, fastPath bool) map[string]string {
	out := map[string]string{"PostRateLimitPerMinute": "100000"}
	for k, v := range params {
		out[k] = v
	}
	out["FastPath"] = strconv.FormatBool(fastPath)
	return out
}

// stackStats samples the in-process stack after a run: heap after a GC,
// goroutines and function instances, to show whether anything leaks.
func stackStats(s *stack.Stack) *loadgen.StackStats {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := &loadgen.StackStats{HeapMiB: float64(ms.HeapAlloc) / (1 << 20), Goroutines: runtime.NumGoroutine()}
	for _, fn := range s.Runtime().Functions() {
		if fs, ok := s.Runtime().Stats(fn); ok {
			st.Instances += fs.Instances
		}
	}
	return st
}

// raiseFileLimit lifts the open-files limit: every WebSocket is a file
// descriptor on both ends (both ends live in this process when the stack
// runs in-process), so 10,000 connections need over 20,000. Root may also
// raise the hard limit; others get the hard limit as it is.
func raiseFileLimit(stderr io.Writer) {
	const want = 1 << 16
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur >= want {
		return
	}
	raised := lim
	raised.Cur = want
	if raised.Max < want {
		raised.Max = want
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(stderr, "loadgen: cannot raise the open-files limit:", err)
	}
}

// inProcessOptions configures the in-process stack. progress (nil with -q)
// gets the stack's start-up steps, as devstack prints them: on a cold build
// cache the functions compile for minutes, which would otherwise look like
// a hang.
func inProcessOptions(template string, retention time.Duration, timing stack.Timing, params map[string]string, stderr, progress io.Writer) stack.Options {
	return stack.Options{
		Template:        template,
		StreamRetention: retention,
		Timing:          timing,
		Parameters:      params,
		Logger:          slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FunctionLogs:    io.Discard,
		Progress:        progress,
	}
}
