// Package dynamo is the local stack's DynamoDB endpoint: one HTTP listener
// that serves the DynamoDB API, forwarded to a backend (an in-process kumo
// emulator by default, or an external endpoint such as DynamoDB Local), and
// the DynamoDB Streams API, served from the proxy's own stream store.
//
// The proxy captures every write that passes through it (PutItem, UpdateItem,
// DeleteItem, BatchWriteItem, TransactWriteItems and TTL expiry) as stream
// records, because backends do not: kumo v0.33.1 emits none for batch and
// transactional writes. Writes made to the backend directly, bypassing the
// proxy, are not captured.
//
// The proxy also owns Time to Live. UpdateTimeToLive and DescribeTimeToLive
// are answered here and never reach the backend, so that kumo's own reaper
// (every 30 s, deleting expired items silently, without a stream record)
// never runs on a table; the proxy's sweeper deletes expired items instead
// and records a REMOVE for each.
package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/sivchari/kumo"

	"github.com/groupcast/groupcast/internal/devstack/localaws"
)

// Defaults for Options.
const (
	// DefaultTTLSweepInterval: AWS deletes expired items "within a few days",
	// but locally people set a short TTL and want to watch the REMOVE reach
	// their function; a scan of small local tables every 2 s costs little.
	DefaultTTLSweepInterval = 2 * time.Second
	// DefaultRetention is DynamoDB Streams' fixed 24-hour retention.
	DefaultRetention = 24 * time.Hour
	// iteratorLifetime: AWS expires a shard iterator 15 minutes after it is
	// returned.
	iteratorLifetime = 15 * time.Minute
)

// Options configure the endpoint. Zero values take the defaults noted.
type Options struct {
	Addr             string        // listen address; default "127.0.0.1:0" (a free port)
	Backend          string        // external DynamoDB endpoint URL; "" starts an in-process kumo
	Region           string        // default "us-east-1"
	AccountID        string        // default "000000000000"
	TTLSweepInterval time.Duration // default DefaultTTLSweepInterval
	Retention        time.Duration // how long stream records are kept; default DefaultRetention
	Logger           *slog.Logger  // default slog.Default()
	// Auth, when set, requires every request to be signed with credentials
	// it issued and checks each call against the caller's policies, as
	// DynamoDB does with IAM. Nil accepts any request (unit tests).
	Auth Authenticator
	// ClientCredentials sign the requests of Client (and so CreateTable);
	// with Auth they must be credentials Auth allows.
	ClientCredentials aws.Credentials
	// DataDir, when set, keeps tables, items, streams and their records in
	// DataDir/dynamodb.json: restored at Start, written after changes and
	// at Close (see persist.go). Only with the embedded backend: an
	// external one keeps its own data. "" keeps everything in memory.
	DataDir string
}

// Server is a running endpoint. Its methods are safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	backend *backend
	kumo    *kumo.Server
	ln      net.Listener
	http    *http.Server
	url     string

	// writeMu serializes every captured write: read old images, forward,
	// read new images, append records. One global lock rather than one per
	// table because BatchWriteItem and TransactWriteItems span tables, and a
	// single lock makes the order of sequence numbers the order in which
	// the backend committed the writes. A local stack's write rate is far
	// below what one lock around a few loopback calls can carry.
	writeMu sync.Mutex

	mu      sync.Mutex // guards everything below
	tables  map[string]*tableMeta
	streams map[string]*stream // by ARN, enabled and disabled
	seq     uint64             // last sequence number assigned, across streams

	dirty atomic.Bool // a change since the last snapshot (DataDir only)

	stop chan struct{}
	done sync.WaitGroup
}

// tableMeta is what the proxy knows about a table beyond the backend.
type tableMeta struct {
	name    string
	arn     string
	keys    keySchema
	stream  *stream // the enabled stream, or nil
	ttlAttr string  // "" when TTL is disabled
	// expiring holds, while TTL is enabled, every item whose TTL attribute
	// is a number, by keyID: the proxy sees every write, so the sweeper
	// finds expired items here instead of scanning the table, which in
	// kumo walks every item under a lock that stalls all writes.
	expiring map[string]expiringItem
}

