package cfn

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// attributes lists the Fn::GetAtt attributes of the resource types this
// package knows. A type missing here accepts any attribute: the check is
// there to catch typos in common types, not to mirror the whole
// CloudFormation specification.
var attributes = map[string][]string{
	"AWS::DynamoDB::Table":             {"Arn", "StreamArn"},
	"AWS::Serverless::SimpleTable":     {"Arn", "StreamArn"},
	"AWS::Serverless::Function":        {"Arn", "Alias", "Version", "SnapStartResponse", "SnapStartResponse.ApplyOn", "SnapStartResponse.OptimizationStatus"},
	"AWS::Lambda::Function":            {"Arn", "SnapStartResponse", "SnapStartResponse.ApplyOn", "SnapStartResponse.OptimizationStatus"},
	"AWS::Serverless::HttpApi":         {"ApiEndpoint", "ApiId"},
	"AWS::ApiGatewayV2::Api":           {"ApiEndpoint", "ApiId"},
	"AWS::ApiGatewayV2::Authorizer":    {"AuthorizerId"},
	"AWS::ApiGatewayV2::Integration":   {"IntegrationId"},
	"AWS::ApiGatewayV2::Route":         {"RouteId"},
	"AWS::ApiGatewayV2::RouteResponse": {"RouteResponseId"},
	"AWS::ApiGatewayV2::Deployment":    {"DeploymentId"},
	"AWS::Serverless::Api":             {"RootResourceId", "RestApiId"},
	"AWS::ApiGateway::RestApi":         {"RootResourceId", "RestApiId"},
	"AWS::SQS::Queue":                  {"Arn", "QueueName", "QueueUrl"},
	"AWS::SNS::Topic":                  {"TopicArn", "TopicName"},
	"AWS::S3::Bucket":                  {"Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL"},
	"AWS::IAM::Role":                   {"Arn", "RoleId"},
	"AWS::Logs::LogGroup":              {"Arn"},
	"AWS::Cognito::UserPool":           {"Arn", "ProviderName", "ProviderURL", "UserPoolId"},
	"AWS::Cognito::UserPoolClient":     {"ClientId", "ClientSecret", "Name"},
	"AWS::Events::Rule":                {"Arn"},
	"AWS::Serverless::StateMachine":    {"Arn", "Name"},
	"AWS::StepFunctions::StateMachine": {"Arn", "Name"},
}

// AttributeKnown reports whether typ plausibly has the Fn::GetAtt
// attribute attr: true for listed attributes and for unlisted types.
func AttributeKnown(typ, attr string) bool {
	attrs, ok := attributes[typ]
	return !ok || slices.Contains(attrs, attr)
}

// implicitResources returns the logical ids SAM generates for a template
// and that templates may refer to: <Function>Role for functions without a
// Role, <Function>Alias with AutoPublishAlias, and the implicit APIs.
func implicitResources(t *Template) map[string]bool {
	ids := map[string]bool{"ServerlessRestApi": true, "ServerlessHttpApi": true}
	for _, id := range t.ResourceIDs("AWS::Serverless::Function") {
		props := t.Resources[id].Properties
		if _, ok := props["Role"]; !ok {
			ids[id+"Role"] = true
		}
		if _, ok := props["AutoPublishAlias"]; ok {
			ids[id+"Alias"] = true
		}
	}
	return ids
}

