// Package esm is the local stack's DynamoDB stream event source mapping: it
// reads a stream in order, filters records, invokes a function with the
// events.DynamoDBEvent Lambda would send, and handles failures the way
// Lambda does (partial batch responses, bisection, retries with backoff,
// maximum record age, an on-failure destination kept in memory).
//
// It reads through Source, which internal/devstack/dynamo's Server implements:
// a reader that finds nothing waits on the stream's wake-up channel, so a
// record reaches the function moments after the write and an idle mapping
// uses no CPU. With Options.PollInterval it instead polls on a fixed tick
// and ignores the wake-up, as Lambda does (the AWS timing profile).
//
// sqs.go is the SQS event source mapping.
package esm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/internal/devstack/dynamo"
	"github.com/groupcast/groupcast/internal/devstack/localaws"
)

// Invoker runs a function synchronously. The error is non-nil for function
// errors too.
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// Source is a stream to read from; *dynamo.Server implements it.
type Source interface {
	// Read returns up to limit records after afterSeq ("" = the oldest
	// retained) and a channel closed when the stream next changes.
	Read(streamARN, afterSeq string, limit int) ([]dynamo.Record, <-chan struct{}, error)
	// LatestSequenceNumber is the position of a LATEST iterator ("" when
	// the stream has no record yet).
	LatestSequenceNumber(streamARN string) (string, error)
}

// Starting positions.
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
)

// Limits and defaults, Lambda's.
const (
	DefaultBatchSize   = 100
	maxBatchSize       = 10000
	maxBatchingWindow  = 300 * time.Second
	maxRetryAttempts   = 10000
	minRecordAgeSecs   = 60
	maxRecordAgeSecs   = 604800
	maxFilters         = 5       // FilterCriteria takes at most 5 patterns
	maxPayloadBytes    = 6 << 20 // synchronous invocation payload limit
	defaultRetryBase   = 100 * time.Millisecond
	defaultRetryMax    = 10 * time.Second
	failureRecordLimit = 1000 // failures kept in memory; the oldest go first so a poison stream cannot grow memory without bound
	maxParallelization = 10   // ParallelizationFactor is 1..10 concurrent batches per shard
	// LambdaPollInterval: Lambda polls each shard of a DynamoDB stream
	// "at a base rate of 4 times per second", so a record waits 0-250 ms.
	// https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-dynamodb-polling
	LambdaPollInterval = 250 * time.Millisecond
)

// Mapping is one event source mapping, with the template's settings.
type Mapping struct {
	FunctionName               string
	StreamARN                  string
	StartingPosition           string        // TRIM_HORIZON or LATEST
	BatchSize                  int           // 0 = 100
	MaximumBatchingWindow      time.Duration // 0 = invoke as soon as records are there
	FilterPatterns             []string      // FilterCriteria.Filters[].Pattern
	ReportBatchItemFailures    bool          // FunctionResponseTypes: [ReportBatchItemFailures]
	BisectBatchOnFunctionError bool
	// MaximumRetryAttempts: -1 retries forever (Lambda's default; a caller
	// translating a template that omits it must set -1), 0 never retries.
	MaximumRetryAttempts int
	// MaximumRecordAgeInSeconds: -1 (or 0, which Lambda does not allow) is
	// no limit; otherwise 60 to 604800.
	MaximumRecordAgeInSeconds int
	OnFailureDestination      string // DestinationConfig.OnFailure.Destination ARN; "" still keeps the record locally
	// ParallelizationFactor: concurrent batches per shard, 1..10 (0 = 1).
	// Records are spread over that many lanes by a hash of the partition
	// key, so one key's records stay in order and never run concurrently.
	// https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-ddb-params
	ParallelizationFactor int
}

