package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
)

// change is one item a write may modify, on a table with a stream or TTL.
type change struct {
	table  string
	stream *stream // nil when the table has TTL but no stream
	keys   keySchema
	key    item
	old    item
}

// pending is a record waiting for its sequence number.
type pending struct {
	stream *stream
	rec    Record
}

// write forwards a write unchanged, so conditions, ReturnValues and errors
// are exactly the backend's, and records what it changed: old images are
// read before, new images after, all under writeMu so nothing else changes
// the items in between.
func (s *Server) write(w http.ResponseWriter, ctx context.Context, op string, body []byte, auth string) {
	// A client that hangs up after the backend committed must not cost the
	// stream its record: the calls below are bounded by backendTimeout
	// instead of the client's connection.
	ctx = context.WithoutCancel(ctx)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	changes, planErr := s.plan(ctx, op, body)
	if planErr == nil {
		for i := range changes {
			if changes[i].stream == nil {
				continue // only the new image matters, for TTL
			}
			old, err := s.backend.getItem(ctx, changes[i].table, changes[i].key)
			if err != nil {
				planErr = err
				break
			}
			changes[i].old = old
		}
	}
	status, resp, err := s.backend.forward(ctx, dynamoPrefix+op, body, auth)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	if status != http.StatusOK {
		// A failed condition, a cancelled transaction or a bad request:
		// nothing changed, so nothing is recorded.
		writeJSON(w, status, resp)
		return
	}
	if planErr != nil {
		// The backend accepted a write the proxy could not make sense of
		// (for example a key the proxy could not read). The write stands;
		// its record is lost, and that must not pass silently.
		s.log.Error("dynamo: write not captured in stream", "op", op, "err", planErr)
		writeJSON(w, status, resp)
		return
	}
	if op == "BatchWriteItem" {
		changes = s.dropUnprocessed(changes, resp)
	}
	recs := make([]pending, 0, len(changes))
	for _, c := range changes {
		newItem, err := s.backend.getItem(ctx, c.table, c.key)
		if err != nil {
			s.log.Error("dynamo: read new image; write not captured in stream", "op", op, "table", c.table, "err", err)
			continue
		}
		s.trackTTL(c.table, c.key, newItem)
		if c.stream == nil {
			continue
		}
		if rec, ok := buildRecord(c.keys, c.stream.viewType, c.key, c.old, newItem, nil); ok {
			recs = append(recs, pending{stream: c.stream, rec: rec})
		}
	}
	s.appendRecords(recs)
	writeJSON(w, status, resp)
}

// buildRecord makes the record for an item that went from old to new (nil =
// absent). No record when nothing changed: AWS writes none for a PutItem or
// UpdateItem that leaves the item as it was, nor for deleting a missing item.
func buildRecord(keys keySchema, viewType string, key, old, new item, identity *Identity) (Record, bool) {
	var name string
	switch {
	case old == nil && new == nil:
		return Record{}, false
	case old == nil:
		name = "INSERT"
	case new == nil:
		name = "REMOVE"
	default:
		if canonical(old) == canonical(new) {
			return Record{}, false
		}
		name = "MODIFY"
	}
	// Keys from the stored image rather than the request, so numbers read
	// as the backend stores them.
	if img := new; img != nil || old != nil {
		if img == nil {
			img = old
		}
		if k, err := keys.project(img); err == nil {
			key = k
		}
	}
	rec := Record{EventName: name, Keys: key, UserIdentity: identity}
	if viewType == ViewNewImage || viewType == ViewNewAndOldImages {
		rec.NewImage = new
	}
	if viewType == ViewOldImage || viewType == ViewNewAndOldImages {
		rec.OldImage = old
	}
	rec.SizeBytes = recordSize(rec.Keys) + recordSize(rec.NewImage) + recordSize(rec.OldImage)
	return rec, true
}

