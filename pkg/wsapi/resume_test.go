package wsapi_test

import (
	"context"
	"slices"
	"testing"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// Every reply echoes the requestId the client attached, errors included.
func TestRequestIDEchoed(t *testing.T) {
	tests := []struct {
		name, body, wantType string
	}{
		{"ping", `{"action":"ping","requestId":"r-ping"}`, "pong"},
		{"subscribe", `{"action":"subscribe","requestId":"r-sub","groupIds":["public"]}`, "subscribed"},
		{"unsubscribe", `{"action":"unsubscribe","requestId":"r-unsub","groupIds":["public"]}`, "unsubscribed"},
		{"resume", `{"action":"resume","requestId":"r-resume","positions":{"user":"01JDQ4ZK3M8X9V7T6R5P4N3M2A"}}`, "resumed"},
		{"unknown action", `{"action":"dance","requestId":"r-dance"}`, "error"},
		{"missing groupIds", `{"action":"subscribe","requestId":"r-empty"}`, "error"},
		{"groupIds of the wrong type", `{"action":"subscribe","requestId":"r-type","groupIds":"g1"}`, "error"},
		{"bad position", `{"action":"subscribe","requestId":"r-pos","groupIds":["public"],"positions":{"user":"x"}}`, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 0)
			e.connect(t, "c1", "alice")
			reply := e.send(t, "c1", "alice", tt.body)
			var want struct{ RequestID string }
			_ = jsonUnmarshal(tt.body, &want)
			if reply["type"] != tt.wantType || reply["requestId"] != want.RequestID {
				t.Errorf("reply = %v, want type %s with requestId %q", reply, tt.wantType, want.RequestID)
			}
		})
	}
	t.Run("no requestId, none echoed", func(t *testing.T) {
		e := newEnv(t, 0)
		e.connect(t, "c1", "alice")
		if reply := e.send(t, "c1", "alice", `{"action":"ping"}`); len(reply) != 1 || reply["type"] != "pong" {
			t.Errorf("reply = %v, want just the type", reply)
		}
	})
}

// A subscribe with positions pushes what the connection missed, one event
// per message, before the reply; a resume does the same for streams it is
// already subscribed to.
func TestPositionsReplayMissedEvents(t *testing.T) {
	for _, action := range []string{"subscribe", "resume"} {
		t.Run(action, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, 0)
			gid := e.group(t, "alice", groupcast.Public)
			priv := e.group(t, "alice", groupcast.Private)
			e.connect(t, "c1", "bob")
			first := e.send(t, "c1", "bob", `{"action":"subscribe","groupIds":["`+gid+`","public"]}`)
			positions, _ := first["positions"].(map[string]any)
			start, _ := positions["group:"+gid].(string)
			if start == "" || positions["user"] == nil || positions["public"] == nil {
				t.Fatalf("first subscribe gave positions %v, want group:%s, user and public", positions, gid)
			}
			// Bob is away: alice posts twice and creates a public group.
			alice := groupcast.Caller{UserID: "alice", DisplayName: "alice"}
			var posts []string
			for _, c := range []string{"one", "two"} {
				p, err := e.svc.CreatePost(ctx, alice, gid, c)
				if err != nil {
					t.Fatal(err)
				}
				posts = append(posts, p.ID)
			}
			pub := e.group(t, "alice", groupcast.Public)
			body := `{"action":"` + action + `","requestId":"r1","groupIds":["` + gid + `","public"],"positions":{"group:` + gid + `":"` + start +
				`","public":"` + positions["public"].(string) + `","group:` + priv + `":"` + start + `"}}`
			if action == "resume" {
				body = `{"action":"resume","requestId":"r1","positions":{"group:` + gid + `":"` + start +
					`","public":"` + positions["public"].(string) + `","group:` + priv + `":"` + start + `"}}`
			}
			reply := e.send(t, "c1", "bob", body)
			rec, _ := reply["recovered"].(map[string]any)
			if rec["group:"+gid] != true || rec["public"] != true || rec["group:"+priv] != false {
				t.Errorf("recovered = %v, want the group and public recovered, the private group (bob is no member) not", rec)
			}
			if np, _ := reply["positions"].(map[string]any); np["group:"+priv] == nil {
				t.Errorf("positions = %v, want a fresh one for the stream that did not recover", np)
			}
			var gotPosts []string
			var gotCreated []string
			for _, env := range e.poster.envelopes(t, "c1") {
				switch env.Type {
				case groupcast.EventPostCreated:
					gotPosts = append(gotPosts, env.ID)
				case groupcast.EventGroupCreated:
					gotCreated = append(gotCreated, env.GroupID)
				}
				if env.Stream == "" || env.Position == "" {
					t.Errorf("pushed %+v without stream and position", env)
				}
			}
			var wantPosts []string
			for _, p := range posts {
				wantPosts = append(wantPosts, groupcast.EventID(groupcast.EventPostCreated, gid, p))
			}
			if !slices.Equal(gotPosts, wantPosts) {
				t.Errorf("replayed posts %v, want %v in order", gotPosts, wantPosts)
			}
			if !slices.Contains(gotCreated, pub) || slices.Contains(gotCreated, priv) {
				t.Errorf("replayed group.created for %v, want %s and never the private %s", gotCreated, pub, priv)
			}
		})
	}
}
