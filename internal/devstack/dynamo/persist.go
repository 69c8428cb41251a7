package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Persistence (Options.DataDir) snapshots through the proxy rather than
// using kumo's own KUMO_DATA_DIR: kumo reads that variable once, in a package
// init, for the one store every in-process server shares, so it cannot be
// given per server; kumo.Server.Close does not flush it (only a debounced
// 1 s background writer does, so a clean stop may lose the last second);
// and it knows nothing of the stream records, sequence numbers and TTL
// settings that live here in the proxy. One snapshot written under the
// write lock holds items and stream records consistent with each other.

const (
	snapshotFile    = "dynamodb.json"
	snapshotVersion = 1
	// minSnapshotInterval: at most one snapshot a second after writes, the
	// cadence kumo's own persistence uses; a hard kill loses at most that.
	minSnapshotInterval = time.Second
	// snapshotCostFactor keeps snapshots to a tenth of the time: each one
	// scans every table under the write lock, so a large table (a load
	// test) is snapshotted less often instead of stalling writes.
	snapshotCostFactor = 10
	// restoreBatch is BatchWriteItem's limit of 25 puts per call.
	restoreBatch = 25
)

type snapshot struct {
	Version int
	Seq     uint64 // last sequence number assigned, across streams
	Tables  []snapTable
	Streams []snapStream
}

type snapTable struct {
	Create       map[string]any // a CreateTable request, without StreamSpecification
	StreamARN    string         // the enabled stream, "" for none
	TTLAttribute string
	Items        []item
}

type snapStream struct {
	ARN, Label, Table, ShardID, ViewType string
	HashKey, RangeKey                    string
	Created, DisabledAt                  time.Time
	StartSeq, LastSeq, Trimmed           uint64
	Records                              []snapRecord
}

type snapRecord struct {
	Record
	Seq uint64
}

// markDirty notes that the next snapshot has something to write.
func (s *Server) markDirty() {
	if s.opts.DataDir != "" {
		s.dirty.Store(true)
	}
}

// persistLoop writes a snapshot after changes until Close.
func (s *Server) persistLoop() {
	interval := minSnapshotInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.dirty.Swap(false) {
			began := time.Now()
			if err := s.save(context.Background()); err != nil {
				s.dirty.Store(true)
				s.log.Error("dynamo: snapshot", "dir", s.opts.DataDir, "err", err)
			}
			interval = max(minSnapshotInterval, snapshotCostFactor*time.Since(began))
		}
		t.Reset(interval)
	}
}

// save writes every table's items and every stream to the data directory,
// atomically (a temporary file renamed over the old one).
func (s *Server) save(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	names := make([]string, 0, len(s.tables))
	for name := range s.tables {
		names = append(names, name)
	}
	s.mu.Unlock()
	sort.Strings(names)
	var snap snapshot
	snap.Version = snapshotVersion
	for _, name := range names {
		create, err := s.createRequestOf(ctx, name)
		if err != nil {
			return err
		}
		items, err := s.scanAll(ctx, name)
		if err != nil {
			return err
		}
		s.mu.Lock()
		t := s.tables[name]
		st := snapTable{Create: create, Items: items}
		if t != nil {
			st.TTLAttribute = t.ttlAttr
			if t.stream != nil {
				st.StreamARN = t.stream.arn
			}
		}
		s.mu.Unlock()
		snap.Tables = append(snap.Tables, st)
	}
	s.mu.Lock()
	snap.Seq = s.seq
	for _, st := range s.streams {
		ss := snapStream{ARN: st.arn, Label: st.label, Table: st.table, ShardID: st.shardID, ViewType: st.viewType,
			HashKey: st.keys.hash, RangeKey: st.keys.rng, Created: st.created, DisabledAt: st.disabledAt,
			StartSeq: st.startSeq, LastSeq: st.lastSeq, Trimmed: st.trimmed}
		for _, r := range st.records {
			ss.Records = append(ss.Records, snapRecord{Record: r, Seq: r.seq})
		}
		snap.Streams = append(snap.Streams, ss)
	}
	s.mu.Unlock()
	sort.Slice(snap.Streams, func(i, j int) bool { return snap.Streams[i].ARN < snap.Streams[j].ARN })
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := os.MkdirAll(s.opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	tmp, err := os.CreateTemp(s.opts.DataDir, snapshotFile+".*")
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.opts.DataDir, snapshotFile)); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// createRequestOf rebuilds the CreateTable request of a table from its
// description, so indexes added by UpdateTable are kept too.
func (s *Server) createRequestOf(ctx context.Context, name string) (map[string]any, error) {
	var out struct {
		Table struct {
			TableName              string
			AttributeDefinitions   json.RawMessage
			KeySchema              json.RawMessage
			BillingModeSummary     *struct{ BillingMode string }
			ProvisionedThroughput  *struct{ ReadCapacityUnits, WriteCapacityUnits int64 }
			GlobalSecondaryIndexes []struct {
				IndexName             string
				KeySchema             json.RawMessage
				Projection            json.RawMessage
				ProvisionedThroughput *struct{ ReadCapacityUnits, WriteCapacityUnits int64 }
			}
			LocalSecondaryIndexes []struct {
				IndexName  string
				KeySchema  json.RawMessage
				Projection json.RawMessage
			}
		}
	}
	if err := s.backend.call(ctx, "DescribeTable", map[string]string{"TableName": name}, &out); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	d := out.Table
	req := map[string]any{"TableName": d.TableName, "AttributeDefinitions": d.AttributeDefinitions, "KeySchema": d.KeySchema}
	provisioned := d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != "PAY_PER_REQUEST"
	if provisioned && d.ProvisionedThroughput != nil && d.ProvisionedThroughput.ReadCapacityUnits > 0 {
		req["BillingMode"] = "PROVISIONED"
		req["ProvisionedThroughput"] = d.ProvisionedThroughput
	} else {
		req["BillingMode"] = "PAY_PER_REQUEST"
	}
	var gsis, lsis []map[string]any
	for _, g := range d.GlobalSecondaryIndexes {
		gi := map[string]any{"IndexName": g.IndexName, "KeySchema": g.KeySchema, "Projection": g.Projection}
		if req["BillingMode"] == "PROVISIONED" && g.ProvisionedThroughput != nil {
			gi["ProvisionedThroughput"] = g.ProvisionedThroughput
		}
		gsis = append(gsis, gi)
	}
	for _, l := range d.LocalSecondaryIndexes {
		lsis = append(lsis, map[string]any{"IndexName": l.IndexName, "KeySchema": l.KeySchema, "Projection": l.Projection})
	}
	if len(gsis) > 0 {
		req["GlobalSecondaryIndexes"] = gsis
	}
	if len(lsis) > 0 {
		req["LocalSecondaryIndexes"] = lsis
	}
	return req, nil
}

