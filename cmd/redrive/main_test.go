package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/groupcast/groupcast/internal/devstack/iam"
	localsqs "github.com/groupcast/groupcast/internal/devstack/sqs"
)

// The replay against the local stack's SQS: every message of the
// dead-letter queue arrives once in the target, and the source is empty.
func TestMoveDrainsTheQueue(t *testing.T) {
	ctx := context.Background()
	reg := iam.NewRegistry("us-east-1", "123456789012", "test")
	srv, err := localsqs.Listen(ctx, localsqs.Options{Region: "us-east-1", AccountID: "123456789012", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Auth: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	creds, err := reg.AddAdmin(aws.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	c := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL()), Credentials: credentials.StaticCredentialsProvider{Value: creds}})
	suffix := fmt.Sprint(time.Now().UnixNano())
	var urls []string
	for _, name := range []string{"dlq-" + suffix, "inbox-" + suffix} {
		out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, aws.ToString(out.QueueUrl))
	}
	var want []string
	for i := range 23 { // more than two receives' worth
		body := fmt.Sprintf(`{"kind":"inbox","n":%d}`, i)
		want = append(want, body)
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(urls[0]), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := move(ctx, c, urls[0], urls[1])
	if err != nil || n != len(want) {
		t.Fatalf("move = %d, %v; want %d", n, err, len(want))
	}
	var got []string
	for {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(urls[1]), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			got = append(got, aws.ToString(m.Body))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("target holds %d messages, want the %d moved", len(got), len(want))
	}
	if left, _ := move(ctx, c, urls[0], urls[1]); left != 0 {
		t.Errorf("source still had %d messages", left)
	}
}
