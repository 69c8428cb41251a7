// Package loadgen measures post-to-notification latency and fan-out
// throughput of a running Groupcast deployment (the local stack or a
// deployed stage). Senders and receivers live in one process, so every
// latency is measured on one clock: from just before the POST is sent to
// the moment a client reads the event from its socket.
package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
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

	// FailingConnections opens this many extra connections, for members
	// other than the poster and subscribed like the others, that ask the
	// local stack (devstack --push-faults) to fail every @connections POST
	// to them with FailingStatus (500 or 410; 0 is 500). They are owed
	// nothing: the run shows that the others still get exactly one
	// delivery each.
	FailingConnections int
	FailingStatus      int
	// FaultedPushes, when set, counts the @connections POSTs the stack
	// answered with an injected fault (the in-process stack's
	// FaultedPushes); the report then says how often failing connections
	// were tried.
	FaultedPushes func() int64

	// SmallGroup, when 2 or more, creates a second group of this many
	// members with one subscribed connection each. Each round its first
	// member posts to it at the same moment as the main group's post, and
	// the report gives its deliveries separately: whether a small group
	// waits behind a large one (head-of-line blocking).
	SmallGroup int

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
	if c.FailingConnections < 0 || c.SmallGroup < 0 {
		return nil, errors.New("loadgen: failing connections and small group must not be negative")
	}
	if c.FailingConnections > 0 && c.Members < 2 {
		return nil, errors.New("loadgen: failing connections belong to members other than the poster: need 2 or more members")
	}
	switch c.FailingStatus {
	case 0:
		c.FailingStatus = http.StatusInternalServerError
	case http.StatusInternalServerError, http.StatusGone:
	default:
		return nil, fmt.Errorf("loadgen: failing status %d: want 500 or 410", c.FailingStatus)
	}
	if c.SmallGroup == 1 {
		return nil, errors.New("loadgen: a small group needs 2 or more members (its poster receives nothing)")
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

	// Failing describes the connections made to fail (FailingConnections).
	Failing *FailingStats `json:"failing,omitempty"`
	// SmallGroup is the second group's deliveries (Config.SmallGroup).
	SmallGroup *GroupStats `json:"smallGroup,omitempty"`

	// Stack is sampled after the run when the stack runs in-process.
	Stack *StackStats `json:"stack,omitempty"`
}

// FailingStats shows how the stack treated connections whose every push
// fails.
type FailingStats struct {
	Connections int `json:"connections"`
	Status      int `json:"status"`
	// Calls counts the @connections POSTs they got during the posts and
	// the wait; nil when the stack cannot tell (not in-process).
	Calls *int64 `json:"calls,omitempty"`
}

