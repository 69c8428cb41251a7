// Command fanout is the DynamoDB stream consumer that pushes Groupcast events
// to WebSocket connections and writes inbox notifications.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/envconfig"
	"github.com/groupcast/groupcast/pkg/fanout"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("fanout", build) }

type settings struct {
	table, endpoint         string
	concurrency, inboxLimit int
	inboxRetention          time.Duration
}

const day = 24 * time.Hour

func readSettings() (settings, error) {
	s := settings{table: os.Getenv("TABLE_NAME"), endpoint: os.Getenv("WEBSOCKET_MANAGEMENT_ENDPOINT")}
	var errs []error
	if s.table == "" {
		errs = append(errs, errors.New("TABLE_NAME is required"))
	}
	if u, err := url.Parse(s.endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("WEBSOCKET_MANAGEMENT_ENDPOINT %q is not an http(s) URL", s.endpoint))
	}
	var err error
	// 0 (unset) keeps fanout.DefaultConcurrency / DefaultInboxFanoutLimit.
	if s.concurrency, err = envconfig.PositiveInt("FANOUT_CONCURRENCY"); err != nil {
		errs = append(errs, err)
	}
	if s.concurrency == 0 {
		s.concurrency = fanout.DefaultConcurrency // also sizes the HTTP client's idle pool
	}
	if s.inboxLimit, err = envconfig.PositiveInt("INBOX_FANOUT_LIMIT"); err != nil {
		errs = append(errs, err)
	}
	// 0 (unset) keeps fanout.DefaultInboxRetention.
	days, err := envconfig.PositiveInt("INBOX_RETENTION_DAYS")
	if err != nil {
		errs = append(errs, err)
	}
	// Compared in days, before multiplying, so a huge value cannot overflow.
	if maxDays := int(fanout.MaxInboxRetention / day); days > maxDays {
		errs = append(errs, fmt.Errorf("INBOX_RETENTION_DAYS must be at most %d, got %d", maxDays, days))
	}
	s.inboxRetention = time.Duration(days) * day
	return s, errors.Join(errs...)
}

func build(ctx context.Context, log *slog.Logger) (any, error) {
	s, err := readSettings()
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	store, err := dynamostore.New(dynamodb.NewFromConfig(awsCfg), s.table)
	if err != nil {
		return nil, err
	}
	f, err := fanout.New(store,
		fanout.NewManagementClient(awsCfg, s.endpoint, s.concurrency),
		log,
		applog.NewEMF(os.Stdout, os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), nil),
		fanout.Config{Concurrency: s.concurrency, InboxFanoutLimit: s.inboxLimit, InboxRetention: s.inboxRetention, Claims: store},
	)
	if err != nil {
		return nil, err
	}
	return f.Handle, nil
}
