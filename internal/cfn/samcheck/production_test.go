package samcheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/groupcast/groupcast/internal/cfn"
)

// Production settings of template.yaml and samconfig.toml: logging, kept
// state, least-privilege policies, alarms, CORS, the user pool and builds.

var functionIDs = []string{"ApiFunction", "FanoutFunction", "FastPathFunction", "PushWorkerFunction", "WsAuthorizerFunction", "WsConnectFunction", "WsDisconnectFunction", "WsMessageFunction"}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

// Every function's effective LoggingConfig (Globals merged) takes its level
// from LogLevel and writes to its own log group, which has a retention.
func TestRepoTemplateLogging(t *testing.T) {
	tpl := loadRepoTemplate(t)
	lambdaLevels := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	for _, v := range tpl.Parameters["LogLevel"].AllowedValues {
		if !slices.Contains(lambdaLevels, v) {
			t.Errorf("LogLevel allows %q, which is no ApplicationLogLevel", v)
		}
	}
	if !slices.Contains(tpl.Parameters["LogLevel"].AllowedValues, tpl.Parameters["LogLevel"].Default) {
		t.Errorf("LogLevel default %q not allowed", tpl.Parameters["LogLevel"].Default)
	}
	for _, id := range functionIDs {
		t.Run(id, func(t *testing.T) {
			lc, _ := props(tpl, id)["LoggingConfig"].(map[string]any)
			if lc["LogFormat"] != "JSON" || !reflect.DeepEqual(lc["ApplicationLogLevel"], ref("LogLevel")) {
				t.Errorf("LoggingConfig = %v, want LogFormat JSON and ApplicationLogLevel !Ref LogLevel", lc)
			}
			groups := tpl.References(lc["LogGroup"])
			if len(groups) != 1 || tpl.Resources[groups[0]].Type != "AWS::Logs::LogGroup" {
				t.Fatalf("LoggingConfig.LogGroup = %v, want a Ref to an AWS::Logs::LogGroup", lc["LogGroup"])
			}
			if r := props(tpl, groups[0])["RetentionInDays"]; !reflect.DeepEqual(r, ref("LogRetentionDays")) {
				t.Errorf("%s.RetentionInDays = %v, want !Ref LogRetentionDays", groups[0], r)
			}
			vars := props(tpl, id)["Environment"].(map[string]any)["Variables"].(map[string]any)
			if _, ok := vars["LOG_LEVEL"]; ok {
				t.Errorf("LOG_LEVEL is set: the level has one path, ApplicationLogLevel")
			}
		})
	}
}

// Stateful resources survive stack deletion and replacement (cfn-lint
// I3011), and the table and user pool refuse deletion.
func TestRepoTemplateRetainsState(t *testing.T) {
	tpl := loadRepoTemplate(t)
	stateful := []string{"AWS::DynamoDB::Table", "AWS::Cognito::UserPool", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}
	n := 0
	for _, typ := range stateful {
		for _, id := range tpl.ResourceIDs(typ) {
			n++
			r := tpl.Resources[id]
			if r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
				t.Errorf("%s (%s): DeletionPolicy %q, UpdateReplacePolicy %q; want Retain, Retain", id, typ, r.DeletionPolicy, r.UpdateReplacePolicy)
			}
		}
	}
	if n < 10 { // table, pool, queue, six function log groups, access logs
		t.Errorf("only %d stateful resources found", n)
	}
	if v := props(tpl, "Table")["DeletionProtectionEnabled"]; v != true {
		t.Errorf("Table.DeletionProtectionEnabled = %v, want true", v)
	}
	if v := props(tpl, "UserPool")["DeletionProtection"]; v != "ACTIVE" {
		t.Errorf("UserPool.DeletionProtection = %v, want ACTIVE", v)
	}
}

