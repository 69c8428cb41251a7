package cfn

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeResources answers Ref and GetAtt with values that show what was
// asked, and fails for the resource named "Broken".
type fakeResources struct{}

func (fakeResources) Ref(id string, _ Resource) (any, error) {
	if id == "Broken" {
		return nil, errors.New("not emulated")
	}
	return "ref:" + id, nil
}

func (fakeResources) GetAtt(id string, _ Resource, attr string) (any, error) {
	return "att:" + id + "." + attr, nil
}

func mustLoad(t *testing.T, name string) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return tpl
}

func TestGlobalsMergeLikeSAM(t *testing.T) {
	tpl := mustLoad(t, "sam.yaml")
	fn := tpl.Resources["Fn"].Properties
	plain := tpl.Resources["Plain"].Properties

	tests := []struct {
		name string
		got  any
		want any
	}{
		{"global value fills a gap", fn["Runtime"], "provided.al2023"},
		{"resource value wins", fn["Timeout"], 30},
		{"lists concatenate, globals first", fn["Layers"], []any{"global-layer", "local-layer"}},
		{"intrinsic copied as a value", fn["Tags"], map[string]any{"Ref": "AWS::NoValue"}},
		{"maps merge, resource key wins", fn["Environment"].(map[string]any)["Variables"].(map[string]any)["LEVEL"], "debug"},
		{"maps merge, global key kept", fn["Environment"].(map[string]any)["Variables"].(map[string]any)["TABLE"], map[string]any{"Ref": "Table"}},
		{"IgnoreGlobals drops the named property", plain["Layers"], nil},
		{"IgnoreGlobals keeps the others", plain["Timeout"], 10},
		{"globals are not applied to other types", tpl.Resources["Table"].Properties["Runtime"], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
	// Merging must copy: editing one function's merged map may not leak
	// into another's.
	fn["Environment"].(map[string]any)["Variables"].(map[string]any)["TABLE"] = "changed"
	if v := plain["Environment"].(map[string]any)["Variables"].(map[string]any)["TABLE"]; !reflect.DeepEqual(v, map[string]any{"Ref": "Table"}) {
		t.Errorf("globals shared between resources: Plain TABLE = %#v", v)
	}
}

func TestResolveEnvironment(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		pseudo Pseudo
		want   map[string]any
	}{
		{
			name: "defaults",
			want: map[string]any{
				"TABLE":  "ref:Table",
				"LEVEL":  "debug",
				"LIMIT":  "30",
				"STREAM": "att:Table.StreamArn",
				"URL":    "https://ref:Api.execute-api.us-east-1.amazonaws.com/dev/${literal}",
				"ISSUER": "https://idp/123456789012",
				"ZONE":   "b",
				"JOINED": "local-x",
				"MEMORY": 128,
				"NAMED":  "aws-att:Table.Arn",
			},
		},
		{
			name:   "prod with issuer and pseudo parameters",
			params: map[string]string{"Stage": "prod", "Issuer": "https://issuer", "Limit": "5", "Zones": "p,q"},
			pseudo: Pseudo{Region: "eu-west-1", StackName: "gc", Partition: "aws-cn", URLSuffix: "amazonaws.com.cn"},
			want: map[string]any{
				"TABLE":   "ref:Table",
				"LEVEL":   "debug",
				"LIMIT":   "5",
				"STREAM":  "att:Table.StreamArn",
				"URL":     "https://ref:Api.execute-api.eu-west-1.amazonaws.com.cn/prod/${literal}",
				"ISSUER":  "https://issuer",
				"ZONE":    "q",
				"JOINED":  "gc-x",
				"MEMORY":  1024,
				"NAMED":   "aws-cn-att:Table.Arn",
				"DROPPED": "kept",
			},
		},
	}
	tpl := mustLoad(t, "sam.yaml")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := NewContext(tpl, Options{Parameters: tc.params, Pseudo: tc.pseudo, Resources: fakeResources{}})
			if err != nil {
				t.Fatal(err)
			}
			props, err := ctx.Properties("Fn")
			if err != nil {
				t.Fatal(err)
			}
			got := props["Environment"].(map[string]any)["Variables"]
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Variables:\n got  %#v\n want %#v", got, tc.want)
			}
			if _, ok := props["Tags"]; ok {
				t.Errorf("Tags: AWS::NoValue should remove the property, got %#v", props["Tags"])
			}
		})
	}
}

