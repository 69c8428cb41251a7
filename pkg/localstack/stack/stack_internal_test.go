package stack

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/localstack/esm"
	"github.com/groupcast/groupcast/pkg/localstack/iam"
)

func TestStartNamesUnsupportedResource(t *testing.T) {
	_, err := Start(context.Background(), Options{Template: "testdata/unsupported.yaml"})
	if err == nil || !strings.Contains(err.Error(), "Alerts") || !strings.Contains(err.Error(), "AWS::SNS::Topic") {
		t.Fatalf("Start = %v, want an error naming resource Alerts and its type", err)
	}
	if strings.Contains(err.Error(), "Skipped") {
		t.Fatalf("a resource whose condition is false was reported: %v", err)
	}
}

func TestLocalizeURL(t *testing.T) {
	r := newResolver("us-east-1", "000000000000")
	r.apiIDs["WebSocketApi"] = "abc123defg"
	r.apiEndpoint["WebSocketApi"] = "ws://127.0.0.1:3001"
	for in, want := range map[string]string{
		"https://abc123defg.execute-api.us-east-1.amazonaws.com/dev": "http://127.0.0.1:3001/dev",
		"wss://abc123defg.execute-api.eu-west-1.amazonaws.com/prod":  "http://127.0.0.1:3001/prod",
		"https://otherapi00.execute-api.us-east-1.amazonaws.com/dev": "https://otherapi00.execute-api.us-east-1.amazonaws.com/dev",
		"https://example.com/dev":                                    "https://example.com/dev",
		"plain value":                                                "plain value",
	} {
		if got := r.localizeURL(in); got != want {
			t.Errorf("localizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTableSpecFromTemplateProperties(t *testing.T) {
	props := map[string]any{
		"BillingMode": "PAY_PER_REQUEST",
		"AttributeDefinitions": []any{
			map[string]any{"AttributeName": "PK", "AttributeType": "S"},
		},
		"KeySchema":                        []any{map[string]any{"AttributeName": "PK", "KeyType": "HASH"}},
		"StreamSpecification":              map[string]any{"StreamViewType": "NEW_AND_OLD_IMAGES"},
		"TimeToLiveSpecification":          map[string]any{"AttributeName": "ttl", "Enabled": true},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
	}
	spec, err := tableSpec("Table", "local-Table", props)
	if err != nil {
		t.Fatal(err)
	}
	in := spec.Input
	if *in.TableName != "local-Table" || in.BillingMode != types.BillingModePayPerRequest || len(in.KeySchema) != 1 {
		t.Errorf("input %+v", in)
	}
	if in.StreamSpecification == nil || !*in.StreamSpecification.StreamEnabled || in.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("stream %+v, want enabled NEW_AND_OLD_IMAGES", in.StreamSpecification)
	}
	if spec.TTLAttribute != "ttl" {
		t.Errorf("TTL attribute %q, want ttl", spec.TTLAttribute)
	}
}

// A stream mapping starts only when its function's role may read the
// stream, as CreateEventSourceMapping requires.
func TestCheckStreamAccess(t *testing.T) {
	const streamARN = "arn:aws:dynamodb:us-east-1:1:table/T/stream/2026-01-01T00:00:00.000"
	tests := []struct {
		name    string
		stmts   []iam.Statement
		wantErr bool
	}{
		{"SAM's stream policy", []iam.Statement{{Effect: "Allow", Action: []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}, Resource: []string{"*"}}}, false},
		{"no grant", nil, true},
		{"GetRecords missing", []iam.Statement{{Effect: "Allow", Action: []string{"dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}, Resource: []string{"*"}}}, true},
		{"explicit deny", []iam.Statement{
			{Effect: "Allow", Action: []string{"dynamodb:*"}, Resource: []string{"*"}},
			{Effect: "Deny", Action: []string{"dynamodb:GetRecords"}, Resource: []string{"arn:aws:dynamodb:*:*:table/T/stream/*"}},
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := iam.NewRegistry("us-east-1", "1", "s")
			creds, err := reg.AddFunction("F", tt.stmts)
			if err != nil {
				t.Fatal(err)
			}
			b := &builder{s: &Stack{iam: reg}, fns: []function{{ID: "F", Credentials: creds}}}
			err = b.checkStreamAccess(esm.Mapping{FunctionName: "F", StreamARN: streamARN})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "Cannot access stream "+streamARN) {
				t.Fatalf("err %v, want Lambda's wording", err)
			}
		})
	}
}
