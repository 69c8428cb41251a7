package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/groupcast/groupcast/internal/devstack/dynamo"
	"github.com/groupcast/groupcast/internal/devstack/esm"
)

// With Options.DataDir the stack keeps, in that directory:
//   - dynamodb.json: tables, items, streams and their records (package dynamo);
//   - token-key.pem: the token issuer's signing key, so tokens stay valid;
//   - checkpoints.json: each stream mapping's last processed sequence number.
//
// IAM credentials are not kept: the admin keys are fixed flags and each
// function gets new keys at every start, as a new execution role session.
const (
	tokenKeyFile    = "token-key.pem"
	checkpointsFile = "checkpoints.json"
	// checkpointInterval: as often as the DynamoDB snapshot, so after a
	// hard kill the two are at most about a second apart (and esm resumes
	// at the stream's end if the checkpoint is ahead of the records).
	checkpointInterval = time.Second
)

// checkpoints are the stream mappings' positions, by mappingKey.
type checkpoints struct {
	path string

	mu    sync.Mutex
	seqs  map[string]string
	dirty bool
}

// mappingKey names a mapping across restarts: its function and stream (the
// stream's ARN survives a restart with its records).
func mappingKey(m esm.Mapping) string { return m.FunctionName + " " + m.StreamARN }

func loadCheckpoints(dir string) (*checkpoints, error) {
	c := &checkpoints{path: filepath.Join(dir, checkpointsFile), seqs: map[string]string{}}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream mapping checkpoints: %w", err)
	}
	if err := json.Unmarshal(data, &c.seqs); err != nil {
		return nil, fmt.Errorf("stream mapping checkpoints %s: %w", c.path, err)
	}
	return c, nil
}

func (c *checkpoints) get(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seqs[key]
}

func (c *checkpoints) set(key, seq string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seqs[key], c.dirty = seq, true
}

// save writes the checkpoints if they changed, atomically.
func (c *checkpoints) save() error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	data, err := json.MarshalIndent(c.seqs, "", "  ")
	c.dirty = false
	c.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		c.markDirty()
		return fmt.Errorf("stream mapping checkpoints: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		c.markDirty()
		return fmt.Errorf("stream mapping checkpoints: %w", err)
	}
	return nil
}

func (c *checkpoints) markDirty() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
}

// saveEvery writes the checkpoints every interval until stop is closed.
func (c *checkpoints) saveEvery(stop <-chan struct{}, log func(error)) {
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := c.save(); err != nil {
				log(err)
			}
		}
	}
}

// existingTable returns the stream of a table restored from the data
// directory, after checking that it is the table the template describes:
// same keys, same indexes, same stream view type. Anything else would
// leave the functions reading a table of another shape.
func (b *builder) existingTable(ctx context.Context, id string, spec dynamo.TableSpec) (string, error) {
	name := aws.ToString(spec.Input.TableName)
	out, err := b.s.dynamo.Client().DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		return "", fmt.Errorf("table %s in %s: %w", id, b.opts.DataDir, err)
	}
	d := out.Table
	keys := func(ks any) string { b, _ := json.Marshal(ks); return string(b) }
	indexes := func(names []string) []string { slices.Sort(names); return names }
	var wantGSI, haveGSI []string
	for _, g := range spec.Input.GlobalSecondaryIndexes {
		wantGSI = append(wantGSI, aws.ToString(g.IndexName)+keys(g.KeySchema))
	}
	for _, g := range d.GlobalSecondaryIndexes {
		haveGSI = append(haveGSI, aws.ToString(g.IndexName)+keys(g.KeySchema))
	}
	var wantView, haveView string
	if s := spec.Input.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
		wantView = string(s.StreamViewType)
	}
	if s := d.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
		haveView = string(s.StreamViewType)
	}
	if keys(spec.Input.KeySchema) != keys(d.KeySchema) || !slices.Equal(indexes(wantGSI), indexes(haveGSI)) || wantView != haveView {
		return "", fmt.Errorf("table %s (%s) in %s was created from another version of the template (keys, indexes or stream differ); start with another --data-dir or remove this one", id, name, b.opts.DataDir)
	}
	return aws.ToString(d.LatestStreamArn), nil
}
