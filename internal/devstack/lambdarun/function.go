package lambdarun

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Function describes one Lambda function to run.
type Function struct {
	// Name labels logs and is the name Invoke takes (the template's logical id).
	Name string
	// Binary is the executable implementing the Runtime API client (Build's output).
	Binary string
	// Env is the function's own Environment, intrinsics already resolved. It may
	// not set the variables Lambda reserves (see reservedEnv).
	Env map[string]string
	// Timeout per invocation; 0 means Lambda's default of 3 seconds.
	Timeout time.Duration
	// MemoryMB is reported to the function (AWS_LAMBDA_FUNCTION_MEMORY_SIZE); it
	// is not enforced. 0 means Lambda's default of 128.
	MemoryMB int
	// MaxConcurrency caps the instances (and so concurrent invocations) of this
	// function; 0 means DefaultMaxConcurrency.
	MaxConcurrency int
	// Credentials are the function's own, as Lambda hands each function its
	// execution role's: the local endpoints know which function signed a
	// request and check it against that function's policies. Empty gives
	// dummy credentials, for endpoints that check nothing.
	Credentials aws.Credentials
}

const (
	// defaultTimeout and defaultMemoryMB are Lambda's own defaults when a
	// template leaves Timeout and MemorySize out.
	defaultTimeout  = 3 * time.Second
	defaultMemoryMB = 128

	// DefaultMaxConcurrency: each instance is a process of a few tens of MB.
	// Ten per function lets the fan-out and the end-to-end tests (ten users)
	// really run concurrently, while a template of half a dozen functions stays
	// under ~60 processes on a small development machine.
	DefaultMaxConcurrency = 10
)

// reservedEnv are the variables Lambda refuses in a function's Environment
// because the platform sets them.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true, "AWS_LAMBDA_LOG_GROUP_NAME": true,
	"AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true, "AWS_ACCESS_KEY_ID": true,
	"AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_LAMBDA_RUNTIME_API": true,
	"LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

// hostEnv are the only host variables a function inherits: enough for the Go
// runtime and tools to behave (paths, temp dir, locale), nothing that carries
// the developer's AWS identity or configuration.
var hostEnv = []string{"PATH", "HOME", "TMPDIR", "LANG", "SYSTEMROOT"}

// function is a registered Function and its pool of instances.
type function struct {
	cfg    Function
	creds  aws.Credentials
	arn    string
	region string

	// slots holds one token per running invocation: its capacity is
	// MaxConcurrency, so at most that many instances are ever busy, and since
	// a new instance is started only when none is idle, at most that many exist.
	slots chan struct{}

	mu          sync.Mutex
	idle        []*instance // most recently used last; taken from the end so older ones age out
	all         map[*instance]struct{}
	started     int
	invocations int
	// binary and gen are the code new instances run: Replace swaps the
	// binary and counts a generation, so instances of an older one are
	// stopped instead of going back to the pool.
	binary string
	gen    int
}

func newFunction(cfg Function, region, accountID string) (*function, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("function name is empty")
	}
	if cfg.Binary == "" {
		return nil, fmt.Errorf("function %s: binary is empty", cfg.Name)
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("function %s: %w", cfg.Name, err)
	}
	bin, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", cfg.Name, err)
	}
	cfg.Binary = bin
	for k := range cfg.Env {
		if reservedEnv[k] {
			return nil, fmt.Errorf("function %s: environment variable %s is reserved by Lambda", cfg.Name, k)
		}
	}
	if cfg.Timeout < 0 || cfg.MemoryMB < 0 || cfg.MaxConcurrency < 0 {
		return nil, fmt.Errorf("function %s: Timeout, MemoryMB and MaxConcurrency must not be negative", cfg.Name)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = defaultMemoryMB
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	creds := cfg.Credentials
	if creds.AccessKeyID == "" {
		creds = aws.Credentials{AccessKeyID: "AKIDLOCALSTACK", SecretAccessKey: "localstack-secret", SessionToken: "localstack-session"}
	}
	return &function{
		cfg:    cfg,
		creds:  creds,
		arn:    fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, accountID, cfg.Name),
		region: region,
		slots:  make(chan struct{}, cfg.MaxConcurrency),
		binary: cfg.Binary,
		all:    make(map[*instance]struct{}),
	}, nil
}