func TestConditions(t *testing.T) {
	tests := []struct {
		params map[string]string
		want   map[string]bool
	}{
		{nil, map[string]bool{"NoIssuer": true, "IsProd": false, "ProdWithIssuer": false, "DevOrNoIssuer": true}},
		{map[string]string{"Stage": "prod"}, map[string]bool{"NoIssuer": true, "IsProd": true, "ProdWithIssuer": false, "DevOrNoIssuer": true}},
		{map[string]string{"Stage": "prod", "Issuer": "x"}, map[string]bool{"NoIssuer": false, "IsProd": true, "ProdWithIssuer": true, "DevOrNoIssuer": false}},
	}
	tpl := mustLoad(t, "sam.yaml")
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.params), func(t *testing.T) {
			ctx, err := NewContext(tpl, Options{Parameters: tc.params, Resources: fakeResources{}})
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				got, err := ctx.Condition(name)
				if err != nil || got != want {
					t.Errorf("Condition(%s) = %v, %v; want %v", name, got, err, want)
				}
			}
			enabled, err := ctx.Enabled("Api")
			if err != nil || enabled != tc.want["DevOrNoIssuer"] {
				t.Errorf("Enabled(Api) = %v, %v; want %v", enabled, err, tc.want["DevOrNoIssuer"])
			}
			outs, err := ctx.Outputs()
			if err != nil {
				t.Fatal(err)
			}
			if _, has := outs["ProdOnly"]; has != tc.want["ProdWithIssuer"] {
				t.Errorf("Outputs has ProdOnly = %v, want %v", has, tc.want["ProdWithIssuer"])
			}
		})
	}
}

