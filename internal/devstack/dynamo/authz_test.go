package dynamo

import (
	"fmt"
	"slices"
	"testing"
)

func TestPermissions(t *testing.T) {
	s := &Server{opts: Options{Region: "us-east-1", AccountID: "1"}}
	const tbl = "arn:aws:dynamodb:us-east-1:1:table/"
	stream := tbl + "T/stream/2026-01-01T00:00:00.000"
	tests := []struct {
		name, target, body string
		want               []string // "action resource"
		wantErr            string
	}{
		{"PutItem", "DynamoDB_20120810.PutItem", `{"TableName":"T"}`, []string{"dynamodb:PutItem " + tbl + "T"}, ""},
		{"table ARN as name", "DynamoDB_20120810.GetItem", `{"TableName":"` + tbl + `T"}`, []string{"dynamodb:GetItem " + tbl + "T"}, ""},
		{"Query of the table", "DynamoDB_20120810.Query", `{"TableName":"T"}`, []string{"dynamodb:Query " + tbl + "T"}, ""},
		{"Query of an index", "DynamoDB_20120810.Query", `{"TableName":"T","IndexName":"GSI1"}`, []string{"dynamodb:Query " + tbl + "T/index/GSI1"}, ""},
		{"Scan of an index", "DynamoDB_20120810.Scan", `{"TableName":"T","IndexName":"I"}`, []string{"dynamodb:Scan " + tbl + "T/index/I"}, ""},
		{"BatchWriteItem per table", "DynamoDB_20120810.BatchWriteItem", `{"RequestItems":{"B":[],"A":[]}}`,
			[]string{"dynamodb:BatchWriteItem " + tbl + "A", "dynamodb:BatchWriteItem " + tbl + "B"}, ""},
		{"BatchGetItem", "DynamoDB_20120810.BatchGetItem", `{"RequestItems":{"A":{}}}`, []string{"dynamodb:BatchGetItem " + tbl + "A"}, ""},
		{"TransactWriteItems per operation", "DynamoDB_20120810.TransactWriteItems",
			`{"TransactItems":[{"ConditionCheck":{"TableName":"T"}},{"Put":{"TableName":"T"}},{"Update":{"TableName":"U"}},{"Delete":{"TableName":"T"}}]}`,
			[]string{"dynamodb:ConditionCheckItem " + tbl + "T", "dynamodb:PutItem " + tbl + "T", "dynamodb:UpdateItem " + tbl + "U", "dynamodb:DeleteItem " + tbl + "T"}, ""},
		{"TransactGetItems", "DynamoDB_20120810.TransactGetItems", `{"TransactItems":[{"Get":{"TableName":"T"}}]}`, []string{"dynamodb:GetItem " + tbl + "T"}, ""},
		{"unknown transaction operation", "DynamoDB_20120810.TransactWriteItems", `{"TransactItems":[{"Upsert":{"TableName":"T"}}]}`, nil, "ValidationException"},
		{"ListTables", "DynamoDB_20120810.ListTables", `{}`, []string{"dynamodb:ListTables *"}, ""},
		{"PartiQL SELECT of an index", "DynamoDB_20120810.ExecuteStatement", `{"Statement":"SELECT * FROM \"T\".\"I\" WHERE PK = ?"}`, []string{"dynamodb:PartiQLSelect " + tbl + "T/index/I"}, ""},
		{"DescribeStream", "DynamoDBStreams_20120810.DescribeStream", `{"StreamArn":"` + stream + `"}`, []string{"dynamodb:DescribeStream " + stream}, ""},
		{"GetShardIterator", "DynamoDBStreams_20120810.GetShardIterator", `{"StreamArn":"` + stream + `"}`, []string{"dynamodb:GetShardIterator " + stream}, ""},
		{"GetRecords names the iterator's stream", "DynamoDBStreams_20120810.GetRecords", `{"ShardIterator":"` + iterator{Stream: stream}.encode() + `"}`, []string{"dynamodb:GetRecords " + stream}, ""},
		{"ListStreams of a table", "DynamoDBStreams_20120810.ListStreams", `{"TableName":"T"}`, []string{"dynamodb:ListStreams " + tbl + "T/stream/*"}, ""},
		{"ListStreams", "DynamoDBStreams_20120810.ListStreams", `{}`, []string{"dynamodb:ListStreams *"}, ""},
		{"malformed body", "DynamoDB_20120810.PutItem", `{"TableName":1}`, nil, "SerializationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perms, aerr := s.permissions(tt.target, []byte(tt.body))
			if tt.wantErr != "" {
				if aerr == nil || aerr.Type != tt.wantErr {
					t.Fatalf("error %v, want %s", aerr, tt.wantErr)
				}
				return
			}
			if aerr != nil {
				t.Fatal(aerr)
			}
			var got []string
			for _, p := range perms {
				got = append(got, fmt.Sprintf("%s %s", p.action, p.resource))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}
