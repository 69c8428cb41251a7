// Command disconnect is the WebSocket API's $disconnect Lambda: it deletes
// the connection and all its subscriptions.
package main

import (
	"context"
	"log/slog"

	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/lambdamain"
	"github.com/groupcast/groupcast/pkg/wsapi"
)

func main() { lambdamain.Start("disconnect", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	table, err := envconfig.Required("TABLE_NAME")
	if err != nil {
		return nil, err
	}
	svc, err := lambdamain.OpenService(ctx, table, groupcast.ServiceConfig{})
	if err != nil {
		return nil, err
	}
	h, err := wsapi.New(svc, nil, log)
	if err != nil {
		return nil, err
	}
	return h.Disconnect, nil
}