func TestJSONTemplate(t *testing.T) {
	tpl := mustLoad(t, "plain.json")
	if err := tpl.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	ctx, err := NewContext(tpl, Options{Parameters: map[string]string{"Name": "jobs"}, Pseudo: Pseudo{StackName: "s"}, Resources: fakeResources{}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := ctx.Properties("Queue")
	if err != nil {
		t.Fatal(err)
	}
	if q["QueueName"] != "s-jobs" {
		t.Errorf("QueueName = %#v, want s-jobs", q["QueueName"])
	}
	if got := tpl.Resources["Topic"].DependsOn; !reflect.DeepEqual(got, []string{"Queue"}) {
		t.Errorf("DependsOn = %v", got)
	}
	outs, err := ctx.Outputs()
	if err != nil || outs["QueueUrl"] != "ref:Queue" {
		t.Errorf("Outputs = %v, %v", outs, err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "  \n", "template is empty"},
		{"not a mapping", "- a\n", "template must be a mapping"},
		{"unknown tag", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: { A: !Reff X }\n", "line 4: unknown tag !Reff"},
		{"duplicate key", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n  Q:\n    Type: AWS::SQS::Queue\n", `line 4: duplicate key "Q"`},
		{"merge key", "x: &a {k: v}\nResources:\n  Q:\n    <<: *a\n    Type: AWS::SQS::Queue\n", "merge keys"},
		{"unknown section", "Resource:\n  Q: {Type: AWS::SQS::Queue}\n", "Resource: unknown top-level section"},
		{"no resources", "Parameters: {}\n", "at least one resource"},
		{"resource without type", "Resources:\n  Q: {Properties: {}}\n", "Resources.Q: resource needs a Type"},
		{"resource attribute typo", "Resources:\n  Q: {Type: AWS::SQS::Queue, Propertes: {}}\n", "Resources.Q.Propertes: unknown resource attribute"},
		{"short GetAtt without attribute", "Resources:\n  Q: {Type: AWS::SQS::Queue, Properties: {A: !GetAtt Q}}\n", "line 2: !GetAtt \"Q\": want Resource.Attribute"},
		{"Ref with a list", "Resources:\n  Q: {Type: AWS::SQS::Queue, Properties: {A: !Ref [Q]}}\n", "!Ref takes a name"},
		{"bad logical id", "Resources:\n  my-queue: {Type: AWS::SQS::Queue}\n", "Resources.my-queue: logical ids must be alphanumeric"},
		{"unknown globals section", "Globals:\n  Functions: {Timeout: 3}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n", "Globals.Functions: not a SAM Globals section"},
		{"parameter without type", "Parameters:\n  P: {Default: x}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n", "Parameters.P: parameter needs a Type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		file string
		want []string // substrings; nil means valid
	}{
		{"sam.yaml", nil},
		{"plain.json", nil},
		{"invalid/unknown_ref.yaml", []string{`Resources.Fn.Properties.Environment.Variables.TABLE: Ref: "Tabel" is not a parameter, pseudo parameter or resource`}},
		{"invalid/bad_sub.yaml", []string{`Resources.Queue.Properties.QueueName: Fn::Sub ${Stag}: "Stag" is not a parameter`}},
		{"invalid/bad_getatt_attribute.yaml", []string{`Resources.Fn.Properties.Stream: Fn::GetAtt: Table.StreamARN: AWS::DynamoDB::Table has no attribute "StreamARN"`}},
		{"invalid/bad_getatt_resource.yaml", []string{`Resources.Fn.Properties.Stream: Fn::Sub ${Missing.Arn}: Missing.Arn: no resource named "Missing"`}},
		{"invalid/depends_on.yaml", []string{`Resources.Queue.DependsOn[0]: DependsOn "Topic": no other resource`}},
		{"invalid/unknown_condition.yaml", []string{`Resources.Queue.Condition: no condition named "B"`, `Resources.Queue.Properties.DelaySeconds.Fn::If[0]: no condition named "C"`}},
		{"invalid/sub_novalue.yaml", []string{"AWS::NoValue cannot be substituted"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			err := mustLoad(t, tc.file).Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate succeeded, want errors")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate error\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParameterChecks(t *testing.T) {
	const tpl = `
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Limit: {Type: Number, Default: 30, MinValue: 1, MaxValue: 100}
  Name: {Type: String, Default: ab, AllowedPattern: "[a-z]+", MinLength: 2, MaxLength: 5}
  Ids: {Type: List<Number>, Default: "1,2"}
  Required: {Type: String}
Resources:
  Q: {Type: AWS::SQS::Queue}
`
	parsed, err := Parse([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"Required": "r"}
	tests := []struct {
		name      string
		overrides map[string]string
		want      string // "" means accepted
	}{
		{"defaults", nil, ""},
		{"allowed value", map[string]string{"Stage": "prod"}, ""},
		{"not an allowed value", map[string]string{"Stage": "test"}, `Parameters.Stage: value "test" is not one of AllowedValues`},
		{"not a number", map[string]string{"Limit": "many"}, `Parameters.Limit: value "many" is not a number`},
		{"below MinValue", map[string]string{"Limit": "0"}, "below MinValue 1"},
		{"above MaxValue", map[string]string{"Limit": "101"}, "above MaxValue 100"},
		{"pattern", map[string]string{"Name": "AB"}, "does not match AllowedPattern"},
		{"too long", map[string]string{"Name": "abcdef"}, "longer than MaxLength 5"},
		{"list element not a number", map[string]string{"Ids": "1,x"}, `Parameters.Ids: value "x" is not a number`},
		{"undeclared override", map[string]string{"Stag": "dev"}, `override for undeclared parameter "Stag"`},
		{"empty string is a value for a required parameter", map[string]string{"Required": ""}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := map[string]string{}
			for k, v := range base {
				params[k] = v
			}
			for k, v := range tc.overrides {
				params[k] = v
			}
			_, err := NewContext(parsed, Options{Parameters: params})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("NewContext: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("NewContext error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := NewContext(parsed, Options{}); err == nil || !strings.Contains(err.Error(), "Parameters.Required: no value given and no Default") {
		t.Errorf("missing required parameter: err = %v", err)
	}
	ctx, err := NewContext(parsed, Options{Parameters: base})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ctx.Parameter("Ids"); !reflect.DeepEqual(v, []any{"1", "2"}) {
		t.Errorf("Ids = %#v, want a list of strings", v)
	}
}

func TestResolveErrors(t *testing.T) {
	const tpl = `
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  Loop1: !Condition Loop2
  Loop2: !Not [!Condition Loop1]
Resources:
  Table: {Type: AWS::DynamoDB::Table}
  Broken: {Type: AWS::SQS::Queue}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Environment:
        Variables:
          A: x
`
	tests := []struct {
		name     string
		value    string
		resolver ResourceResolver
		want     string
	}{
		{"unknown Ref", `{"Ref": "Nope"}`, fakeResources{}, `Ref: "Nope" is not a parameter, pseudo parameter or resource`},
		{"bad Sub variable", `{"Fn::Sub": "${Stage}-${Stge}"}`, fakeResources{}, `Fn::Sub: "Stge" is not a parameter`},
		{"unterminated Sub", `{"Fn::Sub": "${Stage"}`, fakeResources{}, "unterminated ${"},
		{"bad GetAtt attribute", `{"Fn::GetAtt": ["Table", "Nope"]}`, fakeResources{}, `Table.Nope: AWS::DynamoDB::Table has no attribute "Nope"`},
		{"GetAtt unknown resource", `{"Fn::GetAtt": "Nope.Arn"}`, fakeResources{}, `no resource named "Nope"`},
		{"resource without resolver", `{"Ref": "Table"}`, nil, "no resource resolver configured"},
		{"resolver failure names the resource", `{"Ref": "Broken"}`, fakeResources{}, `resource "Broken": not emulated`},
		{"Select out of range", `{"Fn::Select": [3, ["a"]]}`, fakeResources{}, "index 3 out of range"},
		{"Sub of a list", `{"Fn::Sub": ["${L}", {"L": ["a"]}]}`, fakeResources{}, "${L}: want a scalar"},
		{"condition cycle", `{"Fn::If": ["Loop1", 1, 2]}`, fakeResources{}, "refers to itself"},
		{"condition function outside Conditions", `{"Fn::Equals": [1, 1]}`, fakeResources{}, "only allowed in Conditions"},
		{"unknown intrinsic", `{"Fn::Length": [1]}`, fakeResources{}, "unsupported intrinsic function"},
		{"FindInMap without mapping", `{"Fn::FindInMap": ["M", "a", "b"]}`, fakeResources{}, "no value for [M, a, b]"},
		{"ImportValue without resolver", `{"Fn::ImportValue": "x"}`, fakeResources{}, "no export resolver"},
	}
	parsed, err := Parse([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := NewContext(parsed, Options{Resources: tc.resolver})
			if err != nil {
				t.Fatal(err)
			}
			value, err := Parse([]byte("Resources:\n  X: {Type: T, Properties: {V: " + tc.value + "}}\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Resolve(value.Resources["X"].Properties, ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve error = %v, want it to contain %q", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || !strings.HasPrefix(e.Path, "V") {
				t.Errorf("error %v does not carry the property path V", err)
			}
		})
	}

	// Properties prefixes the resource's path.
	parsed.Resources["Fn"].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)["B"] = map[string]any{"Ref": "Missing"}
	ctx, err := NewContext(parsed, Options{Resources: fakeResources{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ctx.Properties("Fn")
	if err == nil || !strings.HasPrefix(err.Error(), "Resources.Fn.Properties.Environment.Variables.B: Ref:") {
		t.Errorf("Properties error = %v, want the full property path", err)
	}
}

func TestResolveNoValue(t *testing.T) {
	parsed, err := Parse([]byte("Resources:\n  Q: {Type: AWS::SQS::Queue}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := NewContext(parsed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{
		"Keep":  "x",
		"Drop":  map[string]any{"Ref": "AWS::NoValue"},
		"List":  []any{"a", map[string]any{"Ref": "AWS::NoValue"}, "b"},
		"AZs":   map[string]any{"Fn::GetAZs": ""},
		"B64":   map[string]any{"Fn::Base64": "hi"},
		"Plain": map[string]any{"Condition": "not an intrinsic here", "Other": 1},
	}
	got, err := Resolve(in, ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Keep":  "x",
		"List":  []any{"a", "b"},
		"AZs":   []any{"us-east-1a", "us-east-1b", "us-east-1c"},
		"B64":   "aGk=",
		"Plain": map[string]any{"Condition": "not an intrinsic here", "Other": 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	whole, err := Resolve(map[string]any{"Ref": "AWS::NoValue"}, ctx)
	if err != nil || whole != nil {
		t.Errorf("Resolve(AWS::NoValue) = %#v, %v; want nil", whole, err)
	}
}
