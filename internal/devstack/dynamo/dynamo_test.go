package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go"
)

// waitLimit bounds how long a test waits for something that should happen
// in milliseconds; generous because the machine is shared and noisy.
const waitLimit = 20 * time.Second

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var tableSeq atomic.Int64

// newTable creates a PK/SK table with a stream of the given view type.
func newTable(t *testing.T, s *Server, viewType, ttlAttr string) TableInfo {
	t.Helper()
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(fmt.Sprintf("t%d", tableSeq.Add(1))),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
	}
	if viewType != "" {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewType(viewType)}
	}
	info, err := s.CreateTable(context.Background(), TableSpec{Input: in, TTLAttribute: ttlAttr})
	if err != nil {
		t.Fatal(err)
	}
	if viewType != "" && info.StreamARN == "" {
		t.Fatal("CreateTable returned no stream ARN")
	}
	return info
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
}

func itemV(pk, sk, v string) map[string]types.AttributeValue {
	it := key(pk, sk)
	it["v"] = &types.AttributeValueMemberS{Value: v}
	return it
}

// summary is a record reduced to what the tests compare: event name, the
// key "PK/SK", and the "v" attribute of each image ("-" when the image is
// absent, "" when present without v).
type summary struct{ Event, Key, Old, New string }

func summarize(t *testing.T, r Record) summary {
	t.Helper()
	str := func(it item, name string) string {
		var av struct{ S string }
		if raw, ok := it[name]; ok {
			if err := json.Unmarshal(raw, &av); err != nil {
				t.Fatal(err)
			}
		}
		return av.S
	}
	img := func(it item) string {
		if it == nil {
			return "-"
		}
		return str(it, "v")
	}
	return summary{r.EventName, str(r.Keys, "PK") + "/" + str(r.Keys, "SK"), img(r.OldImage), img(r.NewImage)}
}

