// Package sqs is the local stack's Amazon SQS endpoint: a proxy in front of
// an in-process kumo emulator that verifies SigV4, enforces each caller's
// IAM policies on the queue ARN, and gives queues the stack's own URLs and
// ARNs (kumo names every queue http://localhost:4566/000000000000/<name>
// and arn:aws:sqs:us-east-1:000000000000:<name>, whatever the region).
//
// It speaks the AWS JSON 1.0 protocol (X-Amz-Target: AmazonSQS.<Op>), which
// the Go SDK v2 and the AWS CLI v1 since botocore 1.31 use; kumo v0.33.1
// has no query (form-encoded) protocol, so neither has this endpoint.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-faqs.html
//
// kumo does the queue semantics itself: visibility timeouts, long polling
// (WaitTimeSeconds), ApproximateReceiveCount and redrive to the dead-letter
// queue once a message has been received more than maxReceiveCount times.
package sqs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sivchari/kumo"

	"github.com/groupcast/groupcast/internal/devstack/iam"
	"github.com/groupcast/groupcast/internal/devstack/localaws"
)

// kumo's fixed naming.
const (
	kumoAccount   = "000000000000"
	kumoARNPrefix = "arn:aws:sqs:us-east-1:" + kumoAccount + ":"
	targetPrefix  = "AmazonSQS."
	// maxBodyBytes: SQS requests are at most 1 MiB of message plus
	// attributes; 2 MiB leaves room for a batch's JSON framing.
	maxBodyBytes = 2 << 20
	// senderLimit bounds the SenderId memory (one entry per message sent);
	// the oldest go first, so a long run cannot grow it without bound.
	senderLimit = 100000
)

// Authenticator verifies a request's SigV4 signature and returns its
// caller (the local stack's iam.Registry).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte, service string) (*iam.Principal, error)
}

// Options configure the endpoint.
type Options struct {
	Addr      string // default 127.0.0.1:0
	Region    string // default us-east-1
	AccountID string // default 000000000000
	Logger    *slog.Logger
	// Auth, when set, requires signed requests and checks each call
	// against the caller's policies; nil accepts any request (unit tests).
	Auth Authenticator
}

// Server is a running endpoint.
type Server struct {
	opts Options
	log  *slog.Logger
	kumo *kumo.Server
	ln   net.Listener
	http *http.Server
	url  string
	hc   *http.Client

	mu          sync.Mutex
	senders     map[string]string // MessageId -> SenderId
	senderOrder []string
}

// Listen opens the listener (so queue URLs are known before the template
// is evaluated) and starts serving.
func Listen(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Region == "" {
		opts.Region = localaws.Region
	}
	if opts.AccountID == "" {
		opts.AccountID = localaws.AccountID
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("sqs: listen on %s: %w", opts.Addr, err)
	}
	s := &Server{opts: opts, log: opts.Logger, kumo: kumo.NewServer(), ln: ln, url: "http://" + ln.Addr().String(),
		hc: &http.Client{}, senders: map[string]string{}}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second} // 10 s: local clients send headers at once; this only stops a stuck one
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sqs: serve", "err", err)
		}
	}()
	return s, nil
}

// URL is the endpoint (AWS_ENDPOINT_URL_SQS, --endpoint-url).
func (s *Server) URL() string { return s.url }

// QueueURL is the URL of a queue by name.
func (s *Server) QueueURL(name string) string {
	return s.url + "/" + s.opts.AccountID + "/" + name
}

// QueueARN is the ARN of a queue by name.
func (s *Server) QueueARN(name string) string {
	return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", s.opts.Region, s.opts.AccountID, name)
}

// Close stops serving and the emulator.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // 5 s: local requests finish in milliseconds; long polls are cut
	defer cancel()
	_ = s.http.Shutdown(ctx)
	s.kumo.Close()
}

// CreateQueue creates a queue with CreateQueue's attributes (values as
// strings, ARNs in the stack's form), as CloudFormation would.
func (s *Server) CreateQueue(ctx context.Context, name string, attrs map[string]string) error {
	body, _ := json.Marshal(map[string]any{"QueueName": name, "Attributes": attrs})
	status, resp, _, err := s.forward(ctx, "CreateQueue", body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("sqs: create queue %s: %s", name, resp)
	}
	return nil
}

