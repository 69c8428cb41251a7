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
	if f := r.Failing; f != nil {
		calls := "calls not counted (stack not in-process)"
		if f.Calls != nil {
			calls = fmt.Sprintf("%d @connections calls to them", *f.Calls)
		}
		row("failing connections", "%d answering %d, %s", f.Connections, f.Status, calls)
	}
	if g := r.SmallGroup; g != nil {
		row("small group: members", "%d", g.Members)
		row("small group: expected / received", "%d / %d", g.Expected, g.Received)
		row("small group: duplicated / missing", "%d / %d", g.Duplicated, g.Missing)
		row("small group: posts refused / errors", "%d / %d", g.Refused, g.PostErrors)
		row("small group: latency ms min/p50/p90/p99/max", "%.1f / %.1f / %.1f / %.1f / %.1f", g.Latency.Min, g.Latency.P50, g.Latency.P90, g.Latency.P99, g.Latency.Max)
	}
	if r.Stack != nil {
		row("stack after run", "heap %.1f MiB, %d goroutines, %d function instances", r.Stack.HeapMiB, r.Stack.Goroutines, r.Stack.Instances)
	}
	return tw.Flush()
}