// environ builds the process environment from scratch, as Lambda does.
func (f *function) environ(runtimeAPI, binary string) []string {
	env := map[string]string{}
	for _, k := range hostEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	for k, v := range map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME":        f.cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + f.cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "local/[$LATEST]" + f.cfg.Name,
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_LAMBDA_LOG_FORMAT":           "JSON",
		"AWS_REGION":                      f.region,
		"AWS_DEFAULT_REGION":              f.region,
		// The function's own local credentials; real ones must never reach
		// a local function.
		"AWS_ACCESS_KEY_ID":     f.creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": f.creds.SecretAccessKey,
		"AWS_SESSION_TOKEN":     f.creds.SessionToken,
		"_HANDLER":              filepath.Base(binary),
		"LAMBDA_TASK_ROOT":      filepath.Dir(binary),
		"LAMBDA_RUNTIME_DIR":    filepath.Dir(binary),
		"TZ":                    ":UTC", // Lambda runs in UTC
	} {
		env[k] = v
	}
	for k, v := range f.cfg.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func (f *function) releaseSlot() { <-f.slots }

// takeIdle pops the most recently used idle instance, or nil.
func (f *function) takeIdle() *instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.idle) > 0 {
		inst := f.idle[len(f.idle)-1]
		f.idle = f.idle[:len(f.idle)-1]
		if !inst.hasExited() {
			return inst
		}
	}
	return nil
}

// track records a newly started instance. One already forgotten (it exited
// before track ran) is not added.
func (f *function) track(inst *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started++
	if !inst.forgotten {
		f.all[inst] = struct{}{}
	}
}

// putIdle returns a healthy instance to the pool; false for an instance
// of replaced code, which the caller stops.
func (f *function) putIdle(inst *instance) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, live := f.all[inst]; !live {
		return true // it exited: nothing to stop
	}
	if inst.gen != f.gen {
		return false
	}
	inst.lastUsed = time.Now()
	f.idle = append(f.idle, inst)
	return true
}

// code returns the binary new instances run and its generation.
func (f *function) code() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.binary, f.gen
}

// replace makes binary the code of new instances and returns the idle
// instances of the old code, now out of the pool.
func (f *function) replace(binary string) []*instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.binary = binary
	f.gen++
	old := f.idle
	f.idle = nil
	return old
}

// forget drops an instance whose process has exited.
func (f *function) forget(inst *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst.forgotten = true
	delete(f.all, inst)
	for i, x := range f.idle {
		if x == inst {
			f.idle = append(f.idle[:i], f.idle[i+1:]...)
			break
		}
	}
}

// takeExpired removes and returns idle instances unused since before cutoff.
func (f *function) takeExpired(cutoff time.Time) []*instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	var expired []*instance
	kept := f.idle[:0]
	for _, inst := range f.idle {
		if inst.lastUsed.Before(cutoff) {
			expired = append(expired, inst)
		} else {
			kept = append(kept, inst)
		}
	}
	f.idle = kept
	return expired
}

func (f *function) instances() []*instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*instance, 0, len(f.all))
	for inst := range f.all {
		out = append(out, inst)
	}
	return out
}

// Stats is a snapshot of one function's pool.
type Stats struct {
	Instances int // live processes
	Idle      int // live processes waiting for work
	Started   int // processes started since Register
	// Invocations counts Invoke calls since Register, whatever their outcome.
	Invocations int
}

func (f *function) stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Stats{Instances: len(f.all), Idle: len(f.idle), Started: f.started, Invocations: f.invocations}
}