// recordSize approximates DynamoDB's record size: the bytes of the keys and
// images as JSON. AWS counts attribute names and values in its own encoding;
// consumers use SizeBytes for metrics only.
func recordSize(it item) int64 {
	if it == nil {
		return 0
	}
	b, _ := json.Marshal(it)
	return int64(len(b))
}

// plan lists the items a write may change, on tables that have a stream
// or TTL.
func (s *Server) plan(ctx context.Context, op string, body []byte) ([]change, error) {
	type target struct {
		table string
		it    item // the item (put) or key (update, delete)
	}
	var targets []target
	switch op {
	case "PutItem":
		var in struct {
			TableName string
			Item      item
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		targets = append(targets, target{in.TableName, in.Item})
	case "UpdateItem", "DeleteItem":
		var in struct {
			TableName string
			Key       item
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		targets = append(targets, target{in.TableName, in.Key})
	case "BatchWriteItem":
		var in struct{ RequestItems batchItems }
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		for _, tw := range in.RequestItems.ordered() {
			targets = append(targets, target(tw))
		}
	case "TransactWriteItems":
		var in struct {
			TransactItems []struct {
				Put *struct {
					TableName string
					Item      item
				}
				Update, Delete *struct {
					TableName string
					Key       item
				}
			}
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		for _, ti := range in.TransactItems {
			switch {
			case ti.Put != nil:
				targets = append(targets, target{ti.Put.TableName, ti.Put.Item})
			case ti.Update != nil:
				targets = append(targets, target{ti.Update.TableName, ti.Update.Key})
			case ti.Delete != nil:
				targets = append(targets, target{ti.Delete.TableName, ti.Delete.Key})
			}
			// ConditionCheck changes nothing.
		}
	default:
		return nil, fmt.Errorf("not a write: %s", op)
	}
	var changes []change
	for _, tg := range targets {
		t, err := s.table(ctx, tg.table)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		st, ttl := t.stream, t.ttlAttr
		s.mu.Unlock()
		if st == nil && ttl == "" {
			continue
		}
		key, err := t.keys.project(tg.it)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", tg.table, err)
		}
		changes = append(changes, change{table: tg.table, stream: st, keys: t.keys, key: key})
	}
	return changes, nil
}

// batchItems is BatchWriteItem's RequestItems (and UnprocessedItems).
type batchItems map[string][]struct {
	PutRequest    *struct{ Item item }
	DeleteRequest *struct{ Key item }
}

type tableItem struct {
	table string
	it    item
}

// ordered lists the requests table by table, tables in name order (a JSON
// object has none) and each table's requests in body order. DynamoDB gives
// a batch no order; a fixed one keeps records predictable.
func (b batchItems) ordered() []tableItem {
	tables := make([]string, 0, len(b))
	for t := range b {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	var out []tableItem
	for _, table := range tables {
		for _, r := range b[table] {
			switch {
			case r.PutRequest != nil:
				out = append(out, tableItem{table, r.PutRequest.Item})
			case r.DeleteRequest != nil:
				out = append(out, tableItem{table, r.DeleteRequest.Key})
			}
		}
	}
	return out
}

// dropUnprocessed removes the changes a BatchWriteItem response lists as
// unprocessed: they were not written.
func (s *Server) dropUnprocessed(changes []change, resp []byte) []change {
	var out struct{ UnprocessedItems batchItems }
	if err := json.Unmarshal(resp, &out); err != nil || len(out.UnprocessedItems) == 0 {
		return changes
	}
	skip := map[string]bool{}
	for _, ti := range out.UnprocessedItems.ordered() {
		for _, c := range changes {
			if c.table != ti.table {
				continue
			}
			if k, err := c.keys.project(ti.it); err == nil {
				skip[keyID(ti.table, k)] = true
			}
		}
	}
	kept := changes[:0]
	for _, c := range changes {
		if !skip[keyID(c.table, c.key)] {
			kept = append(kept, c)
		}
	}
	return kept
}
