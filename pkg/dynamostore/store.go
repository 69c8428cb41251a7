// Package dynamostore stores Groupcast in one DynamoDB table. It implements
// groupcast.Store and the look-ups the fan-out needs; the key layout is in
// README ("The table") and items.go.
package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// API is the part of the DynamoDB client the store calls.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is the DynamoDB implementation of groupcast.Store.
type Store struct {
	db    API
	table *string
	// sink hears of the event items each committed transaction wrote.
	sink EventSink
}

// EventSink is told, after a transaction commits, of the outbox event items
// it wrote: the fast path hands them to delivery without waiting for the
// stream. It runs in the request; a failure is its own to log (the stream
// still delivers), so it returns nothing.
type EventSink interface {
	EventsCommitted(ctx context.Context, items []EventItem)
}

// Option configures a Store.
type Option func(*Store)

// WithEventSink makes the store tell sink of each committed transaction's
// events.
func WithEventSink(sink EventSink) Option { return func(s *Store) { s.sink = sink } }

var _ groupcast.Store = (*Store)(nil)

// New returns a Store on table.
func New(db API, table string, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("dynamostore: nil client")
	}
	if table == "" {
		return nil, errors.New("dynamostore: empty table name")
	}
	s := &Store{db: db, table: aws.String(table)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// DynamoDB's per-call limits.
const (
	batchGetLimit   = 100
	batchWriteLimit = 25
)

// Retrying unprocessed batch items: BatchGetItem/BatchWriteItem return them
// when a partition is throttled. AWS advises exponential backoff; 8 attempts
// from 25 ms (capped at 1 s) wait about 3.5 s in the worst case, well inside
// any Lambda timeout, before giving up with an error.
const (
	batchMaxAttempts = 8
	batchBaseDelay   = 25 * time.Millisecond
	batchMaxDelay    = time.Second
)

// backoff sleeps before retry attempt n (1-based) with full jitter.
func backoff(ctx context.Context, n int) error {
	d := min(batchBaseDelay<<(n-1), batchMaxDelay)
	t := time.NewTimer(rand.N(d) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type item = map[string]types.AttributeValue

func key(pk, sk string) item {
	return item{attrPK: &types.AttributeValueMemberS{Value: pk}, attrSK: &types.AttributeValueMemberS{Value: sk}}
}

// getItem reads one item strongly consistently into out; found is false
// when it does not exist.
func (s *Store) getItem(ctx context.Context, pk, sk string, out any) (found bool, err error) {
	res, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: s.table, Key: key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("get %s %s: %w", pk, sk, err)
	}
	if res.Item == nil {
		return false, nil
	}
	if err := attributevalue.UnmarshalMap(res.Item, out); err != nil {
		return false, fmt.Errorf("decode %s %s: %w", pk, sk, err)
	}
	return true, nil
}

// batchGet reads the items with the given keys; missing items are absent
// from the result, whose order is unspecified.
func (s *Store) batchGet(ctx context.Context, keys []item) ([]item, error) {
	var out []item
	for start := 0; start < len(keys); start += batchGetLimit {
		pending := map[string]types.KeysAndAttributes{
			*s.table: {Keys: keys[start:min(start+batchGetLimit, len(keys))], ConsistentRead: aws.Bool(true)},
		}
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > 1 {
				if attempt > batchMaxAttempts {
					return nil, fmt.Errorf("batch get: keys still unprocessed after %d attempts", batchMaxAttempts)
				}
				if err := backoff(ctx, attempt-1); err != nil {
					return nil, err
				}
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("batch get: %w", err)
			}
			out = append(out, res.Responses[*s.table]...)
			pending = res.UnprocessedKeys
		}
	}
	return out, nil
}

// batchWrite performs the writes 25 at a time, retrying unprocessed ones.
func (s *Store) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for start := 0; start < len(writes); start += batchWriteLimit {
		pending := map[string][]types.WriteRequest{*s.table: writes[start:min(start+batchWriteLimit, len(writes))]}
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > 1 {
				if attempt > batchMaxAttempts {
					return fmt.Errorf("batch write: items still unprocessed after %d attempts", batchMaxAttempts)
				}
				if err := backoff(ctx, attempt-1); err != nil {
					return err
				}
			}
			res, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("batch write: %w", err)
			}
			pending = res.UnprocessedItems
		}
	}
	return nil
}

func putRequest(v any) (types.WriteRequest, error) {
	av, err := attributevalue.MarshalMap(v)
	if err != nil {
		return types.WriteRequest{}, fmt.Errorf("encode item: %w", err)
	}
	return types.WriteRequest{PutRequest: &types.PutRequest{Item: av}}, nil
}

