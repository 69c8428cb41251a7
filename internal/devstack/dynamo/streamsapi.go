package dynamo

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// Limits of the DynamoDB Streams API, as AWS documents them.
const (
	maxGetRecordsLimit  = 1000 // GetRecords returns at most 1,000 records
	maxListStreamsLimit = 100  // ListStreams returns at most 100 streams
)

func (s *Server) serveStreams(w http.ResponseWriter, op string, body []byte) {
	var (
		out any
		err *apiError
	)
	switch op {
	case "ListStreams":
		out, err = s.listStreams(body)
	case "DescribeStream":
		out, err = s.describeStream(body)
	case "GetShardIterator":
		out, err = s.getShardIterator(body)
	case "GetRecords":
		out, err = s.getRecords(body)
	default:
		err = &apiError{http.StatusBadRequest, "UnknownOperationException", "unknown DynamoDB Streams operation " + op}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeValue(w, out)
}

func decodeRequest(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", err.Error()}
	}
	return nil
}

func (s *Server) listStreams(body []byte) (any, *apiError) {
	var in struct {
		TableName               string
		Limit                   int
		ExclusiveStartStreamArn string
	}
	if err := decodeRequest(body, &in); err != nil {
		return nil, err
	}
	if in.Limit == 0 {
		in.Limit = maxListStreamsLimit
	}
	if in.Limit < 1 || in.Limit > maxListStreamsLimit {
		return nil, errValidation("Limit must be between 1 and %d", maxListStreamsLimit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	arns := make([]string, 0, len(s.streams))
	for arn, st := range s.streams {
		if in.TableName == "" || st.table == in.TableName {
			arns = append(arns, arn)
		}
	}
	sort.Strings(arns)
	if in.ExclusiveStartStreamArn != "" {
		i := sort.SearchStrings(arns, in.ExclusiveStartStreamArn)
		if i < len(arns) && arns[i] == in.ExclusiveStartStreamArn {
			i++
		}
		arns = arns[i:]
	}
	out := map[string]any{}
	list := []map[string]string{}
	for i, arn := range arns {
		if i == in.Limit {
			out["LastEvaluatedStreamArn"] = arns[i-1]
			break
		}
		st := s.streams[arn]
		list = append(list, map[string]string{"StreamArn": arn, "StreamLabel": st.label, "TableName": st.table})
	}
	out["Streams"] = list
	return out, nil
}

// lookup returns a stream by ARN. Callers hold s.mu.
func (s *Server) lookup(arn string) (*stream, *apiError) {
	st := s.streams[arn]
	if st == nil {
		return nil, errNotFound("Requested resource not found: Stream: %s not found", arn)
	}
	return st, nil
}

func (s *Server) describeStream(body []byte) (any, *apiError) {
	var in struct{ StreamArn string }
	if err := decodeRequest(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.lookup(in.StreamArn)
	if err != nil {
		return nil, err
	}
	rng := map[string]string{"StartingSequenceNumber": formatSeq(st.startSeq)}
	status := "ENABLED"
	if !st.enabled() {
		status = "DISABLED"
		end := st.lastSeq
		if end < st.startSeq {
			end = st.startSeq
		}
		rng["EndingSequenceNumber"] = formatSeq(end)
	}
	return map[string]any{"StreamDescription": map[string]any{
		"StreamArn":               st.arn,
		"StreamLabel":             st.label,
		"StreamStatus":            status,
		"StreamViewType":          st.viewType,
		"TableName":               st.table,
		"CreationRequestDateTime": st.created.Unix(),
		"KeySchema":               st.keys.wire(),
		"Shards":                  []any{map[string]any{"ShardId": st.shardID, "SequenceNumberRange": rng}},
	}}, nil
}

// iterator is the content of an opaque shard iterator: the stream, and the
// lowest sequence number the next GetRecords may return.
type iterator struct {
	Stream string `json:"s"`
	Next   uint64 `json:"n"`
	Issued int64  `json:"t"` // unix nanoseconds, for expiry
}

func (it iterator) encode() string {
	b, _ := json.Marshal(it)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeIterator(s string) (iterator, *apiError) {
	var it iterator
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &it)
	}
	if err != nil || it.Stream == "" {
		return iterator{}, errValidation("Invalid ShardIterator")
	}
	return it, nil
}

func (s *Server) getShardIterator(body []byte) (any, *apiError) {
	var in struct {
		StreamArn, ShardId, ShardIteratorType, SequenceNumber string
	}
	if err := decodeRequest(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.lookup(in.StreamArn)
	if err != nil {
		return nil, err
	}
	if in.ShardId != st.shardID {
		return nil, errNotFound("Requested resource not found: Shard does not exist")
	}
	var next uint64
	switch in.ShardIteratorType {
	case "TRIM_HORIZON":
		next = max(st.trimmed+1, st.startSeq)
	case "LATEST":
		next = max(st.lastSeq+1, st.startSeq)
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		n, perr := parseSeq(in.SequenceNumber)
		if perr != nil {
			return nil, errValidation("%v", perr)
		}
		if n < st.startSeq || n > max(st.lastSeq, st.startSeq) {
			return nil, errValidation("Invalid SequenceNumber %s for shard %s: outside the shard's range", in.SequenceNumber, st.shardID)
		}
		if n <= st.trimmed {
			return nil, &apiError{http.StatusBadRequest, "TrimmedDataAccessException", "the sequence number " + in.SequenceNumber + " is beyond the trim horizon"}
		}
		next = n
		if in.ShardIteratorType == "AFTER_SEQUENCE_NUMBER" {
			next = n + 1
		}
	default:
		return nil, errValidation("Invalid ShardIteratorType %q: must be TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER", in.ShardIteratorType)
	}
	return map[string]string{"ShardIterator": iterator{Stream: st.arn, Next: next, Issued: time.Now().UnixNano()}.encode()}, nil
}

func (s *Server) getRecords(body []byte) (any, *apiError) {
	var in struct {
		ShardIterator string
		Limit         int
	}
	if err := decodeRequest(body, &in); err != nil {
		return nil, err
	}
	if in.Limit == 0 {
		in.Limit = maxGetRecordsLimit
	}
	if in.Limit < 1 || in.Limit > maxGetRecordsLimit {
		return nil, errValidation("Limit must be between 1 and %d", maxGetRecordsLimit)
	}
	it, err := decodeIterator(in.ShardIterator)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if now.Sub(time.Unix(0, it.Issued)) > iteratorLifetime {
		return nil, &apiError{http.StatusBadRequest, "ExpiredIteratorException", "Iterator expired. The iterator was created at time " + time.Unix(0, it.Issued).UTC().Format(time.RFC3339) + " while right now it is " + now.UTC().Format(time.RFC3339) + "."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.lookup(it.Stream)
	if err != nil {
		return nil, err
	}
	if it.Next <= st.trimmed {
		return nil, &apiError{http.StatusBadRequest, "TrimmedDataAccessException", "the iterator's position is beyond the trim horizon: its records are older than the retention period"}
	}
	recs := st.after(it.Next-1, in.Limit)
	list := make([]any, len(recs))
	for i, r := range recs {
		list[i] = r.apiRecord()
	}
	out := map[string]any{"Records": list}
	next := it.Next
	if len(recs) > 0 {
		next = recs[len(recs)-1].seq + 1
	}
	// A closed shard (disabled stream) read to its end has no next iterator:
	// that is how readers learn the shard is finished.
	if st.enabled() || next <= st.lastSeq {
		out["NextShardIterator"] = iterator{Stream: st.arn, Next: next, Issued: now.UnixNano()}.encode()
	}
	return out, nil
}