// readAll returns every record after a sequence number.
func readAll(t *testing.T, s *Server, arn, after string) []Record {
	t.Helper()
	recs, _, err := s.Read(arn, after, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestWritePathsRecordChanges(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	ctx := context.Background()

	type action func(ctx context.Context, table string) error
	put := func(pk, v string) action {
		return func(ctx context.Context, table string) error {
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: itemV(pk, "s", v)})
			return err
		}
	}
	tests := []struct {
		name    string
		setup   []action
		act     action
		wantErr string // error code the action must fail with
		want    []summary
	}{
		{name: "put new item", act: put("a", "1"), want: []summary{{"INSERT", "a/s", "-", "1"}}},
		{name: "put overwrites", setup: []action{put("a", "1")}, act: put("a", "2"), want: []summary{{"MODIFY", "a/s", "1", "2"}}},
		{name: "identical put writes no record", setup: []action{put("a", "1")}, act: put("a", "1")},
		{
			name: "update existing", setup: []action{put("a", "1")},
			act: func(ctx context.Context, table string) error {
				_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: &table, Key: key("a", "s"), UpdateExpression: aws.String("SET v = :v"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "9"}},
				})
				return err
			},
			want: []summary{{"MODIFY", "a/s", "1", "9"}},
		},
		{
			name: "update creates",
			act: func(ctx context.Context, table string) error {
				_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: &table, Key: key("n", "s"), UpdateExpression: aws.String("SET v = :v"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "5"}},
				})
				return err
			},
			want: []summary{{"INSERT", "n/s", "-", "5"}},
		},
		{
			name: "delete existing", setup: []action{put("a", "1")},
			act: func(ctx context.Context, table string) error {
				_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: key("a", "s")})
				return err
			},
			want: []summary{{"REMOVE", "a/s", "1", "-"}},
		},
		{
			name: "delete of a missing item writes no record",
			act: func(ctx context.Context, table string) error {
				_, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: key("zz", "s")})
				return err
			},
		},
		{
			name: "failed condition writes no record", setup: []action{put("a", "1")},
			act: func(ctx context.Context, table string) error {
				_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: itemV("a", "s", "2"), ConditionExpression: aws.String("attribute_not_exists(PK)")})
				return err
			},
			wantErr: "ConditionalCheckFailedException",
		},
		{
			name: "batch write puts and deletes", setup: []action{put("c", "1")},
			act: func(ctx context.Context, table string) error {
				_, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: {
					{PutRequest: &types.PutRequest{Item: itemV("a", "s", "1")}},
					{DeleteRequest: &types.DeleteRequest{Key: key("c", "s")}},
					{PutRequest: &types.PutRequest{Item: itemV("b", "s", "2")}},
				}}})
				return err
			},
			want: []summary{{"INSERT", "a/s", "-", "1"}, {"REMOVE", "c/s", "1", "-"}, {"INSERT", "b/s", "-", "2"}},
		},
		{
			name: "transaction put update delete and condition check", setup: []action{put("u", "1"), put("d", "1"), put("k", "1")},
			act: func(ctx context.Context, table string) error {
				_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: &table, Item: itemV("p", "s", "1")}},
					{Update: &types.Update{TableName: &table, Key: key("u", "s"), UpdateExpression: aws.String("SET v = :v"),
						ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: "2"}}}},
					{Delete: &types.Delete{TableName: &table, Key: key("d", "s")}},
					{ConditionCheck: &types.ConditionCheck{TableName: &table, Key: key("k", "s"), ConditionExpression: aws.String("attribute_exists(PK)")}},
				}})
				return err
			},
			want: []summary{{"INSERT", "p/s", "-", "1"}, {"MODIFY", "u/s", "1", "2"}, {"REMOVE", "d/s", "1", "-"}},
		},
		{
			name: "cancelled transaction writes no record", setup: []action{put("u", "1")},
			act: func(ctx context.Context, table string) error {
				_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: &table, Item: itemV("p", "s", "1")}},
					{ConditionCheck: &types.ConditionCheck{TableName: &table, Key: key("missing", "s"), ConditionExpression: aws.String("attribute_exists(PK)")}},
				}})
				return err
			},
			wantErr: "TransactionCanceledException",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := newTable(t, s, ViewNewAndOldImages, "")
			for _, a := range tt.setup {
				if err := a(ctx, info.Name); err != nil {
					t.Fatal(err)
				}
			}
			after, err := s.LatestSequenceNumber(info.StreamARN)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.act(ctx, info.Name)
			var apiErr smithy.APIError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (!errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantErr):
				t.Fatalf("error = %v, want %s", err, tt.wantErr)
			}
			var got []summary
			for _, r := range readAll(t, s, info.StreamARN, after) {
				got = append(got, summarize(t, r))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("records\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestViewTypesDecideImages(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	ctx := context.Background()
	tests := []struct {
		view string
		want []summary // for put, overwrite, delete
	}{
		{ViewKeysOnly, []summary{{"INSERT", "a/s", "-", "-"}, {"MODIFY", "a/s", "-", "-"}, {"REMOVE", "a/s", "-", "-"}}},
		{ViewNewImage, []summary{{"INSERT", "a/s", "-", "1"}, {"MODIFY", "a/s", "-", "2"}, {"REMOVE", "a/s", "-", "-"}}},
		{ViewOldImage, []summary{{"INSERT", "a/s", "-", "-"}, {"MODIFY", "a/s", "1", "-"}, {"REMOVE", "a/s", "2", "-"}}},
		{ViewNewAndOldImages, []summary{{"INSERT", "a/s", "-", "1"}, {"MODIFY", "a/s", "1", "2"}, {"REMOVE", "a/s", "2", "-"}}},
	}
	for _, tt := range tests {
		t.Run(tt.view, func(t *testing.T) {
			info := newTable(t, s, tt.view, "")
			for _, v := range []string{"1", "2"} {
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("a", "s", v)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &info.Name, Key: key("a", "s")}); err != nil {
				t.Fatal(err)
			}
			recs := readAll(t, s, info.StreamARN, "")
			var got []summary
			for _, r := range recs {
				got = append(got, summarize(t, r))
				if r.ViewType != tt.view || r.EventID == "" || r.SizeBytes <= 0 || r.Region != "us-east-1" {
					t.Errorf("record fields: %+v", r)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("records\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// Concurrent writers to one item: the stream must show every increment once,
// in commit order, each MODIFY's old image being the previous one's new.
func TestConcurrentWritesKeepCommitOrder(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	ctx := context.Background()
	info := newTable(t, s, ViewNewAndOldImages, "")
	const writers, each = 4, 10
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: &info.Name, Key: key("n", "s"), UpdateExpression: aws.String("ADD n :one"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	recs := readAll(t, s, info.StreamARN, "")
	if len(recs) != writers*each {
		t.Fatalf("got %d records, want %d", len(recs), writers*each)
	}
	num := func(it item) int {
		if it == nil {
			return 0
		}
		var av struct{ N string }
		_ = json.Unmarshal(it["n"], &av)
		n, _ := strconv.Atoi(av.N)
		return n
	}
	for i, r := range recs {
		if num(r.OldImage) != i || num(r.NewImage) != i+1 {
			t.Fatalf("record %d: old %d new %d", i, num(r.OldImage), num(r.NewImage))
		}
		if i > 0 && r.SequenceNumber <= recs[i-1].SequenceNumber {
			t.Fatalf("sequence numbers not increasing: %s after %s", r.SequenceNumber, recs[i-1].SequenceNumber)
		}
	}
}

func TestTTLExpiryRecordsServiceRemove(t *testing.T) {
	// A short sweep interval so the test does not wait for the default.
	s := startServer(t, Options{TTLSweepInterval: 20 * time.Millisecond})
	c := s.Client()
	ctx := context.Background()
	info := newTable(t, s, ViewNewAndOldImages, "ttl")

	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &info.Name})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
		t.Fatalf("DescribeTimeToLive = %+v", d)
	}
	// Take the position before writing: the sweeper runs every 20 ms and
	// may delete the expired item before the last put returns.
	after, _ := s.LatestSequenceNumber(info.StreamARN)
	now := time.Now().Unix()
	items := map[string]types.AttributeValue{
		"expired": &types.AttributeValueMemberN{Value: strconv.FormatInt(now-60, 10)},
		"future":  &types.AttributeValueMemberN{Value: strconv.FormatInt(now+3600, 10)},
		"string":  &types.AttributeValueMemberS{Value: "1"}, // not a number: never expires
	}
	for pk, v := range items {
		it := itemV(pk, "s", "x")
		it["ttl"] = v
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: it}); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.After(waitLimit)
	var got []Record // the REMOVE records, after the three INSERTs
	for len(got) == 0 {
		recs, wake, err := s.Read(info.StreamARN, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.EventName == "REMOVE" {
				got = append(got, r)
			}
			after = r.SequenceNumber
		}
		if len(got) > 0 {
			break
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatal("no TTL record")
		}
	}
	r := got[0]
	if sm := summarize(t, r); sm != (summary{"REMOVE", "expired/s", "x", "-"}) {
		t.Errorf("record = %+v", sm)
	}
	if r.UserIdentity == nil || *r.UserIdentity != (Identity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}) {
		t.Errorf("userIdentity = %+v", r.UserIdentity)
	}
	ev, err := r.LambdaEvent()
	if err != nil {
		t.Fatal(err)
	}
	if ev.UserIdentity == nil || ev.UserIdentity.Type != "Service" || ev.EventSourceArn != info.StreamARN {
		t.Errorf("lambda event = %+v", ev)
	}
	scan, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: &info.Name, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if scan.Count != 2 {
		t.Errorf("%d items left, want 2 (future and string)", scan.Count)
	}
}

// The sweeper finds expired items from what writes left behind, on a table
// with TTL and no stream: later writes that move, remove or delete the TTL
// are honoured, and non-numbers never expire.
func TestTTLSweepFollowsWrites(t *testing.T) {
	s := startServer(t, Options{TTLSweepInterval: time.Hour}) // swept by hand below
	c := s.Client()
	ctx := context.Background()
	info := newTable(t, s, "", "ttl")
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	for pk, v := range map[string]types.AttributeValue{"a": n("1000"), "b": n("1000"), "c": n("1000"), "d": n("1000"), "e": &types.AttributeValueMemberS{Value: "1000"}} {
		it := itemV(pk, "s", "x")
		it["ttl"] = v
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	update := func(pk, expr string, values map[string]types.AttributeValue) {
		t.Helper()
		if _, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &info.Name, Key: key(pk, "s"), UpdateExpression: &expr, ExpressionAttributeValues: values}); err != nil {
			t.Fatal(err)
		}
	}
	update("b", "SET ttl = :t", map[string]types.AttributeValue{":t": n("5000")})
	update("c", "REMOVE ttl", nil)
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &info.Name, Key: key("d", "s")}); err != nil {
		t.Fatal(err)
	}

	s.sweepTTL(ctx, time.Unix(2000, 0))

	if got, want := scanPKs(t, c, info.Name), []string{"b", "c", "e"}; !slices.Equal(got, want) {
		t.Errorf("items after the sweep %v, want %v", got, want)
	}
	s.sweepTTL(ctx, time.Unix(6000, 0))
	if got, want := scanPKs(t, c, info.Name), []string{"c", "e"}; !slices.Equal(got, want) {
		t.Errorf("items after the second sweep %v, want %v", got, want)
	}
}

