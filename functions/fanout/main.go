// Command fanout is the DynamoDB stream consumer: it delivers each outbox
// event behind its claim (pkg/fanout.Deliver), pushing small audiences
// itself and handing large ones and inbox work to the push worker's queues.
package main

import (
	"context"
	"log/slog"

	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("fanout", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	f, err := fanout.Build(ctx, log, fanout.WithClaims)
	if err != nil {
		return nil, err
	}
	return f.Handle, nil
}
