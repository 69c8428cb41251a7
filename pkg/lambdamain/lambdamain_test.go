package lambdamain

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sivchari/kumo"

	"github.com/groupcast/groupcast/internal/dynamotest"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

func TestWireHandsTheLoggerToBuild(t *testing.T) {
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
	var got *slog.Logger
	handler, err := wire(context.Background(), func(ctx context.Context, log *slog.Logger) (any, error) {
		got = log
		return "handler", nil
	})
	if err != nil || handler != "handler" || got == nil || !got.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatalf("wire = %v, %v; logger %v", handler, err, got)
	}
}

func TestWireFailsOnBadConfiguration(t *testing.T) {
	t.Run("log level", func(t *testing.T) {
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", "loud")
		if _, err := wire(context.Background(), func(context.Context, *slog.Logger) (any, error) {
			t.Fatal("build ran despite a bad AWS_LAMBDA_LOG_LEVEL")
			return nil, nil
		}); err == nil {
			t.Fatal("AWS_LAMBDA_LOG_LEVEL=loud accepted")
		}
	})
	t.Run("build", func(t *testing.T) {
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", "")
		boom := errors.New("TABLE_NAME is required")
		if _, err := wire(context.Background(), func(context.Context, *slog.Logger) (any, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("wire error %v, want %v", err, boom)
		}
	})
}

// OpenService reaches the table through the default AWS configuration, as
// a deployed function does, here pointed at the embedded DynamoDB.
func TestOpenServiceUsesTheTable(t *testing.T) {
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	table := "lambdamain-" + time.Now().Format("150405.000000")
	if err := dynamostore.CreateTable(ctx, dynamotest.NewClient(srv.URL), table); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")

	svc, err := OpenService(ctx, table, groupcast.ServiceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	alice := groupcast.Caller{UserID: "alice", DisplayName: "Alice"}
	g, err := svc.CreateGroup(ctx, alice, groupcast.CreateGroupInput{Name: "Hikers", Visibility: groupcast.Public})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := svc.GetGroup(ctx, alice, g.ID); err != nil || got.Name != "Hikers" {
		t.Fatalf("GetGroup = %+v, %v", got, err)
	}
}