// expiringItem is an item's key and its TTL in epoch seconds.
type expiringItem struct {
	key item
	at  float64
}

// Start listens on opts.Addr and serves until Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Region == "" {
		opts.Region = localaws.Region
	}
	if opts.AccountID == "" {
		opts.AccountID = localaws.AccountID
	}
	if opts.TTLSweepInterval <= 0 {
		opts.TTLSweepInterval = DefaultTTLSweepInterval
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		tables:  map[string]*tableMeta{},
		streams: map[string]*stream{},
		stop:    make(chan struct{}),
	}
	if opts.DataDir != "" && opts.Backend != "" {
		return nil, errors.New("dynamo: DataDir persists the embedded store; an external DynamoDB keeps its own data")
	}
	backendURL := opts.Backend
	if backendURL == "" {
		s.kumo = kumo.NewServer()
		backendURL = s.kumo.URL
	}
	s.backend = &backend{url: backendURL, region: opts.Region, client: &http.Client{}}
	if opts.DataDir != "" {
		if err := s.restore(ctx); err != nil {
			s.closeKumo()
			return nil, fmt.Errorf("dynamo: restore from %s: %w", opts.DataDir, err)
		}
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		s.closeKumo()
		return nil, fmt.Errorf("dynamo: listen on %s: %w", opts.Addr, err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second} // 10 s: a local client sends its headers at once; this only stops a stuck one holding a connection
	s.done.Add(2)
	go func() {
		defer s.done.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("dynamo: serve", "err", err)
		}
	}()
	go func() {
		defer s.done.Done()
		s.housekeeping()
	}()
	if opts.DataDir != "" {
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			s.persistLoop()
		}()
	}
	s.log.Info("dynamo: listening", "url", s.url, "backend", backendURL)
	return s, nil
}

// URL is the endpoint's base URL, for --endpoint-url and BaseEndpoint.
func (s *Server) URL() string { return s.url }

// BackendURL is the URL of the store behind the proxy. Writes sent there
// directly produce no stream records.
func (s *Server) BackendURL() string { return s.backend.url }

// Close stops serving, the TTL sweeper and the in-process backend.
func (s *Server) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // 5 s: in-flight local requests finish in milliseconds
	defer cancel()
	_ = s.http.Shutdown(ctx)
	s.done.Wait()
	if s.opts.DataDir != "" {
		// Nothing writes any more: this snapshot is the final state.
		if err := s.save(ctx); err != nil {
			s.log.Error("dynamo: final snapshot", "dir", s.opts.DataDir, "err", err)
		}
	}
	s.closeKumo()
}

func (s *Server) closeKumo() {
	if s.kumo != nil {
		s.kumo.Close()
	}
}

const (
	dynamoPrefix  = "DynamoDB_20120810."
	streamsPrefix = "DynamoDBStreams_20120810."
)

// ServeHTTP dispatches on X-Amz-Target.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, &apiError{http.StatusMethodNotAllowed, "UnknownOperationException", "only POST is supported"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		writeError(w, errValidation("read request: %v", err))
		return
	}
	if len(body) > maxBodyBytes {
		writeError(w, &apiError{http.StatusRequestEntityTooLarge, "ValidationException", "request body exceeds 16 MB"})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if s.opts.Auth != nil && (strings.HasPrefix(target, streamsPrefix) || strings.HasPrefix(target, dynamoPrefix)) {
		p, aerr := s.authenticate(r, body)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		aerr, denied := s.authorize(p, target, body)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		if denied != nil {
			writeAccessDenied(w, denied)
			return
		}
	}
	switch {
	case strings.HasPrefix(target, streamsPrefix):
		s.serveStreams(w, strings.TrimPrefix(target, streamsPrefix), body)
	case strings.HasPrefix(target, dynamoPrefix):
		s.serveDynamo(w, r, strings.TrimPrefix(target, dynamoPrefix), body)
	default:
		writeError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("unknown target %q", target)})
	}
}

