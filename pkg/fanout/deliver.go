package fanout

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Poster pushes one message to one WebSocket connection. The SDK's
// *apigatewaymanagementapi.Client and *ManagementClient implement it.
type Poster interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, optFns ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
}

// NewManagementClient returns the @connections client the fan-out shares
// across invocations: one HTTP client whose idle pool holds a keep-alive
// connection per worker (the SDK default keeps 10 per host, which would make
// the other workers redial on every call), and no SDK-level retries because
// deliverOne owns the retry policy (two stacked retryers multiply attempts).
// Successful posts take ManagementClient's signed-POST fast path; see there
// for what it replaces in the SDK and why.
func NewManagementClient(cfg aws.Config, endpoint string, concurrency int) *ManagementClient {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = concurrency * 2
		t.MaxIdleConnsPerHost = concurrency
	})
	c := &ManagementClient{
		sdk: apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			o.HTTPClient = httpClient
			o.Retryer = aws.NopRetryer{}
		}),
		http:      httpClient,
		creds:     cfg.Credentials,
		signer:    v4.NewSigner(),
		region:    cfg.Region,
		userAgent: userAgent(),
	}
	if u, err := url.Parse(endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		c.base = u
	} else {
		// The SDK reports a bad endpoint on every call in its own words.
		c.creds = nil
	}
	return c
}

// RetryPolicy bounds the attempts of one delivery.
type RetryPolicy struct {
	// MaxAttempts counts the first try. Default 4: a 429 (throttle or the
	// client's buffer full) or a 5xx at @connections usually clears within
	// a few hundred ms; if three retries don't do it, the connection goes
	// to the push queue for a later round (Config.MaxRounds), never back to
	// Lambda with the whole record.
	MaxAttempts int
	// BaseDelay and MaxDelay shape exponential backoff with full jitter
	// (sleep uniformly in [0, min(MaxDelay, BaseDelay*2^retry))): full
	// jitter spreads thousands of concurrent retries out instead of
	// hitting the throttle again in lock-step. Defaults 50 ms and 1 s keep
	// the expected extra wait of a failing delivery under half a second.
	BaseDelay, MaxDelay time.Duration
	// CallTimeout caps one PostToConnection. Default 2 s: a healthy call
	// takes tens of ms in-region, so 2 s only cuts off hung calls, and four
	// attempts still fit easily within the function timeout.
	CallTimeout time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 50 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = time.Second
	}
	if p.CallTimeout <= 0 {
		p.CallTimeout = 2 * time.Second
	}
	return p
}