// Options configure a Poller.
type Options struct {
	Region, AccountID string // for the function ARN in failure records; default us-east-1, 000000000000
	Logger            *slog.Logger
	// Now is the clock for record age; default time.Now.
	Now func() time.Time
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff between
	// retries of a failing batch. Defaults 100 ms and 10 s: a local function
	// that failed once usually fails for a reason a person is fixing, so
	// retries start fast and settle at a rate that keeps logs readable.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// OnFailure, when set, is called with each failure record as it is made.
	OnFailure func(FailureRecord)
	// ResumeAfter, when set, is a sequence number this mapping had already
	// processed (a checkpoint kept across a restart): polling resumes
	// after it whatever StartingPosition says, as a Lambda mapping keeps
	// its position in the shard.
	ResumeAfter string
	// OnCheckpoint, when set, is called with the sequence number of the
	// last record read once the batch it ended is done (delivered, or
	// given up on); resuming after it neither replays nor skips.
	OnCheckpoint func(seq string)
	// PollInterval > 0 reads the stream on that fixed tick only, never on
	// a write's wake-up (Lambda's behaviour; LambdaPollInterval). 0 wakes
	// on every write, for fast local development.
	PollInterval time.Duration
	// Ticks, when set, replaces PollInterval's ticker (tests: each value
	// sent is one poll).
	Ticks <-chan time.Time
}

// Poller runs one mapping: one shard, one batch in flight, in order.
type Poller struct {
	m       Mapping
	opts    Options
	log     *slog.Logger
	src     Source
	inv     Invoker
	filters []*filter
	fnARN   string

	cancel context.CancelFunc
	done   chan struct{}

	tick <-chan time.Time // nil: wake on write

	mu       sync.Mutex
	failures []FailureRecord
}

// Start validates the mapping and starts polling.
func Start(ctx context.Context, src Source, inv Invoker, m Mapping, opts Options) (*Poller, error) {
	if err := normalize(&m); err != nil {
		return nil, err
	}
	if opts.Region == "" {
		opts.Region = localaws.Region
	}
	if opts.AccountID == "" {
		opts.AccountID = localaws.AccountID
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryBaseDelay <= 0 {
		opts.RetryBaseDelay = defaultRetryBase
	}
	if opts.RetryMaxDelay <= 0 {
		opts.RetryMaxDelay = defaultRetryMax
	}
	p := &Poller{
		m: m, opts: opts, src: src, inv: inv,
		log:   opts.Logger.With("function", m.FunctionName, "stream", m.StreamARN),
		fnARN: fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", opts.Region, opts.AccountID, m.FunctionName),
		done:  make(chan struct{}),
	}
	for _, pat := range m.FilterPatterns {
		f, err := compileFilter(pat)
		if err != nil {
			return nil, fmt.Errorf("esm %s: %w", m.FunctionName, err)
		}
		p.filters = append(p.filters, f)
	}
	// The starting position is fixed now, before Start returns, so a write
	// made after Start is delivered even with LATEST.
	var pos string
	latest, err := src.LatestSequenceNumber(m.StreamARN)
	if err != nil {
		return nil, fmt.Errorf("esm %s: stream %s: %w", m.FunctionName, m.StreamARN, err)
	}
	if m.StartingPosition == Latest {
		pos = latest
	}
	if opts.ResumeAfter != "" {
		// A checkpoint past the stream's end (its records were lost with a
		// killed stack's last second) resumes at the end: past it, new
		// records would be skipped. Sequence numbers are fixed-width, so
		// string order is numeric order.
		pos = min(opts.ResumeAfter, latest)
	}
	var ticker *time.Ticker
	switch {
	case opts.Ticks != nil:
		p.tick = opts.Ticks
	case opts.PollInterval > 0:
		ticker = time.NewTicker(opts.PollInterval)
		p.tick = ticker.C
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	go func() {
		defer close(p.done)
		if ticker != nil {
			defer ticker.Stop()
		}
		p.run(runCtx, pos)
	}()
	return p, nil
}

func normalize(m *Mapping) error {
	switch {
	case m.FunctionName == "" || m.StreamARN == "":
		return errors.New("esm: FunctionName and StreamARN are required")
	case m.StartingPosition != TrimHorizon && m.StartingPosition != Latest:
		return fmt.Errorf("esm %s: StartingPosition %q must be TRIM_HORIZON or LATEST", m.FunctionName, m.StartingPosition)
	case m.BatchSize < 0 || m.BatchSize > maxBatchSize:
		return fmt.Errorf("esm %s: BatchSize %d outside 1..%d", m.FunctionName, m.BatchSize, maxBatchSize)
	case m.MaximumBatchingWindow < 0 || m.MaximumBatchingWindow > maxBatchingWindow:
		return fmt.Errorf("esm %s: MaximumBatchingWindow %s outside 0..%s", m.FunctionName, m.MaximumBatchingWindow, maxBatchingWindow)
	case m.MaximumRetryAttempts < -1 || m.MaximumRetryAttempts > maxRetryAttempts:
		return fmt.Errorf("esm %s: MaximumRetryAttempts %d outside -1..%d", m.FunctionName, m.MaximumRetryAttempts, maxRetryAttempts)
	case m.MaximumRecordAgeInSeconds < -1 || (m.MaximumRecordAgeInSeconds > 0 && m.MaximumRecordAgeInSeconds < minRecordAgeSecs) || m.MaximumRecordAgeInSeconds > maxRecordAgeSecs:
		return fmt.Errorf("esm %s: MaximumRecordAgeInSeconds %d must be -1 or %d..%d", m.FunctionName, m.MaximumRecordAgeInSeconds, minRecordAgeSecs, maxRecordAgeSecs)
	case len(m.FilterPatterns) > maxFilters:
		return fmt.Errorf("esm %s: at most %d filter patterns", m.FunctionName, maxFilters)
	case m.ParallelizationFactor < 0 || m.ParallelizationFactor > maxParallelization:
		return fmt.Errorf("esm %s: ParallelizationFactor %d outside 1..%d", m.FunctionName, m.ParallelizationFactor, maxParallelization)
	}
	if m.ParallelizationFactor == 0 {
		m.ParallelizationFactor = 1
	}
	if m.BatchSize == 0 {
		m.BatchSize = DefaultBatchSize
	}
	if m.MaximumRecordAgeInSeconds == 0 {
		m.MaximumRecordAgeInSeconds = -1
	}
	return nil
}

// Close stops polling and waits for the batch in flight to end.
func (p *Poller) Close() {
	p.cancel()
	<-p.done
}

// Failures returns the on-failure records made so far, oldest first.
func (p *Poller) Failures() []FailureRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]FailureRecord(nil), p.failures...)
}

