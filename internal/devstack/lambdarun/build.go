package lambdarun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// defaultBuildParallelism: each `go build` already compiles its package graph
// on every core, so more concurrent builds mostly add memory pressure; two
// overlap one build's single-threaded link step with another's compile.
const defaultBuildParallelism = 2

// BuildSpec names the functions to build.
type BuildSpec struct {
	// RepoRoot is the module directory `go build` runs in.
	RepoRoot string
	// Functions maps a function name to its package, relative to RepoRoot
	// ("./functions/api" or "functions/api").
	Functions map[string]string
	// OutDir receives <OutDir>/<name>/bootstrap. Empty: a temporary directory
	// that Close removes.
	OutDir string
	// Parallelism bounds concurrent `go build` processes; 0 means 2.
	Parallelism int
	// Progress receives a line as each function starts building and one
	// with its time when it is done, so a cold build (minutes) does not
	// look like a hang; nil for none.
	Progress io.Writer
}

// Build compiles each function for the host (CGO_ENABLED=0, -trimpath) into
// <OutDir>/<name>/bootstrap, the layout of a provided.al2023 deployment
// package. Repeated builds are fast because `go build` reuses its cache.
// It returns the binaries that built; the error names every function that did
// not, with the compiler's output.
func (r *Runtime) Build(ctx context.Context, spec BuildSpec) (map[string]string, error) {
	if spec.RepoRoot == "" {
		return nil, errors.New("lambdarun: build: RepoRoot is empty")
	}
	outDir := spec.OutDir
	if outDir == "" {
		dir, err := os.MkdirTemp("", "lambdarun-build-")
		if err != nil {
			return nil, fmt.Errorf("lambdarun: build: %w", err)
		}
		r.mu.Lock()
		r.tempDirs = append(r.tempDirs, dir)
		r.mu.Unlock()
		outDir = dir
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return nil, fmt.Errorf("lambdarun: build: %w", err)
	}
	parallelism := spec.Parallelism
	if parallelism <= 0 {
		parallelism = defaultBuildParallelism
	}

	names := make([]string, 0, len(spec.Functions))
	for name := range spec.Functions {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error order

	var (
		mu     sync.Mutex
		done   int
		built  = make(map[string]string, len(names))
		errs   = make([]error, len(names))
		wg     sync.WaitGroup
		tokens = make(chan struct{}, parallelism)
	)
	for i, name := range names {
		wg.Go(func() {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("build %s: %w", name, ctx.Err())
				return
			}
			defer func() { <-tokens }()
			say := func(format string, args ...any) {
				if spec.Progress != nil {
					fmt.Fprintf(spec.Progress, format+"\n", args...)
				}
			}
			mu.Lock()
			say("  building %s", name)
			mu.Unlock()
			start := time.Now()
			bin, err := buildOne(ctx, spec.RepoRoot, spec.Functions[name], filepath.Join(outDir, name))
			took := time.Since(start).Seconds()
			// One lock for the count and the line keeps lines whole and
			// numbered in the order they are printed.
			mu.Lock()
			defer mu.Unlock()
			done++
			if err != nil {
				errs[i] = fmt.Errorf("build %s: %w", name, err)
				say("  %s failed after %.1f s (%d/%d)", name, took, done, len(names))
				return
			}
			built[name] = bin
			say("  built %s in %.1f s (%d/%d)", name, took, done, len(names))
		})
	}
	wg.Wait()
	return built, errors.Join(errs...)
}

func buildOne(ctx context.Context, repoRoot, pkg, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if !strings.HasPrefix(pkg, "./") && !strings.HasPrefix(pkg, "../") && !filepath.IsAbs(pkg) {
		pkg = "./" + pkg // a bare "functions/api" would be read as an import path
	}
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, pkg)
	cmd.Dir = repoRoot
	// Build for the machine the process runs on, whatever GOOS/GOARCH the
	// developer exported for deploying (SAM's arm64 target, say).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(out.String()))
	}
	return bin, nil
}