// backoff returns the full-jitter sleep before retry number retry (0-based).
func (p RetryPolicy) backoff(retry int) time.Duration {
	ceiling := p.MaxDelay
	if retry < 30 { // beyond that the shift overflows; MaxDelay applies anyway
		if d := p.BaseDelay << retry; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

type outcome int

const (
	delivered outcome = iota
	gone
	// exhausted: retryable failures (429, 5xx, timeouts) on every attempt.
	exhausted
	// rejected: a non-retryable answer (403, 413): trying again fails the same way.
	rejected
	// unattempted: the deadline came before the first call; nothing was sent.
	unattempted
)

// pushResult is what one push did. Retry holds the connections that have
// not accepted the event and may still: exhausted and unattempted ones.
// A connection that accepted it (or is gone) is never in it, so whoever
// retries the remainder pushes again only to connections that did not
// accept the event.
type pushResult struct {
	delivered, gone, rejected atomic.Int64
	mu                        sync.Mutex
	exhausted, unattempted    []string
}

func (r *pushResult) add(id string, o outcome) {
	switch o {
	case delivered:
		r.delivered.Add(1)
	case gone:
		r.gone.Add(1)
	case rejected:
		r.rejected.Add(1)
	case exhausted:
		r.mu.Lock()
		r.exhausted = append(r.exhausted, id)
		r.mu.Unlock()
	default:
		r.mu.Lock()
		r.unattempted = append(r.unattempted, id)
		r.mu.Unlock()
	}
}

// push delivers payload to every connection id that produce sends, using
// f.cfg.Concurrency workers and at most attempts calls per connection.
// produce runs in the caller's goroutine, so a paginated lookup feeds the
// workers page by page while they post. Once ctx is done, send records
// the id as unattempted and returns false; produce should then stop.
func (f *Fanout) push(ctx context.Context, payload []byte, attempts int, produce func(send func(connectionID string) bool) error) (*pushResult, error) {
	res := &pushResult{}
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range f.cfg.Concurrency {
		wg.Go(func() {
			for id := range jobs {
				res.add(id, f.deliverOne(ctx, id, payload, attempts))
			}
		})
	}
	send := func(id string) bool {
		select {
		case jobs <- id:
			return true
		case <-ctx.Done():
			res.add(id, unattempted)
			return false
		}
	}
	err := produce(send)
	close(jobs)
	wg.Wait()
	return res, err
}

// pushIDs pushes to a known list of connections; the ids left when ctx
// ends are unattempted.
func (f *Fanout) pushIDs(ctx context.Context, payload []byte, attempts int, ids []string) *pushResult {
	var rest []string
	res, _ := f.push(ctx, payload, attempts, func(send func(string) bool) error {
		for i, id := range ids {
			if !send(id) {
				rest = ids[i+1:]
				return nil
			}
		}
		return nil
	})
	for _, id := range rest {
		res.add(id, unattempted)
	}
	return res
}

// deliverOne posts to one connection with up to attempts calls. A 410
// deletes the connection (and its subscriptions) so later fan-outs skip it.
func (f *Fanout) deliverOne(ctx context.Context, connectionID string, payload []byte, attempts int) outcome {
	policy := f.cfg.Retry
	for attempt := 1; ; attempt++ {
		// The account-wide @connections budget: wait for a token first, so
		// a throttled fan-out slows down instead of collecting 429s.
		if f.limiter != nil {
			if err := f.limiter.Wait(ctx); err != nil {
				if attempt == 1 {
					return unattempted
				}
				return exhausted
			}
		} else if ctx.Err() != nil && attempt == 1 {
			return unattempted
		}
		callCtx, cancel := context.WithTimeout(ctx, policy.CallTimeout)
		_, err := f.poster.PostToConnection(callCtx, &apigatewaymanagementapi.PostToConnectionInput{
			ConnectionId: aws.String(connectionID),
			Data:         payload,
		})
		cancel()
		switch {
		case err == nil:
			return delivered
		case isGone(err):
			f.forgetGone(ctx, connectionID)
			return gone
		case ctx.Err() != nil:
			// Cut off by our own deadline: it may still accept later.
			f.log.WarnContext(ctx, "delivery cut off at deadline", "connectionId", connectionID, "attempts", attempt, "error", err)
			return exhausted
		case !retryable(err):
			f.log.WarnContext(ctx, "delivery rejected", "connectionId", connectionID, "attempts", attempt, "error", err)
			return rejected
		case attempt >= attempts:
			f.log.WarnContext(ctx, "delivery failed", "connectionId", connectionID, "attempts", attempt, "error", err)
			return exhausted
		}
		// Full jitter: a 429 storm spreads out instead of retrying in step.
		t := time.NewTimer(policy.backoff(attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			f.log.WarnContext(ctx, "delivery abandoned at deadline", "connectionId", connectionID, "attempts", attempt, "error", err)
			return exhausted
		case <-t.C:
		}
	}
}

// handshakeGrace is how long after connectedAt a 410 does not prove a
// connection dead. $connect writes the connection item before API Gateway
// finishes the handshake, and until then @connections answers 410 for it;
// deleting the item in that window would leave a live socket that no
// fan-out can find. API Gateway's integration timeout (29 s) bounds the
// window, measured from connectedAt, the start of the handshake.
const handshakeGrace = 30 * time.Second

// forgetGone deletes a connection that answered 410, and its
// subscriptions, so later fan-outs skip it. A failure is only logged: the
// connection's TTL and $disconnect clean up too, and failing the record
// would re-push to every other subscriber.
func (f *Fanout) forgetGone(ctx context.Context, connectionID string) {
	c, err := f.store.GetConnection(ctx, connectionID)
	switch {
	case groupcast.ErrorCode(err) == groupcast.CodeNotFound:
		// $disconnect got there first; subscriptions may remain.
	case err != nil:
		f.log.WarnContext(ctx, "read gone connection", "connectionId", connectionID, "error", err)
		return
	case f.cfg.Now().Sub(c.ConnectedAt) < handshakeGrace:
		f.log.InfoContext(ctx, "410 from a connection still in its handshake; kept", "connectionId", connectionID)
		return
	}
	if err := f.store.DeleteConnection(ctx, connectionID); err != nil {
		f.log.WarnContext(ctx, "delete gone connection", "connectionId", connectionID, "error", err)
	}
}

func isGone(err error) bool {
	var g *types.GoneException
	if errors.As(err, &g) {
		return true
	}
	return httpStatus(err) == http.StatusGone
}

// httpStatus returns the HTTP status of an SDK response error, 0 if none.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// retryable reports throttling (429), server errors (5xx), timeouts and
// network failures. 4xx such as 403 or 413 would fail the same way again.
func retryable(err error) bool {
	var limit *types.LimitExceededException
	if errors.As(err, &limit) {
		return true
	}
	if code := httpStatus(err); code != 0 {
		return code == http.StatusTooManyRequests || code >= 500
	}
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr)
}
