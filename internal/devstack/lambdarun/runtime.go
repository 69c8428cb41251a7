// Package lambdarun runs Go Lambda functions locally the way AWS Lambda does:
// each function is a real process (the "bootstrap" binary of a provided.al2023
// function) that fetches work from its own Lambda Runtime API endpoint. The
// Runtime keeps instances warm, starts more for concurrent invocations up to a
// per-function limit, enforces the function's timeout by killing the instance,
// and reports function errors, panics, crashes and init failures the way
// Lambda reports them to a synchronous caller.
package lambdarun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/localaws"
)

// Options configure a Runtime. Zero values select the documented defaults.
type Options struct {
	Logger *slog.Logger
	// LogWriter receives the functions' stdout and stderr, one labelled line
	// at a time ("[ApiFunction] ..."). Default os.Stderr.
	LogWriter io.Writer
	// Region is reported to functions (AWS_REGION) and used in ARNs.
	// Default localaws.Region.
	Region string
	// AccountID appears in function ARNs. Default localaws.AccountID.
	AccountID string
	// IdleTimeout stops instances idle for longer. 0 means 10 minutes (Lambda
	// keeps idle environments for minutes, not seconds, so warm-start
	// behaviour matches); negative disables reaping.
	IdleTimeout time.Duration
	// InitTimeout bounds a new instance's start-up until it asks for work.
	// 0 means 10 seconds, Lambda's limit for the init phase.
	InitTimeout time.Duration
	// ShutdownGrace is how long Close (and the reaper) wait after SIGTERM
	// before killing. 0 means 2 seconds: Lambda gives extensions 2 s at shutdown,
	// and a Go function without SIGTERM handling exits at once anyway.
	ShutdownGrace time.Duration
}

const (
	defaultIdleTimeout   = 10 * time.Minute
	defaultInitTimeout   = 10 * time.Second
	defaultShutdownGrace = 2 * time.Second
	// minReapInterval keeps the reaper from spinning when IdleTimeout is tiny (tests).
	minReapInterval = 10 * time.Millisecond
)

// Runtime runs registered functions. It is safe for concurrent use.
type Runtime struct {
	opts   Options
	logger *slog.Logger
	sink   *logSink

	mu       sync.Mutex
	funcs    map[string]*function
	closed   bool
	tempDirs []string

	closing    chan struct{} // closed when Close begins
	reaperDone chan struct{}
	inflight   sync.WaitGroup // executions and background stops
}

// New returns a Runtime; call Close to stop every instance.
func New(opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LogWriter == nil {
		opts.LogWriter = os.Stderr
	}
	if opts.Region == "" {
		opts.Region = localaws.Region
	}
	if opts.AccountID == "" {
		opts.AccountID = localaws.AccountID
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = defaultIdleTimeout
	}
	if opts.InitTimeout < 0 || opts.ShutdownGrace < 0 {
		return nil, fmt.Errorf("lambdarun: InitTimeout and ShutdownGrace must not be negative")
	}
	if opts.InitTimeout == 0 {
		opts.InitTimeout = defaultInitTimeout
	}
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = defaultShutdownGrace
	}
	r := &Runtime{
		opts:       opts,
		logger:     opts.Logger,
		sink:       &logSink{w: opts.LogWriter},
		funcs:      make(map[string]*function),
		closing:    make(chan struct{}),
		reaperDone: make(chan struct{}),
	}
	if opts.IdleTimeout > 0 {
		go r.reap()
	} else {
		close(r.reaperDone)
	}
	return r, nil
}