// Enabling TTL on a table that already holds items finds their TTLs.
func TestTTLEnabledOnExistingItems(t *testing.T) {
	s := startServer(t, Options{TTLSweepInterval: time.Hour})
	c := s.Client()
	ctx := context.Background()
	info := newTable(t, s, ViewNewAndOldImages, "")
	for pk, ttl := range map[string]string{"old": "1000", "new": "5000"} {
		it := itemV(pk, "s", "x")
		it["ttl"] = &types.AttributeValueMemberN{Value: ttl}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := s.LatestSequenceNumber(info.StreamARN)
	if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &info.Name,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("ttl"), Enabled: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}

	s.sweepTTL(ctx, time.Unix(2000, 0))

	if got, want := scanPKs(t, c, info.Name), []string{"new"}; !slices.Equal(got, want) {
		t.Errorf("items after the sweep %v, want %v", got, want)
	}
	recs, _, err := s.Read(info.StreamARN, after, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || summarize(t, recs[0]) != (summary{"REMOVE", "old/s", "x", "-"}) || recs[0].UserIdentity == nil {
		t.Errorf("records after enabling TTL and sweeping: %+v", recs)
	}
}

// scanPKs returns the sorted partition keys of a table's items.
func scanPKs(t *testing.T, c *dynamodb.Client, table string) []string {
	t.Helper()
	out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var pks []string
	for _, it := range out.Items {
		pks = append(pks, it["PK"].(*types.AttributeValueMemberS).Value)
	}
	slices.Sort(pks)
	return pks
}

func streamsClient(s *Server) *dynamodbstreams.Client {
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

func TestStreamsAPI(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	sc := streamsClient(s)
	ctx := context.Background()
	info := newTable(t, s, ViewNewAndOldImages, "")
	other := newTable(t, s, ViewKeysOnly, "")
	for i := range 5 {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV(fmt.Sprint(i), "s", "v")}); err != nil {
			t.Fatal(err)
		}
	}

	ls, err := sc.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: &info.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Streams) != 1 || aws.ToString(ls.Streams[0].StreamArn) != info.StreamARN {
		t.Fatalf("ListStreams(table) = %+v", ls.Streams)
	}
	all, err := sc.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{})
	if err != nil || len(all.Streams) != 2 {
		t.Fatalf("ListStreams() = %v, %v", all, err)
	}
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &other.Name})
	if err != nil || aws.ToString(desc.Table.LatestStreamArn) != other.StreamARN || desc.Table.StreamSpecification.StreamViewType != types.StreamViewTypeKeysOnly {
		t.Fatalf("DescribeTable stream fields = %+v, %v", desc, err)
	}

	ds, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &info.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	sd := ds.StreamDescription
	if sd.StreamStatus != stypes.StreamStatusEnabled || len(sd.Shards) != 1 || len(sd.KeySchema) != 2 || aws.ToString(sd.TableName) != info.Name {
		t.Fatalf("DescribeStream = %+v", sd)
	}
	shard := sd.Shards[0].ShardId

	// readFrom pages through GetRecords two at a time and returns the keys read.
	readFrom := func(t *testing.T, in *dynamodbstreams.GetShardIteratorInput) []string {
		t.Helper()
		in.StreamArn, in.ShardId = &info.StreamARN, shard
		it, err := sc.GetShardIterator(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		iter := it.ShardIterator
		for range 10 {
			out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(2)})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				keys = append(keys, r.Dynamodb.Keys["PK"].(*stypes.AttributeValueMemberS).Value)
				if r.Dynamodb.NewImage["v"] == nil || aws.ToString(r.EventSource) != "aws:dynamodb" || r.Dynamodb.ApproximateCreationDateTime == nil {
					t.Errorf("record = %+v", r)
				}
			}
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
		return keys
	}
	recs := readAll(t, s, info.StreamARN, "")
	third := recs[2].SequenceNumber
	tests := []struct {
		name string
		in   dynamodbstreams.GetShardIteratorInput
		want string
	}{
		{"trim horizon", dynamodbstreams.GetShardIteratorInput{ShardIteratorType: stypes.ShardIteratorTypeTrimHorizon}, "[0 1 2 3 4]"},
		{"latest", dynamodbstreams.GetShardIteratorInput{ShardIteratorType: stypes.ShardIteratorTypeLatest}, "[]"},
		{"at sequence number", dynamodbstreams.GetShardIteratorInput{ShardIteratorType: stypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: &third}, "[2 3 4]"},
		{"after sequence number", dynamodbstreams.GetShardIteratorInput{ShardIteratorType: stypes.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &third}, "[3 4]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(readFrom(t, &tt.in)); got != tt.want {
				t.Errorf("keys = %s, want %s", got, tt.want)
			}
		})
	}

	t.Run("latest sees later writes", func(t *testing.T) {
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &info.StreamARN, ShardId: shard, ShardIteratorType: stypes.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("late", "s", "v")}); err != nil {
			t.Fatal(err)
		}
		out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil || len(out.Records) != 1 {
			t.Fatalf("GetRecords = %+v, %v", out, err)
		}
	})
}

