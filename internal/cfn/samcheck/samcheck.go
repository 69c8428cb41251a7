// Package samcheck checks that a SAM template can actually be built and
// run: function code folders exist and hold Go main packages, WebSocket
// routes reach functions through integrations, HTTP events name real APIs,
// stream event sources are safe against poison records, and environment
// variables resolve to plain values. The template test runs it on the
// repository's template.yaml, and the local stack runs it at start-up so a
// bad template fails with a message naming the resource.
package samcheck

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/groupcast/groupcast/internal/cfn"
)

// Options configures Check.
type Options struct {
	// Dir is the directory CodeUri paths are relative to. Empty means the
	// template's own directory (cfn.Template.Dir).
	Dir string
	// Parameters overrides parameter defaults when resolving environment
	// variables.
	Parameters map[string]string
	Pseudo     cfn.Pseudo
	// Resources resolves Ref and Fn::GetAtt of resources; nil uses
	// placeholders (a Ref gives the logical id, a GetAtt "Id.Attribute").
	Resources cfn.ResourceResolver
}

const (
	serverlessFunction = "AWS::Serverless::Function"
	lambdaFunction     = "AWS::Lambda::Function"
)

// Check runs every check except CheckStreamMappings' policy and returns all
// problems found, joined; nil means the template is runnable.
func Check(t *cfn.Template, opts Options) error {
	if opts.Dir == "" {
		opts.Dir = t.Dir
	}
	var errs []error
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkCode(t, opts.Dir)...)
	errs = append(errs, checkEvents(t)...)
	errs = append(errs, checkWebSocket(t)...)
	errs = append(errs, checkEnvironment(t, opts)...)
	return errors.Join(errs...)
}

func problem(path, format string, args ...any) error {
	return &cfn.Error{Path: path, Err: fmt.Errorf(format, args...)}
}

// checkCode checks that each function's CodeUri folder exists and, for Go
// functions (Metadata BuildMethod go1.x), holds a main package.
func checkCode(t *cfn.Template, dir string) []error {
	var errs []error
	for _, id := range t.ResourceIDs(serverlessFunction) {
		r := t.Resources[id]
		path := "Resources." + id + ".Properties.CodeUri"
		if _, inline := r.Properties["InlineCode"]; inline {
			continue
		}
		if _, image := r.Properties["ImageUri"]; image {
			continue
		}
		raw, ok := r.Properties["CodeUri"]
		if !ok {
			errs = append(errs, problem(path, "missing: a function needs CodeUri, InlineCode or ImageUri"))
			continue
		}
		codeURI, ok := raw.(string)
		if !ok || strings.HasPrefix(codeURI, "s3://") {
			// An S3 location or an intrinsic: nothing local to check.
			continue
		}
		folder := codeURI
		if !filepath.IsAbs(folder) {
			folder = filepath.Join(dir, folder)
		}
		info, err := os.Stat(folder)
		if err != nil || !info.IsDir() {
			errs = append(errs, problem(path, "folder %s does not exist", codeURI))
			continue
		}
		if buildMethod, _ := r.Metadata["BuildMethod"].(string); buildMethod == "go1.x" {
			if err := hasMainPackage(folder); err != nil {
				errs = append(errs, problem(path, "%s: %v", codeURI, err))
			}
		}
	}
	return errs
}

func hasMainPackage(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly)
		if err != nil {
			return fmt.Errorf("parse %s: %w", filepath.Base(f), err)
		}
		if parsed.Name.Name == "main" {
			return nil
		}
		names = append(names, parsed.Name.Name)
	}
	if len(names) == 0 {
		return errors.New("holds no Go files (BuildMethod go1.x builds a main package here)")
	}
	return fmt.Errorf("holds package %s, not main", names[0])
}

// checkEvents checks the API events of functions: each names an API of the
// right type and gives a path and method, and no two claim the same route.
func checkEvents(t *cfn.Template) []error {
	var errs []error
	routes := map[string]string{}
	for _, fn := range t.ResourceIDs(serverlessFunction) {
		events, _ := t.Resources[fn].Properties["Events"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(events)) {
			ev, _ := events[name].(map[string]any)
			path := "Resources." + fn + ".Properties.Events." + name
			typ, _ := ev["Type"].(string)
			props, _ := ev["Properties"].(map[string]any)
			var apiKey, apiType, implicit string
			switch typ {
			case "HttpApi":
				apiKey, apiType, implicit = "ApiId", "AWS::Serverless::HttpApi", "ServerlessHttpApi"
			case "Api":
				apiKey, apiType, implicit = "RestApiId", "AWS::Serverless::Api", "ServerlessRestApi"
			default:
				continue
			}
			api := implicit
			if ref, ok := props[apiKey]; ok {
				ids := t.References(ref)
				if len(ids) != 1 || t.Resources[ids[0]].Type != apiType {
					errs = append(errs, problem(path+".Properties."+apiKey, "must refer to one %s in this template", apiType))
					continue
				}
				api = ids[0]
			}
			method, _ := props["Method"].(string)
			route, _ := props["Path"].(string)
			if typ == "Api" && (method == "" || route == "") {
				errs = append(errs, problem(path, "an Api event needs Path and Method"))
				continue
			}
			if (method == "") != (route == "") {
				errs = append(errs, problem(path, "give both Path and Method, or neither (catch-all route)"))
				continue
			}
			key := api + " " + strings.ToUpper(method) + " " + route
			if prev, dup := routes[key]; dup {
				errs = append(errs, problem(path, "route %s %s on %s is also claimed by %s", strings.ToUpper(method), route, api, prev))
				continue
			}
			routes[key] = fn + ".Events." + name
		}
	}
	return errs
}

