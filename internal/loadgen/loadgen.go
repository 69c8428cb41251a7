// Package loadgen measures post-to-notification latency and fan-out
// throughput of a running Groupcast deployment (the local stack or a
// deployed stage). Senders and receivers live in one process, so every
// latency is measured on one clock: from just before the POST is sent to
// the moment a client reads the event from its socket.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/groupcast/groupcast/pkg/client"
)

// Config describes one run.
type Config struct {
	HTTPURL string             // REST API base URL
	WSURL   string             // WebSocket URL (ws://host/stage or wss://...)
	Tokens  client.TokenSource // mints a JWT per user

	Members     int           // users in the group (the first one posts)
	Connections int           // WebSocket connections, spread over the members
	Posts       int           // posts the first member makes
	Rate        float64       // posts per second
	Wait        time.Duration // how long to wait for deliveries after the last post

	// DialConcurrency bounds parallel WebSocket handshakes. API Gateway
	// accepts 500 new connections a second per account; 100 in flight keeps
	// a deployed stage under that while filling the local stack quickly.
	DialConcurrency int

	Progress   io.Writer // progress lines; nil for none
	HTTPClient *http.Client
	RunID      string // distinguishes users and posts of concurrent runs
}

func (c *Config) setDefaults() (cleanup func(), err error) {
	if c.HTTPURL == "" || c.WSURL == "" || c.Tokens == nil {
		return nil, errors.New("loadgen: HTTP URL, WebSocket URL and a token source are required")
	}
	if c.Members < 1 || c.Connections < 1 || c.Posts < 1 || c.Rate <= 0 {
		return nil, errors.New("loadgen: members, connections, posts and rate must be positive")
	}
	if c.Wait <= 0 {
		c.Wait = 10 * time.Second
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 100
	}
	cleanup = func() {}
	if c.HTTPClient == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
		// Idle keep-alive connections would otherwise outlive the run and
		// show up as the stack's goroutines in repeated runs.
		cleanup = tr.CloseIdleConnections
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	return cleanup, nil
}

// Report is what one run measured. Durations are in milliseconds in JSON.
type Report struct {
	Members     int `json:"members"`
	Connections int `json:"connections"`
	Posts       int `json:"posts"`

	// Expected counts deliveries of the posts the API accepted: a refused
	// post has nothing to deliver, so it is never missing.
	Expected   int `json:"expected"`
	Received   int `json:"received"`
	Duplicated int `json:"duplicated"`
	Missing    int `json:"missing"`

	Latency     Percentiles `json:"latencyMs"`     // POST sent -> event read
	PostLatency Percentiles `json:"postLatencyMs"` // POST round trip
	ConnectTime Percentiles `json:"connectMs"`     // handshake + subscribe, per connection
	ConnectAll  float64     `json:"connectAllMs"`  // all connections ready
	Throughput  float64     `json:"deliveriesPerSecond"`
	// Refused counts posts answered 429 (the per-user post limit or API
	// Gateway's throttle); PostErrors counts posts that failed otherwise.
	Refused    int `json:"refused"`
	PostErrors int `json:"postErrors"`

	// Stack is sampled after the run when the stack runs in-process.
	Stack *StackStats `json:"stack,omitempty"`
}

// StackStats shows whether the local stack holds on to anything between runs.
type StackStats struct {
	HeapMiB    float64 `json:"heapMiB"`
	Goroutines int     `json:"goroutines"`
	Instances  int     `json:"functionInstances"`
}