func TestStreamsAPIErrors(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	sc := streamsClient(s)
	ctx := context.Background()
	info := newTable(t, s, ViewNewAndOldImages, "")
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("a", "s", "v")}); err != nil {
		t.Fatal(err)
	}
	ds, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &info.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	shard := ds.StreamDescription.Shards[0].ShardId
	first := readAll(t, s, info.StreamARN, "")[0].SequenceNumber
	expired := iterator{Stream: info.StreamARN, Next: 1, Issued: time.Now().Add(-iteratorLifetime - time.Minute).UnixNano()}.encode()

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"unknown stream", func() error {
			_, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(info.StreamARN + "x")})
			return err
		}, "ResourceNotFoundException"},
		{"unknown shard", func() error {
			_, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &info.StreamARN, ShardId: aws.String("shardId-x"), ShardIteratorType: stypes.ShardIteratorTypeLatest})
			return err
		}, "ResourceNotFoundException"},
		{"bad sequence number", func() error {
			_, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &info.StreamARN, ShardId: shard, ShardIteratorType: stypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String("42")})
			return err
		}, "ValidationException"},
		{"garbled iterator", func() error {
			_, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String("not-an-iterator")})
			return err
		}, "ValidationException"},
		{"expired iterator", func() error {
			_, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: &expired})
			return err
		}, "ExpiredIteratorException"},
		{"limit too large", func() error {
			it := iterator{Stream: info.StreamARN, Next: 1, Issued: time.Now().UnixNano()}.encode()
			_, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: &it, Limit: aws.Int32(1001)})
			return err
		}, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var apiErr smithy.APIError
			if err := tt.call(); !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.want {
				t.Errorf("error = %v, want %s", err, tt.want)
			}
		})
	}

	t.Run("trimmed data", func(t *testing.T) {
		old, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &info.StreamARN, ShardId: shard, ShardIteratorType: stypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		s.trim(time.Now().Add(2 * DefaultRetention)) // as if a day had passed
		var apiErr smithy.APIError
		_, err = sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: old.ShardIterator})
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "TrimmedDataAccessException" {
			t.Errorf("GetRecords on a trimmed position: %v", err)
		}
		_, err = sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &info.StreamARN, ShardId: shard, ShardIteratorType: stypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: &first})
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "TrimmedDataAccessException" {
			t.Errorf("GetShardIterator at a trimmed record: %v", err)
		}
	})

	t.Run("deleted table disables its stream", func(t *testing.T) {
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &info.Name}); err != nil {
			t.Fatal(err)
		}
		ds, err := sc.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &info.StreamARN})
		if err != nil || ds.StreamDescription.StreamStatus != stypes.StreamStatusDisabled || ds.StreamDescription.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil {
			t.Fatalf("DescribeStream after DeleteTable = %+v, %v", ds, err)
		}
		it, err := sc.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &info.StreamARN, ShardId: shard, ShardIteratorType: stypes.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		out, err := sc.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil || out.NextShardIterator != nil {
			t.Errorf("closed shard read to its end: next iterator %v, err %v", out.NextShardIterator, err)
		}
	})
}