func (s *Server) serveDynamo(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	ctx := r.Context()
	auth := r.Header.Get("Authorization")
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "CreateTable", "UpdateTable", "DeleteTable", "UpdateTimeToLive":
		// After the change: a snapshot taken between marking and
		// changing would clear the mark without holding the change.
		defer s.markDirty()
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
		s.write(w, ctx, op, body, auth)
	case "CreateTable":
		s.createTable(w, ctx, body, auth)
	case "UpdateTable":
		s.updateTable(w, ctx, body, auth)
	case "DeleteTable":
		s.deleteTable(w, ctx, body, auth)
	case "DescribeTable":
		s.describeTable(w, ctx, body, auth)
	case "UpdateTimeToLive":
		s.updateTimeToLive(w, ctx, body)
	case "DescribeTimeToLive":
		s.describeTimeToLive(w, ctx, body)
	case "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction":
		if err := requireReadOnlyPartiQL(body); err != nil {
			writeError(w, err)
			return
		}
		s.pass(w, ctx, op, body, auth)
	case "Query":
		if s.kumo != nil {
			body = unwrapPartitionClause(body)
		}
		s.pass(w, ctx, op, body, auth)
	default:
		s.pass(w, ctx, op, body, auth)
	}
}

// pass forwards a request unchanged and relays the backend's answer.
func (s *Server) pass(w http.ResponseWriter, ctx context.Context, op string, body []byte, auth string) {
	status, resp, err := s.backend.forward(ctx, dynamoPrefix+op, body, auth)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	writeJSON(w, status, resp)
}

// requireReadOnlyPartiQL refuses PartiQL writes: the proxy cannot see which
// items an INSERT/UPDATE/DELETE statement touches without parsing PartiQL,
// and a write without its stream record would silently break the stream.
func requireReadOnlyPartiQL(body []byte) *apiError {
	var in struct {
		Statement          string
		Statements         []struct{ Statement string }
		TransactStatements []struct{ Statement string }
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return errValidation("invalid request: %v", err)
	}
	stmts := []string{in.Statement}
	for _, st := range append(in.Statements, in.TransactStatements...) {
		stmts = append(stmts, st.Statement)
	}
	for _, st := range stmts {
		f := strings.Fields(st)
		if len(f) > 0 && !strings.EqualFold(f[0], "SELECT") {
			return errValidation("the local stack supports only SELECT in PartiQL; use PutItem, UpdateItem, DeleteItem, BatchWriteItem or TransactWriteItems so the write reaches the table's stream")
		}
	}
	return nil
}

// table returns the proxy's metadata for a table, describing it on the
// backend the first time (tables created on the backend directly).
func (s *Server) table(ctx context.Context, name string) (*tableMeta, error) {
	s.mu.Lock()
	t := s.tables[name]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	d, err := s.backend.describeTable(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tables[name]; t != nil {
		return t, nil
	}
	t = &tableMeta{name: name, arn: d.TableArn, keys: d.keys()}
	s.tables[name] = t
	return t, nil
}

// enableStream gives a table a new stream. Callers hold s.mu.
func (s *Server) enableStream(t *tableMeta, viewType string, now time.Time) {
	base := t.arn
	if base == "" {
		base = fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.opts.Region, s.opts.AccountID, t.name)
	}
	// The label is the creation time to the millisecond, as on AWS. Two
	// streams of one table enabled within the same millisecond (possible only
	// locally) would share an ARN, so the later one moves to the next free
	// millisecond.
	label := now.UTC().Format("2006-01-02T15:04:05.000")
	arn := base + "/stream/" + label
	for at := now; s.streams[arn] != nil; {
		at = at.Add(time.Millisecond)
		label = at.UTC().Format("2006-01-02T15:04:05.000")
		arn = base + "/stream/" + label
	}
	st := &stream{
		arn:      arn,
		label:    label,
		table:    t.name,
		shardID:  fmt.Sprintf("shardId-%020d-%s", now.UnixMilli(), randomHex(4)),
		viewType: viewType,
		keys:     t.keys,
		created:  now,
		startSeq: s.seq + 1,
		wake:     make(chan struct{}),
	}
	s.streams[arn] = st
	t.stream = st
}

