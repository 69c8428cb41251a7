package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A delivery claim (PK CLAIM#<eventId>, SK CLAIM) says which path delivers
// an event: the fast path (the API function's hand-off) or the stream.
// Whichever path takes it first delivers; the other skips the event once
// the claim is done, and takes over a started claim whose lease ran out
// (its holder died part-way). The claim is not an EVENT item, so the
// stream filter never passes it.

// ClaimState is a claim's progress.
type ClaimState string

const (
	ClaimStarted ClaimState = "started"
	ClaimDone    ClaimState = "done"
)

// Claim is the delivery claim of one event.
type Claim struct {
	EventID string
	// Owner names the path holding it ("fast" or "stream").
	Owner string
	State ClaimState
	// Token identifies one holding: Finish and Release need it, so a
	// holder whose lease ran out cannot undo its successor's claim.
	Token string
	// LeaseUntil is when a started claim goes stale: its holder renews it
	// while it works (RenewClaim), so it passes only when the holder died
	// or lost touch with the table.
	LeaseUntil time.Time
}

// ClaimRetention is how long a claim is kept: beyond the stream's 24-hour
// retention, so a stream replay (a re-created mapping reading from
// TRIM_HORIZON) still finds done claims and does not push twice.
const ClaimRetention = 48 * time.Hour

// ClaimItem is a claim as stored.
type ClaimItem struct {
	PK      string `dynamodbav:"PK"`
	SK      string `dynamodbav:"SK"`
	Type    string `dynamodbav:"type"`
	EventID string `dynamodbav:"eventId"`
	Owner   string `dynamodbav:"owner"`
	State   string `dynamodbav:"state"`
	Token   string `dynamodbav:"token"`
	// LeaseUntil is epoch milliseconds, compared in the condition.
	LeaseUntil int64 `dynamodbav:"leaseUntil"`
	TTL        int64 `dynamodbav:"ttl"`
}

const (
	prefixClaim = "CLAIM#"
	skClaim     = "CLAIM"
	// TypeClaim marks delivery claims.
	TypeClaim = "CLAIM"
)

func claimKey(eventID string) (pk, sk string) { return prefixClaim + eventID, skClaim }

func (it ClaimItem) claim() Claim {
	return Claim{EventID: it.EventID, Owner: it.Owner, State: ClaimState(it.State), Token: it.Token, LeaseUntil: time.UnixMilli(it.LeaseUntil).UTC()}
}

// TakeClaim claims eventID for owner until leaseUntil. It succeeds (taken
// true, the new claim) when there is no claim yet, when the existing one is
// started and its lease ended before now, or, with retakeOwn, when it is
// started by the same owner (a stream retry of its own record: Lambda never
// runs one shard's record in two invocations at once). Otherwise taken is
// false and the claim returned is the one that stands (done, or started
// and live). One conditional PutItem decides, so of two paths racing for
// a new event exactly one wins.
func (s *Store) TakeClaim(ctx context.Context, eventID, owner string, now, leaseUntil time.Time, retakeOwn bool) (c Claim, taken bool, err error) {
	if eventID == "" || owner == "" {
		return Claim{}, false, errors.New("take claim: event id and owner are required")
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails (Go 1.24+)
	pk, sk := claimKey(eventID)
	it := ClaimItem{PK: pk, SK: sk, Type: TypeClaim, EventID: eventID, Owner: owner, State: string(ClaimStarted),
		Token: hex.EncodeToString(tok[:]), LeaseUntil: leaseUntil.UnixMilli(), TTL: now.Add(ClaimRetention).Unix()}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return Claim{}, false, fmt.Errorf("encode claim of %s: %w", eventID, err)
	}
	started := expression.Name("state").Equal(expression.Value(string(ClaimStarted)))
	cond := notExists().Or(started.And(expression.Name("leaseUntil").LessThan(expression.Value(now.UnixMilli()))))
	if retakeOwn {
		cond = cond.Or(started.And(expression.Name("owner").Equal(expression.Value(owner))))
	}
	expr, err := conditional(cond)
	if err != nil {
		return Claim{}, false, fmt.Errorf("build claim condition: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: s.table, Item: av, ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		// The standing claim comes back with the refusal: no second read.
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return it.claim(), true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return Claim{}, false, fmt.Errorf("take claim of %s: %w", eventID, err)
	}
	if ccf.Item == nil {
		// Emulators that do not return the item: read it.
		c, found, err := s.GetClaim(ctx, eventID)
		if err != nil || !found {
			return Claim{}, false, fmt.Errorf("take claim of %s: refused, then %w (found %v)", eventID, err, found)
		}
		return c, false, nil
	}
	var old ClaimItem
	if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
		return Claim{}, false, fmt.Errorf("decode claim of %s: %w", eventID, err)
	}
	return old.claim(), false, nil
}

// GetClaim reads eventID's claim strongly consistently.
func (s *Store) GetClaim(ctx context.Context, eventID string) (Claim, bool, error) {
	pk, sk := claimKey(eventID)
	var it ClaimItem
	found, err := s.getItem(ctx, pk, sk, &it)
	if err != nil || !found {
		return Claim{}, found, err
	}
	return it.claim(), true, nil
}

// ErrClaimLost means the claim is no longer the caller's: its lease ran out
// and another path took it over.
var ErrClaimLost = errors.New("claim lost to another path")

// RenewClaim moves c's lease on to leaseUntil, if c still holds: started,
// with c's token. It is the holder's heartbeat, as in the DynamoDB Lock
// Client (https://github.com/awslabs/amazon-dynamodb-lock-client). When c
// was taken over, finished or released, it returns ErrClaimLost and writes
// nothing.
func (s *Store) RenewClaim(ctx context.Context, c Claim, leaseUntil time.Time) error {
	pk, sk := claimKey(c.EventID)
	held := expression.Name("state").Equal(expression.Value(string(ClaimStarted))).
		And(expression.Name("token").Equal(expression.Value(c.Token)))
	expr, err := expression.NewBuilder().
		WithUpdate(expression.Set(expression.Name("leaseUntil"), expression.Value(leaseUntil.UnixMilli()))).
		WithCondition(held).Build()
	if err != nil {
		return fmt.Errorf("build claim renewal: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pk, sk), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return fmt.Errorf("renew claim of %s: %w", c.EventID, ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("renew claim of %s: %w", c.EventID, err)
	}
	return nil
}

// FinishClaim marks c done, if c still holds.
func (s *Store) FinishClaim(ctx context.Context, c Claim) error {
	pk, sk := claimKey(c.EventID)
	expr, err := expression.NewBuilder().
		WithUpdate(expression.Set(expression.Name("state"), expression.Value(string(ClaimDone)))).
		WithCondition(expression.Name("token").Equal(expression.Value(c.Token))).Build()
	if err != nil {
		return fmt.Errorf("build claim update: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pk, sk), UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return fmt.Errorf("finish claim of %s: %w", c.EventID, ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("finish claim of %s: %w", c.EventID, err)
	}
	return nil
}

// ReleaseClaim deletes c, if c still holds, so the other path can take the
// event at once instead of waiting for the lease to run out.
func (s *Store) ReleaseClaim(ctx context.Context, c Claim) error {
	pk, sk := claimKey(c.EventID)
	expr, err := conditional(expression.Name("token").Equal(expression.Value(c.Token)))
	if err != nil {
		return fmt.Errorf("build claim condition: %w", err)
	}
	_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: key(pk, sk), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if conditionFailed(err) {
		return fmt.Errorf("release claim of %s: %w", c.EventID, ErrClaimLost)
	}
	if err != nil {
		return fmt.Errorf("release claim of %s: %w", c.EventID, err)
	}
	return nil
}
