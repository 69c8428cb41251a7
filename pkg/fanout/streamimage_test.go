package fanout

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestToSDKImage(t *testing.T) {
	tests := []struct {
		name string
		in   events.DynamoDBAttributeValue
		want types.AttributeValue
	}{
		{"string", events.NewStringAttribute("hi"), &types.AttributeValueMemberS{Value: "hi"}},
		{"number keeps its text", events.NewNumberAttribute("12.50"), &types.AttributeValueMemberN{Value: "12.50"}},
		{"bool", events.NewBooleanAttribute(true), &types.AttributeValueMemberBOOL{Value: true}},
		{"null", events.NewNullAttribute(), &types.AttributeValueMemberNULL{Value: true}},
		{"binary", events.NewBinaryAttribute([]byte{0, 1}), &types.AttributeValueMemberB{Value: []byte{0, 1}}},
		{"string set", events.NewStringSetAttribute([]string{"a", "b"}), &types.AttributeValueMemberSS{Value: []string{"a", "b"}}},
		{"number set", events.NewNumberSetAttribute([]string{"1", "2"}), &types.AttributeValueMemberNS{Value: []string{"1", "2"}}},
		{"binary set", events.NewBinarySetAttribute([][]byte{{1}, {2}}), &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2}}}},
		{"empty map", events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{}), &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}},
		{
			"nested map and list",
			events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{
				"kind": events.NewStringAttribute("joined"),
				"tags": events.NewListAttribute([]events.DynamoDBAttributeValue{events.NewNumberAttribute("1"), events.NewStringAttribute("x")}),
			}),
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"kind": &types.AttributeValueMemberS{Value: "joined"},
				"tags": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}, &types.AttributeValueMemberS{Value: "x"}}},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toSDKImage(map[string]events.DynamoDBAttributeValue{"a": tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got["a"], tt.want) {
				t.Errorf("got %#v, want %#v", got["a"], tt.want)
			}
		})
	}
}

// TestToSDKImageLibrarySample converts every image of aws-lambda-go's own
// sample stream event (copied to testdata/), which uses B, BS, S and nesting.
func TestToSDKImageLibrarySample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "dynamodb-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	for _, r := range ev.Records {
		for _, img := range []map[string]events.DynamoDBAttributeValue{r.Change.NewImage, r.Change.OldImage, r.Change.Keys} {
			got, err := toSDKImage(img)
			if err != nil {
				t.Fatalf("record %s: %v", r.EventID, err)
			}
			if len(got) != len(img) {
				t.Errorf("record %s: %d attributes, want %d", r.EventID, len(got), len(img))
			}
		}
	}
	if got, _ := toSDKImage(ev.Records[0].Change.NewImage); !reflect.DeepEqual(got["asdf1"], &types.AttributeValueMemberB{Value: []byte{0, 1, 42, 65}}) {
		t.Errorf("binary attribute = %#v", got["asdf1"])
	}
}