func TestUpdateTableTogglesStream(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	ctx := context.Background()
	info := newTable(t, s, "", "")
	if arn, _ := s.StreamARN(ctx, info.Name); arn != "" {
		t.Fatalf("table without a stream has stream %s", arn)
	}
	out, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: &info.Name, StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.TableDescription.LatestStreamArn)
	if arn == "" {
		t.Fatal("UpdateTable returned no stream ARN")
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("a", "s", "1")}); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, s, arn, "")); n != 1 {
		t.Fatalf("%d records after enabling the stream, want 1", n)
	}
	var apiErr smithy.APIError
	_, err = c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: &info.Name, StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Errorf("enabling twice: %v", err)
	}
	if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: &info.Name, StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &info.Name, Item: itemV("b", "s", "1")}); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, s, arn, "")); n != 1 {
		t.Errorf("%d records after disabling the stream, want still 1", n)
	}
}

func TestPartiQLWritesRefused(t *testing.T) {
	s := startServer(t, Options{})
	c := s.Client()
	info := newTable(t, s, ViewNewImage, "")
	var apiErr smithy.APIError
	_, err := c.ExecuteStatement(context.Background(), &dynamodb.ExecuteStatementInput{Statement: aws.String(`INSERT INTO "` + info.Name + `" VALUE {'PK':'a','SK':'s'}`)})
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Errorf("PartiQL INSERT: %v", err)
	}
}

