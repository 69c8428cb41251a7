package samcheck

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/groupcast/groupcast/pkg/dynamostore"
)

// TestRepoTemplateTable checks that template.yaml's table is the one the
// store creates for tests and the local stack (dynamostore.TableSchema), so
// the schema has one home in code and the template cannot drift from it.
func TestRepoTemplateTable(t *testing.T) {
	tpl := loadRepoTemplate(t)
	p := props(tpl, "Table")
	want := dynamostore.TableSchema("Table")

	// Compare through JSON: the SDK input and the template property share
	// CloudFormation's field names for everything compared here.
	var fromTemplate, fromStore struct {
		AttributeDefinitions   []map[string]string
		KeySchema              []map[string]string
		GlobalSecondaryIndexes []struct {
			IndexName  string
			KeySchema  []map[string]string
			Projection struct{ ProjectionType string }
		}
		BillingMode string
	}
	roundTrip(t, p, &fromTemplate)
	roundTrip(t, want, &fromStore)
	if !reflect.DeepEqual(fromTemplate, fromStore) {
		t.Errorf("template Table:\n got  %+v\n want %+v (dynamostore.TableSchema)", fromTemplate, fromStore)
	}

	stream, _ := p["StreamSpecification"].(map[string]any)
	if got, wantView := stream["StreamViewType"], string(want.StreamSpecification.StreamViewType); got != wantView {
		t.Errorf("StreamViewType = %v, want %v", got, wantView)
	}
	ttl, _ := p["TimeToLiveSpecification"].(map[string]any)
	if ttl["AttributeName"] != dynamostore.TTLAttribute || ttl["Enabled"] != true {
		t.Errorf("TimeToLiveSpecification = %v, want %q enabled", ttl, dynamostore.TTLAttribute)
	}
	if aws.ToBool(want.StreamSpecification.StreamEnabled) != true {
		t.Error("TableSchema has no stream")
	}
}

func roundTrip(t *testing.T, from any, to any) {
	t.Helper()
	if in, ok := from.(*dynamodb.CreateTableInput); ok {
		// The SDK's enum types marshal as their string values.
		from = *in
	}
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}
