package dynamo

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A server started on the data directory of a closed one has its tables,
// items, GSIs, TTL setting, stream and records, and numbers new records
// after the old ones.
func TestDataDirKeepsTablesAndStreams(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() *Server {
		s, err := Start(ctx, Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	info := newTable(t, s, ViewNewAndOldImages, "ttl")
	c := s.Client()
	future := &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Unix()+3600, 10)}
	for _, it := range []map[string]types.AttributeValue{itemV("a", "1", "x"), itemV("b", "1", "y")} {
		it["ttl"] = future
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &info.Name, Key: key("b", "1")}); err != nil {
		t.Fatal(err)
	}
	before := readAll(t, s, info.StreamARN, "")
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, snapshotFile)); err != nil {
		t.Fatalf("no snapshot after Close: %v", err)
	}

	s = start()
	defer s.Close()
	c = s.Client()
	got, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &info.Name, Key: key("a", "1"), ConsistentRead: aws.Bool(true)})
	if err != nil || got.Item["v"].(*types.AttributeValueMemberS).Value != "x" {
		t.Fatalf("item a after restart: %v %v", got, err)
	}
	scan, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: &info.Name, ConsistentRead: aws.Bool(true)})
	if err != nil || scan.Count != 1 {
		t.Fatalf("scan after restart: %d items, %v; want 1 (b was deleted)", scan.Count, err)
	}
	arn, err := s.StreamARN(ctx, info.Name)
	if err != nil || arn != info.StreamARN {
		t.Fatalf("stream after restart %q %v, want %q", arn, err, info.StreamARN)
	}
	after := readAll(t, s, info.StreamARN, "")
	if len(after) != len(before) || len(before) != 3 {
		t.Fatalf("records after restart %d, before %d; want 3 each", len(after), len(before))
	}
	for i := range before {
		if after[i].SequenceNumber != before[i].SequenceNumber || after[i].EventID != before[i].EventID || summarize(t, after[i]) != summarize(t, before[i]) {
			t.Errorf("record %d: %+v after restart, %+v before", i, after[i], before[i])
		}
	}
	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &info.Name})
	if err != nil || ttl.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Fatalf("TTL after restart: %+v %v", ttl, err)
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("c", "1", "z")}); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, s, info.StreamARN, before[2].SequenceNumber)
	if len(recs) != 1 || recs[0].SequenceNumber <= before[2].SequenceNumber || summarize(t, recs[0]) != (summary{"INSERT", "c/1", "-", "z"}) {
		t.Fatalf("new record after restart: %+v", recs)
	}
}

// Changes reach the snapshot without a Close, within about a second, so a
// killed stack loses at most that much.
func TestDataDirSnapshotsAfterWrites(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, Options{DataDir: dir})
	info := newTable(t, s, ViewKeysOnly, "")
	if _, err := s.Client().PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("k", "1", "v")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		data, err := os.ReadFile(filepath.Join(dir, snapshotFile))
		if err == nil && strings.Contains(string(data), `"k"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot never held the write: %v %s", err, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDataDirRefusesExternalBackend(t *testing.T) {
	_, err := Start(context.Background(), Options{DataDir: t.TempDir(), Backend: "http://127.0.0.1:1"})
	if err == nil {
		t.Fatal("DataDir with an external backend was accepted")
	}
}
