package dynamostore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

func TestTakeClaim(t *testing.T) {
	ctx := context.Background()
	now := t0
	live, stale := now.Add(10*time.Second), now.Add(-time.Millisecond)
	type take struct {
		owner     string
		lease     time.Time
		retakeOwn bool
		done      bool // finish the claim after taking it
	}
	tests := []struct {
		name      string
		given     []take
		try       take
		wantTaken bool
		wantOwner string
		wantState dynamostore.ClaimState
	}{
		{"no claim yet: taken", nil, take{owner: "fast", lease: live}, true, "fast", dynamostore.ClaimStarted},
		{"started and live: refused", []take{{owner: "fast", lease: live}}, take{owner: "stream", lease: live}, false, "fast", dynamostore.ClaimStarted},
		{"done: refused", []take{{owner: "fast", lease: live, done: true}}, take{owner: "stream", lease: live}, false, "fast", dynamostore.ClaimDone},
		{"done with its lease over: still refused", []take{{owner: "fast", lease: stale, done: true}}, take{owner: "stream", lease: live}, false, "fast", dynamostore.ClaimDone},
		{"started and stale: taken over", []take{{owner: "fast", lease: stale}}, take{owner: "stream", lease: live}, true, "stream", dynamostore.ClaimStarted},
		{"own live claim, retakeOwn: taken", []take{{owner: "stream", lease: live}}, take{owner: "stream", lease: live, retakeOwn: true}, true, "stream", dynamostore.ClaimStarted},
		{"own live claim without retakeOwn: refused", []take{{owner: "fast", lease: live}}, take{owner: "fast", lease: live}, false, "fast", dynamostore.ClaimStarted},
		{"other's live claim, retakeOwn: refused", []take{{owner: "fast", lease: live}}, take{owner: "stream", lease: live, retakeOwn: true}, false, "fast", dynamostore.ClaimStarted},
		{"own done claim, retakeOwn: refused", []take{{owner: "stream", lease: live, done: true}}, take{owner: "stream", lease: live, retakeOwn: true}, false, "stream", dynamostore.ClaimDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for _, g := range tt.given {
				c, taken, err := e.store.TakeClaim(ctx, "ev1", g.owner, now, g.lease, g.retakeOwn)
				if err != nil || !taken {
					t.Fatalf("given take: %v, %v", taken, err)
				}
				if g.done {
					if err := e.store.FinishClaim(ctx, c); err != nil {
						t.Fatal(err)
					}
				}
			}
			c, taken, err := e.store.TakeClaim(ctx, "ev1", tt.try.owner, now, tt.try.lease, tt.try.retakeOwn)
			if err != nil {
				t.Fatal(err)
			}
			if taken != tt.wantTaken || c.Owner != tt.wantOwner || c.State != tt.wantState {
				t.Errorf("TakeClaim = %+v taken %v; want owner %s state %s taken %v", c, taken, tt.wantOwner, tt.wantState, tt.wantTaken)
			}
			stored, found, err := e.store.GetClaim(ctx, "ev1")
			if err != nil || !found || stored.Token != c.Token || stored.Owner != tt.wantOwner {
				t.Errorf("stored claim %+v (found %v, %v); want the one returned, %+v", stored, found, err, c)
			}
			var it dynamostore.ClaimItem
			if !e.raw(t, "CLAIM#ev1", "CLAIM", &it) || it.Type != "CLAIM" || it.TTL != now.Add(dynamostore.ClaimRetention).Unix() && tt.wantTaken {
				t.Errorf("stored item %+v: want type CLAIM and ttl now+%s", it, dynamostore.ClaimRetention)
			}
		})
	}
}

