// Package golden compares test output with golden files under testdata/.
// Run the tests with -update to rewrite the files from the current output
// after a deliberate change, then review the diff before committing.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is registered once here so every test binary that uses golden
// files takes the same flag: go test ./pkg/x -update.
var update = flag.Bool("update", false, "rewrite golden files from the current output")

// Assert fails t unless got equals the contents of the file at path. With
// -update it first writes got to path (creating its directory), so the
// comparison passes and the file shows in the diff.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("golden: %v", err)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("golden: %v", err)
			return
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run go test -update to create it)", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update to accept it):\n got: %s\nwant: %s", path, got, want)
	}
}