// Validate checks, without evaluating anything, that every reference in the
// template has a target: Ref and Fn::Sub variables name a parameter, pseudo
// parameter or resource; Fn::GetAtt names a resource and an attribute its
// type has; DependsOn names resources; Condition and Fn::If name declared
// conditions; Fn::FindInMap names a declared mapping. Both branches of every
// Fn::If are checked. All problems are returned, joined.
func (t *Template) Validate() error {
	v := &validator{t: t, implicit: implicitResources(t)}
	for _, name := range slices.Sorted(maps.Keys(t.Conditions)) {
		v.condition(t.Conditions[name], "Conditions."+name)
	}
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[id]
		path := "Resources." + id
		if r.Condition != "" {
			v.conditionName(r.Condition, path+".Condition")
		}
		for i, dep := range r.DependsOn {
			if _, ok := t.Resources[dep]; !ok || dep == id {
				v.fail(joinPath(path+".DependsOn", i), fmt.Errorf("DependsOn %q: no other resource with that name", dep))
			}
		}
		v.value(r.Properties, path+".Properties")
	}
	for _, name := range slices.Sorted(maps.Keys(t.Outputs)) {
		o := t.Outputs[name]
		path := "Outputs." + name
		if o.Condition != "" {
			v.conditionName(o.Condition, path+".Condition")
		}
		v.value(o.Value, path+".Value")
		v.value(o.Export, path+".Export")
	}
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Error() < v.errs[j].Error() })
	return errors.Join(v.errs...)
}

type validator struct {
	t        *Template
	implicit map[string]bool
	errs     []error
}

func (v *validator) fail(path string, err error) {
	v.errs = append(v.errs, &Error{Path: path, Err: err})
}

func (v *validator) conditionName(name, path string) {
	if _, ok := v.t.Conditions[name]; !ok {
		v.fail(path, fmt.Errorf("no condition named %q", name))
	}
}

// condition checks a Conditions expression.
func (v *validator) condition(expr any, path string) {
	fn, arg, ok := singleKey(expr)
	if !ok {
		v.fail(path, errors.New("a condition must be one of Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition"))
		return
	}
	switch fn {
	case "Condition":
		name, _ := arg.(string)
		v.conditionName(name, path)
	case "Fn::Equals":
		if l, ok := arg.([]any); !ok || len(l) != 2 {
			v.fail(path, errors.New("Fn::Equals takes a list of 2 values"))
			return
		}
		v.value(arg, joinPath(path, fn))
	case "Fn::Not", "Fn::And", "Fn::Or":
		l, ok := arg.([]any)
		if !ok || len(l) == 0 {
			v.fail(path, fmt.Errorf("%s takes a list of conditions", fn))
			return
		}
		for i, e := range l {
			v.condition(e, joinPath(joinPath(path, fn), i))
		}
	default:
		v.fail(path, fmt.Errorf("%s is not a condition function", fn))
	}
}

// value walks a property value and checks the intrinsics in it.
func (v *validator) value(val any, path string) {
	visitCalls(val, path, v.intrinsic)
}

func (v *validator) intrinsic(fn string, arg any, path string) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			v.fail(path, fmt.Errorf("%s takes a name, got %s", fn, kindOf(arg)))
			return
		}
		if err := v.refTarget(name); err != nil {
			v.fail(path, fmt.Errorf("%s: %w", fn, err))
		}
	case "Fn::GetAtt":
		v.getAtt(arg, path)
	case "Fn::Sub":
		format, vars, err := subArgs(arg)
		if err != nil {
			v.fail(path, fmt.Errorf("Fn::Sub: %w", err))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			v.value(vars[k], joinPath(path, k))
		}
		names, err := subVariables(format)
		if err != nil {
			v.fail(path, fmt.Errorf("Fn::Sub: %w", err))
			return
		}
		for _, name := range names {
			if _, local := vars[name]; local {
				continue
			}
			if err := v.subTarget(name); err != nil {
				v.fail(path, fmt.Errorf("Fn::Sub ${%s}: %w", name, err))
			}
		}
	case "Fn::If":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			v.fail(path, errors.New("Fn::If takes [condition, value if true, value if false]"))
			return
		}
		name, _ := l[0].(string)
		v.conditionName(name, joinPath(path, "Fn::If[0]"))
		v.value(l[1], joinPath(path, "Fn::If[1]"))
		v.value(l[2], joinPath(path, "Fn::If[2]"))
	case "Fn::FindInMap":
		l, ok := arg.([]any)
		if !ok || len(l) < 3 || len(l) > 4 {
			v.fail(path, errors.New("Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey]"))
			return
		}
		if name, ok := l[0].(string); ok {
			if _, found := v.t.Mappings[name]; !found {
				v.fail(path, fmt.Errorf("Fn::FindInMap: no mapping named %q", name))
			}
		}
		v.value(l, joinPath(path, fn))
	case "Fn::Join", "Fn::Select", "Fn::Split", "Fn::GetAZs", "Fn::ImportValue", "Fn::Base64",
		"Fn::Cidr", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Transform":
		v.value(arg, joinPath(path, fn))
	default:
		v.fail(path, fmt.Errorf("unsupported intrinsic function %s", fn))
	}
}