// Each function's grants, pinned: a widening (new action, wider resource,
// a SAM policy template or managed policy) fails here. Derived from the
// store methods each function's code reaches; see the template comments.
func TestRepoTemplatePolicies(t *testing.T) {
	table := `{"Fn::GetAtt":["Table","Arn"]}`
	gsi1 := `{"Fn::Sub":"${Table.Arn}/index/GSI1"}`
	gsi2 := `{"Fn::Sub":"${Table.Arn}/index/GSI2"}`
	tableGSI1 := []string{table, gsi1}
	pushQueue := `{"Fn::GetAtt":["PushQueue","Arn"]}`
	inboxQueue := `{"Fn::GetAtt":["InboxQueue","Arn"]}`
	want := map[string]map[string][]string{
		"ApiFunction": {
			"dynamodb:GetItem": {table, gsi1, gsi2}, "dynamodb:BatchGetItem": {table, gsi1, gsi2}, "dynamodb:Query": {table, gsi1, gsi2},
			"dynamodb:PutItem": {table, gsi1, gsi2}, "dynamodb:UpdateItem": {table, gsi1, gsi2}, "dynamodb:DeleteItem": {table, gsi1, gsi2},
			"dynamodb:BatchWriteItem": {table, gsi1, gsi2}, "dynamodb:ConditionCheckItem": {table, gsi1, gsi2},
			"sqs:SendMessage": {`{"Fn::GetAtt":["FastPathQueue","Arn"]}`},
		},
		"WsAuthorizerFunction": {},
		// $connect writes the connection and its USER#/CONN# entry in one batch.
		"WsConnectFunction":    {"dynamodb:BatchWriteItem": {table}},
		"WsDisconnectFunction": {"dynamodb:Query": {table}, "dynamodb:BatchWriteItem": {table}},
		"WsMessageFunction": {
			"dynamodb:GetItem": tableGSI1, "dynamodb:BatchGetItem": tableGSI1, "dynamodb:Query": tableGSI1,
			"dynamodb:PutItem": tableGSI1, "dynamodb:UpdateItem": tableGSI1, "dynamodb:BatchWriteItem": tableGSI1, "dynamodb:ConditionCheckItem": tableGSI1,
			"execute-api:ManageConnections": {`{"Fn::Sub":"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"}`},
		},
		"FanoutFunction": {
			"dynamodb:GetItem": tableGSI1, "dynamodb:BatchGetItem": tableGSI1, "dynamodb:Query": tableGSI1, "dynamodb:BatchWriteItem": tableGSI1,
			"dynamodb:PutItem": {table}, "dynamodb:UpdateItem": {table},
			"execute-api:ManageConnections": {`{"Fn::Sub":"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"}`},
			"dynamodb:DescribeStream":       {`{"Fn::Sub":"${Table.Arn}/stream/*"}`},
			"dynamodb:GetRecords":           {`{"Fn::Sub":"${Table.Arn}/stream/*"}`},
			"dynamodb:GetShardIterator":     {`{"Fn::Sub":"${Table.Arn}/stream/*"}`},
			"dynamodb:ListStreams":          {`{"Fn::Sub":"${Table.Arn}/stream/*"}`},
			"sqs:SendMessage":               {`{"Fn::GetAtt":["FanoutDeadLetterQueue","Arn"]}`, pushQueue, inboxQueue},
		},
		// The push worker: the two queues it polls, and the push queue it
		// re-queues remainders to; no stream, no BatchGetItem.
		"PushWorkerFunction": {
			"dynamodb:GetItem": tableGSI1, "dynamodb:Query": tableGSI1, "dynamodb:BatchWriteItem": tableGSI1,
			"execute-api:ManageConnections": {`{"Fn::Sub":"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"}`},
			"sqs:ReceiveMessage":            {pushQueue, inboxQueue},
			"sqs:DeleteMessage":             {pushQueue, inboxQueue},
			"sqs:GetQueueAttributes":        {pushQueue, inboxQueue},
			"sqs:SendMessage":               {pushQueue},
		},
		// The fast path delivers as the stream fan-out does (Deliver: the
		// push and inbox queues, private groups' memberships) behind its
		// claim, which it may also release (DeleteItem).
		"FastPathFunction": {
			"dynamodb:GetItem": tableGSI1, "dynamodb:BatchGetItem": tableGSI1, "dynamodb:Query": tableGSI1, "dynamodb:BatchWriteItem": tableGSI1,
			"dynamodb:PutItem": {table}, "dynamodb:UpdateItem": {table}, "dynamodb:DeleteItem": {table},
			"execute-api:ManageConnections": {`{"Fn::Sub":"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"}`},
			"sqs:SendMessage":               {pushQueue, inboxQueue},
			"sqs:ReceiveMessage":            {`{"Fn::GetAtt":["FastPathQueue","Arn"]}`},
			"sqs:DeleteMessage":             {`{"Fn::GetAtt":["FastPathQueue","Arn"]}`},
			"sqs:GetQueueAttributes":        {`{"Fn::GetAtt":["FastPathQueue","Arn"]}`},
		},
	}
	tpl := loadRepoTemplate(t)
	for _, id := range functionIDs {
		t.Run(id, func(t *testing.T) {
			p := props(tpl, id)
			if _, ok := p["Role"]; ok {
				t.Fatalf("explicit Role: its grants are not pinned here")
			}
			// Events that make SAM attach a managed policy to the role.
			events, _ := p["Events"].(map[string]any)
			for name, ev := range events {
				if typ := ev.(map[string]any)["Type"]; typ != "HttpApi" {
					t.Errorf("event %s of type %v: SAM adds a managed policy for it", name, typ)
				}
			}
			got := map[string][]string{}
			policies, _ := p["Policies"].([]any)
			for i, pol := range policies {
				doc, ok := pol.(map[string]any)
				if _, isStatement := doc["Statement"]; !ok || !isStatement {
					t.Errorf("Policies[%d] = %v: want an inline policy document (no policy templates or managed policies)", i, pol)
					continue
				}
				if doc["Version"] != "2012-10-17" {
					t.Errorf("Policies[%d].Version = %v, want 2012-10-17", i, doc["Version"])
				}
				for _, st := range doc["Statement"].([]any) {
					st := st.(map[string]any)
					if st["Effect"] != "Allow" || st["Condition"] != nil || st["NotAction"] != nil || st["NotResource"] != nil {
						t.Errorf("statement %v: only plain Allow statements are pinned here", st)
						continue
					}
					for _, a := range asList(st["Action"]) {
						for _, r := range asList(st["Resource"]) {
							b, _ := json.Marshal(r)
							got[a.(string)] = append(got[a.(string)], string(b))
						}
					}
				}
			}
			for _, rs := range got {
				sort.Strings(rs)
			}
			w := want[id]
			for _, rs := range w {
				sort.Strings(rs)
			}
			if !reflect.DeepEqual(got, w) && !(len(got) == 0 && len(w) == 0) {
				t.Errorf("grants:\n got  %v\n want %v", got, w)
			}
		})
	}
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func TestRepoTemplateAlarms(t *testing.T) {
	tpl := loadRepoTemplate(t)
	type key struct{ namespace, metric, dimension string }
	got := map[key]bool{}
	for _, id := range tpl.ResourceIDs("AWS::CloudWatch::Alarm") {
		p := props(tpl, id)
		want := map[string]any{"Fn::If": []any{"HasAlarmTopic", []any{ref("AlarmTopicArn")}, ref("AWS::NoValue")}}
		if !reflect.DeepEqual(p["AlarmActions"], want) {
			t.Errorf("%s.AlarmActions = %v, want the topic only when AlarmTopicArn is set", id, p["AlarmActions"])
		}
		dims, _ := p["Dimensions"].([]any)
		if len(dims) == 0 {
			t.Errorf("%s has no dimensions", id)
			continue
		}
		var names []string
		for _, d := range dims {
			d := d.(map[string]any)
			b, _ := json.Marshal(d["Value"])
			names = append(names, d["Name"].(string)+"="+string(b))
		}
		sort.Strings(names)
		got[key{p["Namespace"].(string), p["MetricName"].(string), fmtList(names)}] = true
	}
	want := []key{
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", `QueueName={"Fn::GetAtt":["FanoutDeadLetterQueue","QueueName"]}`},
		{"AWS/Lambda", "IteratorAge", `FunctionName={"Ref":"FanoutFunction"}`},
		{"Groupcast", "Failed", `FunctionName={"Ref":"FanoutFunction"}`},
		{"Groupcast", "Failed", `FunctionName={"Ref":"PushWorkerFunction"}`},
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", `QueueName={"Fn::GetAtt":["InboxDeadLetterQueue","QueueName"]}`},
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", `QueueName={"Fn::GetAtt":["PushDeadLetterQueue","QueueName"]}`},
		{"AWS/ApiGateway", "5xx", `ApiId={"Ref":"HttpApi"} Stage={"Ref":"StageName"}`},
	}
	for _, fn := range functionIDs {
		want = append(want,
			key{"AWS/Lambda", "Errors", `FunctionName={"Ref":"` + fn + `"}`},
			key{"AWS/Lambda", "Throttles", `FunctionName={"Ref":"` + fn + `"}`})
	}
	for _, k := range want {
		if !got[k] {
			t.Errorf("no alarm on %s %s (%s)", k.namespace, k.metric, k.dimension)
		}
	}
}

func fmtList(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

// Route changes reach the stage only through a new deployment; AutoDeploy
// makes API Gateway create one on every change.
func TestRepoTemplateWebSocketAutoDeploy(t *testing.T) {
	tpl := loadRepoTemplate(t)
	p := props(tpl, "WebSocketStage")
	if p["AutoDeploy"] != true {
		t.Errorf("WebSocketStage.AutoDeploy = %v, want true", p["AutoDeploy"])
	}
	if _, ok := p["DeploymentId"]; ok {
		t.Errorf("WebSocketStage.DeploymentId set: the stage would stay on that deployment")
	}
	if ids := tpl.ResourceIDs("AWS::ApiGatewayV2::Deployment"); len(ids) != 0 {
		t.Errorf("deployments %v: with AutoDeploy API Gateway makes them", ids)
	}
	logs, _ := p["AccessLogSettings"].(map[string]any)
	if cond, _ := logs["Fn::If"].([]any); len(cond) != 3 || cond[0] != "WebSocketAccessLogsEnabled" {
		t.Errorf("AccessLogSettings = %v, want !If [WebSocketAccessLogsEnabled, ...]", p["AccessLogSettings"])
	}
}

// A page can read Retry-After, and several origins resolve to a list.
func TestRepoTemplateCORS(t *testing.T) {
	tpl := loadRepoTemplate(t)
	for _, tc := range []struct {
		origins string
		want    []any
	}{
		{"", []any{"*"}},
		{"https://a.example,https://b.example", []any{"https://a.example", "https://b.example"}},
	} {
		params := map[string]string{}
		if tc.origins != "" {
			params["CorsAllowOrigins"] = tc.origins
		}
		ctx, err := cfn.NewContext(tpl, cfn.Options{Parameters: params, Resources: placeholders{}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := ctx.Properties("HttpApi")
		if err != nil {
			t.Fatal(err)
		}
		cors := p["CorsConfiguration"].(map[string]any)
		if !reflect.DeepEqual(cors["AllowOrigins"], tc.want) {
			t.Errorf("CorsAllowOrigins=%q: AllowOrigins = %#v, want %#v", tc.origins, cors["AllowOrigins"], tc.want)
		}
		if exposed, _ := cors["ExposeHeaders"].([]any); !slices.Contains(exposed, any("retry-after")) {
			t.Errorf("ExposeHeaders = %v, want retry-after", cors["ExposeHeaders"])
		}
	}
}

// The created pool can be used from the AWS CLI (USER_PASSWORD_AUTH), and
// self sign-up is off unless AllowSelfSignUp.
func TestRepoTemplateUserPool(t *testing.T) {
	tpl := loadRepoTemplate(t)
	flows := props(tpl, "UserPoolClient")["ExplicitAuthFlows"].([]any)
	for _, f := range []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} {
		if !slices.Contains(flows, any(f)) {
			t.Errorf("ExplicitAuthFlows %v lacks %s", flows, f)
		}
	}
	for _, tc := range []struct {
		selfSignUp string
		adminOnly  bool
	}{{"", true}, {"false", true}, {"true", false}} {
		params := map[string]string{}
		if tc.selfSignUp != "" {
			params["AllowSelfSignUp"] = tc.selfSignUp
		}
		ctx, err := cfn.NewContext(tpl, cfn.Options{Parameters: params, Resources: placeholders{}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := ctx.Properties("UserPool")
		if err != nil {
			t.Fatal(err)
		}
		admin, _ := p["AdminCreateUserConfig"].(map[string]any)
		if got := admin["AllowAdminCreateUserOnly"]; got != tc.adminOnly {
			t.Errorf("AllowSelfSignUp=%q: AllowAdminCreateUserOnly = %v, want %v", tc.selfSignUp, got, tc.adminOnly)
		}
	}
}

// `sam build --cached` hashes only CodeUri (functions/<name>), while the
// code lives in pkg/: a cached build can deploy stale code
// (aws-sam-cli #4662, #3099). No environment may enable it.
func TestSamconfigNeverCachesBuilds(t *testing.T) {
	path := filepath.Join("..", "..", "..", "samconfig.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if _, err := toml.Decode(string(data), &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	builds := 0
	for env, cmds := range cfg {
		cmds, _ := cmds.(map[string]any) // skips version = 0.1
		build, _ := cmds["build"].(map[string]any)
		params, ok := build["parameters"].(map[string]any)
		if !ok {
			continue
		}
		builds++
		if v, set := params["cached"]; set && v != false {
			t.Errorf("[%s.build.parameters] cached = %v, want false or unset", env, v)
		}
	}
	if builds == 0 {
		t.Errorf("no build sections found in %s", path)
	}
}
