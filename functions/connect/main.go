// Command connect is the WebSocket API's $connect Lambda: it records the
// connection of the user the REQUEST authorizer verified.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/lambdamain"
	"github.com/groupcast/groupcast/pkg/wsapi"
)

func main() { lambdamain.Start("connect", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	table, err := envconfig.Required("TABLE_NAME")
	if err != nil {
		return nil, err
	}
	ttlSeconds, err := envconfig.PositiveInt("CONNECTION_TTL_SECONDS") // 0: groupcast.DefaultConnectionTTL
	if err != nil {
		return nil, err
	}
	svc, err := lambdamain.OpenService(ctx, table, groupcast.ServiceConfig{ConnectionTTL: time.Duration(ttlSeconds) * time.Second})
	if err != nil {
		return nil, err
	}
	h, err := wsapi.New(svc, nil, log)
	if err != nil {
		return nil, err
	}
	return h.Connect, nil
}
