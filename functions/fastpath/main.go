// Command fastpath is the fast-path delivery function: it consumes the
// events the API function enqueues right after their commit and delivers
// them behind their claim, ahead of the DynamoDB stream (pkg/fastpath).
// It reads the fan-out's settings (pkg/fanout.Build): both paths deliver
// the same events with the same limits and queues.
package main

import (
	"context"
	"log/slog"

	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/fastpath"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("fastpath", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	f, err := fanout.Build(ctx, log, fanout.WithClaims)
	if err != nil {
		return nil, err
	}
	h, err := fastpath.NewHandler(f, log)
	if err != nil {
		return nil, err
	}
	return h.Handle, nil
}
