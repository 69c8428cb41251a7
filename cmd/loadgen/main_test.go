package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/internal/loadgen"
)

func TestOutcomeTellsMissingFromRefused(t *testing.T) {
	tests := []struct {
		name    string
		reports []loadgen.Report
		want    int // 0 for no error
	}{
		{name: "clean", reports: []loadgen.Report{{Expected: 9, Received: 9}}},
		{name: "refused only", reports: []loadgen.Report{{Expected: 6, Received: 6, Refused: 3}}, want: exitRefused},
		{name: "missing", reports: []loadgen.Report{{Expected: 9, Received: 8, Missing: 1}}, want: exitMissing},
		{name: "missing wins over refused", reports: []loadgen.Report{{Missing: 1, Refused: 2}}, want: exitMissing},
		{name: "post errors win over refused", reports: []loadgen.Report{{PostErrors: 1, Refused: 2}}, want: exitPostErrors},
		{name: "summed over runs", reports: []loadgen.Report{{}, {Refused: 1}}, want: exitRefused},
		{name: "small group missing", reports: []loadgen.Report{{Expected: 9, Received: 9, SmallGroup: &loadgen.GroupStats{Expected: 2, Received: 1, Missing: 1}}}, want: exitMissing},
		{name: "small group post errors", reports: []loadgen.Report{{SmallGroup: &loadgen.GroupStats{PostErrors: 1}}}, want: exitPostErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := outcome(tt.reports)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("outcome = %v, want nil", err)
				}
				return
			}
			var out *outcomeError
			if !errors.As(err, &out) || out.code != tt.want {
				t.Fatalf("outcome = %v, want exit %d", err, tt.want)
			}
		})
	}
}

func TestHelpDocumentsExitStatus(t *testing.T) {
	var stderr bytes.Buffer
	err := run([]string{"-h"}, &bytes.Buffer{}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Exit status:", "2  deliveries missing", "3  posts refused with 429"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, stderr.String())
		}
	}
}

// The in-process stack's start-up steps (minutes of compiling on a cold
// cache) reach the progress writer, and nothing does under -q.
func TestInProcessStackReportsStartUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		progress io.Writer
	}{
		{"progress", &bytes.Buffer{}},
		{"quiet", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := inProcessOptions("template.yaml", time.Hour, stack.Timing{}, nil, io.Discard, tc.progress)
			if o.Progress != tc.progress {
				t.Fatalf("stack progress %v, want %v", o.Progress, tc.progress)
			}
		})
	}
}
