// Command api is the HTTP API (REST) Lambda: every route of the HttpApi
// integrates with this one function.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/fastpath"
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
	// Empty: the fast path is off (template parameter FastPath) and the
	// stream alone delivers.
	var opts []dynamostore.Option
	if queueURL := os.Getenv("FAST_PATH_QUEUE_URL"); queueURL != "" {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load AWS config: %w", err)
		}
		sender, err := fastpath.NewSender(sqs.NewFromConfig(awsCfg), queueURL, log)
		if err != nil {
			return nil, err
		}
		opts = append(opts, dynamostore.WithEventSink(sender))
	}
	svc, err := lambdamain.OpenService(ctx, table, groupcast.ServiceConfig{
		PostsPerMinute: postsPerMinute, EventRetention: time.Duration(eventHours) * time.Hour,
	}, opts...)
	if err != nil {
		return nil, err
	}
	h, err := httpapi.New(svc, log)
	if err != nil {
		return nil, err
	}
	return h.Handle, nil
}
