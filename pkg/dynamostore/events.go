package dynamostore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// EventItem is one outbox event, written in the transaction of the change
// that caused it (PK = its stream: GROUP#gid, USER#uid or PUBLIC; SK =
// EVENT#<seq>, a ULID, so a stream's events sort in change order). The
// fan-out's stream filter passes only these items, and only their INSERTs.
type EventItem struct {
	PK        string `dynamodbav:"PK"`
	SK        string `dynamodbav:"SK"`
	Type      string `dynamodbav:"type"`
	EventID   string `dynamodbav:"eventId"`
	EventType string `dynamodbav:"eventType"`
	// Envelope is the event's JSON exactly as clients receive it.
	Envelope string        `dynamodbav:"envelope"`
	Audience EventAudience `dynamodbav:"audience"`
	Inbox    EventInbox    `dynamodbav:"inbox"`
	// TTL (epoch seconds): the outbox keeps events for history only.
	TTL int64 `dynamodbav:"ttl"`
}

// EventAudience is groupcast.Audience as stored.
type EventAudience struct {
	UserID       string `dynamodbav:"userId,omitempty"`
	GroupID      string `dynamodbav:"groupId,omitempty"`
	ExceptUserID string `dynamodbav:"exceptUserId,omitempty"`
}

// EventInbox is groupcast.Inbox as stored.
type EventInbox struct {
	UserID       string `dynamodbav:"userId,omitempty"`
	MembersOf    string `dynamodbav:"membersOf,omitempty"`
	ExceptUserID string `dynamodbav:"exceptUserId,omitempty"`
}

// eventStreamPK is the partition of an event's stream.
func eventStreamPK(e groupcast.Event) string { return streamPK(e.Stream()) }

func streamPK(kind groupcast.StreamKind, id string) string {
	switch kind {
	case groupcast.StreamUser:
		return prefixUser + id
	case groupcast.StreamPublic:
		return gsi1PublicFeed
	default:
		return prefixGroup + id
	}
}

// NewEventItem is the outbox item of e.
func NewEventItem(e groupcast.Event) (EventItem, error) {
	if e.Seq == "" || e.ExpiresAt.IsZero() {
		return EventItem{}, fmt.Errorf("event %s has no sequence id or expiry", e.ID)
	}
	env, err := e.Envelope()
	if err != nil {
		return EventItem{}, err
	}
	body, err := json.Marshal(env)
	if err != nil {
		return EventItem{}, fmt.Errorf("encode envelope of %s: %w", e.ID, err)
	}
	return EventItem{
		PK: eventStreamPK(e), SK: prefixEvent + e.Seq, Type: TypeEvent,
		EventID: e.ID, EventType: string(e.Type), Envelope: string(body),
		Audience: EventAudience(e.Audience), Inbox: EventInbox(e.Inbox),
		TTL: e.ExpiresAt.Unix(),
	}, nil
}

// Delivery converts the item to what the fan-out sends.
func (it EventItem) Delivery() (groupcast.Delivery, error) {
	var env groupcast.Envelope
	if err := json.Unmarshal([]byte(it.Envelope), &env); err != nil {
		return groupcast.Delivery{}, fmt.Errorf("decode envelope of event %s: %w", it.EventID, err)
	}
	return groupcast.Delivery{
		Envelope: env, Audience: groupcast.Audience(it.Audience), Inbox: groupcast.Inbox(it.Inbox), ExpiresAt: expiry(it.TTL),
	}, nil
}

// DecodeEvent reads an event item from a stream image; ok is false when the
// image is some other item.
func DecodeEvent(image map[string]types.AttributeValue) (d groupcast.Delivery, ok bool, err error) {
	var it EventItem
	if err := attributevalue.UnmarshalMap(image, &it); err != nil {
		return groupcast.Delivery{}, false, fmt.Errorf("decode event item: %w", err)
	}
	if it.Type != TypeEvent {
		return groupcast.Delivery{}, false, nil
	}
	d, err = it.Delivery()
	return d, err == nil, err
}

// putEvent is the transaction action that writes e to the outbox. The
// condition only guards against a sequence id collision overwriting
// another event.
func (s *Store) putEvent(e groupcast.Event) (types.TransactWriteItem, error) {
	it, err := NewEventItem(e)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return s.transactPut(it, notExists())
}

// StreamEvents reads the stream's events after afterSeq, oldest first, at
// most limit: a strongly consistent Query of the stream's partition on the
// table (an index could lag behind a commit the live push already made),
// page by page until limit items are read.
func (s *Store) StreamEvents(ctx context.Context, kind groupcast.StreamKind, id, afterSeq string, limit int) ([]groupcast.Delivery, error) {
	pk := streamPK(kind, id)
	from := prefixEvent + afterSeq
	q := query{partition: pk, consistent: true, sk: func(k expression.KeyBuilder) expression.KeyConditionBuilder {
		// The partition also holds the group's META, MEMBER# and POST#
		// items; "EVENT$" ('#' + 1) sorts after every EVENT#<ULID>.
		return k.Between(expression.Value(from), expression.Value(eventRangeEnd))
	}}
	in, err := q.input(s.table)
	if err != nil {
		return nil, err
	}
	// Pages of limit+1 items (one may be afterSeq itself): a resume reads
	// what it may replay, never the stream's whole retained history.
	in.Limit = aws.Int32(int32(limit + 1))
	var out []groupcast.Delivery
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() && len(out) < limit {
		res, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query events of %s: %w", pk, err)
		}
		items, err := decodeAll[EventItem](res.Items)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.SK == from {
				continue // the position itself: "after" is exclusive
			}
			if len(out) == limit {
				break
			}
			d, err := it.Delivery()
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// eventRangeEnd sorts after every event key of a stream partition.
const eventRangeEnd = "EVENT$"

// committed tells the sink of the event items among a committed
// transaction's actions. Every outbox write goes through a transaction, so
// this one place sees every event of every change.
func (s *Store) committed(ctx context.Context, actions []types.TransactWriteItem) {
	if s.sink == nil {
		return
	}
	var items []EventItem
	for _, a := range actions {
		if a.Put == nil {
			continue
		}
		if t, ok := a.Put.Item["type"].(*types.AttributeValueMemberS); !ok || t.Value != TypeEvent {
			continue
		}
		var it EventItem
		if err := attributevalue.UnmarshalMap(a.Put.Item, &it); err != nil {
			continue // written by putEvent from an EventItem: cannot fail to decode
		}
		items = append(items, it)
	}
	if len(items) > 0 {
		s.sink.EventsCommitted(ctx, items)
	}
}
