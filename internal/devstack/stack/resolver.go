package stack

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/groupcast/groupcast/internal/cfn"
)

// resolver answers Ref and Fn::GetAtt for the resources the stack emulates,
// with the local names and endpoints it gave them. Values that only matter
// to AWS (IAM roles, permissions) get stable placeholder ARNs.
type resolver struct {
	region, account string

	tableNames  map[string]string // logical id -> table name
	streamARNs  map[string]string // logical id -> stream ARN (after creation)
	apiIDs      map[string]string // logical id -> API id (HTTP and WebSocket)
	apiEndpoint map[string]string // logical id -> local base URL (ws:// or http://)
	functions   map[string]string // logical id -> function name
	queues      map[string]string // logical id -> queue name
	sqsURL      string            // the local SQS endpoint
}

func newResolver(region, account string) *resolver {
	return &resolver{
		region: region, account: account,
		tableNames: map[string]string{}, streamARNs: map[string]string{},
		apiIDs: map[string]string{}, apiEndpoint: map[string]string{},
		functions: map[string]string{}, queues: map[string]string{},
	}
}

func (r *resolver) Ref(id string, res cfn.Resource) (any, error) {
	switch res.Type {
	case "AWS::DynamoDB::Table":
		return r.tableNames[id], nil
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		return r.functions[id], nil
	case "AWS::ApiGatewayV2::Api", "AWS::Serverless::HttpApi", "AWS::Serverless::Api":
		return r.apiIDs[id], nil
	case "AWS::SQS::Queue":
		return fmt.Sprintf("%s/%s/%s", r.sqsURL, r.account, r.queues[id]), nil
	}
	// Routes, integrations, authorizers, deployments: API Gateway returns an
	// opaque id; the logical id lets the stack follow "integrations/${X}".
	return id, nil
}

func (r *resolver) GetAtt(id string, res cfn.Resource, attr string) (any, error) {
	switch res.Type {
	case "AWS::DynamoDB::Table":
		switch attr {
		case "Arn":
			return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", r.region, r.account, r.tableNames[id]), nil
		case "StreamArn":
			if arn := r.streamARNs[id]; arn != "" {
				return arn, nil
			}
			return nil, fmt.Errorf("table %s has no stream (StreamSpecification)", id)
		}
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		if attr == "Arn" {
			return r.functionARN(r.functions[id]), nil
		}
	case "AWS::ApiGatewayV2::Api":
		switch attr {
		case "ApiEndpoint":
			return r.apiEndpoint[id], nil
		case "ApiId":
			return r.apiIDs[id], nil
		}
	case "AWS::SQS::Queue":
		switch attr {
		case "Arn":
			return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", r.region, r.account, r.queues[id]), nil
		case "QueueName":
			return r.queues[id], nil
		case "QueueUrl":
			return r.Ref(id, res)
		}
	}
	return fmt.Sprintf("arn:aws:local:%s:%s:%s/%s", r.region, r.account, id, attr), nil
}

func (r *resolver) functionARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", r.region, r.account, name)
}

// functionByARN finds the function an integration or authorizer URI names:
// arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations,
// or a plain function ARN or name.
func (r *resolver) functionByARN(uri string) (string, bool) {
	for _, name := range r.functions {
		if strings.Contains(uri, r.functionARN(name)) || uri == name {
			return name, true
		}
	}
	return "", false
}

// executeAPIURL matches the public URL of an API Gateway stage, so a
// function told to call its own WebSocket API reaches the local one.
var executeAPIURL = regexp.MustCompile(`^(?:https|wss)://([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com(/.*)?$`)

// localizeURL rewrites an execute-api URL of an API in this stack to its
// local endpoint (management calls go to http://, not https://).
func (r *resolver) localizeURL(v string) string {
	m := executeAPIURL.FindStringSubmatch(v)
	if m == nil {
		return v
	}
	for id, apiID := range r.apiIDs {
		if apiID != m[1] {
			continue
		}
		base := r.apiEndpoint[id]
		base = strings.Replace(base, "ws://", "http://", 1)
		return base + m[2]
	}
	return v
}
