package dynamostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// BenchmarkForEachGroupSubscriber reads the 10,000 subscribers of one
// group, as the fan-out does before it pushes a post, from a table that
// also holds their 10,000 connection items.
func BenchmarkForEachGroupSubscriber(b *testing.B) {
	const subscribers = 10_000
	ctx := context.Background()
	client, table := dynamotest.NewTable(b)
	store, err := dynamostore.New(client, table)
	if err != nil {
		b.Fatal(err)
	}
	expires := time.Now().Add(time.Hour)
	for i := range subscribers {
		c := groupcast.Connection{ID: fmt.Sprintf("conn%06d=", i), UserID: fmt.Sprintf("user-%d", i%100), ConnectedAt: time.Now()}
		if err := store.PutConnection(ctx, c, expires); err != nil {
			b.Fatal(err)
		}
		if _, err := store.PutSubscriptions(ctx, c, []groupcast.SubscriptionTarget{{GroupID: "g1"}}, expires); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		err := store.ForEachGroupSubscriber(ctx, "g1", func(page []groupcast.Subscriber) error {
			n += len(page)
			return nil
		})
		if err != nil || n != subscribers {
			b.Fatalf("read %d subscribers, %v", n, err)
		}
	}
}
