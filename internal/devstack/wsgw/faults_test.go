package wsgw

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A connection opened with devstack-push-fault fails every POST to it with
// that status when PushFaults is on, after the signature check; other
// connections are unaffected, and with PushFaults off the parameter is an
// ordinary one that reaches $connect.
func TestPushFaults(t *testing.T) {
	tests := []struct {
		name       string
		enabled    bool
		fault      string
		wantStatus int    // every POST to the faulted connection
		wantType   string // its x-amzn-ErrorType
		wantMsg    string
	}{
		{name: "500", enabled: true, fault: "500", wantStatus: 500, wantType: "InternalServerErrorException", wantMsg: "Internal server error"},
		{name: "410", enabled: true, fault: "410", wantStatus: 410, wantType: "GoneException"},
		{name: "off", enabled: false, fault: "500", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.PushFaults = tt.enabled })
			faultyWS, faulty := f.dial(t, "?token=alice&"+PushFaultParam+"="+tt.fault)
			healthyWS, healthy := f.dial(t, "?token=bob")

			sign := signWith(t, f.admin, time.Now())
			const posts = 3
			for i := range posts {
				st, typ, msg := rawManagementCall(t, f, http.MethodPost, faulty, []byte(`{"n":1}`), sign)
				if st != tt.wantStatus || typ != tt.wantType || msg != tt.wantMsg {
					t.Fatalf("POST %d to the faulted connection: %d %q %q, want %d %q %q", i+1, st, typ, msg, tt.wantStatus, tt.wantType, tt.wantMsg)
				}
				if st, _, _ := rawManagementCall(t, f, http.MethodPost, healthy, []byte(`{"n":2}`), sign); st != http.StatusOK {
					t.Fatalf("POST %d to the healthy connection: %d, want 200", i+1, st)
				}
			}
			// Unsigned calls are refused before the fault applies.
			if st, _, _ := rawManagementCall(t, f, http.MethodPost, faulty, []byte(`{}`), nil); st != http.StatusForbidden {
				t.Errorf("unsigned POST to the faulted connection: %d, want 403", st)
			}
			ctx := testCtx(t)
			for range posts {
				if _, got, err := healthyWS.Read(ctx); err != nil || string(got) != `{"n":2}` {
					t.Fatalf("healthy client read %q, %v", got, err)
				}
			}
			wantFaulted := int64(posts)
			if !tt.enabled {
				wantFaulted = 0
				for range posts {
					if _, got, err := faultyWS.Read(ctx); err != nil || string(got) != `{"n":1}` {
						t.Fatalf("client of an ignored fault read %q, %v", got, err)
					}
				}
			}
			if got := f.gw.FaultedPosts(); got != wantFaulted {
				t.Errorf("FaultedPosts = %d, want %d", got, wantFaulted)
			}
		})
	}
}

// The gateway consumes the parameter when faults are on: $connect and the
// authorizer never see it. Off, it reaches them like any query parameter.
func TestPushFaultParamReachesFunctionsOnlyWhenOff(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[enabled], func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.PushFaults = enabled })
			c, _, err := websocket.Dial(testCtx(t), f.wsURL("?token=alice&"+PushFaultParam+"=410"), nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.CloseNow()
			ev := f.inv.next(t, "Connect").event
			_, seen := ev.QueryStringParameters[PushFaultParam]
			_, seenMulti := ev.MultiValueQueryStringParameters[PushFaultParam]
			if seen != !enabled || seenMulti != !enabled {
				t.Errorf("$connect sees %s: %v/%v, want %v", PushFaultParam, seen, seenMulti, !enabled)
			}
			if ev.QueryStringParameters["token"] != "alice" {
				t.Errorf("$connect query %v lost the token", ev.QueryStringParameters)
			}
		})
	}
}

// A value other than 500 or 410 refuses the handshake with 400 when faults
// are on, before any function runs.
func TestPushFaultBadValue(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.PushFaults = true })
	c, resp, err := websocket.Dial(testCtx(t), f.wsURL("?token=alice&"+PushFaultParam+"=503"), nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("handshake succeeded, want 400")
	}
	if got := statusOf(resp); got != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", got)
	}
	select {
	case inv := <-f.inv.calls:
		t.Fatalf("%s invoked for a refused handshake", inv.function)
	default:
	}
}