// scanAll reads every item of a table with strongly consistent reads.
func (s *Server) scanAll(ctx context.Context, table string) ([]item, error) {
	var items []item
	var start item
	for {
		in := map[string]any{"TableName": table, "ConsistentRead": true}
		if start != nil {
			in["ExclusiveStartKey"] = start
		}
		var out struct {
			Items            []item
			LastEvaluatedKey item
		}
		if err := s.backend.call(ctx, "Scan", in, &out); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", table, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		start = out.LastEvaluatedKey
	}
}

// restore loads the data directory's snapshot, if there is one, into the
// backend and the proxy. It runs before the endpoint serves anything.
func (s *Server) restore(ctx context.Context) error {
	data, err := os.ReadFile(filepath.Join(s.opts.DataDir, snapshotFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("snapshot %s: %w", filepath.Join(s.opts.DataDir, snapshotFile), err)
	}
	if snap.Version != snapshotVersion {
		return fmt.Errorf("snapshot %s has version %d, this devstack reads %d; move the data directory away", filepath.Join(s.opts.DataDir, snapshotFile), snap.Version, snapshotVersion)
	}
	s.seq = snap.Seq
	for _, ss := range snap.Streams {
		st := &stream{arn: ss.ARN, label: ss.Label, table: ss.Table, shardID: ss.ShardID, viewType: ss.ViewType,
			keys: keySchema{hash: ss.HashKey, rng: ss.RangeKey}, created: ss.Created, disabledAt: ss.DisabledAt,
			startSeq: ss.StartSeq, lastSeq: ss.LastSeq, trimmed: ss.Trimmed, wake: make(chan struct{})}
		for _, r := range ss.Records {
			rec := r.Record
			rec.seq = r.Seq
			st.records = append(st.records, rec)
		}
		s.streams[st.arn] = st
	}
	for _, t := range snap.Tables {
		if err := s.restoreTable(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) restoreTable(ctx context.Context, t snapTable) error {
	name, _ := t.Create["TableName"].(string)
	var out struct{ TableDescription tableDescription }
	err := s.backend.call(ctx, "CreateTable", t.Create, &out)
	var aerr *apiError
	if errors.As(err, &aerr) && aerr.Type == "ResourceInUseException" {
		// Only possible when several servers share one in-process kumo
		// store (tests restarting a stack in one process): the snapshot is
		// the truth, so the leftover table goes.
		if err := s.backend.call(ctx, "DeleteTable", map[string]string{"TableName": name}, nil); err != nil {
			return fmt.Errorf("restore table %s: %w", name, err)
		}
		err = s.backend.call(ctx, "CreateTable", t.Create, &out)
	}
	if err != nil {
		return fmt.Errorf("restore table %s: %w", name, err)
	}
	for i := 0; i < len(t.Items); i += restoreBatch {
		var puts []map[string]any
		for _, it := range t.Items[i:min(i+restoreBatch, len(t.Items))] {
			puts = append(puts, map[string]any{"PutRequest": map[string]any{"Item": it}})
		}
		var res struct{ UnprocessedItems map[string][]json.RawMessage }
		if err := s.backend.call(ctx, "BatchWriteItem", map[string]any{"RequestItems": map[string]any{name: puts}}, &res); err != nil {
			return fmt.Errorf("restore items of %s: %w", name, err)
		}
		if n := len(res.UnprocessedItems[name]); n > 0 {
			return fmt.Errorf("restore items of %s: the backend left %d items unprocessed", name, n)
		}
	}
	meta := &tableMeta{name: name, arn: out.TableDescription.TableArn, keys: out.TableDescription.keys()}
	if t.StreamARN != "" {
		meta.stream = s.streams[t.StreamARN]
		if meta.stream == nil {
			return fmt.Errorf("restore table %s: its stream %s is not in the snapshot", name, t.StreamARN)
		}
	}
	s.tables[name] = meta
	if t.TTLAttribute != "" {
		meta.ttlAttr, meta.expiring = t.TTLAttribute, map[string]expiringItem{}
		for _, it := range t.Items {
			if key, err := meta.keys.project(it); err == nil {
				s.trackTTL(name, key, it)
			}
		}
	}
	return nil
}
