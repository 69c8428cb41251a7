package dynamo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// backendTimeout bounds one call to the backend. Writes hold the proxy's
// write lock across backend calls, so a hung backend must not hold it
// forever; 30 s is far above any local call (milliseconds) and still ends
// a stuck one.
const backendTimeout = 30 * time.Second

// maxBodyBytes bounds request and response bodies: DynamoDB's largest
// request (BatchWriteItem, TransactWriteItems) is 16 MB.
const maxBodyBytes = 16 << 20

// backend talks the DynamoDB JSON protocol to the real store (kumo or an
// external endpoint).
type backend struct {
	url    string
	region string
	client *http.Client
}

// authorization is sent on the proxy's own calls. Local backends do not check
// signatures, but DynamoDB Local reads the access key and region from it.
func (b *backend) authorization() string {
	return "AWS4-HMAC-SHA256 Credential=local/20260101/" + b.region +
		"/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-target, Signature=0"
}

// forward sends a request body to the backend under target (e.g.
// "DynamoDB_20120810.PutItem") and returns the backend's status and body.
// auth is the caller's Authorization header, passed through so the backend
// sees the caller's credentials; "" uses the proxy's own.
func (b *backend) forward(ctx context.Context, target string, body []byte, auth string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, backendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("dynamo backend: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", target)
	if auth == "" {
		auth = b.authorization()
	}
	req.Header.Set("Authorization", auth)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("dynamo backend %s: %w", target, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("dynamo backend %s: read response: %w", target, err)
	}
	return resp.StatusCode, out, nil
}

// call runs one DynamoDB operation for the proxy itself. A DynamoDB error
// comes back as *apiError.
func (b *backend) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("dynamo backend %s: %w", op, err)
	}
	status, resp, err := b.forward(ctx, "DynamoDB_20120810."+op, body, "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return parseError(status, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("dynamo backend %s: decode response: %w", op, err)
	}
	return nil
}

// getItem reads one item with a strongly consistent read; nil when absent.
func (b *backend) getItem(ctx context.Context, table string, key item) (item, error) {
	var out struct{ Item item }
	err := b.call(ctx, "GetItem", map[string]any{"TableName": table, "Key": key, "ConsistentRead": true}, &out)
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// tableDescription is the part of DescribeTable the proxy needs.
type tableDescription struct {
	TableName string
	TableArn  string
	KeySchema []struct {
		AttributeName string
		KeyType       string
	}
}

func (d tableDescription) keys() keySchema {
	var k keySchema
	for _, e := range d.KeySchema {
		switch e.KeyType {
		case "HASH":
			k.hash = e.AttributeName
		case "RANGE":
			k.rng = e.AttributeName
		}
	}
	return k
}

func (b *backend) describeTable(ctx context.Context, table string) (tableDescription, error) {
	var out struct{ Table tableDescription }
	if err := b.call(ctx, "DescribeTable", map[string]string{"TableName": table}, &out); err != nil {
		return tableDescription{}, err
	}
	return out.Table, nil
}
