package dynamo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// View types a table's StreamSpecification can ask for.
const (
	ViewKeysOnly        = "KEYS_ONLY"
	ViewNewImage        = "NEW_IMAGE"
	ViewOldImage        = "OLD_IMAGE"
	ViewNewAndOldImages = "NEW_AND_OLD_IMAGES"
)

func validViewType(v string) bool {
	switch v {
	case ViewKeysOnly, ViewNewImage, ViewOldImage, ViewNewAndOldImages:
		return true
	}
	return false
}

// Identity is the userIdentity of a record; only TTL deletions carry one.
type Identity struct {
	Type        string // "Service"
	PrincipalID string // "dynamodb.amazonaws.com"
}

// ttlIdentity marks records of items deleted by the TTL process, as AWS does.
var ttlIdentity = &Identity{Type: "Service", PrincipalID: "dynamodb.amazonaws.com"}

// Record is one stream record. Keys and images are in the DynamoDB JSON wire
// format (attribute name -> {"S": ...}); NewImage and OldImage are present
// only when the stream's view type includes them.
type Record struct {
	StreamARN      string
	ShardID        string
	TableName      string
	EventID        string
	EventName      string // INSERT, MODIFY or REMOVE
	Region         string
	CreatedAt      time.Time
	SequenceNumber string
	SizeBytes      int64
	ViewType       string
	Keys           map[string]json.RawMessage
	PartitionKey   string // the table's partition key attribute name, for ParallelizationFactor's per-key lanes
	NewImage       map[string]json.RawMessage
	OldImage       map[string]json.RawMessage
	UserIdentity   *Identity

	seq uint64
}

// LambdaEvent returns the record as Lambda puts it in a DynamoDB stream event.
func (r Record) LambdaEvent() (events.DynamoDBEventRecord, error) {
	conv := func(it item) (map[string]events.DynamoDBAttributeValue, error) {
		if it == nil {
			return nil, nil
		}
		out := make(map[string]events.DynamoDBAttributeValue, len(it))
		for name, raw := range it {
			var av events.DynamoDBAttributeValue
			if err := json.Unmarshal(raw, &av); err != nil {
				return nil, fmt.Errorf("record %s attribute %q: %w", r.SequenceNumber, name, err)
			}
			out[name] = av
		}
		return out, nil
	}
	keys, err := conv(r.Keys)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	newImage, err := conv(r.NewImage)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	oldImage, err := conv(r.OldImage)
	if err != nil {
		return events.DynamoDBEventRecord{}, err
	}
	ev := events.DynamoDBEventRecord{
		AWSRegion: r.Region,
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: r.CreatedAt.Truncate(time.Second)},
			Keys:                        keys,
			NewImage:                    newImage,
			OldImage:                    oldImage,
			SequenceNumber:              r.SequenceNumber,
			SizeBytes:                   r.SizeBytes,
			StreamViewType:              r.ViewType,
		},
		EventID:        r.EventID,
		EventName:      r.EventName,
		EventSource:    "aws:dynamodb",
		EventVersion:   "1.1",
		EventSourceArn: r.StreamARN,
	}
	if r.UserIdentity != nil {
		ev.UserIdentity = &events.DynamoDBUserIdentity{Type: r.UserIdentity.Type, PrincipalID: r.UserIdentity.PrincipalID}
	}
	return ev, nil
}

// apiRecord is the record as the Streams API's GetRecords returns it.
func (r Record) apiRecord() map[string]any {
	change := map[string]any{
		"ApproximateCreationDateTime": r.CreatedAt.Unix(),
		"Keys":                        r.Keys,
		"SequenceNumber":              r.SequenceNumber,
		"SizeBytes":                   r.SizeBytes,
		"StreamViewType":              r.ViewType,
	}
	if r.NewImage != nil {
		change["NewImage"] = r.NewImage
	}
	if r.OldImage != nil {
		change["OldImage"] = r.OldImage
	}
	rec := map[string]any{
		"awsRegion":    r.Region,
		"dynamodb":     change,
		"eventID":      r.EventID,
		"eventName":    r.EventName,
		"eventSource":  "aws:dynamodb",
		"eventVersion": "1.1",
	}
	if r.UserIdentity != nil {
		rec["userIdentity"] = map[string]string{"Type": r.UserIdentity.Type, "PrincipalId": r.UserIdentity.PrincipalID}
	}
	return rec
}

// Sequence numbers are 21 decimal digits like AWS's ("1" and a zero-padded
// counter), so that string order and numeric order agree.
func formatSeq(n uint64) string { return fmt.Sprintf("1%020d", n) }

func parseSeq(s string) (uint64, error) {
	if len(s) != 21 || s[0] != '1' {
		return 0, fmt.Errorf("invalid sequence number %q", s)
	}
	n, err := strconv.ParseUint(s[1:], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid sequence number %q", s)
	}
	return n, nil
}

// stream is a table's stream: one shard holding every record in commit order.
// Real DynamoDB splits a stream into shards by key range and over time; one
// shard is enough locally and keeps a single total order, which is stricter
// than (and so compatible with) AWS's per-item order.
type stream struct {
	arn, label, table, shardID string
	viewType                   string
	keys                       keySchema
	created                    time.Time
	disabledAt                 time.Time // zero while enabled

	startSeq uint64   // first sequence number the shard may hold
	lastSeq  uint64   // last sequence number assigned (0 when none yet)
	trimmed  uint64   // records up to and including this one have been dropped
	records  []Record // ascending seq
	wake     chan struct{}
}

func (st *stream) enabled() bool { return st.disabledAt.IsZero() }

// after returns up to limit records with a sequence number > after.
func (st *stream) after(after uint64, limit int) []Record {
	i := 0
	for i < len(st.records) && st.records[i].seq <= after {
		i++
	}
	end := min(len(st.records), i+limit)
	return append([]Record(nil), st.records[i:end]...)
}

// trim drops records older than the retention period.
func (st *stream) trim(cutoff time.Time) {
	i := 0
	for i < len(st.records) && st.records[i].CreatedAt.Before(cutoff) {
		st.trimmed = st.records[i].seq
		i++
	}
	if i > 0 {
		st.records = append([]Record(nil), st.records[i:]...)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