// entry is a record with its Lambda event form.
type entry struct {
	rec dynamo.Record
	ev  events.DynamoDBEventRecord
}

func (p *Poller) run(ctx context.Context, pos string) {
	deliver := func(batch []entry) { p.deliver(ctx, batch, 0) }
	if n := p.m.ParallelizationFactor; n > 1 {
		lanes := make([]chan []entry, n)
		var wg sync.WaitGroup
		for i := range lanes {
			// One batch waiting per lane: the reader stops when a lane is
			// behind, so a failing key holds its lane, not memory.
			lanes[i] = make(chan []entry, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range lanes[i] {
					if ctx.Err() == nil {
						p.deliver(ctx, b, 0)
					}
				}
			}()
		}
		defer func() {
			for _, l := range lanes {
				close(l)
			}
			wg.Wait()
		}()
		deliver = func(batch []entry) {
			parts := make([][]entry, n)
			for _, e := range batch {
				i := laneOf(e.rec, n)
				parts[i] = append(parts[i], e)
			}
			for i, part := range parts {
				if len(part) == 0 {
					continue
				}
				select {
				case lanes[i] <- part:
				case <-ctx.Done():
					return
				}
			}
		}
	}
	for ctx.Err() == nil {
		batch, next, err := p.collect(ctx, pos)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("esm: reading the stream failed; mapping stopped", "err", err)
			}
			return
		}
		if len(batch) > 0 {
			deliver(batch)
		}
		if ctx.Err() != nil {
			return // shutting down mid-batch: the batch was not finished
		}
		if next != pos && p.opts.OnCheckpoint != nil {
			p.opts.OnCheckpoint(next)
		}
		pos = next
	}
}

// laneOf is the lane of a record's partition key: the same key always
// goes to the same lane, which runs its batches one at a time, in order.
func laneOf(r dynamo.Record, n int) int {
	h := fnv.New32a()
	if v, ok := r.Keys[r.PartitionKey]; ok {
		h.Write(v)
	} else {
		// Without a known partition key, the whole key keeps per-item order.
		for _, k := range slices.Sorted(maps.Keys(r.Keys)) {
			h.Write([]byte(k))
			h.Write(r.Keys[k])
		}
	}
	return int(h.Sum32() % uint32(n))
}

