package lambdarun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const (
	runtimeAPIPrefix = "/2018-06-01/runtime"

	// maxPayload is Lambda's 6 MB limit on synchronous request and response payloads.
	maxPayload = 6 << 20

	// maxErrorBody bounds an error document posted by a runtime; an error report
	// is small, and the limit keeps a runaway one from filling memory.
	maxErrorBody = 1 << 20

	// waitDelay bounds how long Wait keeps copying output after the process
	// exited, in case a grandchild still holds its stdout open.
	waitDelay = 2 * time.Second
)

// invocation is one request travelling from Invoke to a process and back.
type invocation struct {
	id       string
	payload  []byte
	traceID  string
	deadline time.Time     // set by the executor just before hand-off
	done     chan response // buffered(1): the runtime API answers exactly once
}

type response struct {
	payload []byte
	err     *FunctionError
}

// instance is one execution environment: a process and the Runtime API
// endpoint that only it talks to.
//
// Each instance gets its own loopback listener rather than sharing one with
// per-instance paths: AWS_LAMBDA_RUNTIME_API must be a bare host:port for
// runtimes other than aws-lambda-go, a request arriving on the listener can
// only come from its own process (no routing or request-id lookup across
// instances), and closing the listener is part of tearing the instance down.
type instance struct {
	fn     *function
	cmd    *exec.Cmd
	srv    *http.Server
	logs   *lineWriter
	logger *slog.Logger

	queue chan *invocation // unbuffered: a send succeeds only when the process asked for work

	readyOnce sync.Once
	ready     chan struct{} // closed on the first GET /next: init finished

	exited  chan struct{} // closed after the process exited and output was flushed
	exitErr error         // valid after exited is closed

	mu      sync.Mutex
	current *invocation
	initErr *FunctionError

	gen int // the function's code generation this process runs

	// Guarded by fn.mu, not mu.
	lastUsed  time.Time
	forgotten bool
}

// startInstance launches the function's binary with its own Runtime API.
func startInstance(fn *function, sink *logSink, logger *slog.Logger) (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for runtime API of %s: %w", fn.cfg.Name, err)
	}
	inst := &instance{
		fn:     fn,
		logs:   newLineWriter(sink, fn.cfg.Name),
		logger: logger,
		queue:  make(chan *invocation),
		ready:  make(chan struct{}),
		exited: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimeAPIPrefix+"/invocation/next", inst.handleNext)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/invocation/{id}/response", inst.handleResponse)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/invocation/{id}/error", inst.handleError)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/init/error", inst.handleInitError)
	// No read/write timeouts: GET /next is a long poll that legitimately waits
	// as long as the instance stays idle. ReadHeaderTimeout only guards against
	// a stuck client and is generous because the client is our own child.
	inst.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	binary, gen := fn.code()
	inst.gen = gen
	cmd := exec.Command(binary)
	cmd.Dir = filepath.Dir(binary)
	cmd.Env = fn.environ(ln.Addr().String(), binary)
	// The same writer for both streams makes os/exec use one pipe, so stdout
	// and stderr lines keep their relative order, as in CloudWatch.
	cmd.Stdout = inst.logs
	cmd.Stderr = inst.logs
	cmd.WaitDelay = waitDelay
	setProcessGroup(cmd)
	inst.cmd = cmd

	if err := cmd.Start(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("start %s (%s): %w", fn.cfg.Name, binary, err)
	}
	go func() { _ = inst.srv.Serve(ln) }()
	go inst.wait()
	return inst, nil
}

func (inst *instance) wait() {
	err := inst.cmd.Wait()
	inst.logs.Flush()
	_ = inst.srv.Close()
	inst.exitErr = err
	// Forget before announcing the exit, so that whoever waits on exited
	// sees a pool without this instance.
	inst.fn.forget(inst)
	close(inst.exited)
	inst.logger.Debug("function instance exited", "function", inst.fn.cfg.Name, "pid", inst.cmd.Process.Pid, "err", err)
}

// hasExited reports whether the process has already gone.
func (inst *instance) hasExited() bool {
	select {
	case <-inst.exited:
		return true
	default:
		return false
	}
}

// stop asks the process to exit (SIGTERM), kills it after grace or when ctx
// ends, and waits for it to be gone.
func (inst *instance) stop(ctx context.Context, grace time.Duration) {
	if inst.hasExited() {
		return
	}
	_ = terminate(inst.cmd)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-inst.exited:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	inst.kill()
}

// kill ends the process group at once and waits for the process to be reaped.
func (inst *instance) kill() {
	_ = kill(inst.cmd)
	<-inst.exited
}

// exitError describes how the process ended, in Lambda's words.
func (inst *instance) exitError(requestID string) *FunctionError {
	inst.mu.Lock()
	initErr := inst.initErr
	inst.mu.Unlock()
	if initErr != nil {
		return initErr
	}
	status := "exit status 0"
	var ee *exec.ExitError
	if errors.As(inst.exitErr, &ee) {
		status = ee.ProcessState.String() // "exit status 2" or "signal: killed"
	} else if inst.exitErr != nil {
		status = inst.exitErr.Error()
	}
	return &FunctionError{
		Type:    ErrorTypeExit,
		Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", requestID, status),
	}
}

func (inst *instance) handleNext(w http.ResponseWriter, r *http.Request) {
	inst.readyOnce.Do(func() { close(inst.ready) })
	var inv *invocation
	select {
	case inv = <-inst.queue:
	case <-r.Context().Done():
		return
	case <-inst.exited:
		return
	}
	inst.mu.Lock()
	inst.current = inv
	inst.mu.Unlock()

	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", inst.fn.arn)
	h.Set("Lambda-Runtime-Trace-Id", inv.traceID)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// A failed write means the process is going away; its exit resolves the invocation.
	_, _ = w.Write(inv.payload)
}

// finish resolves the current invocation if id names it.
func (inst *instance) finish(id string, res response) bool {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.current == nil || inst.current.id != id {
		return false
	}
	inst.current.done <- res
	inst.current = nil
	return true
}

func (inst *instance) handleResponse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			writeAPIError(w, http.StatusBadRequest, "InvalidRequest", "read response body: "+err.Error())
			return
		}
		fe := &FunctionError{
			Type:    ErrorTypeResponseTooLarge,
			Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxPayload),
		}
		inst.finish(id, response{err: fe})
		writeAPIError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fe.Message)
		return
	}
	if !inst.finish(id, response{payload: body}) {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+id)
		return
	}
	writeAccepted(w)
}

func (inst *instance) handleError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
	fe := parseErrorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	if !inst.finish(id, response{err: fe}) {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or finished request id "+id)
		return
	}
	writeAccepted(w)
}

func (inst *instance) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
	fe := parseErrorBody(body, r.Header.Get("Lambda-Runtime-Function-Error-Type"))
	inst.mu.Lock()
	inst.initErr = fe
	inst.mu.Unlock()
	writeAccepted(w)
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func writeAPIError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write((&FunctionError{Type: errType, Message: msg}).JSON())
}
