package iam

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		fold       bool
		want       bool
	}{
		{"dynamodb:PutItem", "dynamodb:PutItem", true, true},
		{"dynamodb:putitem", "dynamodb:PutItem", true, true},
		{"dynamodb:putitem", "dynamodb:PutItem", false, false},
		{"dynamodb:*", "dynamodb:PutItem", true, true},
		{"dynamodb:*Item", "dynamodb:BatchWriteItem", true, true},
		{"dynamodb:*Item", "dynamodb:Query", true, false},
		{"dynamodb:Get?tem", "dynamodb:GetItem", true, true},
		{"dynamodb:Get?tem", "dynamodb:GetIItem", true, false},
		{"*", "", false, true},
		{"?", "", false, false},
		{"arn:aws:dynamodb:*:*:table/T", "arn:aws:dynamodb:us-east-1:1:table/T", false, true},
		{"arn:aws:dynamodb:us-east-1:1:table/T", "arn:aws:dynamodb:us-east-1:1:table/T/index/I", false, false},
		{"arn:aws:dynamodb:us-east-1:1:table/T/*", "arn:aws:dynamodb:us-east-1:1:table/T/index/I", false, true},
		{"arn:aws:dynamodb:us-east-1:1:table/T*", "arn:aws:dynamodb:us-east-1:1:table/Tx", false, true},
		{"arn:aws:execute-api:r:1:api/dev/POST/@connections/*", "arn:aws:execute-api:r:1:api/dev/DELETE/@connections/c", false, false},
		{"a*b*c", "aXXbYYc", false, true},
		{"a*b*c", "aXXbYY", false, false},
		{"**", "anything", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.s, func(t *testing.T) {
			if got := Match(tt.pattern, tt.s, tt.fold); got != tt.want {
				t.Fatalf("Match(%q, %q, %v) = %v, want %v", tt.pattern, tt.s, tt.fold, got, tt.want)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	const table = "arn:aws:dynamodb:us-east-1:1:table/T"
	allowCrud := Statement{Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:PutItem"}, Resource: []string{table}}
	denyPut := Statement{Effect: "Deny", Action: []string{"dynamodb:Put*"}, Resource: []string{"*"}}
	allowAllButDelete := Statement{Effect: "Allow", NotAction: []string{"dynamodb:DeleteItem"}, Resource: []string{table}}
	allowOutsideT := Statement{Effect: "Allow", Action: []string{"dynamodb:*"}, NotResource: []string{table + "*"}}
	tests := []struct {
		name             string
		stmts            []Statement
		action, resource string
		want             Decision
	}{
		{"no statements", nil, "dynamodb:GetItem", table, ImplicitDeny},
		{"allowed", []Statement{allowCrud}, "dynamodb:GetItem", table, Allow},
		{"action case-insensitive", []Statement{allowCrud}, "DynamoDB:getitem", table, Allow},
		{"other action", []Statement{allowCrud}, "dynamodb:Scan", table, ImplicitDeny},
		{"other table", []Statement{allowCrud}, "dynamodb:GetItem", table + "2", ImplicitDeny},
		{"index not covered by table ARN", []Statement{allowCrud}, "dynamodb:GetItem", table + "/index/I", ImplicitDeny},
		{"resource case-sensitive", []Statement{allowCrud}, "dynamodb:GetItem", strings.ToLower(table), ImplicitDeny},
		{"deny overrides allow", []Statement{allowCrud, denyPut}, "dynamodb:PutItem", table, ExplicitDeny},
		{"deny order irrelevant", []Statement{denyPut, allowCrud}, "dynamodb:PutItem", table, ExplicitDeny},
		{"deny elsewhere leaves allow", []Statement{allowCrud, denyPut}, "dynamodb:GetItem", table, Allow},
		{"NotAction allows others", []Statement{allowAllButDelete}, "dynamodb:Query", table, Allow},
		{"NotAction excludes", []Statement{allowAllButDelete}, "dynamodb:DeleteItem", table, ImplicitDeny},
		{"NotResource allows others", []Statement{allowOutsideT}, "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/U", Allow},
		{"NotResource excludes", []Statement{allowOutsideT}, "dynamodb:GetItem", table + "/index/I", ImplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evaluate(tt.stmts, tt.action, tt.resource); got != tt.want {
				t.Fatalf("Evaluate(%s on %s) = %v, want %v", tt.action, tt.resource, got, tt.want)
			}
		})
	}
}

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name    string
		doc     any
		want    int    // statements
		wantErr string // "" = none
	}{
		{"list", map[string]any{"Version": "2012-10-17", "Statement": []any{
			map[string]any{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"},
			map[string]any{"Effect": "Deny", "Action": []any{"a:b", "c:d"}, "Resource": []any{"x"}},
		}}, 2, ""},
		{"single statement object", map[string]any{"Statement": map[string]any{"Effect": "Allow", "NotAction": "a:b", "NotResource": "x"}}, 1, ""},
		{"no Statement", map[string]any{"Version": "2012-10-17"}, 0, "no Statement"},
		{"bad effect", map[string]any{"Statement": map[string]any{"Effect": "allow", "Action": "a:b", "Resource": "*"}}, 0, "Effect"},
		{"condition refused", map[string]any{"Statement": map[string]any{"Effect": "Allow", "Action": "a:b", "Resource": "*",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:x": "y"}}}}, 0, "Condition"},
		{"no resource", map[string]any{"Statement": map[string]any{"Effect": "Allow", "Action": "a:b"}}, 0, "Resource"},
		{"action and NotAction", map[string]any{"Statement": map[string]any{"Effect": "Allow", "Action": "a:b", "NotAction": "c:d", "Resource": "*"}}, 0, "Action"},
		{"non-string action", map[string]any{"Statement": map[string]any{"Effect": "Allow", "Action": []any{1}, "Resource": "*"}}, 0, "Action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDocument(tt.doc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d statements, %v; want %d", len(got), err, tt.want)
			}
		})
	}
}

func TestDeniedErrorWording(t *testing.T) {
	p := &Principal{ARN: "arn:aws:sts::1:assumed-role/s-FnRole/Fn"}
	err := p.Authorize("dynamodb:PutItem", "arn:aws:dynamodb:r:1:table/T")
	want := "User: arn:aws:sts::1:assumed-role/s-FnRole/Fn is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:r:1:table/T because no identity-based policy allows the dynamodb:PutItem action"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	admin := &Principal{Admin: true}
	if err := admin.Authorize("anything:AtAll", "*"); err != nil {
		t.Fatalf("admin refused: %v", err)
	}
}
