package stack

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/groupcast/groupcast/internal/devstack/esm"
	localsqs "github.com/groupcast/groupcast/internal/devstack/sqs"
)

// startSQS opens the SQS endpoint before the template is evaluated: a
// queue's Ref is its URL.
func (b *builder) startSQS(ctx context.Context) error {
	var err error
	b.s.sqs, err = localsqs.Listen(ctx, localsqs.Options{Addr: b.opts.SQSAddr, Region: b.opts.Region, AccountID: b.opts.AccountID,
		Logger: b.opts.Logger, Auth: b.s.iam})
	if err != nil {
		return err
	}
	b.s.Endpoints.SQS = b.s.sqs.URL()
	b.r.sqsURL = b.s.sqs.URL()
	return nil
}

// queueName is the physical name CloudFormation gives a queue without a
// QueueName: <stack>-<LogicalId>-<12 random characters>, at most 80
// characters, with .fifo kept for FIFO queues. The random part also keeps
// two stacks in one process apart: kumo's queues live in one shared store.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sqs-queue.html#cfn-sqs-queue-queuename
func queueName(stackName, id string, props map[string]any) string {
	if n, _ := props["QueueName"].(string); n != "" {
		return n
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	suffix := ""
	if truthy(props["FifoQueue"]) {
		suffix = ".fifo"
	}
	prefix := stackName + "-" + id
	if max := 80 - len(suffix) - 13; len(prefix) > max {
		prefix = prefix[:max]
	}
	return prefix + "-" + string(b) + suffix
}

// queueAttrLimits are the ranges SQS accepts.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
var queueAttrLimits = map[string][2]int{
	"VisibilityTimeout":             {0, 43200},
	"MessageRetentionPeriod":        {60, 1209600},
	"DelaySeconds":                  {0, 900},
	"MaximumMessageSize":            {1024, 1048576},
	"ReceiveMessageWaitTimeSeconds": {0, 20},
}

// queueAttributes turns an AWS::SQS::Queue's properties into CreateQueue's
// attributes (all strings; RedrivePolicy as a JSON document).
func queueAttributes(id string, props map[string]any) (map[string]string, error) {
	attrs := map[string]string{}
	for k, v := range props {
		switch k {
		case "QueueName", "Tags":
			continue
		case "RedrivePolicy", "RedriveAllowPolicy":
			doc := v
			if s, ok := v.(string); ok {
				if err := json.Unmarshal([]byte(s), &doc); err != nil {
					return nil, fmt.Errorf("queue %s: %s is not JSON: %w", id, k, err)
				}
			}
			if k == "RedrivePolicy" {
				m, _ := doc.(map[string]any)
				arn, _ := m["deadLetterTargetArn"].(string)
				n, ok := number(m["maxReceiveCount"])
				// maxReceiveCount: 1 to 1,000.
				// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue.html
				if !strings.HasPrefix(arn, "arn:aws:sqs:") || !ok || n < 1 || n > 1000 || n != float64(int(n)) {
					return nil, fmt.Errorf("queue %s: RedrivePolicy needs deadLetterTargetArn (a queue ARN) and maxReceiveCount 1..1000", id)
				}
				doc = map[string]any{"deadLetterTargetArn": arn, "maxReceiveCount": int(n)}
			}
			b, _ := json.Marshal(doc)
			attrs[k] = string(b)
		default:
			s, err := scalarString(v)
			if err != nil {
				return nil, fmt.Errorf("queue %s: %s: %w", id, k, err)
			}
			if lim, ok := queueAttrLimits[k]; ok {
				n, err := strconv.Atoi(s)
				if err != nil || n < lim[0] || n > lim[1] {
					return nil, fmt.Errorf("queue %s: %s %q must be an integer from %d to %d", id, k, s, lim[0], lim[1])
				}
			}
			attrs[k] = s
		}
	}
	return attrs, nil
}

// createQueues creates the template's queues, dead-letter queues first
// (SQS does not require it, but a redrive then never targets a missing queue).
func (b *builder) createQueues(ctx context.Context) error {
	ids := b.queueIDs
	var created []string
	for _, pass := range []bool{false, true} {
		for _, id := range ids {
			props, err := b.cctx.Properties(id)
			if err != nil {
				return err
			}
			if _, redrive := props["RedrivePolicy"]; redrive != pass {
				continue
			}
			attrs, err := queueAttributes(id, props)
			if err != nil {
				return err
			}
			if err := b.s.sqs.CreateQueue(ctx, b.r.queues[id], attrs); err != nil {
				return fmt.Errorf("queue %s: %w", id, err)
			}
			created = append(created, id)
		}
	}
	for _, id := range created {
		b.s.Queues = append(b.s.Queues, b.r.queues[id])
	}
	return nil
}

// sqsClient is an SQS client signing with creds, against the local endpoint.
func (s *Stack) sqsClient(creds aws.Credentials) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       s.region,
		BaseEndpoint: aws.String(s.sqs.URL()),
		Credentials:  credentials.StaticCredentialsProvider{Value: creds},
	})
}

