// Command message is the WebSocket API's message Lambda: the $default,
// subscribe, unsubscribe and ping routes all integrate with it, and its
// response body is the reply API Gateway sends back to the client.
package main

import (
	"context"
	"log/slog"

	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/lambdamain"
	"github.com/groupcast/groupcast/pkg/wsapi"
)

func main() { lambdamain.Start("message", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	table, err := envconfig.Required("TABLE_NAME")
	if err != nil {
		return nil, err
	}
	maxSubs, err := envconfig.PositiveInt("MAX_SUBSCRIPTIONS_PER_CONNECTION") // 0: groupcast.DefaultMaxSubscriptions
	if err != nil {
		return nil, err
	}
	svc, err := lambdamain.OpenService(ctx, table, groupcast.ServiceConfig{MaxSubscriptions: maxSubs})
	if err != nil {
		return nil, err
	}
	h, err := wsapi.New(svc, log)
	if err != nil {
		return nil, err
	}
	return h.Message, nil
}