// collect gathers the next batch of matching records after pos: at most
// BatchSize, sent as soon as there are any unless a batching window asks to
// wait for more. next is the position after every record read, including
// records the filters dropped.
func (p *Poller) collect(ctx context.Context, pos string) (batch []entry, next string, err error) {
	next = pos
	var window <-chan time.Time
	for {
		want := p.m.BatchSize - len(batch)
		recs, wake, err := p.src.Read(p.m.StreamARN, next, want)
		if err != nil {
			return nil, pos, err
		}
		for _, r := range recs {
			next = r.SequenceNumber
			e, ok, err := p.admit(r)
			if err != nil {
				p.log.Error("esm: record dropped: cannot convert it to a Lambda event", "sequenceNumber", r.SequenceNumber, "err", err)
				continue
			}
			if ok {
				batch = append(batch, e)
			}
		}
		if len(batch) >= p.m.BatchSize || (len(batch) > 0 && p.m.MaximumBatchingWindow == 0) {
			return batch, next, nil
		}
		if len(recs) == want {
			continue // more may be waiting
		}
		if len(batch) > 0 && window == nil {
			t := time.NewTimer(p.m.MaximumBatchingWindow)
			defer t.Stop()
			window = t.C
		}
		if p.tick != nil {
			wake = nil // polling: a write does not wake the mapping
		}
		select {
		case <-wake:
		case <-p.tick:
		case <-window:
			return batch, next, nil
		case <-ctx.Done():
			return nil, pos, ctx.Err()
		}
	}
}

// admit converts a record and applies the filters.
func (p *Poller) admit(r dynamo.Record) (entry, bool, error) {
	ev, err := r.LambdaEvent()
	if err != nil {
		return entry{}, false, err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return entry{}, false, err
	}
	ok, err := matchAny(p.filters, b)
	return entry{rec: r, ev: ev}, ok, err
}

// deliver invokes the function with batch until it succeeds or the batch
// is given up to the on-failure destination. retries counts the failed
// invocations the batch's records have already had.
func (p *Poller) deliver(ctx context.Context, batch []entry, retries int) {
	lastErr := error(nil)
	for len(batch) > 0 && ctx.Err() == nil {
		if cut := p.expired(batch); cut > 0 {
			p.fail(batch[:cut], "RecordAgeExceeded", retries, lastErr)
			batch = batch[cut:]
			continue
		}
		payload, err := payloadOf(batch)
		if err != nil {
			p.log.Error("esm: cannot encode event", "err", err)
			return
		}
		if len(payload) > maxPayloadBytes && len(batch) > 1 {
			mid := len(batch) / 2
			p.deliver(ctx, batch[:mid], retries)
			p.deliver(ctx, batch[mid:], retries)
			return
		}
		resp, err := p.inv.Invoke(ctx, p.m.FunctionName, payload)
		if ctx.Err() != nil {
			return
		}
		lastErr = err
		if err == nil {
			from := p.firstFailed(resp, batch)
			if from == len(batch) {
				return
			}
			// Records before the first failure succeeded; resume there.
			batch = batch[from:]
			p.log.Warn("esm: batch partly failed", "resumeAt", batch[0].rec.SequenceNumber, "records", len(batch))
		} else {
			p.log.Warn("esm: function error", "records", len(batch), "err", err)
			if p.m.BisectBatchOnFunctionError && len(batch) > 1 {
				// Splitting does not count towards the retry quota (Lambda's rule).
				mid := len(batch) / 2
				p.deliver(ctx, batch[:mid], retries)
				p.deliver(ctx, batch[mid:], retries)
				return
			}
		}
		retries++
		if p.m.MaximumRetryAttempts >= 0 && retries > p.m.MaximumRetryAttempts {
			p.fail(batch, "RetryAttemptsExhausted", retries, lastErr)
			return
		}
		if !sleep(ctx, p.backoff(retries)) {
			return
		}
	}
}

// expired counts the records at the front of batch older than the maximum
// record age (the batch is in arrival order, so they are a prefix).
func (p *Poller) expired(batch []entry) int {
	if p.m.MaximumRecordAgeInSeconds < 0 {
		return 0
	}
	limit := time.Duration(p.m.MaximumRecordAgeInSeconds) * time.Second
	now := p.opts.Now()
	n := 0
	for n < len(batch) && now.Sub(batch[n].rec.CreatedAt) > limit {
		n++
	}
	return n
}

func payloadOf(batch []entry) ([]byte, error) {
	evs := make([]events.DynamoDBEventRecord, len(batch))
	for i, e := range batch {
		evs[i] = e.ev
	}
	return json.Marshal(events.DynamoDBEvent{Records: evs})
}

