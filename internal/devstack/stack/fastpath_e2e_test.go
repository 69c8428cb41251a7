package stack_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/devstack/stack"
	"github.com/groupcast/groupcast/internal/loadgen"
	"github.com/groupcast/groupcast/pkg/client"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// awsTiming: the stream is polled every 250 ms as on AWS, so the path that
// delivers shows in the claim: the fast path is there first.
func awsTiming(o *stack.Options) { o.Timing = stack.Timing{AWS: true} }

// awaitClaim waits until ev's claim is done and returns it.
func awaitClaim(t *testing.T, store *dynamostore.Store, ev client.Event) dynamostore.Claim {
	t.Helper()
	var c dynamostore.Claim
	eventually(t, "claim of "+ev.Type+" "+ev.ID+" done", func() bool {
		got, found, err := store.GetClaim(context.Background(), ev.ID)
		c = got
		return err == nil && found && got.State == dynamostore.ClaimDone
	})
	return c
}

// liveEvents makes a change of every kind the API function makes (group
// creation, invitation, acceptance, join, leave, post) and returns the
// events the watching connections received, one of each type.
func liveEvents(t *testing.T, s *stack.Stack) []client.Event {
	t.Helper()
	ctx := testContext(t)
	a, b, c := newUser(t, s, "a"), newUser(t, s, "b"), newUser(t, s, "c")
	feed := b.connect(t, s, groupcast.SubscribePublic)
	g, err := a.CreateGroup(ctx, "fast "+a.ID, "e2e", "public")
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Event
	got = append(got, awaitMatching(t, feed, string(groupcast.EventGroupCreated), `"groupId":"`+g.GroupID+`"`))
	ca := a.connect(t, s, g.GroupID)
	cc := c.connect(t, s)
	if _, err := a.Invite(ctx, g.GroupID, c.ID); err != nil {
		t.Fatal(err)
	}
	got = append(got, awaitEvent(t, cc, string(groupcast.EventInvitationReceived)))
	if err := c.AnswerInvitation(ctx, g.GroupID, true); err != nil {
		t.Fatal(err)
	}
	got = append(got, awaitMatching(t, ca, string(groupcast.EventInvitationAccepted), `"inviteeId":"`+c.ID+`"`))
	if err := b.JoinGroup(ctx, g.GroupID); err != nil {
		t.Fatal(err)
	}
	got = append(got, awaitMatching(t, ca, string(groupcast.EventMemberJoined), `"userId":"`+b.ID+`"`))
	if err := b.Do(ctx, http.MethodDelete, "/groups/"+g.GroupID+"/members/me", nil, nil); err != nil {
		t.Fatal(err)
	}
	got = append(got, awaitMatching(t, ca, string(groupcast.EventMemberLeft), `"userId":"`+b.ID+`"`))
	if _, err := c.CreatePost(ctx, g.GroupID, "fast"); err != nil {
		t.Fatal(err)
	}
	got = append(got, awaitEvent(t, ca, string(groupcast.EventPostCreated)))
	return got
}

// TestFastPathDeliversEveryEventType: with the fast path on, every kind of
// event the API function makes is delivered by the fast path (its claim
// says so), and no watching connection gets one twice.
func TestFastPathDeliversEveryEventType(t *testing.T) {
	// The stream polls every 10 s here, not 250 ms: the fast path must win
	// every event, however slow a loaded CI machine makes it.
	s, err := startStackWith(testContext(t), nil, nil, func(o *stack.Options) {
		o.Timing = stack.Timing{AWS: true, StreamPollInterval: 10 * time.Second}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	store := storeOf(t, s)
	for _, ev := range liveEvents(t, s) {
		if c := awaitClaim(t, store, ev); c.Owner != fanout.OwnerFast {
			t.Errorf("%s %s delivered by %q, want the fast path", ev.Type, ev.ID, c.Owner)
		}
	}
}

// TestStreamDeliversWithoutTheFastPath: with the fast path off (template
// parameter), or failing (its pushes and its SQS sends answer 500: a fast
// path whose pushes alone fail queues them for the push workers and
// finishes), the stream delivers every event, and the claims say the
// stream did.
func TestStreamDeliversWithoutTheFastPath(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"Internal server error"}`, http.StatusInternalServerError)
	}))
	defer failing.Close()
	tests := []struct {
		name string
		env  map[string]map[string]string
		edit func(*stack.Options)
	}{
		{"off", nil, func(o *stack.Options) { awsTiming(o); o.Parameters["FastPath"] = "false" }},
		{"failing", map[string]map[string]string{"FastPathFunction": {"WEBSOCKET_MANAGEMENT_ENDPOINT": failing.URL + "/dev", "AWS_ENDPOINT_URL_SQS": failing.URL}}, awsTiming},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := startStackWith(testContext(t), nil, tt.env, tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			store := storeOf(t, s)
			for _, ev := range liveEvents(t, s) {
				if c := awaitClaim(t, store, ev); c.Owner != fanout.OwnerStream {
					t.Errorf("%s %s delivered by %q, want the stream", ev.Type, ev.ID, c.Owner)
				}
			}
		})
	}
}

// TestKillingTheFastPathLosesNothing kills a busy fast-path process (kill
// -9) ten times during a load run: the stream takes each killed delivery
// over once its claim's lease runs out, so nothing goes missing; only the
// connections a killed delivery had reached may get the event again (same
// id), which bounds the duplicates by kills × receivers.
func TestKillingTheFastPathLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := startStackWith(ctx, nil, nil, awsTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	const kills, members, conns = 10, 5, 20
	kctx, stop := context.WithCancel(ctx)
	killed := make(chan int, 1)
	go func() { killed <- stack.KillBusyRepeatedly(kctx, s, "FastPathFunction", kills) }()
	rep, err := loadgen.Run(ctx, loadgen.Config{
		HTTPURL: s.Endpoints.HTTPAPI, WSURL: s.Endpoints.WebSocket,
		Tokens:  client.TokenEndpoint{URL: s.Endpoints.Tokens},
		Members: members, Connections: conns, Posts: 60, Rate: 10,
		// A killed delivery waits for its claim's lease to run out
		// (~3 s without renewals), then the stream's next poll.
		Wait: 30 * time.Second,
	})
	stop()
	n := <-killed
	if err != nil {
		t.Fatal(err)
	}
	if n != kills {
		t.Fatalf("killed %d busy fast-path processes, want %d", n, kills)
	}
	receivers := conns - conns/members // the poster's connections get nothing
	if rep.Missing != 0 || rep.Received < rep.Expected || rep.Duplicated > kills*receivers || rep.PostErrors != 0 {
		t.Fatalf("report %+v: want nothing missing and at most %d duplicates", rep, kills*receivers)
	}
	t.Logf("%d kills: %d deliveries, %d duplicates, latency %+v", n, rep.Received, rep.Duplicated, rep.Latency)
}
