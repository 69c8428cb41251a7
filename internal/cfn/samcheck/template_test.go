package samcheck

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/groupcast/groupcast/internal/cfn"
	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/httpapi"
)

// noService satisfies httpapi.Service for reading the handler's route
// table; its methods are never called.
type noService struct{ httpapi.Service }

// repoTemplate is the repository's own template.yaml, relative to this
// package.
var repoTemplate = filepath.Join("..", "..", "..", "template.yaml")

func loadRepoTemplate(t *testing.T) *cfn.Template {
	t.Helper()
	tpl, err := cfn.Load(repoTemplate)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestRepoTemplate checks the deployable template as a whole: it
// builds (every CodeUri holds a main package), every route reaches a
// function, every reference has a target, the stream mapping is safe, and
// every environment variable resolves to a plain value.
func TestRepoTemplate(t *testing.T) {
	tpl := loadRepoTemplate(t)
	for _, params := range []map[string]string{
		nil, // defaults: the template creates its own Cognito user pool
		{"JwtIssuer": "https://issuer.example", "JwtAudience": "groupcast", "StageName": "prod", "EnableAccessLogs": "true"},
	} {
		if err := Check(tpl, Options{Parameters: params}); err != nil {
			t.Errorf("Check with parameters %v:\n%v", params, err)
		}
	}
	if err := CheckStreamMappings(tpl); err != nil {
		t.Errorf("CheckStreamMappings:\n%v", err)
	}
}

// TestRepoTemplateFunctions checks the functions against README's
// "Configuration of the functions": logical id, code folder and the environment each one reads.
func TestRepoTemplateFunctions(t *testing.T) {
	tests := []struct {
		id, codeURI string
		env         []string
	}{
		{"ApiFunction", "functions/api", []string{"TABLE_NAME", "POST_RATE_LIMIT_PER_MINUTE", "EVENT_RETENTION_HOURS", "FAST_PATH_QUEUE_URL"}},
		{"WsAuthorizerFunction", "functions/authorizer", []string{"JWT_ISSUER", "JWT_AUDIENCE"}},
		{"WsConnectFunction", "functions/connect", []string{"TABLE_NAME", "CONNECTION_TTL_SECONDS"}},
		{"WsDisconnectFunction", "functions/disconnect", []string{"TABLE_NAME"}},
		{"WsMessageFunction", "functions/message", []string{"TABLE_NAME", "MAX_SUBSCRIPTIONS_PER_CONNECTION"}},
		{"FanoutFunction", "functions/fanout", []string{"TABLE_NAME", "WEBSOCKET_MANAGEMENT_ENDPOINT", "FANOUT_CONCURRENCY", "INBOX_FANOUT_LIMIT",
			"DIRECT_PUSH_LIMIT", "PUSH_QUEUE_URL", "INBOX_QUEUE_URL"}},
		{"FastPathFunction", "functions/fastpath", []string{"TABLE_NAME", "WEBSOCKET_MANAGEMENT_ENDPOINT", "FANOUT_CONCURRENCY", "INBOX_FANOUT_LIMIT",
			"DIRECT_PUSH_LIMIT", "PUSH_QUEUE_URL", "INBOX_QUEUE_URL"}},
		{"PushWorkerFunction", "functions/pushworker", []string{"TABLE_NAME", "WEBSOCKET_MANAGEMENT_ENDPOINT", "FANOUT_CONCURRENCY",
			"PUSH_RATE_PER_SECOND", "PUSH_WORKERS", "PUSH_QUEUE_URL", "INBOX_QUEUE_URL"}},
	}
	tpl := loadRepoTemplate(t)
	if got := tpl.ResourceIDs("AWS::Serverless::Function"); len(got) != len(tests) {
		t.Errorf("functions = %v, want the %d of README", got, len(tests))
	}
	ctx, err := cfn.NewContext(tpl, cfn.Options{Resources: placeholders{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			r, ok := tpl.Resources[tc.id]
			if !ok || r.Type != "AWS::Serverless::Function" {
				t.Fatalf("no AWS::Serverless::Function %s", tc.id)
			}
			props, err := ctx.Properties(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]any{
				"CodeUri": tc.codeURI, "Runtime": "provided.al2023", "Handler": "bootstrap",
				"Architectures": []any{"arm64"}, "Tracing": "Active",
			} {
				if !reflect.DeepEqual(props[key], want) {
					t.Errorf("%s = %#v, want %#v", key, props[key], want)
				}
			}
			if r.Metadata["BuildMethod"] != "go1.x" {
				t.Errorf("Metadata.BuildMethod = %v, want go1.x", r.Metadata["BuildMethod"])
			}
			vars := props["Environment"].(map[string]any)["Variables"].(map[string]any)
			for _, name := range tc.env {
				if _, ok := vars[name].(string); !ok {
					t.Errorf("Environment.Variables.%s = %#v, want a string", name, vars[name])
				}
			}
		})
	}
}

func TestRepoTemplateRoutes(t *testing.T) {
	tpl := loadRepoTemplate(t)

	// The REST API's routes have one home, the handler's route table; the
	// template must declare exactly those, one HttpApi event each.
	api, err := httpapi.New(noService{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wantHTTP := api.RouteKeys()
	sort.Strings(wantHTTP)
	var gotHTTP []string
	events := props(tpl, "ApiFunction")["Events"].(map[string]any)
	for name := range events {
		ev := events[name].(map[string]any)
		p := ev["Properties"].(map[string]any)
		if ev["Type"] != "HttpApi" || !reflect.DeepEqual(p["ApiId"], map[string]any{"Ref": "HttpApi"}) {
			t.Errorf("event %s: want an HttpApi event on HttpApi, got %v", name, ev)
		}
		gotHTTP = append(gotHTTP, p["Method"].(string)+" "+p["Path"].(string))
	}
	sort.Strings(gotHTTP)
	if !reflect.DeepEqual(gotHTTP, wantHTTP) {
		t.Errorf("HTTP routes:\n got  %q\n want %q", gotHTTP, wantHTTP)
	}

	// WebSocket routes: two-way ones answer through a $default route response.
	wantWS := map[string]bool{"$connect": false, "$disconnect": false, "$default": true, "subscribe": true, "unsubscribe": true, "ping": true}
	responses := map[string]bool{}
	for _, id := range tpl.ResourceIDs("AWS::ApiGatewayV2::RouteResponse") {
		for _, route := range tpl.References(props(tpl, id)["RouteId"]) {
			responses[route] = true
		}
	}
	gotWS := map[string]bool{}
	for _, id := range tpl.ResourceIDs("AWS::ApiGatewayV2::Route") {
		p := props(tpl, id)
		key := p["RouteKey"].(string)
		twoWay := p["RouteResponseSelectionExpression"] == "$default"
		if twoWay != responses[id] {
			t.Errorf("route %s: RouteResponseSelectionExpression set = %v but has a RouteResponse = %v", key, twoWay, responses[id])
		}
		gotWS[key] = twoWay
	}
	if !reflect.DeepEqual(gotWS, wantWS) {
		t.Errorf("WebSocket routes (key: two-way) = %v, want %v", gotWS, wantWS)
	}
}

func TestRepoTemplateStreamMapping(t *testing.T) {
	tpl := loadRepoTemplate(t)
	// A mapping resource, not a SAM DynamoDB event: the event would attach
	// AWSLambdaDynamoDBExecutionRole (stream reads on "*") to the role.
	if _, ok := props(tpl, "FanoutFunction")["Events"]; ok {
		t.Errorf("FanoutFunction has Events; its stream trigger must be the FanoutTableStream resource")
	}
	p := props(tpl, "FanoutTableStream")
	if fn := tpl.References(p["FunctionName"]); !reflect.DeepEqual(fn, []string{"FanoutFunction"}) {
		t.Errorf("FanoutTableStream.FunctionName refers to %v, want FanoutFunction", fn)
	}
	for key, want := range map[string]any{
		"StartingPosition": "TRIM_HORIZON", "BatchSize": 10, "MaximumBatchingWindowInSeconds": 0, "ParallelizationFactor": 4,
		"BisectBatchOnFunctionError": true, "MaximumRetryAttempts": 10, "MaximumRecordAgeInSeconds": 86400,
		"EventSourceArn": map[string]any{"Fn::GetAtt": []any{"Table", "StreamArn"}},
	} {
		if !reflect.DeepEqual(p[key], want) {
			t.Errorf("%s = %#v, want %#v", key, p[key], want)
		}
	}
	// The filter must be valid JSON that lets exactly the outbox event
	// items' INSERTs through.
	filters := p["FilterCriteria"].(map[string]any)["Filters"].([]any)
	var pattern struct {
		EventName []string `json:"eventName"`
		DynamoDB  struct {
			NewImage struct {
				Type struct {
					S []string `json:"S"`
				} `json:"type"`
			} `json:"NewImage"`
		} `json:"dynamodb"`
	}
	if len(filters) != 1 {
		t.Fatalf("filters = %v, want one", filters)
	}
	if err := json.Unmarshal([]byte(filters[0].(map[string]any)["Pattern"].(string)), &pattern); err != nil {
		t.Fatalf("filter pattern: %v", err)
	}
	if got := strings.Join(pattern.DynamoDB.NewImage.Type.S, ","); got != dynamostore.TypeEvent {
		t.Errorf("filtered types = %s, want %s", got, dynamostore.TypeEvent)
	}
	if got := strings.Join(pattern.EventName, ","); got != "INSERT" {
		t.Errorf("filtered event names = %s, want INSERT", got)
	}
	dest := p["DestinationConfig"].(map[string]any)["OnFailure"].(map[string]any)["Destination"]
	if refs := tpl.References(dest); !reflect.DeepEqual(refs, []string{"FanoutDeadLetterQueue"}) || tpl.Resources["FanoutDeadLetterQueue"].Type != "AWS::SQS::Queue" {
		t.Errorf("OnFailure destination %v, want the FanoutDeadLetterQueue SQS queue", dest)
	}
}

func TestRepoTemplateOutputs(t *testing.T) {
	tpl := loadRepoTemplate(t)
	tests := []struct {
		params map[string]string
		want   map[string]string
	}{
		{nil, map[string]string{
			"HttpApiUrl":                  "https://HttpApi.execute-api.eu-west-1.amazonaws.com/dev",
			"WebSocketUrl":                "wss://WebSocketApi.execute-api.eu-west-1.amazonaws.com/dev",
			"WebSocketManagementEndpoint": "https://WebSocketApi.execute-api.eu-west-1.amazonaws.com/dev",
			"TableName":                   "Table",
			"FanoutDeadLetterQueueUrl":    "FanoutDeadLetterQueue",
			"InboxDeadLetterQueueUrl":     "InboxDeadLetterQueue",
			"InboxQueueUrl":               "InboxQueue",
			"UserPoolId":                  "UserPool",
			"UserPoolClientId":            "UserPoolClient",
		}},
		{map[string]string{"JwtIssuer": "https://issuer.example", "JwtAudience": "aud", "StageName": "prod"}, map[string]string{
			"HttpApiUrl":                  "https://HttpApi.execute-api.eu-west-1.amazonaws.com/prod",
			"WebSocketUrl":                "wss://WebSocketApi.execute-api.eu-west-1.amazonaws.com/prod",
			"WebSocketManagementEndpoint": "https://WebSocketApi.execute-api.eu-west-1.amazonaws.com/prod",
			"TableName":                   "Table",
			"FanoutDeadLetterQueueUrl":    "FanoutDeadLetterQueue",
			"InboxDeadLetterQueueUrl":     "InboxDeadLetterQueue",
			"InboxQueueUrl":               "InboxQueue",
		}},
	}
	for _, tc := range tests {
		ctx, err := cfn.NewContext(tpl, cfn.Options{Parameters: tc.params, Pseudo: cfn.Pseudo{Region: "eu-west-1"}, Resources: placeholders{}})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := ctx.Outputs()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for k, v := range outs {
			got[k], _ = v.(string)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Outputs with %v:\n got  %v\n want %v", tc.params, got, tc.want)
		}
		// The fan-out's management endpoint is the stage's, as the local
		// stack expects when it rewrites execute-api URLs.
		fanout, err := ctx.Properties("FanoutFunction")
		if err != nil {
			t.Fatal(err)
		}
		endpoint := fanout["Environment"].(map[string]any)["Variables"].(map[string]any)["WEBSOCKET_MANAGEMENT_ENDPOINT"]
		if endpoint != tc.want["WebSocketManagementEndpoint"] {
			t.Errorf("WEBSOCKET_MANAGEMENT_ENDPOINT = %v, want %v", endpoint, tc.want["WebSocketManagementEndpoint"])
		}
	}
}

// JwksUri reaches the WebSocket authorizer as JWKS_URL; empty (the default)
// makes it use OIDC discovery, as the HTTP API's JWT authorizer does.
func TestRepoTemplateJwksUri(t *testing.T) {
	tpl := loadRepoTemplate(t)
	tests := []struct {
		name   string
		params map[string]string
		want   string
	}{
		{"default: discovery", nil, ""},
		{"override", map[string]string{"JwtIssuer": "https://issuer.example", "JwtAudience": "aud", "JwksUri": "https://keys.example/jwks"}, "https://keys.example/jwks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := cfn.NewContext(tpl, cfn.Options{Parameters: tc.params, Pseudo: cfn.Pseudo{Region: "eu-west-1"}, Resources: placeholders{}})
			if err != nil {
				t.Fatal(err)
			}
			p, err := ctx.Properties("WsAuthorizerFunction")
			if err != nil {
				t.Fatal(err)
			}
			vars := p["Environment"].(map[string]any)["Variables"].(map[string]any)
			got, ok := vars["JWKS_URL"]
			if !ok || got != tc.want {
				t.Errorf("JWKS_URL = %v (set %v), want %q", got, ok, tc.want)
			}
		})
	}
}

// The fast path's timeout is decoupled from the claim's lease (a renewed
// lease, pkg/fanout/claim.go), so it is long enough for a 100,000-subscriber
// audience lookup; its queue's visibility timeout is at least 6 × that
// timeout (AWS's advice,
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
func TestRepoTemplateFastPathQueue(t *testing.T) {
	tpl := loadRepoTemplate(t)
	timeout, _ := props(tpl, "FastPathFunction")["Timeout"].(int)
	if timeout < 30 {
		t.Errorf("FastPathFunction Timeout %d, want at least 30 s", timeout)
	}
	m := props(tpl, "FastPathQueueMapping")
	if !reflect.DeepEqual(m["EventSourceArn"], map[string]any{"Fn::GetAtt": []any{"FastPathQueue", "Arn"}}) {
		t.Errorf("EventSourceArn = %v, want FastPathQueue", m["EventSourceArn"])
	}
	if v, _ := props(tpl, "FastPathQueue")["VisibilityTimeout"].(int); timeout == 0 || v < 6*timeout {
		t.Errorf("FastPathQueue VisibilityTimeout %v, want at least 6 × %d", v, timeout)
	}
}

// The push worker's queues: each mapping reports partial batches, the push
// mapping's concurrency is PushWorkers (the rate's divisor), each queue's
// visibility timeout is at least 6 × the worker's timeout (AWS's advice,
// https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)
// and each redrives to its own dead-letter queue; the inbox queue and its
// dead letters keep tasks 14 days.
func TestRepoTemplatePushQueues(t *testing.T) {
	tpl := loadRepoTemplate(t)
	timeout, _ := props(tpl, "PushWorkerFunction")["Timeout"].(int)
	for _, tc := range []struct {
		mapping, queue, dlq string
		concurrency         any
		retention           int
		// One push chunk per invocation: a batch goes to one worker, so
		// larger batches spread a post's chunks unevenly over the workers.
		batch int
	}{
		{"PushQueueMapping", "PushQueue", "PushDeadLetterQueue", map[string]any{"Ref": "PushWorkers"}, 3600, 1},
		{"InboxQueueMapping", "InboxQueue", "InboxDeadLetterQueue", 2, 1209600, 10},
	} {
		t.Run(tc.mapping, func(t *testing.T) {
			m := props(tpl, tc.mapping)
			if fn := tpl.References(m["FunctionName"]); !reflect.DeepEqual(fn, []string{"PushWorkerFunction"}) {
				t.Errorf("FunctionName refers to %v", fn)
			}
			if !reflect.DeepEqual(m["EventSourceArn"], map[string]any{"Fn::GetAtt": []any{tc.queue, "Arn"}}) {
				t.Errorf("EventSourceArn = %v, want %s", m["EventSourceArn"], tc.queue)
			}
			if !reflect.DeepEqual(m["FunctionResponseTypes"], []any{"ReportBatchItemFailures"}) {
				t.Errorf("FunctionResponseTypes = %v", m["FunctionResponseTypes"])
			}
			if m["BatchSize"] != tc.batch {
				t.Errorf("BatchSize = %v, want %d", m["BatchSize"], tc.batch)
			}
			if sc, _ := m["ScalingConfig"].(map[string]any); !reflect.DeepEqual(sc["MaximumConcurrency"], tc.concurrency) {
				t.Errorf("MaximumConcurrency = %v, want %v", sc["MaximumConcurrency"], tc.concurrency)
			}
			q := props(tpl, tc.queue)
			if v, _ := q["VisibilityTimeout"].(int); timeout == 0 || v < 6*timeout {
				t.Errorf("VisibilityTimeout %v, want at least 6 × %d", q["VisibilityTimeout"], timeout)
			}
			if q["MessageRetentionPeriod"] != tc.retention {
				t.Errorf("MessageRetentionPeriod = %v, want %d", q["MessageRetentionPeriod"], tc.retention)
			}
			rp, _ := q["RedrivePolicy"].(map[string]any)
			if !reflect.DeepEqual(rp["deadLetterTargetArn"], map[string]any{"Fn::GetAtt": []any{tc.dlq, "Arn"}}) {
				t.Errorf("RedrivePolicy = %v, want %s", rp, tc.dlq)
			}
			if props(tpl, tc.dlq)["MessageRetentionPeriod"] != 1209600 {
				t.Errorf("%s keeps messages %v s, want 14 days", tc.dlq, props(tpl, tc.dlq)["MessageRetentionPeriod"])
			}
		})
	}
}
