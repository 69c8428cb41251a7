package stack_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/groupcast/groupcast/pkg/client"
)

// BenchmarkPostToDelivery measures the end-to-end path on the local stack:
// POST over HTTP, the API function's write, the stream, the fan-out
// function, @connections, and the WebSocket read, for one post delivered to
// every other subscriber. ns/op is the time until the last subscriber has
// the event.
func BenchmarkPostToDelivery(b *testing.B) {
	for _, subscribers := range []int{10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subscribers), func(b *testing.B) {
			benchPostToDelivery(b, subscribers)
		})
	}
}

func benchPostToDelivery(b *testing.B, subscribers int) {
	ctx := b.Context()
	s := shared
	mint := func(name string) *client.HTTP {
		id := fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano()%1e6, userSeq.Add(1))
		tok, err := s.Mint(id, name)
		if err != nil {
			b.Fatal(err)
		}
		return &client.HTTP{BaseURL: s.Endpoints.HTTPAPI, Token: tok}
	}
	poster := mint("poster")
	g, err := poster.CreateGroup(ctx, "bench", "", "public")
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*client.Conn, subscribers)
	for i := range conns {
		u := mint("reader")
		if err := u.JoinGroup(ctx, g.GroupID); err != nil {
			b.Fatal(err)
		}
		c, err := client.Dial(ctx, s.Endpoints.WebSocket, u.Token)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if r, err := c.Subscribe(ctx, g.GroupID); err != nil || r.Type != "subscribed" {
			b.Fatalf("subscribe: %v %+v", err, r)
		}
		conns[i] = c
	}
	b.ResetTimer()
	for range b.N {
		p, err := poster.CreatePost(ctx, g.GroupID, "benchmark post")
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range conns {
			waitForPost(b, c, p.PostID)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(subscribers*b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func waitForPost(b *testing.B, c *client.Conn, postID string) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if ev.Event.Type == "group.post_created" && containsJSON(ev.Event.Data, `"postId":"`+postID+`"`) {
				return
			}
		case <-c.Done():
			b.Fatalf("connection closed: %v", c.Err())
		case <-timeout:
			b.Fatalf("post %s not delivered", postID)
		}
	}
}
