package stack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/devstack/esm"
	"github.com/groupcast/groupcast/internal/devstack/iam"
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

// Lambda hands ApplicationLogLevel to the code as AWS_LAMBDA_LOG_LEVEL under
// the JSON log format only.
func TestFunctionPlanLogLevel(t *testing.T) {
	tests := []struct {
		name    string
		logging map[string]any
		want    string // "" means unset
	}{
		{"json with level", map[string]any{"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"}, "DEBUG"},
		{"json default", map[string]any{"LogFormat": "JSON"}, "INFO"},
		{"text", map[string]any{"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}, ""},
		{"none", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			props := map[string]any{"CodeUri": "functions/api"}
			if tc.logging != nil {
				props["LoggingConfig"] = tc.logging
			}
			f, err := functionPlan("Fn", props)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := f.Env["AWS_LAMBDA_LOG_LEVEL"]; got != tc.want || ok != (tc.want != "") {
				t.Errorf("AWS_LAMBDA_LOG_LEVEL = %q (set %v), want %q", got, ok, tc.want)
			}
		})
	}
}

func TestStreamMappingsFromResources(t *testing.T) {
	stream := "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/1"
	props := map[string]any{
		"FunctionName": "Fanout", "EventSourceArn": stream, "StartingPosition": "TRIM_HORIZON",
		"BatchSize": 100, "MaximumRetryAttempts": 5, "MaximumRecordAgeInSeconds": 3600,
		"BisectBatchOnFunctionError": true, "FunctionResponseTypes": []any{"ReportBatchItemFailures"},
		"FilterCriteria":    map[string]any{"Filters": []any{map[string]any{"Pattern": `{"a":["b"]}`}}},
		"DestinationConfig": map[string]any{"OnFailure": map[string]any{"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}},
	}
	tests := []struct {
		name    string
		props   map[string]any
		wantN   int
		wantErr string
	}{
		{"mapping", props, 1, ""},
		{"disabled", merge(props, map[string]any{"Enabled": false}), 0, ""},
		{"unknown function", merge(props, map[string]any{"FunctionName": "Other"}), 0, "not a function of this stack"},
		{"not a stream", merge(props, map[string]any{"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}), 0, "only DynamoDB streams"},
		{"a queue is an SQS mapping", merge(props, map[string]any{"EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q"}), 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maps, err := streamMappings([]function{{ID: "Fanout"}}, map[string]map[string]any{"Map": tc.props})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(maps) != tc.wantN {
				t.Fatalf("mappings = %+v, %v; want %d", maps, err, tc.wantN)
			}
			if tc.wantN == 0 {
				return
			}
			m := maps[0]
			if m.FunctionName != "Fanout" || m.StreamARN != stream || m.BatchSize != 100 || m.MaximumRetryAttempts != 5 ||
				m.MaximumRecordAgeInSeconds != 3600 || !m.BisectBatchOnFunctionError || !m.ReportBatchItemFailures ||
				len(m.FilterPatterns) != 1 || m.OnFailureDestination != "arn:aws:sqs:us-east-1:000000000000:dlq" || m.StartingPosition != "TRIM_HORIZON" {
				t.Errorf("mapping = %+v", m)
			}
		})
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
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

func TestSQSMappingsFromTemplate(t *testing.T) {
	const arn = "arn:aws:sqs:us-east-1:000000000000:q"
	queue := func(a string) (string, bool, bool) { return "http://local/000000000000/q", false, a == arn }
	ev := func(p map[string]any) []function {
		return []function{{ID: "Worker", Events: map[string]any{"Q": map[string]any{"Type": "SQS", "Properties": p}}}}
	}
	tests := []struct {
		name      string
		fns       []function
		resources map[string]map[string]any
		want      esm.SQSMapping
		wantN     int
		wantErr   string
	}{
		{"SAM event", ev(map[string]any{"Queue": arn, "BatchSize": 50, "MaximumBatchingWindowInSeconds": 2,
			"FunctionResponseTypes": []any{"ReportBatchItemFailures"}, "ScalingConfig": map[string]any{"MaximumConcurrency": 4}}), nil,
			esm.SQSMapping{FunctionName: "Worker", QueueARN: arn, QueueURL: "http://local/000000000000/q", BatchSize: 50,
				MaximumBatchingWindow: 2 * time.Second, ReportBatchItemFailures: true, MaximumConcurrency: 4}, 1, ""},
		{"resource", []function{{ID: "Worker"}}, map[string]map[string]any{"M": {"FunctionName": "Worker", "EventSourceArn": arn}},
			esm.SQSMapping{FunctionName: "Worker", QueueARN: arn, QueueURL: "http://local/000000000000/q"}, 1, ""},
		{"disabled", ev(map[string]any{"Queue": arn, "Enabled": false}), nil, esm.SQSMapping{}, 0, ""},
		{"foreign queue", ev(map[string]any{"Queue": "arn:aws:sqs:us-east-1:000000000000:other"}), nil, esm.SQSMapping{}, 0, "not an AWS::SQS::Queue of this stack"},
		{"no queue", ev(map[string]any{}), nil, esm.SQSMapping{}, 0, "Queue is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maps, err := sqsMappings(tc.fns, tc.resources, queue)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(maps) != tc.wantN {
				t.Fatalf("mappings = %+v, %v; want %d", maps, err, tc.wantN)
			}
			if tc.wantN == 1 && maps[0] != tc.want {
				t.Fatalf("mapping = %+v, want %+v", maps[0], tc.want)
			}
		})
	}
}

func TestQueueAttributes(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]any
		want    map[string]string
		wantErr string
	}{
		{"template", map[string]any{"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": true, "VisibilityTimeout": 360,
			"RedrivePolicy": map[string]any{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:0:dlq", "maxReceiveCount": 5}},
			map[string]string{"MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true", "VisibilityTimeout": "360",
				"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:dlq","maxReceiveCount":5}`}, ""},
		{"retention too long", map[string]any{"MessageRetentionPeriod": 1209601}, nil, "MessageRetentionPeriod"},
		{"visibility too long", map[string]any{"VisibilityTimeout": 43201}, nil, "VisibilityTimeout"},
		{"maxReceiveCount 0", map[string]any{"RedrivePolicy": map[string]any{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:0:dlq", "maxReceiveCount": 0}}, nil, "maxReceiveCount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := queueAttributes("Q", tc.props)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("attributes = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