// checkWebSocket follows each ApiGatewayV2 route to its integration and
// on to a function, checks custom authorizers the same way, that API
// Gateway may invoke each of those functions, and that each deployment
// waits for all routes of its API.
func checkWebSocket(t *cfn.Template) []error {
	var errs []error
	invoked := map[string]string{} // function id -> first resource that invokes it
	routesByAPI := map[string][]string{}
	for _, id := range t.ResourceIDs("AWS::ApiGatewayV2::Route") {
		props := t.Resources[id].Properties
		path := "Resources." + id + ".Properties"
		api := singleRef(t, props["ApiId"], "AWS::ApiGatewayV2::Api")
		if api == "" {
			errs = append(errs, problem(path+".ApiId", "must refer to an AWS::ApiGatewayV2::Api in this template"))
		} else {
			routesByAPI[api] = append(routesByAPI[api], id)
		}
		target, ok := props["Target"]
		if !ok {
			errs = append(errs, problem(path, "route %v has no Target integration", props["RouteKey"]))
			continue
		}
		integ := singleRef(t, target, "AWS::ApiGatewayV2::Integration")
		if integ == "" {
			errs = append(errs, problem(path+".Target", "must be integrations/<an AWS::ApiGatewayV2::Integration in this template>"))
			continue
		}
		iprops := t.Resources[integ].Properties
		if iapi := singleRef(t, iprops["ApiId"], "AWS::ApiGatewayV2::Api"); api != "" && iapi != api {
			errs = append(errs, problem(path+".Target", "integration %s belongs to API %q, the route to %q", integ, iapi, api))
		}
		if typ, _ := iprops["IntegrationType"].(string); typ == "AWS_PROXY" || typ == "AWS" {
			if fn := functionRef(t, iprops["IntegrationUri"]); fn != "" {
				if _, seen := invoked[fn]; !seen {
					invoked[fn] = integ
				}
			} else if refs := t.References(iprops["IntegrationUri"]); len(refs) > 0 {
				errs = append(errs, problem("Resources."+integ+".Properties.IntegrationUri", "refers to %v, none of which is a function", refs))
			}
		}
		if auth, _ := props["AuthorizationType"].(string); auth == "CUSTOM" {
			authz := singleRef(t, props["AuthorizerId"], "AWS::ApiGatewayV2::Authorizer")
			if authz == "" {
				errs = append(errs, problem(path+".AuthorizerId", "AuthorizationType CUSTOM needs an AWS::ApiGatewayV2::Authorizer in this template"))
				continue
			}
			fn := functionRef(t, t.Resources[authz].Properties["AuthorizerUri"])
			if fn == "" {
				errs = append(errs, problem("Resources."+authz+".Properties.AuthorizerUri", "must refer to a function in this template"))
				continue
			}
			if _, seen := invoked[fn]; !seen {
				invoked[fn] = authz
			}
		}
	}
	errs = append(errs, checkPermissions(t, invoked)...)
	for _, id := range t.ResourceIDs("AWS::ApiGatewayV2::Deployment") {
		r := t.Resources[id]
		api := singleRef(t, r.Properties["ApiId"], "AWS::ApiGatewayV2::Api")
		var missing []string
		for _, route := range routesByAPI[api] {
			if !slices.Contains(r.DependsOn, route) {
				missing = append(missing, route)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, problem("Resources."+id+".DependsOn", "must include every route of %s, missing %v (a deployment only publishes routes that exist when it is created)", api, missing))
		}
	}
	return errs
}

// checkPermissions checks that each function API Gateway invokes has an
// AWS::Lambda::Permission for apigateway.amazonaws.com.
func checkPermissions(t *cfn.Template, invoked map[string]string) []error {
	allowed := map[string]bool{}
	for _, id := range t.ResourceIDs("AWS::Lambda::Permission") {
		props := t.Resources[id].Properties
		if principal, _ := props["Principal"].(string); principal != "apigateway.amazonaws.com" {
			continue
		}
		if fn := functionRef(t, props["FunctionName"]); fn != "" {
			allowed[fn] = true
		}
	}
	var errs []error
	for _, fn := range slices.Sorted(maps.Keys(invoked)) {
		if !allowed[fn] {
			errs = append(errs, problem("Resources."+fn, "invoked by %s but no AWS::Lambda::Permission lets apigateway.amazonaws.com invoke it", invoked[fn]))
		}
	}
	return errs
}

