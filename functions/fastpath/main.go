// Command fastpath is the fast-path delivery function: it consumes the
// events the API function enqueues right after their commit and delivers
// them behind their claim, ahead of the DynamoDB stream (pkg/fastpath).
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
	"github.com/groupcast/groupcast/pkg/fastpath"
	"github.com/groupcast/groupcast/pkg/lambdamain"
)

func main() { lambdamain.Start("fastpath", build) }

type settings struct {
	table, endpoint         string
	concurrency, inboxLimit int
	inboxRetention          time.Duration
}

const day = 24 * time.Hour

// readSettings reads the fan-out's settings: the fast path delivers the
// same events with the same limits as the stream path.
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
	if s.concurrency, err = envconfig.PositiveInt("FANOUT_CONCURRENCY"); err != nil {
		errs = append(errs, err)
	}
	if s.concurrency == 0 {
		s.concurrency = fanout.DefaultConcurrency // also sizes the HTTP client's idle pool
	}
	if s.inboxLimit, err = envconfig.PositiveInt("INBOX_FANOUT_LIMIT"); err != nil {
		errs = append(errs, err)
	}
	days, err := envconfig.PositiveInt("INBOX_RETENTION_DAYS")
	if err != nil {
		errs = append(errs, err)
	}
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
	h, err := fastpath.NewHandler(f, log)
	if err != nil {
		return nil, err
	}
	return h.Handle, nil
}
