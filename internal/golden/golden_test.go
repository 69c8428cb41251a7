package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for a *testing.T so failures can be observed. Assert
// returns after Fatalf, so no Goexit is needed.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func TestAssert(t *testing.T) {
	tests := []struct {
		name     string
		file     *string // nil: no file
		got      string
		update   bool
		wantFail string // "" means pass
		wantFile string // the file's contents afterwards, when set
	}{
		{name: "equal", file: ptr("a\n"), got: "a\n"},
		{name: "differs", file: ptr("a\n"), got: "b\n", wantFail: "differs from"},
		{name: "trailing newline counts", file: ptr("a\n"), got: "a", wantFail: "differs from"},
		{name: "missing file", got: "a\n", wantFail: "run go test -update to create it"},
		{name: "update rewrites", file: ptr("a\n"), got: "b\n", update: true, wantFile: "b\n"},
		{name: "update creates", got: "c\n", update: true, wantFile: "c\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "testdata", "x.golden")
			if tc.file != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(*tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			old := *update
			*update = tc.update
			t.Cleanup(func() { *update = old })

			r := &recorder{}
			Assert(r, path, []byte(tc.got))
			switch {
			case tc.wantFail == "" && len(r.failures) > 0:
				t.Errorf("failed: %q", r.failures)
			case tc.wantFail != "" && (len(r.failures) != 1 || !strings.Contains(r.failures[0], tc.wantFail)):
				t.Errorf("failures %q, want one containing %q", r.failures, tc.wantFail)
			}
			if tc.wantFile != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tc.wantFile {
					t.Errorf("file holds %q, want %q", b, tc.wantFile)
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }
