// Command redrive moves every message of one SQS queue to another: the
// replay of a dead-letter queue (the inbox tasks in InboxDeadLetterQueue
// back to InboxQueue) where `aws sqs start-message-move-task` is not
// available, as on the local stack (kumo has no message move tasks).
//
//	go run ./cmd/redrive -from <InboxDeadLetterQueueUrl> -to <InboxQueueUrl>
//
// It uses the default AWS configuration (AWS_ENDPOINT_URL_SQS points it at
// the local stack). Each message is sent to the target before it is
// deleted from the source, so a crash repeats a message rather than losing
// it; inbox tasks are idempotent (same keys, same items).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func main() {
	from := flag.String("from", "", "URL of the queue to empty (the dead-letter queue)")
	to := flag.String("to", "", "URL of the queue to send the messages to")
	flag.Parse()
	if *from == "" || *to == "" || *from == *to {
		fmt.Fprintln(os.Stderr, "usage: redrive -from <queue URL> -to <other queue URL>")
		os.Exit(2)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redrive:", err)
		os.Exit(1)
	}
	n, err := move(ctx, sqs.NewFromConfig(cfg), *from, *to)
	fmt.Printf("moved %d messages\n", n)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redrive:", err)
		os.Exit(1)
	}
}

// queueAPI is the part of SQS that move uses.
type queueAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// move sends every message of from to to, ten at a time, and deletes each
// one from from once sent. It stops when a receive comes back empty.
func move(ctx context.Context, c queueAPI, from, to string) (int, error) {
	moved := 0
	for {
		// 1 s long poll: an empty answer then means the queue is drained
		// (messages in flight elsewhere are not ours to move).
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(from), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			return moved, fmt.Errorf("receive from %s: %w", from, err)
		}
		if len(out.Messages) == 0 {
			return moved, nil
		}
		send := make([]types.SendMessageBatchRequestEntry, len(out.Messages))
		for i, m := range out.Messages {
			send[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: m.Body, MessageAttributes: m.MessageAttributes}
		}
		sent, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(to), Entries: send})
		if err != nil {
			return moved, fmt.Errorf("send to %s: %w", to, err)
		}
		var del []types.DeleteMessageBatchRequestEntry
		for _, s := range sent.Successful {
			i, _ := strconv.Atoi(aws.ToString(s.Id))
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: s.Id, ReceiptHandle: out.Messages[i].ReceiptHandle})
		}
		if len(del) > 0 {
			if _, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(from), Entries: del}); err != nil {
				return moved, fmt.Errorf("delete from %s: %w", from, err)
			}
		}
		moved += len(del)
		if len(sent.Failed) > 0 {
			return moved, errors.New("some messages were not sent: " + aws.ToString(sent.Failed[0].Message) + "; they stay in the source queue")
		}
	}
}