// ServeHTTP answers one SQS call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if r.Method != http.MethodPost || !ok {
		// A query-protocol client (old SDKs) lands here.
		writeError(w, http.StatusBadRequest, "InvalidAction", "InvalidAction", "the local SQS endpoint speaks only the AWS JSON 1.0 protocol (X-Amz-Target: AmazonSQS.<Action>); use a current AWS CLI or SDK")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil || len(body) > maxBodyBytes {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "InvalidParameterValue", "the request body is unreadable or too large")
		return
	}
	var in map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidParameterValue", "InvalidParameterValue", "the request body is not valid JSON")
			return
		}
	}
	if in == nil {
		in = map[string]any{}
	}
	var sender string
	if s.opts.Auth != nil {
		p, ok := s.authenticate(w, r, body)
		if !ok {
			return
		}
		if err := p.Authorize(action(op), s.resource(op, in)); err != nil {
			// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html
			writeError(w, http.StatusForbidden, "com.amazon.coral.service#AccessDeniedException", "AccessDenied", err.Error())
			return
		}
		sender = senderID(p)
	}
	s.toKumo(in)
	var status int
	var resp []byte
	var hdr http.Header
	if op == "ReceiveMessage" {
		status, resp, hdr, err = s.receive(r.Context(), in)
	} else {
		fwd, _ := json.Marshal(in)
		status, resp, hdr, err = s.forward(r.Context(), op, fwd)
	}
	if err != nil {
		if r.Context().Err() == nil {
			s.log.Error("sqs: forward", "op", op, "err", err)
		}
		writeError(w, http.StatusInternalServerError, "InternalError", "InternalError", "internal error")
		return
	}
	if status != http.StatusOK {
		s.writeKumoError(w, status, resp, hdr)
		return
	}
	resp = s.fromKumo(op, in, resp, sender)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, body []byte) (*iam.Principal, bool) {
	p, err := s.opts.Auth.Authenticate(r.Context(), r, body, "sqs")
	if err == nil {
		return p, true
	}
	var ae *iam.AuthError
	switch {
	case !errors.As(err, &ae):
		s.log.Error("sqs: authenticate", "err", err)
		writeError(w, http.StatusInternalServerError, "InternalError", "InternalError", "internal error")
	case ae.Kind == iam.MissingToken:
		writeError(w, http.StatusForbidden, "com.amazonaws.sqs#MissingAuthenticationToken", "MissingAuthenticationToken", "Request is missing Authentication Token")
	case ae.Kind == iam.UnrecognizedClient:
		writeError(w, http.StatusForbidden, "com.amazonaws.sqs#InvalidClientTokenId", "InvalidClientTokenId", ae.Message)
	default:
		writeError(w, http.StatusForbidden, "com.amazonaws.sqs#SignatureDoesNotMatch", "SignatureDoesNotMatch", ae.Message)
	}
	return nil, false
}

// action is the IAM action a call needs. The batch calls have none of
// their own: they need the single call's action.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html
func action(op string) string {
	return "sqs:" + strings.TrimSuffix(op, "Batch")
}

// resource is the queue ARN a call acts on; ListQueues acts on "*".
func (s *Server) resource(op string, in map[string]any) string {
	if name, _ := in["QueueName"].(string); name != "" && (op == "CreateQueue" || op == "GetQueueUrl") {
		return s.QueueARN(name)
	}
	if u, _ := in["QueueUrl"].(string); u != "" {
		return s.QueueARN(queueName(u))
	}
	return "*"
}

func queueName(queueURL string) string {
	return queueURL[strings.LastIndex(queueURL, "/")+1:]
}

// senderID is what SQS reports as a message's SenderId: the caller's
// unique id, for an assumed role "AROA…:<session>".
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
func senderID(p *iam.Principal) string {
	sum := sha256.Sum256([]byte(p.ARN))
	id := base32.StdEncoding.EncodeToString(sum[:])[:17]
	if p.Admin {
		return "AIDA" + id
	}
	return "AROA" + id + ":" + p.Name
}

// toKumo rewrites the stack's queue URLs and ARNs in a request to kumo's.
func (s *Server) toKumo(in map[string]any) {
	if u, ok := in["QueueUrl"].(string); ok && u != "" {
		in["QueueUrl"] = s.kumo.URL + "/" + kumoAccount + "/" + queueName(u)
	}
	if attrs, ok := in["Attributes"].(map[string]any); ok {
		for _, k := range []string{"RedrivePolicy", "RedriveAllowPolicy"} {
			if v, ok := attrs[k].(string); ok {
				attrs[k] = strings.ReplaceAll(v, s.QueueARN(""), kumoARNPrefix)
			}
		}
	}
}

