package stack

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/lambdarun"
)

// Options.Watch polls the functions' sources rather than using file system
// events: fsnotify is not a dependency, it needs a watch per directory that
// must be re-added whenever the imports change, and editors that save by
// renaming defeat naive watches. A stack's functions import a few dozen
// module-local directories holding a few hundred files; stat-ing them every
// half second costs well under a millisecond of CPU.
const (
	// watchInterval: a saved file is rebuilt about half a second later,
	// quicker than a person switches to a terminal.
	watchInterval = 500 * time.Millisecond
)

// watcher rebuilds the functions whose sources change.
type watcher struct {
	s        *Stack
	repoRoot string
	outDir   string               // rebuilt binaries go under outDir/.watch/N
	pkgs     map[string]string    // function id -> package
	deps     map[string][]string  // function id -> module-local package dirs
	bins     map[string]string    // function id -> binary it runs now
	say      func(string, ...any) // progress line
	stat     map[string]fileStamp // the last poll
	rebuilds int
	cancel   context.CancelFunc // ends a build in progress at Close
	done     chan struct{}
	listDeps func(pkg string) ([]string, error)
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func (b *builder) startWatch(ctx context.Context, bins map[string]string) error {
	w := &watcher{s: b.s, repoRoot: b.tmpl.Dir, pkgs: map[string]string{}, deps: map[string][]string{}, bins: map[string]string{},
		say: b.say, done: make(chan struct{})}
	root, err := filepath.Abs(w.repoRoot)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	w.repoRoot = root
	w.listDeps = w.goListDeps
	for _, f := range b.fns {
		w.pkgs[f.ID], w.bins[f.ID] = f.Package, bins[f.ID]
		w.outDir = filepath.Dir(filepath.Dir(bins[f.ID])) // bins are <outDir>/<id>/bootstrap
		if w.deps[f.ID], err = w.listDeps(f.Package); err != nil {
			return err
		}
	}
	w.stat = w.scan()
	b.say("watching %d files for changes (functions are rebuilt and swapped; state and sockets stay)", len(w.stat))
	b.s.watch = w
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	go w.run(runCtx)
	return nil
}

// goListDeps returns the directories of the module-local packages a
// package imports (itself included): code in the module cache never
// changes under a version, and the standard library is not ours to edit.
func (w *watcher) goListDeps(pkg string) ([]string, error) {
	if !strings.HasPrefix(pkg, "./") && !strings.HasPrefix(pkg, "../") && !filepath.IsAbs(pkg) {
		pkg = "./" + pkg
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", pkg)
	cmd.Dir = w.repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("watch: go list -deps %s: %w\n%s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	var dirs []string
	for _, d := range strings.Fields(string(out)) {
		if d == w.repoRoot || strings.HasPrefix(d, w.repoRoot+string(filepath.Separator)) {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// files are the watched paths: the Go files of every dependency directory
// (tests excluded: they are not in the binary) and go.mod and go.sum.
func (w *watcher) files() []string {
	seen := map[string]bool{}
	for _, dirs := range w.deps {
		for _, d := range dirs {
			seen[d] = true
		}
	}
	out := []string{filepath.Join(w.repoRoot, "go.mod"), filepath.Join(w.repoRoot, "go.sum")}
	for d := range seen {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue // a removed package: its importers fail to build and say so
		}
		for _, e := range entries {
			if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
				out = append(out, filepath.Join(d, n))
			}
		}
	}
	sort.Strings(out)
	return out
}

func (w *watcher) scan() map[string]fileStamp {
	m := map[string]fileStamp{}
	for _, p := range w.files() {
		if fi, err := os.Stat(p); err == nil {
			m[p] = fileStamp{fi.Size(), fi.ModTime()}
		}
	}
	return m
}

// changed lists the paths that differ between two polls.
func changed(old, cur map[string]fileStamp) []string {
	var out []string
	for p, st := range cur {
		if o, ok := old[p]; !ok || o != st {
			out = append(out, p)
		}
	}
	for p := range old {
		if _, ok := cur[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var pending []string // changes seen, waiting for the files to settle
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := w.scan()
		diff := changed(w.stat, cur)
		w.stat = cur
		if len(diff) > 0 {
			// An editor or formatter may still be writing: rebuild once a
			// poll finds nothing new.
			pending = append(pending, diff...)
			continue
		}
		if len(pending) == 0 {
			continue
		}
		w.rebuild(ctx, pending)
		pending = nil
		w.stat = w.scan() // the rebuild may have found new dependencies
	}
}

// rebuild builds the functions affected by the changed paths and swaps
// each one that built; one that fails keeps running its previous code.
func (w *watcher) rebuild(ctx context.Context, paths []string) {
	paths = slices.Compact(slices.Sorted(slices.Values(paths)))
	affected := map[string]string{}
	for id, dirs := range w.deps {
		for _, p := range paths {
			base := filepath.Base(p)
			if base == "go.mod" || base == "go.sum" || slices.Contains(dirs, filepath.Dir(p)) {
				affected[id] = w.pkgs[id]
			}
		}
	}
	if len(affected) == 0 {
		return
	}
	ids := slices.Sorted(maps.Keys(affected))
	rel := make([]string, len(paths))
	for i, p := range paths {
		rel[i], _ = filepath.Rel(w.repoRoot, p)
	}
	w.say("watch: %s changed: rebuilding %s", shortList(rel), strings.Join(ids, ", "))
	began := time.Now()
	w.rebuilds++
	out := filepath.Join(w.outDir, ".watch", fmt.Sprint(w.rebuilds))
	bins, err := w.s.runtime.Build(ctx, lambdarun.BuildSpec{RepoRoot: w.repoRoot, Functions: affected, OutDir: out, Progress: w.s.progress})
	if ctx.Err() != nil {
		return // closing
	}
	if err != nil {
		w.say("watch: build failed; the functions that did not build keep their previous code:\n%v", err)
	}
	for _, id := range ids {
		bin, ok := bins[id]
		if !ok {
			continue
		}
		if err := w.s.runtime.Replace(id, bin); err != nil {
			w.say("watch: swap %s: %v", id, err)
			continue
		}
		if prev := w.bins[id]; strings.Contains(prev, string(filepath.Separator)+".watch"+string(filepath.Separator)) {
			// The old instances run from an unlinked file until they stop.
			os.RemoveAll(filepath.Dir(prev))
		}
		w.bins[id] = bin
	}
	if len(bins) > 0 {
		w.say("watch: swapped %s in %.1f s (invocations in flight finish on the old code)", strings.Join(slices.Sorted(maps.Keys(bins)), ", "), time.Since(began).Seconds())
	}
	// The change may have added or dropped imports.
	for id := range bins {
		if deps, err := w.listDeps(w.pkgs[id]); err == nil {
			w.deps[id] = deps
		}
	}
}

// shortList names up to three paths and counts the rest.
func shortList(paths []string) string {
	if len(paths) <= 3 {
		return strings.Join(paths, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(paths[:3], ", "), len(paths)-3)
}

func (w *watcher) close() {
	w.cancel()
	<-w.done
}
