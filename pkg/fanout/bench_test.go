package fanout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/groupcast/groupcast/pkg/applog"
)

// BenchmarkPushPost delivers one post to 100, 1,000 and 10,000 subscribed
// connections through the real SDK client and a local @connections server.
// Subscribers come from the in-memory store (pages of 1,000, like a Query
// page of small items), so the benchmark measures the push path: worker
// pool, SDK serialisation and HTTP, not DynamoDB.
func BenchmarkPushPost(b *testing.B) {
	records := loadRecords(b)
	post := batch(records, "post-created")
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("connections=%d", n), func(b *testing.B) {
			store := newMemStore()
			store.pageSize = 1000
			for i := range n {
				store.subscribe("g1", fmt.Sprintf("user-%d", i), fmt.Sprintf("conn-%d", i))
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			b.Cleanup(srv.Close)
			f, err := New(store, NewManagementClient(testAWSConfig(), srv.URL+"/dev", DefaultConcurrency),
				slog.New(slog.NewJSONHandler(io.Discard, nil)), applog.NewEMF(io.Discard, "bench", nil), Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				resp, err := f.Handle(context.Background(), post)
				if err != nil || len(resp.BatchItemFailures) != 0 {
					b.Fatalf("Handle = %+v, %v", resp, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