func deleteRequest(pk, sk string) types.WriteRequest {
	return types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, sk)}}
}

// query describes one key-condition Query.
type query struct {
	index     string // "" for the table
	partition string // value of the index's partition key
	sk        func(expression.KeyBuilder) expression.KeyConditionBuilder
	newest    bool // descending sort-key order
	filter    *expression.ConditionBuilder
	count     bool // Select COUNT
	// project, when set, names the only attributes to return.
	project []string
	// consistent asks for a strongly consistent read (table only: GSIs
	// cannot be read consistently).
	consistent bool
	// skValid, when set, reports whether a sort-key value lies inside the sk
	// condition. A cursor's sort key must: DynamoDB rejects an
	// ExclusiveStartKey outside the query's key condition with a
	// ValidationException, which would surface as a 500, not a 400.
	skValid func(string) bool
}

func (q query) keyNames() (pk, sk string) {
	switch q.index {
	case IndexGSI1:
		return attrGSI1PK, attrGSI1SK
	case IndexGSI2:
		return attrGSI2PK, attrGSI2SK
	}
	return attrPK, attrSK
}

func (q query) input(table *string) (*dynamodb.QueryInput, error) {
	pkName, skName := q.keyNames()
	kc := expression.Key(pkName).Equal(expression.Value(q.partition))
	if q.sk != nil {
		kc = kc.And(q.sk(expression.Key(skName)))
	}
	b := expression.NewBuilder().WithKeyCondition(kc)
	if q.filter != nil {
		b = b.WithFilter(*q.filter)
	}
	if len(q.project) > 0 {
		names := make([]expression.NameBuilder, len(q.project))
		for i, n := range q.project {
			names[i] = expression.Name(n)
		}
		b = b.WithProjection(expression.NamesList(names[0], names[1:]...))
	}
	expr, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build query on %s: %w", q.partition, err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 table,
		KeyConditionExpression:    expr.KeyCondition(),
		FilterExpression:          expr.Filter(),
		ProjectionExpression:      expr.Projection(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ScanIndexForward:          aws.Bool(!q.newest),
	}
	if q.index != "" {
		in.IndexName = aws.String(q.index)
	}
	if q.consistent {
		in.ConsistentRead = aws.Bool(true)
	}
	if q.count {
		in.Select = types.SelectCount
	}
	return in, nil
}

// queryPage reads one page of q as asked by p (already normalized).
func (s *Store) queryPage(ctx context.Context, q query, p groupcast.PageRequest) ([]item, string, error) {
	in, err := q.input(s.table)
	if err != nil {
		return nil, "", err
	}
	in.Limit = aws.Int32(int32(p.Limit))
	if p.Cursor != "" {
		pkName, skName := q.keyNames()
		if in.ExclusiveStartKey, err = decodeCursor(p.Cursor, pkName, q.partition, skName); err != nil {
			return nil, "", err
		}
		if sk, _ := in.ExclusiveStartKey[skName].(*types.AttributeValueMemberS); q.skValid != nil && !q.skValid(sk.Value) {
			return nil, "", fmt.Errorf("cursor sort key %q outside the query: %w", sk.Value,
				groupcast.Errorf(groupcast.CodeInvalid, "cursor is malformed or belongs to another listing"))
		}
	}
	res, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("query %s: %w", q.partition, err)
	}
	lek := res.LastEvaluatedKey
	if len(lek) > 0 && len(res.Items) > 0 && q.index != "" && q.filter == nil {
		// DynamoDB includes the index keys in an index query's
		// LastEvaluatedKey; some emulators (kumo) return only the table
		// keys. Without a filter the last evaluated item is the last one
		// returned, so take the missing index keys from it.
		last := res.Items[len(res.Items)-1]
		lek = maps.Clone(lek)
		pkName, skName := q.keyNames()
		for _, name := range []string{pkName, skName} {
			if _, ok := lek[name]; !ok {
				lek[name] = last[name]
			}
		}
	}
	next, err := encodeCursor(lek)
	if err != nil {
		return nil, "", err
	}
	return res.Items, next, nil
}

// queryAll runs q to the end, handing each page's items to fn.
func (s *Store) queryAll(ctx context.Context, q query, fn func([]item) error) error {
	in, err := q.input(s.table)
	if err != nil {
		return err
	}
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		res, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("query %s: %w", q.partition, err)
		}
		if err := fn(res.Items); err != nil {
			return err
		}
	}
	return nil
}

