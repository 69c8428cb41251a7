package fanout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"golang.org/x/time/rate"

	"github.com/groupcast/groupcast/pkg/applog"
)

// accountPoster is @connections behind the account's token bucket: a call
// beyond it counts as a 429. It answers at once, so only the callers'
// buckets pace the calls.
type accountPoster struct {
	account          *rate.Limiter
	calls, throttled atomic.Int64
}

func (p *accountPoster) PostToConnection(context.Context, *apigatewaymanagementapi.PostToConnectionInput, ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	p.calls.Add(1)
	if !p.account.Allow() {
		p.throttled.Add(1)
	}
	return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
}

// Fresh push workers together stay within the account's throttle, burst
// included: their buckets start full, and together they must not hold more
// than the account's burst (half a second of its rate, as AWS's default
// 10,000 RPS / 5,000). The account here is scaled down to 1,000 RPS / 500
// so the test is short; the budget is the whole account rate, 4 workers
// of 250/s. With a second's worth of burst per worker the four send 1,000
// calls at once and about 500 are throttled.
func TestWorkerBurstsStayWithinAccountThrottle(t *testing.T) {
	const (
		accountRate, accountBurst = 1000, 500
		workers                   = 4
		perWorker                 = 400 // 1,600 calls: past the burst into the steady rate
	)
	poster := &accountPoster{account: rate.NewLimiter(accountRate, accountBurst)}
	var wg sync.WaitGroup
	for w := range workers {
		f, err := New(newMemStore(), poster, newMemQueue(), slog.New(slog.NewJSONHandler(io.Discard, nil)), applog.NewEMF(io.Discard, "test", nil),
			Config{PushQueueURL: pushQueue, InboxQueueURL: inboxQueue, Concurrency: 100, RatePerSecond: accountRate / workers})
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, perWorker)
		for i := range ids {
			ids[i] = fmt.Sprintf("w%d-c%d", w, i)
		}
		wg.Go(func() { f.pushIDs(context.Background(), []byte(`{}`), 1, ids) })
	}
	wg.Wait()
	// A few calls may bunch up when goroutines are scheduled late on a
	// busy machine; a burst over the account's shows as hundreds.
	if n, calls := poster.throttled.Load(), poster.calls.Load(); calls != workers*perWorker || n > 40 {
		t.Errorf("%d of %d calls beyond the account's %d RPS / %d burst, want (nearly) none", n, calls, accountRate, accountBurst)
	}
}
