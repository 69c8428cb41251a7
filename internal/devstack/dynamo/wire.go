package dynamo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"sort"
	"strconv"
)

// item is an item, key or image in the DynamoDB JSON wire format: attribute
// name -> attribute value such as {"S":"x"}. The proxy keeps values as raw
// JSON so that what the backend stored is what the stream reports, byte for
// byte, without a round trip through SDK types.
type item = map[string]json.RawMessage

// keySchema names a table's key attributes.
type keySchema struct {
	hash, rng string // rng is "" for a table with a partition key only
}

func (k keySchema) wire() []map[string]string {
	ks := []map[string]string{{"AttributeName": k.hash, "KeyType": "HASH"}}
	if k.rng != "" {
		ks = append(ks, map[string]string{"AttributeName": k.rng, "KeyType": "RANGE"})
	}
	return ks
}

// project returns the key attributes of it, or an error naming a missing one.
func (k keySchema) project(it item) (item, error) {
	key := item{}
	for _, name := range []string{k.hash, k.rng} {
		if name == "" {
			continue
		}
		v, ok := it[name]
		if !ok {
			return nil, fmt.Errorf("key attribute %q missing", name)
		}
		key[name] = v
	}
	return key, nil
}

// keyID is a map key identifying an item by its key attributes.
func keyID(table string, key item) string {
	return table + "\x00" + canonical(key)
}

// canonical renders an item so that two renderings are equal exactly when
// the items hold the same data: object keys sorted (encoding/json does that),
// numbers kept as written, and the members of string, number and binary sets
// sorted, because a set has no order.
func canonical(it item) string {
	if it == nil {
		return ""
	}
	m := make(map[string]any, len(it))
	for name, raw := range it {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			m[name] = string(raw)
			continue
		}
		m[name] = sortSets(v)
	}
	b, _ := json.Marshal(m) // only maps, slices, strings, json.Number: cannot fail
	return string(b)
}

func sortSets(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, inner := range t {
			if list, ok := inner.([]any); ok && (k == "SS" || k == "NS" || k == "BS") {
				sort.Slice(list, func(i, j int) bool { return fmt.Sprint(list[i]) < fmt.Sprint(list[j]) })
				continue
			}
			t[k] = sortSets(inner)
		}
	case []any:
		for i := range t {
			t[i] = sortSets(t[i])
		}
	}
	return v
}

// apiError is an error in the DynamoDB JSON error format, from the backend or
// produced by the proxy itself.
type apiError struct {
	Status  int
	Type    string // short name, e.g. ResourceNotFoundException
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func errNotFound(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ResourceNotFoundException", fmt.Sprintf(format, a...)}
}

func errValidation(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, a...)}
}

// awsErrorPrefix qualifies error types the way DynamoDB does; the SDKs keep
// the part after '#'.
const awsErrorPrefix = "com.amazonaws.dynamodb.v20120810#"

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(map[string]string{"__type": awsErrorPrefix + e.Type, "message": e.Message})
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	// DynamoDB signs every body with its CRC32, and the Go SDK checks it
	// whether or not the header is there (a missing one counts as 0 and
	// logs a checksum warning on every call).
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeValue(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// parseError decodes a DynamoDB JSON error body.
func parseError(status int, body []byte) *apiError {
	var e struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e)
	typ := e.Type
	if i := bytes.LastIndexByte([]byte(typ), '#'); i >= 0 {
		typ = typ[i+1:]
	}
	if typ == "" {
		typ = "InternalServerError"
	}
	msg := e.Message
	if msg == "" {
		msg = e.MessageU
	}
	return &apiError{Status: status, Type: typ, Message: msg}
}
