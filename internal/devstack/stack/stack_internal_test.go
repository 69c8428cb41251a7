package stack

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