// decodeAll unmarshals items into a slice of T.
func decodeAll[T any](items []item) ([]T, error) {
	out := make([]T, 0, len(items))
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("decode items: %w", err)
	}
	return out, nil
}

func beginsWith(prefix string) func(expression.KeyBuilder) expression.KeyConditionBuilder {
	return func(k expression.KeyBuilder) expression.KeyConditionBuilder {
		return expression.KeyBeginsWith(k, prefix)
	}
}

// hasPrefix is the skValid of beginsWith(prefix).
func hasPrefix(prefix string) func(string) bool {
	return func(sk string) bool { return strings.HasPrefix(sk, prefix) }
}

// conditionFailed reports whether err is a failed condition of a single-item write.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Cancellation reason codes of TransactionCanceledException
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
const (
	reasonConditionFailed = "ConditionalCheckFailed"
	reasonConflict        = "TransactionConflict"
)

// maxTransactActions is TransactWriteItems' limit of actions per call (same
// page as above).
const maxTransactActions = 100

// cancellationCodes returns the reason code of each action of a canceled
// transaction (aligned with its actions), or nil for any other error.
func cancellationCodes(err error) []string {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	codes := make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		codes[i] = aws.ToString(r.Code)
	}
	return codes
}

// canceledBy returns, for a canceled transaction, the index of the first
// action whose condition failed; ok is false for any other error.
func canceledBy(err error) (index int, ok bool) {
	for i, c := range cancellationCodes(err) {
		if c == reasonConditionFailed {
			return i, true
		}
	}
	return 0, false
}

// transactWrite runs one TransactWriteItems. A transaction that collides
// with another one on the same item is canceled with TransactionConflict
// and no condition failed; it is retried with the batch backoff, because
// the SDK's retryer does not retry TransactionCanceledException and the
// collision (say, a leave and a subscribe on the same membership) is over
// within milliseconds.
func (s *Store) transactWrite(ctx context.Context, actions []types.TransactWriteItem) error {
	for attempt := 1; ; attempt++ {
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: actions})
		if err == nil {
			s.committed(ctx, actions)
			return nil
		}
		codes := cancellationCodes(err)
		if attempt == batchMaxAttempts || !slices.Contains(codes, reasonConflict) || slices.Contains(codes, reasonConditionFailed) {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// transact runs one transaction; when an action's condition fails it
// returns the domain error failures[index] wrapping the cause.
func (s *Store) transact(ctx context.Context, what string, actions []types.TransactWriteItem, failures []*groupcast.Error) error {
	err := s.transactWrite(ctx, actions)
	if err == nil {
		return nil
	}
	if i, ok := canceledBy(err); ok && i < len(failures) && failures[i] != nil {
		return fmt.Errorf("%s: %w (%w)", what, failures[i], err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// conditional builds the names/values/condition of a single condition.
func conditional(c expression.ConditionBuilder) (expression.Expression, error) {
	return expression.NewBuilder().WithCondition(c).Build()
}

func notExists() expression.ConditionBuilder {
	return expression.AttributeNotExists(expression.Name(attrPK))
}
func exists() expression.ConditionBuilder { return expression.AttributeExists(expression.Name(attrPK)) }

// transactPut is a Put of v under condition c.
func (s *Store) transactPut(v any, c expression.ConditionBuilder) (types.TransactWriteItem, error) {
	av, err := attributevalue.MarshalMap(v)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("encode item: %w", err)
	}
	expr, err := conditional(c)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build condition: %w", err)
	}
	return types.TransactWriteItem{Put: &types.Put{
		TableName: s.table, Item: av, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// transactUpdate is an Update of the item (pk, sk) under condition c.
func (s *Store) transactUpdate(pk, sk string, u expression.UpdateBuilder, c expression.ConditionBuilder) (types.TransactWriteItem, error) {
	expr, err := expression.NewBuilder().WithUpdate(u).WithCondition(c).Build()
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build update of %s %s: %w", pk, sk, err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: s.table, Key: key(pk, sk), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// transactDelete is a Delete of the item (pk, sk) under condition c.
func (s *Store) transactDelete(pk, sk string, c expression.ConditionBuilder) (types.TransactWriteItem, error) {
	expr, err := conditional(c)
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build condition: %w", err)
	}
	return types.TransactWriteItem{Delete: &types.Delete{
		TableName: s.table, Key: key(pk, sk), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// Open returns a Store on table with a client from the default AWS
// configuration (environment, shared config, the Lambda role), which also
// honours AWS_ENDPOINT_URL_DYNAMODB for local endpoints.
func Open(ctx context.Context, table string, opts ...Option) (*Store, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return New(dynamodb.NewFromConfig(cfg), table, opts...)
}
