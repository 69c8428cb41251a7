package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/groupcast/groupcast/internal/cfn"
	"github.com/groupcast/groupcast/internal/devstack/dynamo"
)

// Resource types the stack emulates, and those it accepts but has no use
// for locally (with the reason). Anything else is refused by name, so a
// template never half-runs without saying why.
var (
	emulated = map[string]bool{
		"AWS::Serverless::Function":        true,
		"AWS::Serverless::HttpApi":         true,
		"AWS::DynamoDB::Table":             true,
		"AWS::ApiGatewayV2::Api":           true,
		"AWS::ApiGatewayV2::Route":         true,
		"AWS::ApiGatewayV2::Integration":   true,
		"AWS::ApiGatewayV2::Authorizer":    true,
		"AWS::ApiGatewayV2::Stage":         true,
		"AWS::ApiGatewayV2::RouteResponse": true,
		"AWS::SQS::Queue":                  true,
		"AWS::Lambda::EventSourceMapping":  true, // DynamoDB streams and SQS queues
	}
	ignored = map[string]string{
		"AWS::ApiGatewayV2::Deployment":          "routes are live as soon as the stack starts",
		"AWS::ApiGatewayV2::IntegrationResponse": "proxy integrations have none",
		"AWS::Lambda::Permission":                "the local stack invokes functions only from the template's own integrations",
		"AWS::IAM::Role":                         "functions' permissions come from their Policies (SAM's execution role)",
		"AWS::IAM::Policy":                       "functions' permissions come from their Policies (SAM's execution role)",
		"AWS::Logs::LogGroup":                    "function logs go to the terminal",
		"AWS::Cognito::UserPool":                 "the local token issuer replaces it",
		"AWS::Cognito::UserPoolClient":           "the local token issuer replaces it",
		"AWS::Cognito::UserPoolDomain":           "the local token issuer replaces it",
		"AWS::CloudWatch::Alarm":                 "no metrics locally",
		"AWS::ApiGatewayV2::ApiMapping":          "no custom domains locally",
		"AWS::ApiGatewayV2::DomainName":          "no custom domains locally",
		"AWS::Lambda::EventInvokeConfig":         "asynchronous invocation settings do not apply locally",
	}
)

// checkSupported refuses the first created resource of a type the stack
// neither emulates nor may safely ignore.
func checkSupported(ctx *cfn.Context) error {
	t := ctx.Template()
	ids := slices.Sorted(maps.Keys(t.Resources))
	for _, id := range ids {
		on, err := ctx.Enabled(id)
		if err != nil {
			return err
		}
		typ := t.Resources[id].Type
		if !on || emulated[typ] || ignored[typ] != "" {
			continue
		}
		return fmt.Errorf("resource %s: type %s is not supported by the local stack", id, typ)
	}
	return nil
}

// tableSpec turns an AWS::DynamoDB::Table's resolved properties into the
// CreateTable call DynamoDB's API takes. The property names of the two
// mostly agree; the differences are handled here.
func tableSpec(id, name string, props map[string]any) (dynamo.TableSpec, error) {
	p := map[string]any{}
	for k, v := range props {
		switch k {
		case "TimeToLiveSpecification", "SSESpecification", "PointInTimeRecoverySpecification",
			"ContributorInsightsSpecification", "KinesisStreamSpecification", "ImportSourceSpecification",
			"TableName", "DeletionProtectionEnabled", "ResourcePolicy":
			continue
		}
		p[k] = v
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return dynamo.TableSpec{}, fmt.Errorf("table %s: %w", id, err)
	}
	var in dynamodb.CreateTableInput
	if err := json.Unmarshal(raw, &in); err != nil {
		return dynamo.TableSpec{}, fmt.Errorf("table %s: properties: %w", id, err)
	}
	in.TableName = &name
	if in.StreamSpecification != nil && in.StreamSpecification.StreamViewType != "" {
		enabled := true
		in.StreamSpecification.StreamEnabled = &enabled
	}
	if in.BillingMode == "" && in.ProvisionedThroughput == nil {
		in.BillingMode = types.BillingModePayPerRequest
	}
	spec := dynamo.TableSpec{Input: &in}
	if ttl, ok := props["TimeToLiveSpecification"].(map[string]any); ok && truthy(ttl["Enabled"]) {
		spec.TTLAttribute, _ = ttl["AttributeName"].(string)
	}
	return spec, nil
}

// function is one AWS::Serverless::Function as the stack runs it.
type function struct {
	ID       string
	Package  string // relative to the repo root, e.g. ./functions/api
	Env      map[string]string
	Timeout  time.Duration
	MemoryMB int
	Events   map[string]any
	// Credentials are the function's own (its execution role's).
	Credentials aws.Credentials
}

func functionPlan(id string, props map[string]any) (function, error) {
	f := function{ID: id, Env: map[string]string{}, Timeout: 3 * time.Second, MemoryMB: 128}
	codeURI, ok := props["CodeUri"].(string)
	if !ok || codeURI == "" {
		return f, fmt.Errorf("function %s: CodeUri must be a local directory (S3 code is not supported locally)", id)
	}
	f.Package = "./" + filepath.ToSlash(filepath.Clean(codeURI))
	if rt, _ := props["Runtime"].(string); rt != "" && !strings.HasPrefix(rt, "provided") && rt != "go1.x" {
		return f, fmt.Errorf("function %s: runtime %s is not supported locally (only Go on provided.al2023/provided.al2)", id, rt)
	}
	if v, ok := number(props["Timeout"]); ok {
		f.Timeout = time.Duration(v * float64(time.Second))
	}
	if v, ok := number(props["MemorySize"]); ok {
		f.MemoryMB = int(v)
	}
	if env, ok := props["Environment"].(map[string]any); ok {
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			s, err := scalarString(v)
			if err != nil {
				return f, fmt.Errorf("function %s: Environment.Variables.%s: %w", id, k, err)
			}
			f.Env[k] = s
		}
	}
	// Under the JSON log format Lambda passes ApplicationLogLevel (default
	// INFO) to the code as AWS_LAMBDA_LOG_LEVEL.
	// https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html
	if lc, ok := props["LoggingConfig"].(map[string]any); ok && lc["LogFormat"] == "JSON" {
		level, _ := lc["ApplicationLogLevel"].(string)
		if level == "" {
			level = "INFO"
		}
		f.Env["AWS_LAMBDA_LOG_LEVEL"] = level
	}
	f.Events, _ = props["Events"].(map[string]any)
	return f, nil
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("must resolve to a string, got %T", v)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
