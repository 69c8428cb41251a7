// Command probe makes the DynamoDB call its event names and reports the
// outcome, so a test can see what the local stack's IAM lets a function do.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

type event struct {
	Op string `json:"op"`
}

type result struct {
	OK      bool   `json:"ok"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	table := os.Getenv("TABLE_NAME")
	key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "k"}, "SK": &types.AttributeValueMemberS{Value: "k"}}
	item := map[string]types.AttributeValue{"PK": key["PK"], "SK": key["SK"], "GSI1PK": &types.AttributeValueMemberS{Value: "g"}, "GSI1SK": &types.AttributeValueMemberS{Value: "g"}}
	lambda.Start(func(ctx context.Context, ev event) (result, error) {
		var err error
		switch ev.Op {
		case "put":
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item})
		case "get":
			_, err = db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: key})
		case "delete":
			_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: key})
		case "query-index":
			_, err = db.Query(ctx, &dynamodb.QueryInput{TableName: &table, IndexName: aws.String("GSI1"),
				KeyConditionExpression:    aws.String("GSI1PK = :p"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "g"}}})
		case "transact-put":
			_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{ConditionCheck: &types.ConditionCheck{TableName: &table, Key: key, ConditionExpression: aws.String("attribute_exists(PK)")}},
				{Put: &types.Put{TableName: &table, Item: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "t"}, "SK": &types.AttributeValueMemberS{Value: "t"}}}},
			}})
		case "batch-write":
			_, err = db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
				table: {{PutRequest: &types.PutRequest{Item: item}}}}})
		default:
			return result{}, errors.New("unknown op " + ev.Op)
		}
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return result{Code: ae.ErrorCode(), Message: ae.ErrorMessage()}, nil
		}
		if err != nil {
			return result{}, err
		}
		return result{OK: true}, nil
	})
}
