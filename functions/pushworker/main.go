// Command pushworker consumes the push and inbox queues: it pushes chunks
// of a large audience under its share of the @connections rate and writes
// inbox notifications (pkg/fanout.HandleTasks).
package main

import (
	"context"
	"log/slog"

	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("pushworker", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	f, err := fanout.Build(ctx, log, fanout.WithoutClaims)
	if err != nil {
		return nil, err
	}
	return f.HandleTasks, nil
}