// functionCreds returns a function's execution-role credentials.
func (b *builder) functionCreds(name string) aws.Credentials {
	for _, f := range b.fns {
		if f.ID == name {
			return f.Credentials
		}
	}
	return aws.Credentials{}
}

// queueByARN maps a queue ARN of this stack to its URL and FIFO-ness.
func (b *builder) queueByARN(arn string) (string, bool, bool) {
	for _, name := range b.r.queues {
		if b.s.sqs.QueueARN(name) == arn {
			return b.s.sqs.QueueURL(name), strings.HasSuffix(name, ".fifo"), true
		}
	}
	return "", false, false
}

// startSQSMappings starts the SQS event source mappings. Lambda polls with
// the function's execution role, which needs sqs:ReceiveMessage,
// sqs:DeleteMessage and sqs:GetQueueAttributes on the queue; like
// CreateEventSourceMapping, the stack refuses a mapping without them.
// https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions
func (b *builder) startSQSMappings(ctx context.Context, resources map[string]map[string]any) error {
	maps, err := sqsMappings(b.fns, resources, b.queueByARN)
	if err != nil {
		return err
	}
	for _, m := range maps {
		creds := b.functionCreds(m.FunctionName)
		p, ok := b.s.iam.Principal(creds.AccessKeyID)
		if !ok {
			return fmt.Errorf("event source mapping %s: the function has no credentials", m.FunctionName)
		}
		for _, action := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} {
			if err := p.Authorize(action, m.QueueARN); err != nil {
				return fmt.Errorf("event source mapping %s: InvalidParameterValueException: The function execution role does not have permissions to call ReceiveMessage, DeleteMessage and GetQueueAttributes on SQS (%w)", m.FunctionName, err)
			}
		}
		poller, err := esm.StartSQS(ctx, b.s.sqsClient(creds), b.s.runtime, m, esm.Options{Region: b.opts.Region, AccountID: b.opts.AccountID, Logger: b.opts.Logger})
		if err != nil {
			return fmt.Errorf("event source mapping %s: %w", m.FunctionName, err)
		}
		b.s.sqsPollers = append(b.s.sqsPollers, poller)
	}
	return nil
}

// sendOnFailure delivers a stream mapping's on-failure record to its SQS
// destination, as Lambda does, signed with the function's role (which
// needs sqs:SendMessage on the queue). The record also stays in the
// mapping's in-memory list (GET /_devstack/failures).
// https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-dynamodb-errors
func (b *builder) sendOnFailure(fn string) func(esm.FailureRecord) {
	creds := b.functionCreds(fn)
	return func(fr esm.FailureRecord) {
		url, _, ok := b.queueByARN(fr.Destination)
		if !ok {
			if fr.Destination != "" {
				b.opts.Logger.Error("esm: on-failure destination is not a queue of this stack; record kept locally only", "destination", fr.Destination)
			}
			return
		}
		body, _ := json.Marshal(fr)
		ctx := context.Background()
		if _, err := b.s.sqsClient(creds).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))}); err != nil {
			b.opts.Logger.Error("esm: sending the on-failure record to SQS failed", "destination", fr.Destination, "err", err)
		}
	}
}
