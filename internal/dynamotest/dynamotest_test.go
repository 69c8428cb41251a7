package dynamotest_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/dynamotest"
)

func TestNewTableCreatesTheGroupcastTable(t *testing.T) {
	client, table := dynamotest.NewTable(t)
	out, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Table
	if d.StreamSpecification == nil || d.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream = %+v, want NEW_AND_OLD_IMAGES", d.StreamSpecification)
	}
	indexes := map[string]bool{}
	for _, g := range d.GlobalSecondaryIndexes {
		indexes[aws.ToString(g.IndexName)] = true
	}
	for _, want := range []string{"GSI1", "GSI2"} {
		if !indexes[want] {
			t.Errorf("index %s missing; have %v", want, indexes)
		}
	}
}