// fromKumo rewrites kumo's URLs and ARNs in a response to the stack's,
// adds SenderId, and keeps only the message attributes asked for (kumo
// returns all of them).
func (s *Server) fromKumo(op string, in map[string]any, resp []byte, sender string) []byte {
	var out map[string]any
	if err := json.Unmarshal(resp, &out); err != nil || out == nil {
		return resp
	}
	if u, ok := out["QueueUrl"].(string); ok {
		out["QueueUrl"] = s.QueueURL(queueName(u))
	}
	if us, ok := out["QueueUrls"].([]any); ok {
		for i, u := range us {
			if u, ok := u.(string); ok {
				us[i] = s.QueueURL(queueName(u))
			}
		}
	}
	if attrs, ok := out["Attributes"].(map[string]any); ok {
		for _, k := range []string{"QueueArn", "RedrivePolicy", "RedriveAllowPolicy"} {
			if v, ok := attrs[k].(string); ok {
				attrs[k] = strings.ReplaceAll(v, kumoARNPrefix, s.QueueARN(""))
			}
		}
		if op == "GetQueueAttributes" && wants(in, "AttributeNames", "SqsManagedSseEnabled") {
			// New queues are encrypted with SSE-SQS by default (kumo does
			// not model encryption). https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html
			attrs["SqsManagedSseEnabled"] = "true"
		}
	}
	switch op {
	case "SendMessage":
		if id, _ := out["MessageId"].(string); id != "" && sender != "" {
			s.rememberSender(id, sender)
		}
	case "SendMessageBatch":
		ok, _ := out["Successful"].([]any)
		for _, e := range ok {
			if m, _ := e.(map[string]any); m != nil && sender != "" {
				if id, _ := m["MessageId"].(string); id != "" {
					s.rememberSender(id, sender)
				}
			}
		}
	case "ReceiveMessage":
		msgs, _ := out["Messages"].([]any)
		for _, m := range msgs {
			msg, _ := m.(map[string]any)
			if msg == nil {
				continue
			}
			attrs, _ := msg["Attributes"].(map[string]any)
			if attrs == nil {
				attrs = map[string]any{}
			}
			if id, _ := msg["MessageId"].(string); id != "" {
				if sid := s.sender(id); sid != "" {
					attrs["SenderId"] = sid
				}
			}
			for k := range attrs {
				if !wants(in, "MessageSystemAttributeNames", k) && !wants(in, "AttributeNames", k) {
					delete(attrs, k)
				}
			}
			if len(attrs) == 0 {
				delete(msg, "Attributes")
			} else {
				msg["Attributes"] = attrs
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return resp
	}
	return b
}

// wants reports whether the list field of a request names attr or All.
func wants(in map[string]any, field, attr string) bool {
	names, _ := in[field].([]any)
	return slices.ContainsFunc(names, func(n any) bool { return n == "All" || n == attr })
}

func (s *Server) rememberSender(id, sender string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.senderOrder) >= senderLimit {
		delete(s.senders, s.senderOrder[0])
		s.senderOrder = s.senderOrder[1:]
	}
	s.senders[id] = sender
	s.senderOrder = append(s.senderOrder, id)
}

func (s *Server) sender(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.senders[id]
}

// receive runs a ReceiveMessage long poll as a series of kumo polls of at
// most a second. kumo returns a message whose visibility timeout ran out
// only to a receive that starts after it did (it requeues on receive and
// wakes long polls only on sends), so one 20 s kumo poll would miss it;
// SQS returns it to the waiting poll. New messages still end a poll at once.
func (s *Server) receive(ctx context.Context, in map[string]any) (int, []byte, http.Header, error) {
	wait := -1.0 // not given: the queue's ReceiveMessageWaitTimeSeconds, which kumo applies
	if v, ok := in["WaitTimeSeconds"].(float64); ok {
		wait = v
	}
	if wait <= 1 {
		fwd, _ := json.Marshal(in)
		return s.forward(ctx, "ReceiveMessage", fwd)
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		left := time.Until(deadline)
		in["WaitTimeSeconds"] = min(1, max(0, int(left.Round(time.Second)/time.Second)))
		fwd, _ := json.Marshal(in)
		status, resp, hdr, err := s.forward(ctx, "ReceiveMessage", fwd)
		if err != nil || status != http.StatusOK || left <= time.Second || bytes.Contains(resp, []byte(`"Messages"`)) {
			return status, resp, hdr, err
		}
	}
}

func (s *Server) forward(ctx context.Context, op string, body []byte) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.kumo.URL+"/", bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("sqs %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("sqs %s: read response: %w", op, err)
	}
	return resp.StatusCode, b, resp.Header, nil
}

// kumoErrors maps kumo's (query-protocol) error codes to the JSON
// protocol's __type; the query code goes in x-amzn-query-error.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html#sqs-api-error-response-structure
var kumoErrors = map[string]string{
	"AWS.SimpleQueueService.NonExistentQueue": "com.amazonaws.sqs#QueueDoesNotExist",
	"QueueAlreadyExists":                      "com.amazonaws.sqs#QueueNameExists",
	"ReceiptHandleIsInvalid":                  "com.amazonaws.sqs#ReceiptHandleIsInvalid",
	"InvalidParameterValue":                   "com.amazonaws.sqs#InvalidAttributeValue",
	"InvalidAttributeValue":                   "com.amazonaws.sqs#InvalidAttributeValue",
	"MissingParameter":                        "com.amazonaws.sqs#MissingRequiredParameterException",
	"MessageNotInflight":                      "com.amazonaws.sqs#MessageNotInflight",
}

func (s *Server) writeKumoError(w http.ResponseWriter, status int, resp []byte, _ http.Header) {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(resp, &e); err != nil || e.Type == "" {
		writeError(w, http.StatusInternalServerError, "InternalError", "InternalError", "internal error")
		return
	}
	typ := kumoErrors[e.Type]
	if typ == "" {
		typ = "com.amazonaws.sqs#" + e.Type
	}
	if status >= 500 {
		writeError(w, status, typ, e.Type, "internal error")
		return
	}
	writeError(w, status, typ, e.Type, e.Message)
}

func writeError(w http.ResponseWriter, status int, typ, queryCode, msg string) {
	fault := "Sender"
	if status >= 500 {
		fault = "Receiver"
	}
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", queryCode+";"+fault)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