// firstFailed returns the index to resume from after a successful
// invocation: len(batch) when everything succeeded. Without
// ReportBatchItemFailures any response is success. With it, as Lambda does:
// an empty or null response or an empty list is success; a response that
// is not a batch response, or an identifier that is empty or not in the
// batch, fails the whole batch; otherwise resume at the lowest sequence
// number listed.
func (p *Poller) firstFailed(resp []byte, batch []entry) int {
	if !p.m.ReportBatchItemFailures {
		return len(batch)
	}
	if trimmed := strings.TrimSpace(string(resp)); trimmed == "" || trimmed == "null" {
		return len(batch)
	}
	var r events.DynamoDBEventResponse
	if err := json.Unmarshal(resp, &r); err != nil {
		p.log.Warn("esm: response is not a batch item failure response; whole batch failed", "err", err)
		return 0
	}
	from := len(batch)
	for _, f := range r.BatchItemFailures {
		idx := -1
		for i, e := range batch {
			if e.rec.SequenceNumber == f.ItemIdentifier {
				idx = i
				break
			}
		}
		if idx < 0 {
			p.log.Warn("esm: itemIdentifier not in the batch; whole batch failed", "itemIdentifier", f.ItemIdentifier)
			return 0
		}
		from = min(from, idx)
	}
	return from
}

func (p *Poller) backoff(retries int) time.Duration {
	d := p.opts.RetryBaseDelay
	for i := 1; i < retries && d < p.opts.RetryMaxDelay; i++ {
		d *= 2
	}
	return min(d, p.opts.RetryMaxDelay)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// FailureRecord is what Lambda sends to an on-failure destination for a
// DynamoDB stream batch it gave up on.
type FailureRecord struct {
	RequestContext     FailureRequestContext  `json:"requestContext"`
	ResponseContext    FailureResponseContext `json:"responseContext"`
	Version            string                 `json:"version"`
	Timestamp          string                 `json:"timestamp"`
	DDBStreamBatchInfo BatchInfo              `json:"DDBStreamBatchInfo"`

	Destination string `json:"-"` // the mapping's OnFailure ARN
}

type FailureRequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"` // RetryAttemptsExhausted or RecordAgeExceeded
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

type FailureResponseContext struct {
	StatusCode      int    `json:"statusCode,omitempty"`
	ExecutedVersion string `json:"executedVersion,omitempty"`
	FunctionError   string `json:"functionError,omitempty"`
}

type BatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// fail records a batch given up on, logs it and tells the OnFailure hook.
func (p *Poller) fail(batch []entry, condition string, invokes int, lastErr error) {
	first, last := batch[0].rec, batch[len(batch)-1].rec
	fr := FailureRecord{
		RequestContext: FailureRequestContext{
			RequestID: newRequestID(), FunctionARN: p.fnARN, Condition: condition, ApproximateInvokeCount: invokes,
		},
		Version:   "1.0",
		Timestamp: p.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		DDBStreamBatchInfo: BatchInfo{
			ShardID:                         first.ShardID,
			StartSequenceNumber:             first.SequenceNumber,
			EndSequenceNumber:               last.SequenceNumber,
			ApproximateArrivalOfFirstRecord: first.CreatedAt.UTC().Format(time.RFC3339),
			ApproximateArrivalOfLastRecord:  last.CreatedAt.UTC().Format(time.RFC3339),
			BatchSize:                       len(batch),
			StreamARN:                       p.m.StreamARN,
		},
		Destination: p.m.OnFailureDestination,
	}
	if invokes > 0 {
		fr.ResponseContext = FailureResponseContext{StatusCode: 200, ExecutedVersion: "$LATEST"}
		if lastErr != nil {
			fr.ResponseContext.FunctionError = "Unhandled"
		}
	}
	p.mu.Lock()
	if len(p.failures) == failureRecordLimit {
		p.failures = p.failures[1:]
	}
	p.failures = append(p.failures, fr)
	p.mu.Unlock()
	body, _ := json.Marshal(fr)
	p.log.Error("esm: batch sent to the on-failure destination", "destination", p.m.OnFailureDestination, "condition", condition, "record", string(body))
	if p.opts.OnFailure != nil {
		p.opts.OnFailure(fr)
	}
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
