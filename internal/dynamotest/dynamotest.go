// Package dynamotest gives tests a fresh, empty Groupcast table.
//
// By default each table lives in an in-process kumo emulator. When
// AWS_ENDPOINT_URL_DYNAMODB is set (DynamoDB Local, LocalStack, ...) the same
// tests run against that endpoint instead, each in a table of its own.
package dynamotest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/sivchari/kumo"

	"github.com/groupcast/groupcast/internal/devstack/localaws"
	"github.com/groupcast/groupcast/pkg/dynamostore"
)

// EndpointEnv names the variable that points the tests at an external
// DynamoDB-compatible endpoint.
const EndpointEnv = "AWS_ENDPOINT_URL_DYNAMODB"

var tableSeq atomic.Int64

// NewTable creates a new table and returns a client for it and its name.
// Against kumo, the emulator is started for this test and closed with it.
// Against an external endpoint the table is deleted when the test ends.
func NewTable(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	endpoint := os.Getenv(EndpointEnv)
	external := endpoint != ""
	if !external {
		srv := kumo.NewServer()
		t.Cleanup(srv.Close)
		endpoint = srv.URL
	}
	client := NewClient(endpoint)
	table := tableName(t)
	ctx := context.Background()
	if err := dynamostore.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("dynamotest: %v", err)
	}
	if external {
		t.Cleanup(func() {
			if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
				t.Logf("dynamotest: delete table %s: %v", table, err)
			}
		})
	}
	return client, table
}

// NewClient returns a DynamoDB client for a local endpoint, with dummy static
// credentials and region us-east-1, so no real AWS configuration is read.
func NewClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       localaws.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// tableName is unique per test and per run, so tests sharing an external
// endpoint (or a rerun after a crash) never see each other's items.
func tableName(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, t.Name())
	// DynamoDB table names are at most 255 characters; keep room for the suffix.
	if len(name) > 200 {
		name = name[:200]
	}
	return fmt.Sprintf("gc-%s-%d-%d", name, time.Now().UnixNano(), tableSeq.Add(1))
}
