package dynamo

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// sweepTTL deletes the expired items of every table with TTL enabled: items
// whose TTL attribute is a number of epoch seconds before now. Each deletion
// is recorded as a REMOVE made by the DynamoDB service, as AWS does.
func (s *Server) sweepTTL(ctx context.Context, now time.Time) {
	type ttlTable struct {
		name, attr string
		keys       keySchema
	}
	var tables []ttlTable
	s.mu.Lock()
	for _, t := range s.tables {
		if t.ttlAttr != "" {
			tables = append(tables, ttlTable{t.name, t.ttlAttr, t.keys})
		}
	}
	s.mu.Unlock()
	for _, t := range tables {
		if err := s.sweepTable(ctx, t.name, t.attr, t.keys, now); err != nil && ctx.Err() == nil {
			s.log.Warn("dynamo: TTL sweep", "table", t.name, "err", err)
		}
	}
}

func (s *Server) sweepTable(ctx context.Context, table, attr string, keys keySchema, now time.Time) error {
	names := map[string]string{"#ttl": attr, "#h": keys.hash}
	projection := "#h"
	if keys.rng != "" {
		names["#r"] = keys.rng
		projection += ", #r"
	}
	nowValue := map[string]any{":now": map[string]string{"N": strconv.FormatInt(now.Unix(), 10)}}
	var start item
	for {
		in := map[string]any{
			"TableName": table,
			// "<" between a number and :now is false for any other type,
			// so only numeric TTL values expire, as on AWS.
			"FilterExpression":          "#ttl < :now",
			"ProjectionExpression":      projection,
			"ExpressionAttributeNames":  names,
			"ExpressionAttributeValues": nowValue,
			"ConsistentRead":            true,
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
		for _, key := range out.Items {
			if err := s.expire(ctx, table, attr, keys, key, nowValue); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

// expire deletes one expired item under the write lock. The condition
// re-checks expiry, so an item rewritten with a new TTL since the scan stays.
func (s *Server) expire(ctx context.Context, table, attr string, keys keySchema, key item, nowValue map[string]any) error {
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
		return nil
	}
	if err != nil {
		return err
	}
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
