// Command connect is the WebSocket API's $connect Lambda: it records the
// connection of the user the REQUEST authorizer verified.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/groupcast"
	"github.com/groupcast/groupcast/pkg/wsapi"
)

func main() {
	if err := run(); err != nil {
		slog.Error("connect start-up failed", "error", err)
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
	ttlSeconds, err := envconfig.PositiveInt("CONNECTION_TTL_SECONDS") // 0: groupcast.DefaultConnectionTTL
	if err != nil {
		return err
	}
	ttl := time.Duration(ttlSeconds) * time.Second

	store, err := dynamostore.Open(context.Background(), table)
	if err != nil {
		return err
	}
	svc, err := groupcast.NewService(store, groupcast.ServiceConfig{
		ConnectionTTL: ttl,
	})
	if err != nil {
		return fmt.Errorf("build service: %w", err)
	}
	h, err := wsapi.New(svc, log)
	if err != nil {
		return err
	}
	lambda.Start(h.Connect)
	return nil
}
