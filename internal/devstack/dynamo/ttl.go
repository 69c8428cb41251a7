package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// sweepTTL deletes the expired items of every table with TTL enabled: items
// whose TTL attribute is a number of epoch seconds before now. Each deletion
// is recorded as a REMOVE made by the DynamoDB service, as AWS does.
func (s *Server) sweepTTL(ctx context.Context, now time.Time) {
	type due struct {
		table, attr string
		keys        keySchema
		key         item
	}
	var expired []due
	cutoff := float64(now.Unix())
	s.mu.Lock()
	for _, t := range s.tables {
		for _, e := range t.expiring {
			if e.at < cutoff {
				expired = append(expired, due{t.name, t.ttlAttr, t.keys, e.key})
			}
		}
	}
	s.mu.Unlock()
	nowValue := map[string]any{":now": map[string]string{"N": strconv.FormatInt(now.Unix(), 10)}}
	for _, d := range expired {
		if err := s.expire(ctx, d.table, d.attr, d.keys, d.key, nowValue); err != nil && ctx.Err() == nil {
			s.log.Warn("dynamo: TTL sweep", "table", d.table, "err", err)
		}
	}
}

// trackTTL records an item's TTL after a write (new == nil: deleted).
func (s *Server) trackTTL(table string, key, new item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[table]
	if t == nil || t.expiring == nil {
		return
	}
	id := keyID(table, key)
	if at, ok := ttlSeconds(new[t.ttlAttr]); ok {
		t.expiring[id] = expiringItem{key: key, at: at}
	} else {
		delete(t.expiring, id)
	}
}

// ttlSeconds reads a TTL attribute. Only a number counts, as on AWS: any
// other type (or no attribute) never expires.
func ttlSeconds(raw json.RawMessage) (float64, bool) {
	if raw == nil {
		return 0, false
	}
	var v struct{ N *string }
	if json.Unmarshal(raw, &v) != nil || v.N == nil {
		return 0, false
	}
	at, err := strconv.ParseFloat(*v.N, 64)
	return at, err == nil
}

// seedTTL fills a table's index from a scan, when TTL is enabled on a table
// that may already hold items. It holds writeMu so no write slips between
// the scan and the index.
func (s *Server) seedTTL(ctx context.Context, table, attr string, keys keySchema) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	names := map[string]string{"#ttl": attr, "#h": keys.hash}
	projection := "#h, #ttl"
	if keys.rng != "" {
		names["#r"] = keys.rng
		projection += ", #r"
	}
	var start item
	for {
		in := map[string]any{
			"TableName":                table,
			"FilterExpression":         "attribute_exists(#ttl)",
			"ProjectionExpression":     projection,
			"ExpressionAttributeNames": names,
			"ConsistentRead":           true,
		}
		if start != nil {
			in["ExclusiveStartKey"] = start
		}
		var out struct {
			Items            []item
			LastEvaluatedKey item
		}
		if err := s.backend.call(ctx, "Scan", in, &out); err != nil {
			return err
		}
		for _, it := range out.Items {
			if key, err := keys.project(it); err == nil {
				s.trackTTL(table, key, it)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

// expire deletes one expired item under the write lock. The condition
// re-checks expiry, so an item rewritten with a new TTL since the sweep
// looked stays.
func (s *Server) expire(ctx context.Context, table, attr string, keys keySchema, key item, nowValue map[string]any) error {
	defer s.markDirty()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var out struct{ Attributes item }
	err := s.backend.call(ctx, "DeleteItem", map[string]any{
		"TableName":                 table,
		"Key":                       key,
		"ConditionExpression":       "#ttl < :now",
		"ExpressionAttributeNames":  map[string]string{"#ttl": attr},
		"ExpressionAttributeValues": nowValue,
		"ReturnValues":              "ALL_OLD",
	}, &out)
	var aerr *apiError
	if errors.As(err, &aerr) && aerr.Type == "ConditionalCheckFailedException" {
		// Writes keep the index current, so this is an item changed
		// behind the proxy's back: index what is stored now.
		current, err := s.backend.getItem(ctx, table, key)
		if err != nil {
			return err
		}
		s.trackTTL(table, key, current)
		return nil
	}
	if err != nil {
		return err
	}
	s.trackTTL(table, key, nil)
	s.mu.Lock()
	var st *stream
	if t := s.tables[table]; t != nil {
		st = t.stream
	}
	s.mu.Unlock()
	if st == nil || out.Attributes == nil {
		return nil
	}
	if rec, ok := buildRecord(keys, st.viewType, key, out.Attributes, nil, ttlIdentity); ok {
		s.appendRecords([]pending{{stream: st, rec: rec}})
	}
	return nil
}
