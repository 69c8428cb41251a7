package samcheck

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/groupcast/groupcast/internal/cfn"
)

func loadProject(t *testing.T) *cfn.Template {
	t.Helper()
	tpl, err := cfn.Load(filepath.Join("testdata", "project", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func props(tpl *cfn.Template, id string) map[string]any { return tpl.Resources[id].Properties }

func event(tpl *cfn.Template, fn, name string) map[string]any {
	return props(tpl, fn)["Events"].(map[string]any)[name].(map[string]any)["Properties"].(map[string]any)
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(tpl *cfn.Template)
		want   string // "" means the template passes
	}{
		{"valid project", func(*cfn.Template) {}, ""},
		{"missing code folder", func(tpl *cfn.Template) {
			props(tpl, "Hello")["CodeUri"] = "functions/nope"
		}, "Resources.Hello.Properties.CodeUri: folder functions/nope does not exist"},
		{"folder without a main package", func(tpl *cfn.Template) {
			props(tpl, "Hello")["CodeUri"] = "functions/lib"
		}, "functions/lib: holds package lib, not main"},
		{"no CodeUri", func(tpl *cfn.Template) {
			delete(props(tpl, "Hello"), "CodeUri")
		}, "a function needs CodeUri, InlineCode or ImageUri"},
		{"unknown Ref", func(tpl *cfn.Template) {
			props(tpl, "Hello")["Role"] = map[string]any{"Ref": "Nope"}
		}, `Resources.Hello.Properties.Role: Ref: "Nope" is not a parameter`},
		{"route without Target", func(tpl *cfn.Template) {
			delete(props(tpl, "DefaultRoute"), "Target")
		}, "Resources.DefaultRoute.Properties: route $default has no Target integration"},
		{"route targets a non-integration", func(tpl *cfn.Template) {
			props(tpl, "DefaultRoute")["Target"] = map[string]any{"Fn::Sub": "integrations/${Queue}"}
		}, "Resources.DefaultRoute.Properties.Target: must be integrations/"},
		{"integration calls no function", func(tpl *cfn.Template) {
			props(tpl, "Integration")["IntegrationUri"] = map[string]any{"Fn::GetAtt": []any{"Queue", "Arn"}}
		}, "Resources.Integration.Properties.IntegrationUri: refers to [Queue], none of which is a function"},
		{"custom auth without authorizer", func(tpl *cfn.Template) {
			delete(props(tpl, "ConnectRoute"), "AuthorizerId")
		}, "AuthorizationType CUSTOM needs an AWS::ApiGatewayV2::Authorizer"},
		{"no invoke permission", func(tpl *cfn.Template) {
			delete(tpl.Resources, "Permission")
		}, "Resources.Hello: invoked by Integration but no AWS::Lambda::Permission"},
		{"deployment does not wait for a route", func(tpl *cfn.Template) {
			r := tpl.Resources["Deployment"]
			r.DependsOn = []string{"ConnectRoute"}
			tpl.Resources["Deployment"] = r
		}, "Resources.Deployment.DependsOn: must include every route of Ws, missing [DefaultRoute]"},
		{"HttpApi event names a non-API", func(tpl *cfn.Template) {
			event(tpl, "Hello", "Get")["ApiId"] = map[string]any{"Ref": "Table"}
		}, "Resources.Hello.Properties.Events.Get.Properties.ApiId: must refer to one AWS::Serverless::HttpApi"},
		{"duplicate route", func(tpl *cfn.Template) {
			events := props(tpl, "Hello")["Events"].(map[string]any)
			events["Again"] = map[string]any{"Type": "HttpApi", "Properties": map[string]any{
				"ApiId": map[string]any{"Ref": "Http"}, "Path": "/items/{id}", "Method": "get"}}
		}, "Events.Get: route GET /items/{id} on Http is also claimed by Hello.Events.Again"},
		{"environment variable resolves to a list", func(tpl *cfn.Template) {
			props(tpl, "Hello")["Environment"].(map[string]any)["Variables"].(map[string]any)["LIST"] =
				map[string]any{"Fn::Split": []any{",", "a,b"}}
		}, "Resources.Hello.Properties.Environment.Variables.LIST: resolves to [a b], want a string"},
		{"environment variable fails to resolve", func(tpl *cfn.Template) {
			props(tpl, "Hello")["Environment"].(map[string]any)["Variables"].(map[string]any)["BAD"] =
				map[string]any{"Fn::Select": []any{5, []any{"a"}}}
		}, "Resources.Hello.Properties.Environment.Variables.BAD: Fn::Select: index 5 out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := loadProject(t)
			tc.mutate(tpl)
			err := Check(tpl, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check error =\n%v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCheckStreamMappings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p map[string]any)
		want   string
	}{
		{"safe settings", func(map[string]any) {}, ""},
		{"no bisect", func(p map[string]any) { p["BisectBatchOnFunctionError"] = false }, "BisectBatchOnFunctionError: must be true"},
		{"unlimited retries", func(p map[string]any) { p["MaximumRetryAttempts"] = -1 }, "MaximumRetryAttempts: is -1"},
		{"default retries", func(p map[string]any) { delete(p, "MaximumRetryAttempts") }, "MaximumRetryAttempts: must be set"},
		{"default record age", func(p map[string]any) { delete(p, "MaximumRecordAgeInSeconds") }, "MaximumRecordAgeInSeconds: must be set"},
		{"no partial batch response", func(p map[string]any) { delete(p, "FunctionResponseTypes") }, "must include ReportBatchItemFailures"},
		{"no failure destination", func(p map[string]any) { delete(p, "DestinationConfig") }, "DestinationConfig.OnFailure.Destination: must be set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := loadProject(t)
			tc.mutate(event(tpl, "Hello", "Stream"))
			err := CheckStreamMappings(tpl)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckStreamMappings: %v", err)
				}
				return
			}
			want := "Resources.Hello.Properties.Events.Stream.Properties." + tc.want
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Resources.Hello.Properties.Events.Stream.Properties.") {
				t.Fatalf("CheckStreamMappings error = %v, want it to contain %q", err, want)
			}
		})
	}
}
