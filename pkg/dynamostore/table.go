package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names of the single table. template.yaml declares the
// same names; TestRepoTemplateTable in internal/cfn/samcheck checks they agree.
const (
	attrPK     = "PK"
	attrSK     = "SK"
	attrGSI1PK = "GSI1PK"
	attrGSI1SK = "GSI1SK"
	attrGSI2PK = "GSI2PK"
	attrGSI2SK = "GSI2SK"
	attrTTL    = "ttl"

	// IndexGSI1 serves "items of a user / subscribers of a group / public
	// groups" lookups; IndexGSI2 is the sparse unread-notification index.
	IndexGSI1 = "GSI1"
	IndexGSI2 = "GSI2"
)

// tableActiveTimeout bounds the wait for a new table to become ACTIVE. Local
// emulators are ACTIVE at once; real DynamoDB usually takes seconds, rarely
// more than a minute for a table with two GSIs.
const tableActiveTimeout = 2 * time.Minute

// TableSchema is the Groupcast table's definition (on-demand, stream
// NEW_AND_OLD_IMAGES, GSI1, GSI2) as a CreateTable input. template.yaml
// declares the same table for deployed stacks; a template test compares the
// two, so this is the schema's one home in code.
func TableSchema(table string) *dynamodb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	keys := func(pk, sk string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		}
	}
	all := &types.Projection{ProjectionType: types.ProjectionTypeAll}
	return &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			str(attrPK), str(attrSK), str(attrGSI1PK), str(attrGSI1SK), str(attrGSI2PK), str(attrGSI2SK),
		},
		KeySchema: keys(attrPK, attrSK),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{IndexName: aws.String(IndexGSI1), KeySchema: keys(attrGSI1PK, attrGSI1SK), Projection: all},
			{IndexName: aws.String(IndexGSI2), KeySchema: keys(attrGSI2PK, attrGSI2SK), Projection: all},
		},
		BillingMode: types.BillingModePayPerRequest,
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewAndOldImages,
		},
	}
}

// TTLAttribute is the attribute DynamoDB's time to live reads on every item
// that expires (connections, subscriptions, rate counters).
const TTLAttribute = attrTTL

// CreateTable creates the table TableSchema describes, waits until it is
// active and turns on TTL. Tests and local tools use it; deployed stacks get
// the same table from template.yaml.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, TableSchema(table))
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		// Emulators are ready immediately; do not wait the default 20 s first poll gap.
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableActiveTimeout); err != nil {
		return fmt.Errorf("wait for table %s: %w", table, err)
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("enable ttl on %s: %w", table, err)
	}
	return nil
}
