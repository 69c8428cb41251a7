// Command message is the WebSocket API's message Lambda: the $default,
// subscribe, unsubscribe, resume and ping routes all integrate with it, and
// its response body is the reply API Gateway sends back to the client.
// Events replayed on resume are pushed through @connections.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

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
	endpoint, err := envconfig.Required("WEBSOCKET_MANAGEMENT_ENDPOINT")
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("WEBSOCKET_MANAGEMENT_ENDPOINT %q is not an http(s) URL", endpoint)
	}
	maxSubs, err := envconfig.PositiveInt("MAX_SUBSCRIPTIONS_PER_CONNECTION") // 0: groupcast.DefaultMaxSubscriptions
	if err != nil {
		return nil, err
	}
	eventHours, err := envconfig.PositiveInt("EVENT_RETENTION_HOURS") // 0: groupcast.DefaultEventRetention
	if err != nil {
		return nil, err
	}
	svc, err := lambdamain.OpenService(ctx, table, groupcast.ServiceConfig{
		MaxSubscriptions: maxSubs, EventRetention: time.Duration(eventHours) * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	poster := apigatewaymanagementapi.NewFromConfig(awsCfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	h, err := wsapi.New(svc, poster, log)
	if err != nil {
		return nil, err
	}
	return h.Message, nil
}