func (v *validator) getAtt(arg any, path string) {
	var id, attr string
	switch a := arg.(type) {
	case string:
		var found bool
		if id, attr, found = strings.Cut(a, "."); !found {
			v.fail(path, fmt.Errorf("Fn::GetAtt %q: want Resource.Attribute", a))
			return
		}
	case []any:
		if len(a) != 2 {
			v.fail(path, errors.New("Fn::GetAtt takes [Resource, Attribute]"))
			return
		}
		id, _ = a[0].(string)
		// The attribute may itself be an intrinsic (Ref to a parameter);
		// only a literal one can be checked against the type.
		attr, _ = a[1].(string)
		v.value(a[1], joinPath(path, "Fn::GetAtt[1]"))
	default:
		v.fail(path, errors.New("Fn::GetAtt takes [Resource, Attribute] or \"Resource.Attribute\""))
		return
	}
	if err := v.attTarget(id, attr); err != nil {
		v.fail(path, fmt.Errorf("Fn::GetAtt: %w", err))
	}
}

func (v *validator) refTarget(name string) error {
	if _, ok := v.t.Parameters[name]; ok {
		return nil
	}
	if IsPseudoParameter(name) {
		return nil
	}
	if _, ok := v.t.Resources[name]; ok || v.implicit[name] {
		return nil
	}
	return fmt.Errorf("%q is not a parameter, pseudo parameter or resource", name)
}

func (v *validator) subTarget(name string) error {
	if id, attr, ok := strings.Cut(name, "."); ok {
		return v.attTarget(id, attr)
	}
	if name == "AWS::NoValue" {
		return errors.New("AWS::NoValue cannot be substituted into a string")
	}
	return v.refTarget(name)
}

func (v *validator) attTarget(id, attr string) error {
	r, ok := v.t.Resources[id]
	if !ok {
		if v.implicit[id] {
			return nil
		}
		return fmt.Errorf("%s.%s: no resource named %q", id, attr, id)
	}
	if attr != "" && !AttributeKnown(r.Type, attr) {
		return fmt.Errorf("%s.%s: %s has no attribute %q", id, attr, r.Type, attr)
	}
	return nil
}

// References returns the logical ids of the resources that value refers to
// through Ref, Fn::GetAtt or Fn::Sub variables, sorted and without
// duplicates. Parameters and pseudo parameters are left out.
func (t *Template) References(value any) []string {
	seen := map[string]bool{}
	add := func(name string) {
		if _, ok := t.Resources[name]; ok {
			seen[name] = true
		}
	}
	var visit func(fn string, arg any, path string)
	visit = func(fn string, arg any, path string) {
		switch fn {
		case "Ref":
			name, _ := arg.(string)
			add(name)
		case "Fn::GetAtt":
			switch a := arg.(type) {
			case string:
				id, _, _ := strings.Cut(a, ".")
				add(id)
			case []any:
				if len(a) > 0 {
					id, _ := a[0].(string)
					add(id)
				}
			}
		case "Fn::Sub":
			format, vars, err := subArgs(arg)
			if err != nil {
				return
			}
			names, _ := subVariables(format)
			for _, n := range names {
				if _, local := vars[n]; !local {
					id, _, _ := strings.Cut(n, ".")
					add(id)
				}
			}
			visitCalls(vars, path, visit)
		default:
			visitCalls(arg, path, visit)
		}
	}
	visitCalls(value, "", visit)
	return slices.Sorted(maps.Keys(seen))
}
