package esm

import "testing"

// record is a stream record as Lambda matches filters against it.
const record = `{
  "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
  "dynamodb": {
    "Keys": {"PK": {"S": "GROUP#g1"}},
    "NewImage": {"type": {"S": "GROUP"}, "memberCount": {"N": "3"}, "tags": {"SS": ["a", "b"]}},
    "SizeBytes": 120
  },
  "userIdentity": null
}`

func TestFilterPatterns(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{`{}`, true},
		{`{"eventName": ["MODIFY"]}`, true},
		{`{"eventName": ["INSERT", "MODIFY"]}`, true},
		{`{"eventName": ["INSERT"]}`, false},
		{`{"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"type": {"S": ["POST"]}}}}`, false},
		{`{"dynamodb": {"NewImage": {"type": {"S": ["GROUP"]}}}}`, true},
		{`{"dynamodb": {"Keys": {"PK": {"S": [{"prefix": "GROUP#"}]}}}}`, true},
		{`{"dynamodb": {"Keys": {"PK": {"S": [{"prefix": "USER#"}]}}}}`, false},
		{`{"dynamodb": {"Keys": {"PK": {"S": [{"suffix": "#g1"}]}}}}`, true},
		{`{"eventName": [{"equals-ignore-case": "modify"}]}`, true},
		{`{"eventName": [{"anything-but": ["REMOVE"]}]}`, true},
		{`{"eventName": [{"anything-but": "MODIFY"}]}`, false},
		{`{"eventName": [{"anything-but": {"prefix": "MOD"}}]}`, false},
		{`{"dynamodb": {"SizeBytes": [{"numeric": [">", 100, "<=", 120]}]}}`, true},
		{`{"dynamodb": {"SizeBytes": [{"numeric": ["<", 100]}]}}`, false},
		{`{"dynamodb": {"SizeBytes": [120]}}`, true},
		// DynamoDB numbers are strings in the record: numeric does not match them, as in Lambda.
		{`{"dynamodb": {"NewImage": {"memberCount": {"N": [{"numeric": [">", 1]}]}}}}`, false},
		{`{"dynamodb": {"NewImage": {"memberCount": {"N": ["3"]}}}}`, true},
		{`{"dynamodb": {"OldImage": [{"exists": false}]}}`, true},
		{`{"dynamodb": {"NewImage": [{"exists": true}]}}`, true},
		{`{"dynamodb": {"OldImage": {"type": {"S": [{"exists": true}]}}}}`, false},
		{`{"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}}`, true},
		{`{"userIdentity": [null]}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			f, err := compileFilter(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			got, err := matchAny([]*filter{f}, []byte(record))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterPatternErrors(t *testing.T) {
	for _, pattern := range []string{
		`[]`,
		`{"eventName": "INSERT"}`,
		`{"eventName": [{"wildcard": "IN*"}]}`,
		`{"eventName": [{"prefix": 1}]}`,
		`{"n": [{"numeric": [">"]}]}`,
		`{"n": [{"numeric": ["!=", 1]}]}`,
		`{"n": [{"exists": "yes"}]}`,
		`{`,
	} {
		if _, err := compileFilter(pattern); err == nil {
			t.Errorf("compileFilter(%s) accepted an invalid pattern", pattern)
		}
	}
}
