// Command api is the HTTP API (REST) Lambda: every route of the HttpApi
// integrates with this one function.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/httpapi"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("api", build) }

func build(ctx context.Context, log *slog.Logger) (any, error) {
	table, err := envconfig.Required("TABLE_NAME")
	if err != nil {
		return nil, err
	}
	postsPerMinute, err := envconfig.PositiveInt("POST_RATE_LIMIT_PER_MINUTE") // 0: groupcast.DefaultPostsPerMinute
	if err != nil {
		return nil, err
	}
	eventHours, err := envconfig.PositiveInt("EVENT_RETENTION_HOURS") // 0: groupcast.DefaultEventRetention
	if err != nil {
		return nil, err
	}
	svc, err := lambdamain.OpenService(ctx, table, groupcast.ServiceConfig{
		PostsPerMinute: postsPerMinute, EventRetention: time.Duration(eventHours) * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	h, err := httpapi.New(svc, log)
	if err != nil {
		return nil, err
	}
	return h.Handle, nil
}
