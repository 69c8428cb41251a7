package dynamostore

import (
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

func TestCursorRoundTrip(t *testing.T) {
	lek := map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "GROUP#g1"}, "SK": &types.AttributeValueMemberS{Value: "META"},
		"GSI1PK": &types.AttributeValueMemberS{Value: "PUBLIC"}, "GSI1SK": &types.AttributeValueMemberS{Value: "t#g1"},
	}
	c, err := encodeCursor(lek)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCursor(c, "GSI1PK", "PUBLIC", "GSI1SK")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range lek {
		if got[k].(*types.AttributeValueMemberS).Value != v.(*types.AttributeValueMemberS).Value {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if c, _ := encodeCursor(nil); c != "" {
		t.Errorf("cursor of the last page = %q, want empty", c)
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ name, cursor string }{
		{"not base64", "%%%"},
		{"not json", enc("nope")},
		{"json of numbers", enc(`{"PK":1}`)},
		{"another partition", enc(`{"PK":"GROUP#other","SK":"POST#1"}`)},
		{"no sort key", enc(`{"PK":"GROUP#g1"}`)},
		{"extra attribute", enc(`{"PK":"GROUP#g1","SK":"POST#1","x":"y"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCursor(tt.cursor, "PK", "GROUP#g1", "SK")
			if groupcast.ErrorCode(err) != groupcast.CodeInvalid {
				t.Fatalf("error = %v, want invalid", err)
			}
		})
	}
}