// The Go SDK validates X-Amz-Crc32 on every DynamoDB response and logs a
// warning when it does not match, so the endpoint must send the real one.
func TestResponsesCarryCRC32(t *testing.T) {
	s := startServer(t, Options{})
	for _, body := range []string{`{}`, `{"TableName":"missing"}`} {
		req, err := http.NewRequest(http.MethodPost, s.URL(), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.DescribeTable")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := strconv.FormatUint(uint64(crc32.ChecksumIEEE(data)), 10)
		if got := resp.Header.Get("X-Amz-Crc32"); got != want {
			t.Errorf("body %s: X-Amz-Crc32 %q, want %q", data, got, want)
		}
	}
}

func TestUnwrapPartitionClause(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"(#0 = :0)", "#0 = :0"},
		{"(#0 = :0) AND (begins_with (#1, :1))", "#0 = :0 AND (begins_with (#1, :1))"},
		{"(#0 = :0) AND (#1 BETWEEN :1 AND :2)", "#0 = :0 AND (#1 BETWEEN :1 AND :2)"},
		{"PK = :pk", "PK = :pk"},                           // already bare
		{"(#0 = :0 AND #1 > :1)", "(#0 = :0 AND #1 > :1)"}, // not a lone partition clause
		{"(#1 > :1) AND (#0 = :0)", "(#1 > :1) AND (#0 = :0)"},
	} {
		body, _ := json.Marshal(map[string]any{"TableName": "t", "KeyConditionExpression": tc.in})
		var out struct{ TableName, KeyConditionExpression string }
		if err := json.Unmarshal(unwrapPartitionClause(body), &out); err != nil {
			t.Fatal(err)
		}
		if out.KeyConditionExpression != tc.want || out.TableName != "t" {
			t.Errorf("%q -> %q, want %q", tc.in, out.KeyConditionExpression, tc.want)
		}
	}
}
