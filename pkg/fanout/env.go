package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/groupcast/groupcast/pkg/applog"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/envconfig"
)

// Settings is what the stream consumer and the push worker read from their
// environment; both run this package, so they read it the same way.
type Settings struct {
	Table, Endpoint string
	Config          Config
}

const day = 24 * time.Hour

// ReadSettings reads the functions' environment once, at start-up. Unset
// numbers keep the package defaults.
func ReadSettings() (Settings, error) {
	s := Settings{Table: os.Getenv("TABLE_NAME"), Endpoint: os.Getenv("WEBSOCKET_MANAGEMENT_ENDPOINT")}
	c := &s.Config
	c.PushQueueURL, c.InboxQueueURL = os.Getenv("PUSH_QUEUE_URL"), os.Getenv("INBOX_QUEUE_URL")
	var errs []error
	if s.Table == "" {
		errs = append(errs, errors.New("TABLE_NAME is required"))
	}
	if u, err := url.Parse(s.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("WEBSOCKET_MANAGEMENT_ENDPOINT %q is not an http(s) URL", s.Endpoint))
	}
	for name, v := range map[string]string{"PUSH_QUEUE_URL": c.PushQueueURL, "INBOX_QUEUE_URL": c.InboxQueueURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q is not an http(s) URL", name, v))
		}
	}
	ints := []struct {
		name string
		p    *int
	}{
		{"FANOUT_CONCURRENCY", &c.Concurrency}, {"INBOX_FANOUT_LIMIT", &c.InboxFanoutLimit},
		{"DIRECT_PUSH_LIMIT", &c.DirectPushLimit}, {"PUSH_CHUNK_SIZE", &c.ChunkSize},
	}
	for _, v := range ints {
		n, err := envconfig.PositiveInt(v.name)
		if err != nil {
			errs = append(errs, err)
		}
		*v.p = n
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency // also sizes the HTTP client's idle pool
	}
	// The push worker's share of PushRatePerSecond: the rate divided by
	// the mapping's MaximumConcurrency, so all workers together stay
	// under the rate (both 0 outside the worker: no cap).
	rate, err := envconfig.PositiveInt("PUSH_RATE_PER_SECOND")
	if err != nil {
		errs = append(errs, err)
	}
	workers, err := envconfig.PositiveInt("PUSH_WORKERS")
	if err != nil {
		errs = append(errs, err)
	}
	if rate > 0 {
		c.RatePerSecond = float64(rate) / float64(max(workers, 1))
	}
	days, err := envconfig.PositiveInt("INBOX_RETENTION_DAYS")
	if err != nil {
		errs = append(errs, err)
	}
	// Compared in days, before multiplying, so a huge value cannot overflow.
	if maxDays := int(MaxInboxRetention / day); days > maxDays {
		errs = append(errs, fmt.Errorf("INBOX_RETENTION_DAYS must be at most %d, got %d", maxDays, days))
	}
	c.InboxRetention = time.Duration(days) * day
	return s, errors.Join(errs...)
}

// Claiming says whether a built Fanout puts a delivery claim in front of
// each event (claim.go): the stream consumer and the fast path deliver the
// same events, so both claim; the push worker's tasks come from a claimed
// delivery already.
type Claiming bool

const (
	WithClaims    Claiming = true
	WithoutClaims Claiming = false
)

// Build wires a Fanout from the environment and the default AWS
// configuration: the functions' main calls it once per execution
// environment.
func Build(ctx context.Context, log *slog.Logger, claiming Claiming) (*Fanout, error) {
	s, err := ReadSettings()
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	store, err := dynamostore.New(dynamodb.NewFromConfig(awsCfg), s.Table)
	if err != nil {
		return nil, err
	}
	if claiming {
		s.Config.Claims = store
	}
	return New(store,
		NewManagementClient(awsCfg, s.Endpoint, s.Config.Concurrency),
		// No SDK retries: sendBatch owns the retry policy (two stacked
		// retryers multiply attempts and delays).
		sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} }),
		log,
		applog.NewEMF(os.Stdout, os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), nil),
		s.Config,
	)
}