// Register adds a function. Instances start lazily, on the first invocation.
func (r *Runtime) Register(f Function) error {
	fn, err := newFunction(f, r.opts.Region, r.opts.AccountID)
	if err != nil {
		return fmt.Errorf("lambdarun: register: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, dup := r.funcs[f.Name]; dup {
		return fmt.Errorf("lambdarun: register: function %s already registered", f.Name)
	}
	r.funcs[f.Name] = fn
	return nil
}

// Functions lists the registered function names, sorted.
func (r *Runtime) Functions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stats reports the pool of one function; false if it is not registered.
func (r *Runtime) Stats(name string) (Stats, bool) {
	r.mu.Lock()
	fn := r.funcs[name]
	r.mu.Unlock()
	if fn == nil {
		return Stats{}, false
	}
	return fn.stats(), true
}

// KillBusy kills (SIGKILL, the whole process group) one instance of name
// that is running an invocation right now and returns its pid; ok is false
// when none is busy. Fault tests use it to kill a function mid-invocation,
// as a crashed or out-of-memory execution environment dies on AWS; the
// runtime then reports the invocation failed, as Lambda does.
func (r *Runtime) KillBusy(name string) (pid int, ok bool) {
	r.mu.Lock()
	fn := r.funcs[name]
	r.mu.Unlock()
	if fn == nil {
		return 0, false
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	for inst := range fn.all {
		inst.mu.Lock()
		busy := inst.current != nil
		inst.mu.Unlock()
		if busy && inst.cmd.Process != nil && !inst.hasExited() {
			if err := kill(inst.cmd); err != nil {
				continue
			}
			return inst.cmd.Process.Pid, true
		}
	}
	return 0, false
}

// PIDs lists the process ids of the function's live instances, for tests
// that crash one (kill -9) the way a Lambda sandbox can die mid-invocation.
func (r *Runtime) PIDs(name string) []int {
	r.mu.Lock()
	fn := r.funcs[name]
	r.mu.Unlock()
	if fn == nil {
		return nil
	}
	var out []int
	for _, inst := range fn.instances() {
		if !inst.hasExited() {
			out = append(out, inst.cmd.Process.Pid)
		}
	}
	return out
}

type outcome struct {
	payload []byte
	err     error
}

// Invoke runs the function synchronously (RequestResponse) and returns its
// response payload. A function error, panic, crash, init failure or timeout
// is returned as a *FunctionError. If ctx ends first, Invoke returns ctx's
// error but, as in Lambda, the invocation itself runs on to completion (or
// its timeout) and its instance then serves the next invocation.
func (r *Runtime) Invoke(ctx context.Context, name string, payload []byte) ([]byte, error) {
	if len(payload) > maxPayload {
		return nil, fmt.Errorf("invoke %s: request payload of %d bytes exceeds Lambda's %d byte limit", name, len(payload), maxPayload)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	fn := r.funcs[name]
	if fn == nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("invoke %s: function not registered", name)
	}
	r.inflight.Add(1)
	r.mu.Unlock()
	fn.mu.Lock()
	fn.invocations++
	fn.mu.Unlock()

	select {
	case fn.slots <- struct{}{}:
	case <-ctx.Done():
		r.inflight.Done()
		return nil, fmt.Errorf("invoke %s: waiting for a free instance (limit %d): %w", name, fn.cfg.MaxConcurrency, ctx.Err())
	case <-r.closing:
		r.inflight.Done()
		return nil, ErrClosed
	}

	inv := &invocation{id: newRequestID(), payload: payload, traceID: newTraceID(), done: make(chan response, 1)}
	out := make(chan outcome, 1)
	go func() {
		defer r.inflight.Done()
		defer fn.releaseSlot()
		b, err := r.execute(fn, inv)
		out <- outcome{b, err}
	}()
	select {
	case o := <-out:
		return o.payload, o.err
	case <-ctx.Done():
		return nil, fmt.Errorf("invoke %s (request %s): %w", name, inv.id, ctx.Err())
	}
}

// execute runs one invocation on an idle instance, or a new one.
func (r *Runtime) execute(fn *function, inv *invocation) ([]byte, error) {
	for {
		inst, cold, err := r.instanceFor(fn)
		if err != nil {
			return nil, err
		}
		if cold {
			if fe := r.awaitInit(inst, inv.id); fe != nil {
				return nil, fe
			}
		}
		inv.deadline = time.Now().Add(fn.cfg.Timeout)
		select {
		case inst.queue <- inv:
			return r.await(fn, inst, inv)
		case <-inst.exited:
			if cold {
				return nil, inst.exitError(inv.id)
			}
			// A warm instance that died while idle (a panic makes the Go
			// library exit right after reporting it) has done none of this
			// invocation's work: take another.
		}
	}
}

// instanceFor takes an idle instance or starts one (cold).
func (r *Runtime) instanceFor(fn *function) (inst *instance, cold bool, err error) {
	if inst := fn.takeIdle(); inst != nil {
		return inst, false, nil
	}
	// Starting under r.mu orders every start before Close's snapshot of the
	// instances, so Close never misses a process.
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, ErrClosed
	}
	inst, err = startInstance(fn, r.sink, r.logger)
	if err != nil {
		return nil, false, err
	}
	fn.track(inst)
	r.logger.Debug("function instance started", "function", fn.cfg.Name, "pid", inst.cmd.Process.Pid)
	return inst, true, nil
}

// awaitInit waits until a new instance asks for its first invocation.
func (r *Runtime) awaitInit(inst *instance, requestID string) *FunctionError {
	t := time.NewTimer(r.opts.InitTimeout)
	defer t.Stop()
	select {
	case <-inst.ready:
		return nil
	case <-inst.exited:
		fe := inst.exitError(requestID)
		inst.logs.Platform(fmt.Sprintf("INIT_REPORT Phase: init Status: error Error Type: %s", fe.Type))
		return fe
	case <-t.C:
		inst.kill()
		secs := r.opts.InitTimeout.Seconds()
		inst.logs.Platform(fmt.Sprintf("INIT_REPORT Init Duration: %.2f ms Phase: init Status: timeout", secs*1000))
		return &FunctionError{
			Type:    ErrorTypeTimeout,
			Message: fmt.Sprintf("RequestId: %s Error: Init timed out after %.2f seconds", requestID, secs),
		}
	}
}

// await waits for the instance to answer the invocation it took.
func (r *Runtime) await(fn *function, inst *instance, inv *invocation) ([]byte, error) {
	t := time.NewTimer(time.Until(inv.deadline))
	defer t.Stop()
	select {
	case res := <-inv.done:
		if !fn.putIdle(inst) {
			r.retire(inst) // its code was replaced while it ran
		}
		return res.result()
	case <-inst.exited:
		// The runtime may have reported the error and then exited (a panic).
		select {
		case res := <-inv.done:
			return res.result()
		default:
		}
		fe := inst.exitError(inv.id)
		inst.logs.Platform(fmt.Sprintf("%s Error: %s", inv.id, fe.Message))
		return nil, fe
	case <-t.C:
		secs := fn.cfg.Timeout.Seconds()
		inst.logs.Platform(fmt.Sprintf("%s Task timed out after %.2f seconds", inv.id, secs))
		inst.kill()
		return nil, &FunctionError{
			Type:    ErrorTypeTimeout,
			Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, secs),
		}
	}
}

