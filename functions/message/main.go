// Command message is the WebSocket API's message Lambda: the $default,
// subscribe, unsubscribe and ping routes all integrate with it, and its
// response body is the reply API Gateway sends back to the client.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
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

	table := os.Getenv("TABLE_NAME")
	if table == "" {
		return fmt.Errorf("TABLE_NAME is required")
	}
	maxSubs := 0 // unset: groupcast.DefaultMaxSubscriptions (see wsapi.Service)
	if v := os.Getenv("MAX_SUBSCRIPTIONS_PER_CONNECTION"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("MAX_SUBSCRIPTIONS_PER_CONNECTION must be a positive integer, got %q", v)
		}
		maxSubs = n
	}

	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	store, err := dynamostore.New(dynamodb.NewFromConfig(awsCfg), table)
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
