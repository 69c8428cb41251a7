// Command message is the WebSocket API's message Lambda: the $default,
// subscribe, unsubscribe and ping routes all integrate with it, and its
// response body is the reply API Gateway sends back to the client.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/wsapi"
)

func main() {
	if err := run(); err != nil {
		slog.Error("message start-up failed", "error", err)
		os.Exit(1)
	}
}

func run() error {
	log, err := applog.NewLambda(os.Getenv("LOG_LEVEL"))
	if err != nil {
		return err
	}
	slog.SetDefault(log)

	table, err := envconfig.Required("TABLE_NAME")
	if err != nil {
		return err
	}
	maxSubs, err := envconfig.PositiveInt("MAX_SUBSCRIPTIONS_PER_CONNECTION") // 0: groupcast.DefaultMaxSubscriptions
	if err != nil {
		return err
	}

	store, err := dynamostore.Open(context.Background(), table)
	if err != nil {
		return err
	}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{
		MaxSubscriptions: maxSubs,
	})
	if err != nil {
		return fmt.Errorf("build service: %w", err)
	}
	h, err := wsapi.New(svc, log)
	if err != nil {
		return err
	}
	lambda.Start(h.Message)
	return nil
}