// Of many paths racing for a new event's claim exactly one wins.
func TestTakeClaimRaceHasOneWinner(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const racers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for i := range racers {
		owner := "fast"
		if i%2 == 1 {
			owner = "stream"
		}
		wg.Go(func() {
			_, taken, err := e.store.TakeClaim(ctx, "ev1", owner, t0, t0.Add(time.Minute), false)
			if err != nil {
				t.Error(err)
			}
			if taken {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if winners != 1 {
		t.Errorf("%d winners, want 1", winners)
	}
}

func TestFinishAndReleaseNeedTheToken(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(s *dynamostore.Store, old dynamostore.Claim) error
	}{
		{"finish", func(s *dynamostore.Store, old dynamostore.Claim) error { return s.FinishClaim(ctx, old) }},
		{"release", func(s *dynamostore.Store, old dynamostore.Claim) error { return s.ReleaseClaim(ctx, old) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			old, _, err := e.store.TakeClaim(ctx, "ev1", "fast", t0, t0.Add(-time.Second), false)
			if err != nil {
				t.Fatal(err)
			}
			// The stream takes the stale claim over; the old holder then
			// wakes up and must not finish or delete its successor's claim.
			cur, taken, err := e.store.TakeClaim(ctx, "ev1", "stream", t0, t0.Add(time.Minute), false)
			if err != nil || !taken {
				t.Fatalf("take over: %v %v", taken, err)
			}
			if err := tt.run(e.store, old); !errors.Is(err, dynamostore.ErrClaimLost) {
				t.Errorf("%s with a lost claim: %v, want ErrClaimLost", tt.name, err)
			}
			got, found, err := e.store.GetClaim(ctx, "ev1")
			if err != nil || !found || got.Token != cur.Token || got.State != dynamostore.ClaimStarted {
				t.Errorf("claim after: %+v found %v %v; want the successor's, started", got, found, err)
			}
			// The holder itself can.
			if err := tt.run(e.store, cur); err != nil {
				t.Errorf("%s by the holder: %v", tt.name, err)
			}
		})
	}
}

// RenewClaim is the holder's heartbeat: it moves a held lease on, so a
// takeover waits for the new lease, and it reports ErrClaimLost (writing
// nothing) once the claim is no longer the caller's.
func TestRenewClaim(t *testing.T) {
	ctx := context.Background()
	lease, renewed := t0.Add(3*time.Second), t0.Add(6*time.Second)
	tests := []struct {
		name string
		// given returns the claim the renewal is made with.
		given    func(t *testing.T, s *dynamostore.Store) dynamostore.Claim
		wantErr  error
		wantLeft func(t *testing.T, got dynamostore.Claim, found bool)
	}{
		{"held: the lease moves on", func(t *testing.T, s *dynamostore.Store) dynamostore.Claim {
			c, _, err := s.TakeClaim(ctx, "ev1", "fast", t0, lease, false)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, func(t *testing.T, got dynamostore.Claim, found bool) {
			if !found || !got.LeaseUntil.Equal(renewed) || got.State != dynamostore.ClaimStarted || got.Owner != "fast" {
				t.Errorf("claim %+v found %v, want fast's, started, leased until %s", got, found, renewed)
			}
		}},
		{"taken over: lost", func(t *testing.T, s *dynamostore.Store) dynamostore.Claim {
			old, _, err := s.TakeClaim(ctx, "ev1", "fast", t0, t0.Add(-time.Second), false)
			if err != nil {
				t.Fatal(err)
			}
			if _, taken, err := s.TakeClaim(ctx, "ev1", "stream", t0, lease, false); err != nil || !taken {
				t.Fatalf("take over: %v %v", taken, err)
			}
			return old
		}, dynamostore.ErrClaimLost, func(t *testing.T, got dynamostore.Claim, found bool) {
			if !found || got.Owner != "stream" || !got.LeaseUntil.Equal(lease) {
				t.Errorf("claim %+v found %v, want the stream's lease untouched", got, found)
			}
		}},
		{"finished: lost", func(t *testing.T, s *dynamostore.Store) dynamostore.Claim {
			c, _, err := s.TakeClaim(ctx, "ev1", "fast", t0, lease, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.FinishClaim(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, dynamostore.ErrClaimLost, func(t *testing.T, got dynamostore.Claim, found bool) {
			if !found || got.State != dynamostore.ClaimDone || !got.LeaseUntil.Equal(lease) {
				t.Errorf("claim %+v found %v, want done, lease untouched", got, found)
			}
		}},
		{"released: lost, nothing written", func(t *testing.T, s *dynamostore.Store) dynamostore.Claim {
			c, _, err := s.TakeClaim(ctx, "ev1", "fast", t0, lease, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ReleaseClaim(ctx, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, dynamostore.ErrClaimLost, func(t *testing.T, got dynamostore.Claim, found bool) {
			if found {
				t.Errorf("claim %+v, want none (a renewal must not recreate it)", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := tt.given(t, e.store)
			err := e.store.RenewClaim(ctx, c, renewed)
			if (tt.wantErr == nil) != (err == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("RenewClaim = %v, want %v", err, tt.wantErr)
			}
			got, found, err := e.store.GetClaim(ctx, "ev1")
			if err != nil {
				t.Fatal(err)
			}
			tt.wantLeft(t, got, found)
		})
	}
}

// A renewed lease holds off a takeover past the lease it was taken with.
func TestRenewedClaimIsNotTakenOver(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, _, err := e.store.TakeClaim(ctx, "ev1", "fast", t0, t0.Add(3*time.Second), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RenewClaim(ctx, c, t0.Add(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Past the first lease, inside the renewed one.
	got, taken, err := e.store.TakeClaim(ctx, "ev1", "stream", t0.Add(4*time.Second), t0.Add(time.Minute), false)
	if err != nil || taken || got.Token != c.Token {
		t.Errorf("take inside the renewed lease: %+v taken %v %v, want refused with the holder's claim", got, taken, err)
	}
	// Past the renewed lease: the holder is gone, the stream takes over.
	if _, taken, err := e.store.TakeClaim(ctx, "ev1", "stream", t0.Add(7*time.Second), t0.Add(time.Minute), false); err != nil || !taken {
		t.Errorf("take after the renewed lease: %v %v, want taken", taken, err)
	}
}

func TestReleasedClaimCanBeTaken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, _, err := e.store.TakeClaim(ctx, "ev1", "fast", t0, t0.Add(time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.ReleaseClaim(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, taken, err := e.store.TakeClaim(ctx, "ev1", "stream", t0, t0.Add(time.Minute), false); err != nil || !taken {
		t.Errorf("take after release: %v %v, want taken", taken, err)
	}
}

type sinkRecorder struct {
	mu    sync.Mutex
	items []dynamostore.EventItem
}

func (r *sinkRecorder) EventsCommitted(_ context.Context, items []dynamostore.EventItem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, items...)
}

// Every committed change tells the sink of its events; a failed one of none.
func TestEventSinkHearsOfCommittedEvents(t *testing.T) {
	ctx := context.Background()
	client, table := dynamotest.NewTable(t)
	rec := &sinkRecorder{}
	s, err := dynamostore.New(client, table, dynamostore.WithEventSink(rec))
	if err != nil {
		t.Fatal(err)
	}
	e := env{store: s, client: client, table: table}
	g := e.createGroup(t, "g1", groupcast.Public)
	// The same create again fails (conflict) and must report nothing.
	_ = s.CreateGroup(ctx, g, groupcast.Member{GroupID: "g1", UserID: "owner", Role: groupcast.RoleOwner, JoinedAt: t0}, stamp(groupcast.GroupCreatedEvent(g)))
	e.join(t, "g1", "bob")
	var got []groupcast.EventType
	for _, it := range rec.items {
		got = append(got, groupcast.EventType(it.EventType))
		if it.Envelope == "" || it.EventID == "" {
			t.Errorf("item %+v lacks its envelope or id", it)
		}
	}
	want := []groupcast.EventType{groupcast.EventGroupCreated, groupcast.EventMemberJoined}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("sink heard %v, want %v", got, want)
	}
}
