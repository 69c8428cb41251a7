package groupcast

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Defaults of ServiceConfig.
const (
	// DefaultPostsPerMinute lets a person type fast in a lively group while
	// stopping a script from flooding members (every post fans out).
	DefaultPostsPerMinute = 30
	// DefaultMaxSubscriptions bounds the SUB# items of one connection, so
	// $disconnect cleans up in a few calls and one socket cannot make every
	// group's fan-out query heavier.
	DefaultMaxSubscriptions = 100
	// DefaultEventRetention keeps outbox event items a day: the stream
	// keeps records 24 h too, so nothing the fan-out may still be handed is
	// gone, and a resuming client can read that far back.
	DefaultEventRetention = 24 * time.Hour
	// DefaultConnectionTTL is API Gateway's 2-hour maximum connection
	// lifetime plus 5 minutes of slack: a connection item whose $disconnect
	// was lost is certainly dead after that.
	DefaultConnectionTTL = 7500 * time.Second
)

// ServiceConfig holds the Service's collaborators and limits. Zero values
// take the defaults.
type ServiceConfig struct {
	Now              func() time.Time // default time.Now
	NewID            func() string    // default NewULIDGenerator()
	PostsPerMinute   int              // default DefaultPostsPerMinute
	MaxSubscriptions int              // default DefaultMaxSubscriptions
	ConnectionTTL    time.Duration    // default DefaultConnectionTTL
	EventRetention   time.Duration    // default DefaultEventRetention
	ReplayMargin     time.Duration    // default DefaultReplayMargin
	// Sleep waits between retries; default a timer that stops with ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Service carries out the Groupcast use cases and enforces their rules.
// Each use case reaches only the store roles it needs (groups.go, posts.go,
// invitations.go, inbox.go, connections.go), so a test fake implements
// just those.
type Service struct {
	groups        GroupStore
	members       MemberStore
	posts         PostStore
	invitations   InvitationStore
	inbox         InboxStore
	connections   ConnectionStore
	subscriptions SubscriptionStore
	events        EventStore
	cfg           ServiceConfig
}

// NewService returns a Service on store.
func NewService(store Store, cfg ServiceConfig) (*Service, error) {
	if store == nil {
		return nil, errors.New("groupcast: nil store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = NewULIDGenerator()
	}
	if cfg.PostsPerMinute == 0 {
		cfg.PostsPerMinute = DefaultPostsPerMinute
	}
	if cfg.MaxSubscriptions == 0 {
		cfg.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if cfg.ConnectionTTL == 0 {
		cfg.ConnectionTTL = DefaultConnectionTTL
	}
	if cfg.EventRetention == 0 {
		cfg.EventRetention = DefaultEventRetention
	}
	if cfg.ReplayMargin == 0 {
		cfg.ReplayMargin = DefaultReplayMargin
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	switch {
	case cfg.PostsPerMinute < 0:
		return nil, fmt.Errorf("groupcast: PostsPerMinute %d must be positive", cfg.PostsPerMinute)
	case cfg.MaxSubscriptions < 0:
		return nil, fmt.Errorf("groupcast: MaxSubscriptions %d must be positive", cfg.MaxSubscriptions)
	case cfg.ConnectionTTL < 0:
		return nil, fmt.Errorf("groupcast: ConnectionTTL %s must be positive", cfg.ConnectionTTL)
	case cfg.EventRetention < 0:
		return nil, fmt.Errorf("groupcast: EventRetention %s must be positive", cfg.EventRetention)
	case cfg.ReplayMargin < 0:
		return nil, fmt.Errorf("groupcast: ReplayMargin %s must be positive", cfg.ReplayMargin)
	}
	return &Service{
		groups: store, members: store, posts: store, invitations: store,
		inbox: store, connections: store, subscriptions: store, events: store, cfg: cfg,
	}, nil
}

// NewULIDGenerator returns a concurrency-safe generator of ULIDs that sort
// by creation time, also within one millisecond.
func NewULIDGenerator() func() string {
	var mu sync.Mutex
	entropy := ulid.Monotonic(rand.Reader, 0)
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return ulid.MustNew(ulid.Now(), entropy).String()
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// stamp gives an event its place in its stream and its outbox expiry.
func (s *Service) stamp(e Event) Event {
	e.Seq = s.cfg.NewID()
	e.ExpiresAt = e.At.Add(s.cfg.EventRetention)
	return e
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func validateCaller(c Caller) error {
	if err := ValidateID("caller id", c.UserID); err != nil {
		return Errorf(CodeUnauthorized, "missing or malformed caller identity")
	}
	return nil
}