// GroupStats are the deliveries of the small group's posts.
type GroupStats struct {
	Members    int         `json:"members"`
	Expected   int         `json:"expected"`
	Received   int         `json:"received"`
	Duplicated int         `json:"duplicated"`
	Missing    int         `json:"missing"`
	Refused    int         `json:"refused"`
	PostErrors int         `json:"postErrors"`
	Latency    Percentiles `json:"latencyMs"`
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

	users, err := makeUsers(ctx, cfg, "u", cfg.Members)
	if err != nil {
		return rep, err
	}
	say("minted %d tokens", len(users))
	group, err := makeGroup(ctx, users, "loadgen "+cfg.RunID)
	if err != nil {
		return rep, err
	}
	say("group %s has %d members", group, len(users))

	// One dial list: the main group's connections, then the failing ones,
	// then the small group's.
	var dials []dialSpec
	for i := range cfg.Connections {
		dials = append(dials, dialSpec{user: users[i%len(users)], userIndex: i % len(users), group: group})
	}
	if cfg.FailingConnections > 0 {
		u, err := url.Parse(cfg.WSURL)
		if err != nil {
			return rep, fmt.Errorf("WebSocket URL: %w", err)
		}
		q := u.Query()
		q.Set(pushFaultParam, strconv.Itoa(cfg.FailingStatus))
		u.RawQuery = q.Encode()
		for i := range cfg.FailingConnections {
			ui := 1 + i%(len(users)-1) // never the poster, who is owed nothing anyway
			dials = append(dials, dialSpec{user: users[ui], userIndex: ui, group: group, wsURL: u.String()})
		}
		rep.Failing = &FailingStats{Connections: cfg.FailingConnections, Status: cfg.FailingStatus}
	}
	var small []*client.HTTP
	var smallGroup string
	if cfg.SmallGroup > 0 {
		if small, err = makeUsers(ctx, cfg, "s", cfg.SmallGroup); err != nil {
			return rep, err
		}
		if smallGroup, err = makeGroup(ctx, small, "loadgen small "+cfg.RunID); err != nil {
			return rep, err
		}
		say("small group %s has %d members", smallGroup, len(small))
		for i, u := range small {
			dials = append(dials, dialSpec{user: u, userIndex: i, group: smallGroup})
		}
		rep.SmallGroup = &GroupStats{Members: cfg.SmallGroup}
	}

	receivers := make([]*receiver, len(dials))
	connectTimes := make([]time.Duration, 0, cfg.Connections)
	var connected atomic.Int64
	startConnect := time.Now()
	var connections atomic.Int64
	connections.Store(int64(len(dials)))
	stopProgress := progress(cfg.Progress, "connected", &connected, &connections)
	var timesMu sync.Mutex
	err = forEach(ctx, dials, cfg.DialConcurrency, func(ctx context.Context, i int, d dialSpec) error {
		t0 := time.Now()
		wsURL := cmp.Or(d.wsURL, cfg.WSURL)
		conn, err := client.Dial(ctx, wsURL, d.user.Token)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		reply, err := conn.Subscribe(ctx, d.group)
		if err != nil || reply.Type != "subscribed" || len(reply.GroupIDs) != 1 {
			conn.Close()
			return fmt.Errorf("connection %d: subscribe: %v %+v", i, err, reply)
		}
		if i < cfg.Connections {
			timesMu.Lock()
			connectTimes = append(connectTimes, time.Since(t0))
			timesMu.Unlock()
		}
		receivers[i] = &receiver{conn: conn, userIndex: d.userIndex}
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
	say("%d connections subscribed in %.0f ms", len(dials), rep.ConnectAll)
	mainRecv := receivers[:cfg.Connections]
	failingRecv := receivers[cfg.Connections : cfg.Connections+cfg.FailingConnections]
	smallRecv := receivers[cfg.Connections+cfg.FailingConnections:]

	tag := "lg:" + cfg.RunID + ":"
	smallTag := "lgs:" + cfg.RunID + ":"
	readCtx, stopReading := context.WithCancel(ctx)
	var readers sync.WaitGroup
	var received, smallReceived, failingReceived atomic.Int64
	read := func(rs []*receiver, tag string, n *atomic.Int64) {
		for _, r := range rs {
			readers.Add(1)
			go func() {
				defer readers.Done()
				r.collect(readCtx, tag, n)
			}()
		}
	}
	read(mainRecv, tag, &received)
	read(failingRecv, tag, &failingReceived)
	read(smallRecv, smallTag, &smallReceived)

	// The poster's own connections never receive its posts (self-exclusion).
	expectedPerPost := owedPerPost(mainRecv)
	var expected atomic.Int64
	expected.Store(int64(expectedPerPost * cfg.Posts))
	smallPerPost := owedPerPost(smallRecv)
	var smallExpected atomic.Int64
	smallExpected.Store(int64(smallPerPost * cfg.Posts))

	var faultedBefore int64
	if rep.Failing != nil && cfg.FaultedPushes != nil {
		faultedBefore = cfg.FaultedPushes()
	}
	sentAt := make([]time.Time, cfg.Posts)
	smallSentAt := make([]time.Time, cfg.Posts)
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
		// The small group's post goes out concurrently with the main one.
		var smallDone chan struct{}
		if rep.SmallGroup != nil {
			smallDone = make(chan struct{})
			go func() {
				defer close(smallDone)
				smallSentAt[i] = time.Now()
				_, err := small[0].CreatePost(ctx, smallGroup, fmt.Sprintf("%s%d load test post", smallTag, i))
				if err != nil {
					countPostError(err, &rep.SmallGroup.Refused, &rep.SmallGroup.PostErrors)
					smallExpected.Add(-int64(smallPerPost))
					say("small group post %d: %v", i, err)
				}
			}()
		}
		sentAt[i] = time.Now()
		_, err := users[0].CreatePost(ctx, group, fmt.Sprintf("%s%d load test post", tag, i))
		if err != nil {
			countPostError(err, &rep.Refused, &rep.PostErrors)
			// Neither a refused nor a failed post is owed to anyone.
			expected.Add(-int64(expectedPerPost))
			say("post %d: %v", i, err)
		} else {
			postTimes = append(postTimes, time.Since(sentAt[i]))
		}
		if smallDone != nil {
			<-smallDone
		}
	}
	ticker.Stop()
	rep.PostLatency = percentiles(postTimes)

	deadline := time.NewTimer(cfg.Wait)
	for received.Load() < expected.Load() || smallReceived.Load() < smallExpected.Load() {
		select {
		case <-deadline.C:
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	deadline.Stop()
	if rep.Failing != nil && cfg.FaultedPushes != nil {
		calls := cfg.FaultedPushes() - faultedBefore
		rep.Failing.Calls = &calls
	}
	stopReading()
	readers.Wait()
	stopProgress()

	t := tally(mainRecv, sentAt)
	rep.Received, rep.Duplicated = t.received, t.duplicated
	rep.Expected = int(expected.Load())
	rep.Missing = rep.Expected - rep.Received
	rep.Latency = percentiles(t.latencies)
	if span := t.last.Sub(sentAt[0]).Seconds(); span > 0 {
		rep.Throughput = float64(rep.Received) / span
	}
	if sg := rep.SmallGroup; sg != nil {
		st := tally(smallRecv, smallSentAt)
		sg.Received, sg.Duplicated = st.received, st.duplicated
		sg.Expected = int(smallExpected.Load())
		sg.Missing = sg.Expected - sg.Received
		sg.Latency = percentiles(st.latencies)
	}
	if n := failingReceived.Load(); n > 0 {
		return rep, fmt.Errorf("failing connections received %d posts: does the stack honour %s (devstack --push-faults)?", n, pushFaultParam)
	}
	return rep, nil
}

// pushFaultParam is the local stack's connect-time fault request
// (wsgw.PushFaultParam; loadgen does not import the stack, which a
// deployed stage does not have).
const pushFaultParam = "devstack-push-fault"

// dialSpec is one connection to open: whose, to which group, and where
// (wsURL: "" is Config.WSURL).
type dialSpec struct {
	user      *client.HTTP
	userIndex int
	group     string
	wsURL     string
}

// makeGroup has users[0] create a public group and the others join it.
func makeGroup(ctx context.Context, users []*client.HTTP, name string) (string, error) {
	group, err := users[0].CreateGroup(ctx, name, "load test group", "public")
	if err != nil {
		return "", fmt.Errorf("create group: %w", err)
	}
	if err := forEach(ctx, users[1:], 16, func(ctx context.Context, _ int, u *client.HTTP) error {
		return joinGroup(ctx, u, group.GroupID)
	}); err != nil {
		return "", fmt.Errorf("join group: %w", err)
	}
	return group.GroupID, nil
}

// joinGroup joins, trying again on 409 as the API asks ("the group changed
// concurrently; try again"): 16 joiners of one group contend for its member
// count, and on a loaded machine the service's own retries can run out.
// 20 tries with full jitter up to 200 ms bound the wait to a few seconds.
func joinGroup(ctx context.Context, u *client.HTTP, groupID string) error {
	for try := 1; ; try++ {
		err := u.JoinGroup(ctx, groupID)
		var apiErr *client.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || try == 20 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rand.N(min(10*time.Millisecond<<min(try, 5), 200*time.Millisecond))):
		}
	}
}

// owedPerPost counts the connections a post by user 0 must reach.
func owedPerPost(rs []*receiver) int {
	n := 0
	for _, r := range rs {
		if r.userIndex != 0 {
			n++
		}
	}
	return n
}

func countPostError(err error, refused, failed *int) {
	if client.IsStatus(err, http.StatusTooManyRequests) {
		*refused++
	} else {
		*failed++
	}
}

type tallied struct {
	received, duplicated int
	latencies            []time.Duration
	last                 time.Time
}

// tally counts each connection's distinct events and their latencies from
// the post's send time.
func tally(rs []*receiver, sentAt []time.Time) tallied {
	var t tallied
	for _, r := range rs {
		seen := map[string]bool{}
		for _, d := range r.got {
			if seen[d.eventID] {
				t.duplicated++
				continue
			}
			seen[d.eventID] = true
			t.received++
			if d.post < 0 || d.post >= len(sentAt) {
				continue
			}
			t.latencies = append(t.latencies, d.at.Sub(sentAt[d.post]))
			if d.at.After(t.last) {
				t.last = d.at
			}
		}
	}
	return t
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

// makeUsers mints n users whose ids start with the run id and prefix.
func makeUsers(ctx context.Context, cfg Config, prefix string, n int) ([]*client.HTTP, error) {
	users := make([]*client.HTTP, n)
	err := forEach(ctx, users, 16, func(ctx context.Context, i int, _ *client.HTTP) error {
		id := fmt.Sprintf("lg-%s-%s%d", cfg.RunID, prefix, i)
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
