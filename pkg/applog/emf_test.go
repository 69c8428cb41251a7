package applog

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/golden"
)

func TestEMFGolden(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 0, 0, 123e6, time.UTC)
	var buf bytes.Buffer
	emf := NewEMF(&buf, "groupcast-fanout", func() time.Time { return at })
	err := emf.Emit(
		Metric{Name: "Delivered", Unit: Count, Value: 42},
		Metric{Name: "Gone", Unit: Count, Value: 1},
		Metric{Name: "Failed", Unit: Count, Value: 0},
		Metric{Name: "FanoutLagMs", Unit: Milliseconds, Value: 87.5},
	)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "emf.golden.json"), buf.Bytes())
	if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("EMF output must be exactly one line: %q", buf.String())
	}
}

// TestEMFShape checks the parts CloudWatch requires, independent of the
// golden file's byte layout: every declared metric has a top-level value and
// every dimension key is present.
func TestEMFShape(t *testing.T) {
	var buf bytes.Buffer
	if err := NewEMF(&buf, "fn", nil).Emit(Metric{Name: "Delivered", Unit: Count, Value: 3}); err != nil {
		t.Fatal(err)
	}
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		FunctionName string
		Delivered    float64
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	d := line.AWS.CloudWatchMetrics
	if line.AWS.Timestamp <= 0 || len(d) != 1 || d[0].Namespace != Namespace || line.FunctionName != "fn" || line.Delivered != 3 {
		t.Fatalf("unexpected EMF line: %s", buf.String())
	}
	if len(d[0].Dimensions) != 1 || len(d[0].Dimensions[0]) != 1 || d[0].Dimensions[0][0] != "FunctionName" {
		t.Errorf("dimensions = %v", d[0].Dimensions)
	}
	if len(d[0].Metrics) != 1 || d[0].Metrics[0].Name != "Delivered" || d[0].Metrics[0].Unit != "Count" {
		t.Errorf("metrics = %v", d[0].Metrics)
	}
}

func TestEMFRejectsBadNames(t *testing.T) {
	tests := []struct {
		name    string
		metrics []Metric
	}{
		{"duplicate", []Metric{{Name: "A", Unit: Count}, {Name: "A", Unit: Count}}},
		{"dimension clash", []Metric{{Name: "FunctionName", Unit: Count}}},
		{"reserved", []Metric{{Name: "_aws", Unit: Count}}},
		{"empty", []Metric{{Name: "", Unit: Count}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := NewEMF(&buf, "fn", nil).Emit(tt.metrics...); err == nil {
				t.Fatal("Emit accepted invalid metrics")
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q for a rejected line", buf.String())
			}
		})
	}
}
