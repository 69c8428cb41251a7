// Command api is the HTTP API (REST) Lambda: every route of the HttpApi
// integrates with this one function.
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
	"github.com/groupcast/groupcast/pkg/httpapi"
)

func main() {
	if err := run(); err != nil {
		slog.Error("api start-up failed", "error", err)
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
	postsPerMinute, err := envconfig.PositiveInt("POST_RATE_LIMIT_PER_MINUTE") // 0: groupcast.DefaultPostsPerMinute
	if err != nil {
		return err
	}

	store, err := dynamostore.Open(context.Background(), table)
	if err != nil {
		return err
	}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{
		PostsPerMinute: postsPerMinute,
	})
	if err != nil {
		return fmt.Errorf("build service: %w", err)
	}
	h, err := httpapi.New(svc, log)
	if err != nil {
		return err
	}
	lambda.Start(h.Handle)
	return nil
}