func (res response) result() ([]byte, error) {
	if res.err != nil {
		return nil, res.err
	}
	return res.payload, nil
}

// Replace swaps a registered function's code without stopping it, as a
// Lambda code update does: invocations from now on start instances of
// binary; idle instances of the old code stop now, busy ones once their
// invocation ends. Its concurrency limit spans old and new instances.
func (r *Runtime) Replace(name, binary string) error {
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("lambdarun: replace %s: %w", name, err)
	}
	bin, err := filepath.Abs(binary)
	if err != nil {
		return fmt.Errorf("lambdarun: replace %s: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	fn := r.funcs[name]
	if fn == nil {
		return fmt.Errorf("lambdarun: replace %s: function not registered", name)
	}
	for _, inst := range fn.replace(bin) {
		r.retire(inst)
	}
	return nil
}

// retire stops an instance in the background; Close waits for it.
func (r *Runtime) retire(inst *instance) {
	r.inflight.Add(1)
	go func() {
		defer r.inflight.Done()
		inst.stop(context.Background(), r.opts.ShutdownGrace)
	}()
}

// reap stops instances idle for longer than IdleTimeout.
func (r *Runtime) reap() {
	defer close(r.reaperDone)
	interval := max(r.opts.IdleTimeout/2, minReapInterval)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.closing:
			return
		case now := <-t.C:
			r.mu.Lock()
			fns := make([]*function, 0, len(r.funcs))
			for _, fn := range r.funcs {
				fns = append(fns, fn)
			}
			r.mu.Unlock()
			for _, fn := range fns {
				for _, inst := range fn.takeExpired(now.Add(-r.opts.IdleTimeout)) {
					r.inflight.Add(1)
					go func() {
						defer r.inflight.Done()
						inst.stop(context.Background(), r.opts.ShutdownGrace)
					}()
				}
			}
		}
	}
}

// Close stops every instance (SIGTERM, then SIGKILL after ShutdownGrace or
// when ctx ends), waits for them and for in-flight invocations, and removes
// build output directories the Runtime created. Invocations still running
// fail with a Runtime.ExitError.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closing)
	fns := make([]*function, 0, len(r.funcs))
	for _, fn := range r.funcs {
		fns = append(fns, fn)
	}
	tempDirs := r.tempDirs
	r.mu.Unlock()

	<-r.reaperDone
	var wg sync.WaitGroup
	for _, fn := range fns {
		for _, inst := range fn.instances() {
			wg.Go(func() { inst.stop(ctx, r.opts.ShutdownGrace) })
		}
	}
	wg.Wait()
	r.inflight.Wait()

	var errs []error
	for _, dir := range tempDirs {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lambdarun: close: remove build output: %v", errs)
	}
	return nil
}

// newRequestID returns a random UUID (version 4), the form of Lambda request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceID returns an X-Ray trace header value in the format Lambda passes.
func newTraceID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:40])
}