// disableStream closes a table's stream: readable until retention ends, no
// new records. Callers hold s.mu.
func (s *Server) disableStream(t *tableMeta, now time.Time) {
	if t.stream == nil {
		return
	}
	t.stream.disabledAt = now
	close(t.stream.wake) // wake readers so they see the shard end
	t.stream.wake = make(chan struct{})
	t.stream = nil
}

// appendRecords adds records to their streams in order and wakes readers.
func (s *Server) appendRecords(recs []pending) {
	if len(recs) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	woken := map[*stream]bool{}
	for _, p := range recs {
		if !p.stream.enabled() {
			continue // the stream was disabled while the write ran
		}
		s.seq++
		r := p.rec
		r.seq = s.seq
		r.SequenceNumber = formatSeq(s.seq)
		r.CreatedAt = now
		r.EventID = randomHex(16)
		r.Region = s.opts.Region
		r.StreamARN = p.stream.arn
		r.ShardID = p.stream.shardID
		r.TableName = p.stream.table
		r.ViewType = p.stream.viewType
		r.PartitionKey = p.stream.keys.hash
		p.stream.records = append(p.stream.records, r)
		p.stream.lastSeq = s.seq
		woken[p.stream] = true
	}
	for st := range woken {
		close(st.wake)
		st.wake = make(chan struct{})
	}
}

// Read returns up to limit records of a stream with sequence numbers after
// afterSeq ("" = from the oldest retained record), and a channel that is
// closed when the stream next changes (a record arrives or it is disabled).
// Taking the channel in the same call as the read means a reader that finds
// nothing and waits on it cannot miss a record appended in between.
func (s *Server) Read(streamARN, afterSeq string, limit int) ([]Record, <-chan struct{}, error) {
	var after uint64
	if afterSeq != "" {
		n, err := parseSeq(afterSeq)
		if err != nil {
			return nil, nil, err
		}
		after = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[streamARN]
	if st == nil {
		return nil, nil, errNotFound("Requested resource not found: Stream: %s not found", streamARN)
	}
	return st.after(after, limit), st.wake, nil
}

// LatestSequenceNumber returns the stream's last assigned sequence number,
// "" before its first record: the position of a LATEST iterator.
func (s *Server) LatestSequenceNumber(streamARN string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[streamARN]
	if st == nil {
		return "", errNotFound("Requested resource not found: Stream: %s not found", streamARN)
	}
	if st.lastSeq == 0 {
		return "", nil
	}
	return formatSeq(st.lastSeq), nil
}

// StreamARN returns the ARN of a table's enabled stream, "" when it has none.
func (s *Server) StreamARN(ctx context.Context, table string) (string, error) {
	t, err := s.table(ctx, table)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.stream == nil {
		return "", nil
	}
	return t.stream.arn, nil
}

// housekeeping trims old records and sweeps expired items until Close.
func (s *Server) housekeeping() {
	ticker := time.NewTicker(s.opts.TTLSweepInterval)
	defer ticker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			s.trim(time.Now())
			s.sweepTTL(ctx, time.Now())
		}
	}
}

func (s *Server) trim(now time.Time) {
	cutoff := now.Add(-s.opts.Retention)
	s.mu.Lock()
	defer s.mu.Unlock()
	for arn, st := range s.streams {
		st.trim(cutoff)
		if !st.enabled() && st.disabledAt.Before(cutoff) {
			delete(s.streams, arn)
		}
	}
}