// Percentiles summarises a set of durations, in milliseconds.
type Percentiles struct {
	Min float64 `json:"min"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds)-1) + 0.5)
		return ms(ds[i])
	}
	return Percentiles{Min: ms(ds[0]), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1]), N: len(ds)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// delivery is one event read by one connection.
type delivery struct {
	post    int
	eventID string
	at      time.Time
}

type receiver struct {
	conn      *client.Conn
	userIndex int
	got       []delivery
	// seen holds the event ids received: received counts each once, so a
	// duplicate never ends the wait for a delivery still missing.
	seen map[string]bool
}

// Run performs one measurement.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cleanup, err := cfg.setDefaults()
	if err != nil {
		return Report{}, err
	}
	defer cleanup()
	rep := Report{Members: cfg.Members, Connections: cfg.Connections, Posts: cfg.Posts}
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}

	users, err := makeUsers(ctx, cfg)
	if err != nil {
		return rep, err
	}
	say("minted %d tokens", len(users))

	owner := users[0]
	group, err := owner.CreateGroup(ctx, "loadgen "+cfg.RunID, "load test group", "public")
	if err != nil {
		return rep, fmt.Errorf("create group: %w", err)
	}
	if err := forEach(ctx, users[1:], 16, func(ctx context.Context, _ int, u *client.HTTP) error {
		return u.JoinGroup(ctx, group.GroupID)
	}); err != nil {
		return rep, fmt.Errorf("join group: %w", err)
	}
	say("group %s has %d members", group.GroupID, len(users))

	receivers := make([]*receiver, cfg.Connections)
	connectTimes := make([]time.Duration, cfg.Connections)
	var connected atomic.Int64
	startConnect := time.Now()
	var connections atomic.Int64
	connections.Store(int64(cfg.Connections))
	stopProgress := progress(cfg.Progress, "connected", &connected, &connections)
	err = forEach(ctx, receivers, cfg.DialConcurrency, func(ctx context.Context, i int, _ *receiver) error {
		ui := i % len(users)
		t0 := time.Now()
		conn, err := client.Dial(ctx, cfg.WSURL, users[ui].Token)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		reply, err := conn.Subscribe(ctx, group.GroupID)
		if err != nil || reply.Type != "subscribed" || len(reply.GroupIDs) != 1 {
			conn.Close()
			return fmt.Errorf("connection %d: subscribe: %v %+v", i, err, reply)
		}
		connectTimes[i] = time.Since(t0)
		receivers[i] = &receiver{conn: conn, userIndex: ui}
		connected.Add(1)
		return nil
	})
	stopProgress()
	defer closeAll(receivers)
	if err != nil {
		return rep, err
	}
	rep.ConnectAll = ms(time.Since(startConnect))
	rep.ConnectTime = percentiles(connectTimes)
	say("%d connections subscribed in %.0f ms", cfg.Connections, rep.ConnectAll)

	// The poster's own connections never receive its posts (self-exclusion).
	expectedPerPost := 0
	for _, r := range receivers {
		if r.userIndex != 0 {
			expectedPerPost++
		}
	}
	var expected atomic.Int64
	expected.Store(int64(expectedPerPost * cfg.Posts))

	var received atomic.Int64
	var readers sync.WaitGroup
	tag := "lg:" + cfg.RunID + ":"
	readCtx, stopReading := context.WithCancel(ctx)
	for _, r := range receivers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.collect(readCtx, tag, &received)
		}()
	}

	sentAt := make([]time.Time, cfg.Posts)
	var postTimes []time.Duration
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	stopProgress = progress(cfg.Progress, "delivered", &received, &expected)
	ticker := time.NewTicker(interval)
	for i := range cfg.Posts {
		if i > 0 {
			select {
			case <-ticker.C:
			case <-ctx.Done():
				ticker.Stop()
				stopReading()
				return rep, ctx.Err()
			}
		}
		sentAt[i] = time.Now()
		_, err := owner.CreatePost(ctx, group.GroupID, fmt.Sprintf("%s%d load test post", tag, i))
		if err != nil {
			if client.IsStatus(err, http.StatusTooManyRequests) {
				rep.Refused++
			} else {
				rep.PostErrors++
			}
			// Neither a refused nor a failed post is owed to anyone.
			expected.Add(-int64(expectedPerPost))
			say("post %d: %v", i, err)
			continue
		}
		postTimes = append(postTimes, time.Since(sentAt[i]))
	}
	ticker.Stop()
	rep.PostLatency = percentiles(postTimes)

	deadline := time.NewTimer(cfg.Wait)
	for received.Load() < expected.Load() {
		select {
		case <-deadline.C:
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	deadline.Stop()
	stopReading()
	readers.Wait()
	stopProgress()

	var latencies []time.Duration
	var last time.Time
	for _, r := range receivers {
		seen := map[string]bool{}
		for _, d := range r.got {
			if seen[d.eventID] {
				rep.Duplicated++
				continue
			}
			seen[d.eventID] = true
			rep.Received++
			latencies = append(latencies, d.at.Sub(sentAt[d.post]))
			if d.at.After(last) {
				last = d.at
			}
		}
	}
	rep.Expected = int(expected.Load())
	rep.Missing = rep.Expected - rep.Received
	rep.Latency = percentiles(latencies)
	if span := last.Sub(sentAt[0]).Seconds(); span > 0 {
		rep.Throughput = float64(rep.Received) / span
	}
	return rep, nil
}

// collect reads post events of this run until ctx ends.
func (r *receiver) collect(ctx context.Context, tag string, received *atomic.Int64) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.conn.Done():
			return
		case ev := <-r.conn.Events():
			if ev.Event.Type != "group.post_created" {
				continue
			}
			var data struct {
				ContentPreview string `json:"contentPreview"`
			}
			if json.Unmarshal(ev.Event.Data, &data) != nil || !strings.HasPrefix(data.ContentPreview, tag) {
				continue
			}
			num, _, _ := strings.Cut(strings.TrimPrefix(data.ContentPreview, tag), " ")
			i, err := strconv.Atoi(num)
			if err != nil {
				continue
			}
			r.got = append(r.got, delivery{post: i, eventID: ev.Event.ID, at: ev.At})
			if r.seen == nil {
				r.seen = map[string]bool{}
			}
			if !r.seen[ev.Event.ID] {
				r.seen[ev.Event.ID] = true
				received.Add(1)
			}
		}
	}
}

func makeUsers(ctx context.Context, cfg Config) ([]*client.HTTP, error) {
	users := make([]*client.HTTP, cfg.Members)
	err := forEach(ctx, users, 16, func(ctx context.Context, i int, _ *client.HTTP) error {
		id := fmt.Sprintf("lg-%s-u%d", cfg.RunID, i)
		tok, err := cfg.Tokens.Token(ctx, id, fmt.Sprintf("Load User %d", i))
		if err != nil {
			return err
		}
		users[i] = &client.HTTP{BaseURL: cfg.HTTPURL, Token: tok, Client: cfg.HTTPClient}
		return nil
	})
	return users, err
}

// forEach runs fn for every element with at most n running at once and
// stops at the first error.
func forEach[T any](ctx context.Context, items []T, n int, fn func(context.Context, int, T) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for i, it := range items {
		g.Go(func() error { return fn(ctx, i, it) })
	}
	return g.Wait()
}

func closeAll(rs []*receiver) {
	var wg sync.WaitGroup
	for _, r := range rs {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.conn.Close()
		}()
	}
	wg.Wait()
}

// progress prints "label n/total" once a second until stopped.
func progress(w io.Writer, label string, n, total *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "  %s %d/%d\n", label, n.Load(), total.Load())
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
