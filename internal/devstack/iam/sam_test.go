package iam

import (
	"fmt"
	"strings"
	"testing"
)

// fakeResolve evaluates the one intrinsic SAM policy templates use,
// Fn::Sub with a variable map, with fixed pseudo parameters.
func fakeResolve(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if sub, ok := x["Fn::Sub"]; ok {
			args, ok := sub.([]any)
			if !ok || len(args) != 2 {
				return nil, fmt.Errorf("unexpected Fn::Sub %v", sub)
			}
			s := args[0].(string)
			for k, val := range args[1].(map[string]any) {
				s = strings.ReplaceAll(s, "${"+k+"}", val.(string))
			}
			r := strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::Region}", "us-east-1", "${AWS::AccountId}", "1")
			return r.Replace(s), nil
		}
		for k, e := range x {
			r, err := fakeResolve(e)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for i, e := range x {
			r, err := fakeResolve(e)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}

func TestSAMFunctionStatements(t *testing.T) {
	const table = "arn:aws:dynamodb:us-east-1:1:table/T"
	tests := []struct {
		name    string
		props   map[string]any
		allow   []string // "action resource" pairs that must be allowed
		deny    []string // and that must not
		wantErr string
	}{
		{
			name:  "basic execution role only",
			props: map[string]any{},
			allow: []string{"logs:PutLogEvents *"},
			deny:  []string{"dynamodb:GetItem " + table, "xray:PutTraceSegments *"},
		},
		{
			name:  "tracing adds X-Ray",
			props: map[string]any{"Tracing": "Active"},
			allow: []string{"xray:PutTraceSegments *"},
		},
		{
			name:  "tracing disabled adds nothing",
			props: map[string]any{"Tracing": "Disabled"},
			deny:  []string{"xray:PutTraceSegments *"},
		},
		{
			name:  "DynamoDB event adds stream reading",
			props: map[string]any{"Events": map[string]any{"S": map[string]any{"Type": "DynamoDB"}}},
			allow: []string{"dynamodb:GetRecords " + table + "/stream/x"},
			deny:  []string{"dynamodb:GetItem " + table},
		},
		{
			name:  "DynamoDBCrudPolicy",
			props: map[string]any{"Policies": []any{map[string]any{"DynamoDBCrudPolicy": map[string]any{"TableName": "T"}}}},
			allow: []string{"dynamodb:PutItem " + table, "dynamodb:Query " + table + "/index/GSI1", "dynamodb:ConditionCheckItem " + table},
			deny:  []string{"dynamodb:PutItem arn:aws:dynamodb:us-east-1:1:table/U", "dynamodb:GetRecords " + table + "/stream/x"},
		},
		{
			name:  "DynamoDBReadPolicy",
			props: map[string]any{"Policies": []any{map[string]any{"DynamoDBReadPolicy": map[string]any{"TableName": "T"}}}},
			allow: []string{"dynamodb:GetItem " + table, "dynamodb:Query " + table + "/index/I"},
			deny:  []string{"dynamodb:PutItem " + table, "dynamodb:BatchWriteItem " + table},
		},
		{
			name:  "SQSSendMessagePolicy",
			props: map[string]any{"Policies": []any{map[string]any{"SQSSendMessagePolicy": map[string]any{"QueueName": "Q"}}}},
			allow: []string{"sqs:SendMessage arn:aws:sqs:us-east-1:1:Q", "sqs:SendMessageBatch arn:aws:sqs:us-east-1:1:Q"},
			deny:  []string{"sqs:SendMessage arn:aws:sqs:us-east-1:1:Other"},
		},
		{
			name: "inline statement and managed policy by name",
			props: map[string]any{"Policies": []any{
				map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "execute-api:ManageConnections", "Resource": "arn:aws:execute-api:r:1:api/dev/POST/@connections/*"}}},
				"AWSXrayWriteOnlyAccess",
			}},
			allow: []string{"execute-api:ManageConnections arn:aws:execute-api:r:1:api/dev/POST/@connections/c", "xray:PutTraceSegments *"},
			deny:  []string{"execute-api:ManageConnections arn:aws:execute-api:r:1:api/dev/DELETE/@connections/c"},
		},
		{
			name:  "managed policy by ARN",
			props: map[string]any{"Policies": "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"},
			allow: []string{"dynamodb:DescribeStream " + table + "/stream/x"},
		},
		{name: "unknown managed policy", props: map[string]any{"Policies": []any{"AmazonDynamoDBFullAccess"}}, wantErr: "not known"},
		{name: "unknown template", props: map[string]any{"Policies": []any{map[string]any{"NoSuchPolicy": map[string]any{}}}}, wantErr: "not a SAM policy template"},
		{name: "missing template parameter", props: map[string]any{"Policies": []any{map[string]any{"DynamoDBCrudPolicy": map[string]any{}}}}, wantErr: "missing parameter TableName"},
		{name: "Role refused", props: map[string]any{"Role": "arn:aws:iam::1:role/r"}, wantErr: "Role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := SAMFunctionStatements(tt.props, fakeResolve)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, pair := range tt.allow {
				action, resource, _ := strings.Cut(pair, " ")
				if d := Evaluate(stmts, action, resource); d != Allow {
					t.Errorf("%s on %s: %v, want Allow", action, resource, d)
				}
			}
			for _, pair := range tt.deny {
				action, resource, _ := strings.Cut(pair, " ")
				if d := Evaluate(stmts, action, resource); d == Allow {
					t.Errorf("%s on %s: allowed, want denied", action, resource)
				}
			}
		})
	}
}

// TestPolicyTemplateNotShared expands one policy template for two tables:
// the expansion works on a copy, so the first table's name never sticks in
// the shared template (fakeResolve, like cfn.Resolve's callers, may modify
// what it is given).
func TestPolicyTemplateNotShared(t *testing.T) {
	crud := func(table string) []Statement {
		t.Helper()
		stmts, err := SAMFunctionStatements(map[string]any{"Policies": []any{map[string]any{"DynamoDBCrudPolicy": map[string]any{"TableName": table}}}}, fakeResolve)
		if err != nil {
			t.Fatal(err)
		}
		return stmts
	}
	crud("First")
	second := crud("Second")
	if d := Evaluate(second, "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/Second"); d != Allow {
		t.Errorf("second expansion: PutItem on table/Second is %v, want Allow", d)
	}
	if d := Evaluate(second, "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/First"); d == Allow {
		t.Error("second expansion still allows table/First")
	}
}

// The embedded file is the whole of SAM's policy templates.
func TestEmbeddedPolicyTemplates(t *testing.T) {
	all, err := samTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"DynamoDBCrudPolicy", "DynamoDBReadPolicy", "DynamoDBWritePolicy", "DynamoDBStreamReadPolicy", "SQSSendMessagePolicy", "SQSPollerPolicy"} {
		if _, ok := all[name]; !ok {
			t.Errorf("template %s missing", name)
		}
	}
	if len(all) < 80 {
		t.Errorf("%d templates, want the full set (100+ in 1.110)", len(all))
	}
}
