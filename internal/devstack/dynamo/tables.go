package dynamo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// streamSpec is a request's StreamSpecification.
type streamSpec struct {
	StreamEnabled  bool
	StreamViewType string `json:",omitempty"`
}

// takeStreamSpec removes StreamSpecification from a CreateTable or
// UpdateTable request: streams live in the proxy, and a backend that kept
// its own (kumo does) would only hold a second, incomplete copy of every
// record in memory.
func takeStreamSpec(body []byte) (map[string]json.RawMessage, *streamSpec, *apiError) {
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, &apiError{http.StatusBadRequest, "SerializationException", err.Error()}
	}
	raw, ok := req["StreamSpecification"]
	if !ok {
		return req, nil, nil
	}
	delete(req, "StreamSpecification")
	var spec streamSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, nil, &apiError{http.StatusBadRequest, "SerializationException", "StreamSpecification: " + err.Error()}
	}
	if spec.StreamEnabled && !validViewType(spec.StreamViewType) {
		return nil, nil, errValidation("1 validation error detected: Value '%s' at 'streamSpecification.streamViewType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY]", spec.StreamViewType)
	}
	return req, &spec, nil
}

func tableNameOf(req map[string]json.RawMessage) string {
	var name string
	_ = json.Unmarshal(req["TableName"], &name)
	return name
}

func (s *Server) createTable(w http.ResponseWriter, ctx context.Context, body []byte, auth string) {
	req, spec, aerr := takeStreamSpec(body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	fwd, _ := json.Marshal(req)
	status, resp, err := s.backend.forward(ctx, dynamoPrefix+"CreateTable", fwd, auth)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	if status != http.StatusOK {
		writeJSON(w, status, resp)
		return
	}
	var out struct{ TableDescription tableDescription }
	if err := json.Unmarshal(resp, &out); err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", "decode backend CreateTable: " + err.Error()})
		return
	}
	t := &tableMeta{name: out.TableDescription.TableName, arn: out.TableDescription.TableArn, keys: out.TableDescription.keys()}
	s.mu.Lock()
	if old := s.tables[t.name]; old != nil {
		s.disableStream(old, time.Now()) // a table deleted on the backend directly and created again
	}
	s.tables[t.name] = t
	if spec != nil && spec.StreamEnabled {
		s.enableStream(t, spec.StreamViewType, time.Now())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, s.patchDescription(resp, "TableDescription", t))
}

func (s *Server) updateTable(w http.ResponseWriter, ctx context.Context, body []byte, auth string) {
	req, spec, aerr := takeStreamSpec(body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	name := tableNameOf(req)
	t, err := s.table(ctx, name)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	if spec != nil {
		s.mu.Lock()
		has := t.stream != nil
		s.mu.Unlock()
		switch {
		case spec.StreamEnabled && has:
			writeError(w, errValidation("Table already has an enabled stream: TableName: %s", name))
			return
		case !spec.StreamEnabled && !has:
			writeError(w, errValidation("Table already has no stream enabled: TableName: %s", name))
			return
		}
	}
	var status int
	var resp []byte
	if len(req) > 1 { // more to change than the stream
		fwd, _ := json.Marshal(req)
		status, resp, err = s.backend.forward(ctx, dynamoPrefix+"UpdateTable", fwd, auth)
	} else {
		var d []byte
		status, d, err = s.backend.forward(ctx, dynamoPrefix+"DescribeTable", []byte(fmt.Sprintf(`{"TableName":%q}`, name)), auth)
		resp = bytes.Replace(d, []byte(`"Table"`), []byte(`"TableDescription"`), 1)
	}
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	if status != http.StatusOK {
		writeJSON(w, status, resp)
		return
	}
	if spec != nil {
		s.mu.Lock()
		if spec.StreamEnabled {
			s.enableStream(t, spec.StreamViewType, time.Now())
		} else {
			s.disableStream(t, time.Now())
		}
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, s.patchDescription(resp, "TableDescription", t))
}

func (s *Server) deleteTable(w http.ResponseWriter, ctx context.Context, body []byte, auth string) {
	var req map[string]json.RawMessage
	_ = json.Unmarshal(body, &req)
	name := tableNameOf(req)
	// Serialized with writes so no write captures records into a stream
	// that is being closed.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	status, resp, err := s.backend.forward(ctx, dynamoPrefix+"DeleteTable", body, auth)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	if status != http.StatusOK {
		writeJSON(w, status, resp)
		return
	}
	s.mu.Lock()
	t := s.tables[name]
	delete(s.tables, name)
	var desc *tableMeta
	if t != nil {
		desc = &tableMeta{name: t.name, stream: t.stream}
		s.disableStream(t, time.Now())
	}
	s.mu.Unlock()
	if desc != nil {
		resp = s.patchDescription(resp, "TableDescription", desc)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) describeTable(w http.ResponseWriter, ctx context.Context, body []byte, auth string) {
	status, resp, err := s.backend.forward(ctx, dynamoPrefix+"DescribeTable", body, auth)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
		return
	}
	if status != http.StatusOK {
		writeJSON(w, status, resp)
		return
	}
	var out struct{ Table tableDescription }
	if err := json.Unmarshal(resp, &out); err != nil {
		writeJSON(w, status, resp)
		return
	}
	t, err := s.table(ctx, out.Table.TableName)
	if err != nil {
		writeJSON(w, status, resp)
		return
	}
	writeJSON(w, http.StatusOK, s.patchDescription(resp, "Table", t))
}

