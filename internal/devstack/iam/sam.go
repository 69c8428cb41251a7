package iam

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/groupcast/groupcast/internal/cfn"
)

// policyTemplatesJSON is samtranslator/policy_templates_data/policy_templates.json
// from aws-sam-translator 1.110.0, copied unchanged: the SAM policy
// templates (DynamoDBCrudPolicy, SQSSendMessagePolicy, ...) exactly as the
// SAM transform expands them.
//
//go:embed testdata/policy_templates.json
var policyTemplatesJSON []byte

type policyTemplate struct {
	Parameters map[string]any
	Definition map[string]any
}

var (
	templatesOnce sync.Once
	templates     map[string]policyTemplate
	templatesErr  error
)

func samTemplates() (map[string]policyTemplate, error) {
	templatesOnce.Do(func() {
		var f struct{ Templates map[string]policyTemplate }
		templatesErr = json.Unmarshal(policyTemplatesJSON, &f)
		templates = f.Templates
	})
	return templates, templatesErr
}

// managedPolicies are the AWS managed policies SAM attaches on its own (and
// that a template may name), with their documents from AWS's managed
// policy reference. Only what a Lambda function's role commonly carries.
var managedPolicies = map[string][]Statement{
	// https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html
	"service-role/AWSLambdaBasicExecutionRole": {{Effect: "Allow",
		Action:   []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
		Resource: []string{"*"}}},
	// https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSXrayWriteOnlyAccess.html
	"AWSXrayWriteOnlyAccess": {{Effect: "Allow",
		Action:   []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"},
		Resource: []string{"*"}}},
	// https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaDynamoDBExecutionRole.html
	"service-role/AWSLambdaDynamoDBExecutionRole": {{Effect: "Allow",
		Action:   []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
		Resource: []string{"*"}}},
	// https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaSQSQueueExecutionRole.html
	"service-role/AWSLambdaSQSQueueExecutionRole": {{Effect: "Allow",
		Action:   []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
		Resource: []string{"*"}}},
}

// managedPolicy finds a managed policy by ARN
// (arn:aws:iam::aws:policy/service-role/X) or by the bare name SAM accepts.
func managedPolicy(ref string) ([]Statement, bool) {
	name := ref
	if i := strings.Index(ref, ":iam::aws:policy/"); i >= 0 {
		name = ref[i+len(":iam::aws:policy/"):]
	}
	if st, ok := managedPolicies[name]; ok {
		return st, true
	}
	st, ok := managedPolicies["service-role/"+name]
	return st, ok
}

// Resolver evaluates the CloudFormation intrinsics left in an expanded
// policy template (Fn::Sub with ${AWS::Region} and friends).
type Resolver func(any) (any, error)

// SAMFunctionStatements returns the statements of the execution role the
// SAM transform creates for an AWS::Serverless::Function, from its
// resolved properties: AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess
// with Tracing: Active, the event sources' managed policies, and each entry
// of Policies (a managed policy name or ARN, a policy template, or an
// inline document). It mirrors samtranslator 1.110's sam_resources.py
// (_construct_role) and eventsources/pull.py (get_policy_arn).
func SAMFunctionStatements(props map[string]any, resolve Resolver) ([]Statement, error) {
	if _, ok := props["Role"]; ok {
		// SAM then creates no role; the role is another resource.
		return nil, errors.New("a function Role is not supported by the local stack's IAM: declare the permissions with Policies")
	}
	if _, ok := props["PermissionsBoundary"]; ok {
		return nil, fmt.Errorf("PermissionsBoundary is not supported by the local stack's IAM")
	}
	var out []Statement
	add := func(ref string) error {
		st, ok := managedPolicy(ref)
		if !ok {
			return fmt.Errorf("managed policy %s is not known to the local stack (internal/devstack/iam managedPolicies)", ref)
		}
		out = append(out, st...)
		return nil
	}
	if err := add("AWSLambdaBasicExecutionRole"); err != nil {
		return nil, err
	}
	// Any Tracing but Disabled adds the X-Ray policy (sam_resources.py,
	// _construct_role; xray_utils.py names it for the aws partition).
	if tr, ok := props["Tracing"]; ok && tr != "Disabled" {
		if err := add("AWSXrayWriteOnlyAccess"); err != nil {
			return nil, err
		}
	}
	events, _ := props["Events"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(events)) {
		ev, _ := events[name].(map[string]any)
		switch typ, _ := ev["Type"].(string); typ {
		case "DynamoDB":
			if err := add("service-role/AWSLambdaDynamoDBExecutionRole"); err != nil {
				return nil, err
			}
		case "SQS":
			if err := add("service-role/AWSLambdaSQSQueueExecutionRole"); err != nil {
				return nil, err
			}
		}
	}
	var policies []any
	switch p := props["Policies"].(type) {
	case nil:
	case []any:
		policies = p
	default:
		policies = []any{p}
	}
	for i, p := range policies {
		st, err := samPolicy(p, resolve)
		if err != nil {
			return nil, fmt.Errorf("policies[%d]: %w", i, err)
		}
		out = append(out, st...)
	}
	return out, nil
}

func samPolicy(p any, resolve Resolver) ([]Statement, error) {
	switch x := p.(type) {
	case string:
		st, ok := managedPolicy(x)
		if !ok {
			return nil, fmt.Errorf("managed policy %s is not known to the local stack (internal/devstack/iam managedPolicies)", x)
		}
		return st, nil
	case map[string]any:
		if _, ok := x["Statement"]; ok {
			return ParseDocument(x)
		}
		if len(x) != 1 {
			return nil, fmt.Errorf("want an inline policy document or one policy template, got keys %v", slices.Sorted(maps.Keys(x)))
		}
		for name, args := range x {
			return expandTemplate(name, args, resolve)
		}
	}
	return nil, fmt.Errorf("unsupported policy %T", p)
}

// expandTemplate does what samtranslator's policy template processor does:
// replace each {"Ref": Parameter} in the definition with the value given.
func expandTemplate(name string, args any, resolve Resolver) ([]Statement, error) {
	all, err := samTemplates()
	if err != nil {
		return nil, fmt.Errorf("policy templates: %w", err)
	}
	tmpl, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("%s is not a SAM policy template", name)
	}
	given, _ := args.(map[string]any)
	for param := range tmpl.Parameters {
		if _, ok := given[param]; !ok {
			return nil, fmt.Errorf("%s: missing parameter %s", name, param)
		}
	}
	def, err := substituteRefs(tmpl.Definition, given)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	resolved, err := resolve(def)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	st, err := ParseDocument(resolved)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return st, nil
}

// substituteRefs returns a copy of a policy template's definition with each
// {"Ref": Parameter} replaced by the value given for it. The other
// intrinsics stay, with their arguments substituted, for resolve; the
// shared template is never modified.
func substituteRefs(def any, params map[string]any) (any, error) {
	var onCall func(fn string, arg any, path string) (any, error)
	onCall = func(fn string, arg any, path string) (any, error) {
		if name, ok := arg.(string); ok && fn == "Ref" {
			if val, ok := params[name]; ok {
				return val, nil
			}
		}
		a, err := cfn.Rewrite(arg, path, onCall)
		if err != nil {
			return nil, err
		}
		return map[string]any{fn: a}, nil
	}
	return cfn.Rewrite(def, "", onCall)
}
