package applog

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every Groupcast metric.
const Namespace = "Groupcast"

// Unit is a CloudWatch metric unit.
type Unit string

const (
	Count        Unit = "Count"
	Milliseconds Unit = "Milliseconds"
)

// Metric is one value of one metric.
type Metric struct {
	Name  string
	Unit  Unit
	Value float64
}

// EMF writes CloudWatch Embedded Metric Format lines: CloudWatch Logs turns
// each line into metrics without any PutMetricData call (no extra latency,
// no IAM permission, no SDK client). It is safe for concurrent use.
type EMF struct {
	mu           sync.Mutex
	w            io.Writer
	functionName string
	now          func() time.Time
}

// NewEMF returns an EMF writer whose metrics carry the FunctionName
// dimension. now is the clock (nil means time.Now).
func NewEMF(w io.Writer, functionName string, now func() time.Time) *EMF {
	if now == nil {
		now = time.Now
	}
	return &EMF{w: w, functionName: functionName, now: now}
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Emit writes one line holding all metrics. Metrics with reserved or
// duplicate names are rejected, since CloudWatch would drop the whole line.
func (e *EMF) Emit(metrics ...Metric) error {
	if len(metrics) == 0 {
		return nil
	}
	line := map[string]any{"FunctionName": e.functionName}
	defs := make([]emfMetric, 0, len(metrics))
	for _, m := range metrics {
		if _, taken := line[m.Name]; taken || m.Name == "" || m.Name == "_aws" {
			return fmt.Errorf("applog: invalid or duplicate metric name %q", m.Name)
		}
		line[m.Name] = m.Value
		defs = append(defs, emfMetric{Name: m.Name, Unit: m.Unit})
	}
	line["_aws"] = emfMetadata{
		Timestamp: e.now().UnixMilli(),
		CloudWatchMetrics: []emfDirective{{
			Namespace:  Namespace,
			Dimensions: [][]string{{"FunctionName"}},
			Metrics:    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("applog: encode EMF line: %w", err)
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("applog: write EMF line: %w", err)
	}
	return nil
}
