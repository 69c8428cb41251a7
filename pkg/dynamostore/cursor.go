package dynamostore

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

// A cursor is the query's LastEvaluatedKey as base64url(JSON string map).
// All key attributes of the table and its indexes are strings, so the map
// is lossless. Clients treat it as opaque.

func encodeCursor(lek map[string]types.AttributeValue) (string, error) {
	if len(lek) == 0 {
		return "", nil
	}
	m := make(map[string]string, len(lek))
	for k, v := range lek {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return "", fmt.Errorf("encode cursor: key attribute %s is %T, not a string", k, v)
		}
		m[k] = s.Value
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor turns a cursor back into an ExclusiveStartKey. It rejects a
// cursor that is malformed, lacks the table's or the index's key, or whose
// partition is not the one being queried: a cursor from another listing
// (or another user's) must not steer the query anywhere else.
func decodeCursor(cursor, partitionAttr, partition, sortAttr string) (map[string]types.AttributeValue, error) {
	invalid := groupcast.Errorf(groupcast.CodeInvalid, "cursor is malformed or belongs to another listing")
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, fmt.Errorf("decode cursor: %w", invalid)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode cursor: %w", invalid)
	}
	if m[partitionAttr] != partition {
		return nil, fmt.Errorf("cursor partition %q, want %q: %w", m[partitionAttr], partition, invalid)
	}
	allowed := map[string]bool{attrPK: true, attrSK: true, partitionAttr: true, sortAttr: true}
	for _, required := range []string{attrPK, attrSK, sortAttr} {
		if m[required] == "" {
			return nil, fmt.Errorf("cursor lacks %s: %w", required, invalid)
		}
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		if !allowed[k] {
			return nil, fmt.Errorf("cursor has unexpected attribute %s: %w", k, invalid)
		}
		out[k] = &types.AttributeValueMemberS{Value: v}
	}
	return out, nil
}