// patchDescription sets the stream fields of a TableDescription in a backend
// response to the proxy's stream, since the backend has none.
func (s *Server) patchDescription(resp []byte, field string, t *tableMeta) []byte {
	dec := json.NewDecoder(bytes.NewReader(resp))
	dec.UseNumber() // keep the backend's numbers (sizes, dates) exactly
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return resp
	}
	desc, ok := out[field].(map[string]any)
	if !ok {
		return resp
	}
	s.mu.Lock()
	st := t.stream
	s.mu.Unlock()
	delete(desc, "StreamSpecification")
	delete(desc, "LatestStreamArn")
	delete(desc, "LatestStreamLabel")
	if st != nil {
		desc["StreamSpecification"] = streamSpec{StreamEnabled: true, StreamViewType: st.viewType}
		desc["LatestStreamArn"] = st.arn
		desc["LatestStreamLabel"] = st.label
	}
	b, err := json.Marshal(out)
	if err != nil {
		return resp
	}
	return b
}

func writeBackendError(w http.ResponseWriter, err error) {
	var aerr *apiError
	if errors.As(err, &aerr) {
		writeError(w, aerr)
		return
	}
	writeError(w, &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()})
}

func (s *Server) updateTimeToLive(w http.ResponseWriter, ctx context.Context, body []byte) {
	var req struct {
		TableName               string
		TimeToLiveSpecification *struct {
			AttributeName string
			Enabled       bool
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", err.Error()})
		return
	}
	spec := req.TimeToLiveSpecification
	if spec == nil || spec.AttributeName == "" {
		writeError(w, errValidation("TimeToLiveSpecification with an AttributeName is required"))
		return
	}
	t, err := s.table(ctx, req.TableName)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	if aerr := s.setTTL(t, spec.AttributeName, spec.Enabled); aerr != nil {
		writeError(w, aerr)
		return
	}
	if spec.Enabled {
		if err := s.seedTTL(ctx, t.name, spec.AttributeName, t.keys); err != nil {
			_ = s.setTTL(t, spec.AttributeName, false)
			writeBackendError(w, err)
			return
		}
	}
	writeValue(w, map[string]any{"TimeToLiveSpecification": map[string]any{"AttributeName": spec.AttributeName, "Enabled": spec.Enabled}})
}

// setTTL turns a table's TTL on or off, refusing what DynamoDB refuses.
func (s *Server) setTTL(t *tableMeta, attr string, enabled bool) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case enabled && t.ttlAttr != "":
		return errValidation("TimeToLive is already enabled")
	case !enabled && t.ttlAttr == "":
		return errValidation("TimeToLive is already disabled")
	case !enabled && t.ttlAttr != attr:
		return errValidation("TimeToLive is enabled on attribute %s, not %s", t.ttlAttr, attr)
	}
	if enabled {
		t.ttlAttr, t.expiring = attr, map[string]expiringItem{}
	} else {
		t.ttlAttr, t.expiring = "", nil
	}
	return nil
}

func (s *Server) describeTimeToLive(w http.ResponseWriter, ctx context.Context, body []byte) {
	var req struct{ TableName string }
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", err.Error()})
		return
	}
	t, err := s.table(ctx, req.TableName)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	s.mu.Lock()
	attr := t.ttlAttr
	s.mu.Unlock()
	desc := map[string]any{"TimeToLiveStatus": "DISABLED"}
	if attr != "" {
		desc = map[string]any{"TimeToLiveStatus": "ENABLED", "AttributeName": attr}
	}
	writeValue(w, map[string]any{"TimeToLiveDescription": desc})
}

// TableSpec is a table to create: the CreateTableInput (with its
// StreamSpecification) and, since CreateTable has no TTL setting (that is
// a separate UpdateTimeToLive call, or TimeToLiveSpecification in a
// CloudFormation template), the TTL attribute name or "".
type TableSpec struct {
	Input        *dynamodb.CreateTableInput
	TTLAttribute string
}

// TableInfo describes a created table.
type TableInfo struct {
	Name      string
	ARN       string
	StreamARN string // "" without a stream
}

// CreateTable creates a table through the endpoint itself, exactly as a
// client would, and enables TTL when the spec asks for it.
func (s *Server) CreateTable(ctx context.Context, spec TableSpec) (TableInfo, error) {
	if spec.Input == nil || spec.Input.TableName == nil {
		return TableInfo{}, errors.New("dynamo: CreateTable: input with a TableName is required")
	}
	client := s.Client()
	out, err := client.CreateTable(ctx, spec.Input)
	if err != nil {
		return TableInfo{}, fmt.Errorf("dynamo: create table %s: %w", *spec.Input.TableName, err)
	}
	if spec.TTLAttribute != "" {
		_, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               spec.Input.TableName,
			TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(spec.TTLAttribute), Enabled: aws.Bool(true)},
		})
		if err != nil {
			return TableInfo{}, fmt.Errorf("dynamo: enable TTL on %s: %w", *spec.Input.TableName, err)
		}
	}
	d := out.TableDescription
	return TableInfo{Name: aws.ToString(d.TableName), ARN: aws.ToString(d.TableArn), StreamARN: aws.ToString(d.LatestStreamArn)}, nil
}

// Client returns a DynamoDB client for this endpoint, signing with
// Options.ClientCredentials (dummy ones when unset).
func (s *Server) Client() *dynamodb.Client {
	c := s.opts.ClientCredentials
	if c.AccessKeyID == "" {
		c = aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}
	}
	return dynamodb.New(dynamodb.Options{
		Region:       s.opts.Region,
		BaseEndpoint: aws.String(s.url),
		Credentials:  credentials.StaticCredentialsProvider{Value: c},
	})
}
