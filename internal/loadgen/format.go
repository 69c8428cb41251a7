package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints a report as an aligned table for people.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...)
	}
	row("members / connections / posts", "%d / %d / %d", r.Members, r.Connections, r.Posts)
	row("deliveries expected", "%d", r.Expected)
	row("received", "%d", r.Received)
	row("duplicated", "%d", r.Duplicated)
	row("missing", "%d", r.Missing)
	row("posts refused (429)", "%d", r.Refused)
	row("post errors", "%d", r.PostErrors)
	row("delivery latency ms min/p50/p90/p99/max", "%.1f / %.1f / %.1f / %.1f / %.1f", r.Latency.Min, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	row("fan-out throughput", "%.0f deliveries/s", r.Throughput)
	row("POST latency ms p50/p99", "%.1f / %.1f", r.PostLatency.P50, r.PostLatency.P99)
	row("connect+subscribe ms p50/p99", "%.1f / %.1f", r.ConnectTime.P50, r.ConnectTime.P99)
	row("all connections ready ms", "%.0f", r.ConnectAll)
	if r.Stack != nil {
		row("stack after run", "heap %.1f MiB, %d goroutines, %d function instances", r.Stack.HeapMiB, r.Stack.Goroutines, r.Stack.Instances)
	}
	return tw.Flush()
}
