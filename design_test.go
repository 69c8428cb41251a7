// Package design_test checks the import rules DESIGN.md states, so the
// package graph it describes stays true.
package design_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/groupcast/groupcast"

// Tooling is everything that exists only for developers: under internal/
// the local stack (devstack), the template interpreter (cfn), the load tool
// (loadgen) and the test emulator (dynamotest); the commands in cmd/; and
// the embedded emulator. The product never depends on it.
var tooling = []string{
	module + "/internal",
	module + "/cmd",
	"github.com/sivchari/kumo",
}

// TestImportBoundaries enforces DESIGN.md's "Packages and imports".
func TestImportBoundaries(t *testing.T) {
	tests := []struct {
		name      string
		patterns  []string // go list patterns of the packages checked
		except    []string // packages matched but not checked
		forbidden []string // import path prefixes none of them may depend on
	}{
		{
			name:      "the product never depends on the tooling",
			patterns:  []string{"./functions/...", "./pkg/..."},
			except:    tooling,
			forbidden: tooling,
		},
		{
			name:      "the domain imports no AWS package",
			patterns:  []string{"./pkg/groupcast/..."},
			forbidden: []string{"github.com/aws/"},
		},
		{
			name:      "no package imports a Lambda's main",
			patterns:  []string{"./pkg/...", "./cmd/..."},
			forbidden: []string{module + "/functions/"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, pkg := range listPackages(t, tc.patterns...) {
				if isUnder(pkg.ImportPath, tc.except) {
					continue
				}
				for _, dep := range pkg.Deps {
					if isUnder(dep, tc.forbidden) {
						t.Errorf("%s depends on %s", pkg.ImportPath, dep)
					}
				}
			}
		})
	}
}

type goPackage struct {
	ImportPath string
	Deps       []string
}

// listPackages runs `go list -deps`-style listing: every package the
// patterns match, each with its transitive (non-test) dependencies.
func listPackages(t *testing.T, patterns ...string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Deps"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v matched no package", patterns)
	}
	return pkgs
}

func isUnder(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}
