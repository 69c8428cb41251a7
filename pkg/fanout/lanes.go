package fanout

import (
	"context"
	"errors"
	"sync"
)

// Lanes runs the items of one batch with one lane per ordering key: items
// sharing a key run one after another, in batch order; different keys run
// at the same time. A batch holds at most a mapping's BatchSize items
// (10), so at most that many lanes run.
//
// Without lanes one large group's event holds up every later event of its
// batch: the audience lookup of a 10,000-subscriber group takes a few
// hundred ms and of a 100,000-subscriber one seconds, and a 10-member
// group's post behind it in the same batch would wait all of that
// (head-of-line blocking). Lambda keeps order per partition key only
// (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-ddb-params:
// ParallelizationFactor "processes ... while maintaining in-order
// processing at the partition-key level"), and a group's events share one
// key, so per-key order is all a client can rely on anyway.
//
// run's error stops the rest of its lane (they are reported as not run, so
// their order is kept on retry); other lanes go on. Lanes returns, for each
// item, its error, ErrNotRun, or nil.
func Lanes(ctx context.Context, n int, key func(i int) string, run func(ctx context.Context, i int) error) []error {
	errs := make([]error, n)
	var order []string
	lanes := map[string][]int{}
	for i := range n {
		k := key(i)
		if _, ok := lanes[k]; !ok {
			order = append(order, k)
		}
		lanes[k] = append(lanes[k], i)
	}
	var wg sync.WaitGroup
	for _, k := range order {
		items := lanes[k]
		wg.Go(func() {
			for j, i := range items {
				if err := run(ctx, i); err != nil {
					errs[i] = err
					for _, later := range items[j+1:] {
						errs[later] = ErrNotRun
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// ErrNotRun marks an item that Lanes did not run because an earlier item
// of its lane failed.
var ErrNotRun = errors.New("not run: an earlier event with the same key failed")