// singleRef returns the one resource of type typ that v refers to, or "".
func singleRef(t *cfn.Template, v any, typ string) string {
	var found string
	for _, id := range t.References(v) {
		if t.Resources[id].Type == typ {
			if found != "" {
				return ""
			}
			found = id
		}
	}
	return found
}

func functionRef(t *cfn.Template, v any) string {
	if id := singleRef(t, v, serverlessFunction); id != "" {
		return id
	}
	return singleRef(t, v, lambdaFunction)
}

// checkEnvironment resolves each created function's environment variables
// and checks that each is a plain value. CloudFormation turns numbers and
// booleans into strings; a list, a mapping or null is a template mistake.
func checkEnvironment(t *cfn.Template, opts Options) []error {
	resources := opts.Resources
	if resources == nil {
		resources = placeholders{}
	}
	ctx, err := cfn.NewContext(t, cfn.Options{Parameters: opts.Parameters, Pseudo: opts.Pseudo, Resources: resources})
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, id := range append(t.ResourceIDs(serverlessFunction), t.ResourceIDs(lambdaFunction)...) {
		enabled, err := ctx.Enabled(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !enabled {
			continue
		}
		env, ok := t.Resources[id].Properties["Environment"]
		if !ok {
			continue
		}
		resolved, err := cfn.Resolve(env, ctx)
		if err != nil {
			errs = append(errs, prefix("Resources."+id+".Properties.Environment", err))
			continue
		}
		vars, _ := resolved.(map[string]any)
		vm, _ := vars["Variables"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(vm)) {
			switch vm[name].(type) {
			case string, int, float64, bool:
			default:
				errs = append(errs, problem("Resources."+id+".Properties.Environment.Variables."+name,
					"resolves to %v, want a string", vm[name]))
			}
		}
	}
	return errs
}

func prefix(path string, err error) error {
	var e *cfn.Error
	if errors.As(err, &e) {
		p := path
		if e.Path != "" {
			p += "." + e.Path
		}
		return &cfn.Error{Path: p, Err: e.Err}
	}
	return &cfn.Error{Path: path, Err: err}
}

// placeholders stands in for real resources when only the shape of the
// resolved values matters.
type placeholders struct{}

func (placeholders) Ref(id string, _ cfn.Resource) (any, error) { return id, nil }

func (placeholders) GetAtt(id string, _ cfn.Resource, attr string) (any, error) {
	return id + "." + attr, nil
}

// CheckStreamMappings checks every DynamoDB or Kinesis stream event source
// (SAM events and AWS::Lambda::EventSourceMapping) for the settings that
// keep one poison record from blocking a shard: with Lambda's defaults a
// failing batch is retried until its records expire (24 hours on DynamoDB
// Streams) and nothing after it on the shard is processed.
func CheckStreamMappings(t *cfn.Template) error {
	var errs []error
	for _, fn := range t.ResourceIDs(serverlessFunction) {
		events, _ := t.Resources[fn].Properties["Events"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(events)) {
			ev, _ := events[name].(map[string]any)
			if typ, _ := ev["Type"].(string); typ == "DynamoDB" || typ == "Kinesis" {
				props, _ := ev["Properties"].(map[string]any)
				errs = append(errs, checkStreamSettings("Resources."+fn+".Properties.Events."+name+".Properties", props)...)
			}
		}
	}
	for _, id := range t.ResourceIDs("AWS::Lambda::EventSourceMapping") {
		props := t.Resources[id].Properties
		if _, ok := props["StartingPosition"]; ok { // only stream sources have one
			errs = append(errs, checkStreamSettings("Resources."+id+".Properties", props)...)
		}
	}
	return errors.Join(errs...)
}

func checkStreamSettings(path string, props map[string]any) []error {
	var errs []error
	if b, _ := props["BisectBatchOnFunctionError"].(bool); !b {
		errs = append(errs, problem(path+".BisectBatchOnFunctionError", "must be true, so a failing batch is split down to the bad record"))
	}
	for _, key := range []string{"MaximumRetryAttempts", "MaximumRecordAgeInSeconds"} {
		v, ok := props[key]
		if !ok {
			errs = append(errs, problem(path+"."+key, "must be set: the default (-1) retries until the records expire"))
		} else if n, isInt := v.(int); isInt && n < 0 {
			errs = append(errs, problem(path+"."+key, "is %d: negative means unlimited", n))
		}
	}
	types, _ := props["FunctionResponseTypes"].([]any)
	if !slices.Contains(types, any("ReportBatchItemFailures")) {
		errs = append(errs, problem(path+".FunctionResponseTypes", "must include ReportBatchItemFailures, so one failed record does not redo the batch"))
	}
	dest, _ := props["DestinationConfig"].(map[string]any)
	onFailure, _ := dest["OnFailure"].(map[string]any)
	if _, ok := onFailure["Destination"]; !ok {
		errs = append(errs, problem(path+".DestinationConfig.OnFailure.Destination", "must be set, so records that exhaust their retries are kept rather than dropped"))
	}
	if _, ok := props["StartingPosition"]; !ok {
		errs = append(errs, problem(path+".StartingPosition", "must be set"))
	}
	return errs
}
