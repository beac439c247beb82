package cfntemplate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// base is a small template that the table tests extend: an API with a
// $default route on a MOCK integration, and a function no route uses yet.
const base = `Parameters:
  Env: {Type: String, Default: dev}
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.action
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Join [/, [integrations, !Ref Mock]]
  Mock:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: MOCK
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Runtime: provided.al2023}
`

// writeTemplate writes text as template.yaml in a new directory named
// "mystack" that also holds fn/ (a Go package) and bin/ (an executable
// bootstrap), and returns its path.
func writeTemplate(t testing.TB, text string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mystack")
	for name, data := range map[string]string{
		"fn/main.go":    "package main\n\nfunc main() {}\n",
		"bin/bootstrap": "#!/bin/sh\n",
		"empty/README":  "nothing to run\n",
		"template.yaml": text,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "template.yaml")
}

func mustLoad(t *testing.T, text string, opts Options) *Result {
	t.Helper()
	r, err := Load(writeTemplate(t, text), opts)
	if err != nil {
		t.Fatalf("Load: %v\ntemplate:\n%s", err, numbered(text))
	}
	return r
}

func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, l)
	}
	return b.String()
}

var apiIDPattern = regexp.MustCompile(`^[a-z0-9]{10}$`)

func TestSeedTemplate(t *testing.T) {
	r, err := Load("testdata/seed/template.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if r.StackName != "seed" || c.Stage != "dev" || !apiIDPattern.MatchString(c.APIID) {
		t.Fatalf("stack %q stage %q api_id %q", r.StackName, c.Stage, c.APIID)
	}
	if c.DomainName != c.APIID+".execute-api.us-east-1.amazonaws.com" || c.RouteSelectionExpression != "$request.body.action" {
		t.Errorf("domain %q, expression %q", c.DomainName, c.RouteSelectionExpression)
	}
	abs, _ := filepath.Abs("testdata/seed/functions")
	conn := c.Routes["$connect"].Integration
	if conn.Type != config.IntegrationLambda || conn.Lambda.Build != filepath.Join(abs, "onConnect") ||
		conn.Lambda.Name != "seed-onConnect" || conn.Lambda.Timeout != 10*time.Second ||
		conn.Lambda.MemorySize != 128 || conn.Lambda.Region != "us-east-1" || conn.Lambda.Env["GO_ENV"] != "dev" {
		t.Errorf("$connect integration %+v", conn)
	}
	push := c.Routes["pushtowebsocket"].Integration.Lambda
	if push.Env["API_GATEWAY_ID"] != c.APIID || push.Env["GO_ENV"] != "dev" || push.Build != filepath.Join(abs, "pushToWebSocket") {
		t.Errorf("pushtowebsocket lambda %+v", push)
	}
	if len(c.Routes) != 2 {
		t.Errorf("routes %v", c.Routes)
	}
	a := c.Authorizer
	if a.Type != config.AuthLambda || a.Lambda.Build != filepath.Join(abs, "authorizer") ||
		!slices.Equal(a.IdentitySources, []string{"route.request.querystring.Auth"}) {
		t.Errorf("authorizer %+v", a)
	}
	var ignored []string
	for _, i := range r.Ignored {
		ignored = append(ignored, i.LogicalID)
	}
	if want := []string{"OnConnectPermission", "RequestAuthorizerPermission", "PushToWebSocketPermission"}; !slices.Equal(ignored, want) {
		t.Errorf("ignored %v, want %v", ignored, want)
	}

	// The id is the same for the same stack, and another for another.
	again, _ := Load("testdata/seed/template.yaml", Options{})
	other, _ := Load("testdata/seed/template.yaml", Options{StackName: "other", Region: "eu-west-1", Parameters: map[string]string{"Environment": "prod"}})
	if again.Config.APIID != c.APIID || other.Config.APIID == c.APIID {
		t.Errorf("api ids %q %q %q", c.APIID, again.Config.APIID, other.Config.APIID)
	}
	if other.Config.Stage != "prod" || other.Config.Routes["$connect"].Integration.Lambda.Region != "eu-west-1" ||
		other.Config.DomainName != other.Config.APIID+".execute-api.eu-west-1.amazonaws.com" {
		t.Errorf("other stack %+v", other.Config)
	}
}

func TestJSONTemplate(t *testing.T) {
	r, err := Load("testdata/json/template.json", Options{StackName: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if c.Stage != "prod" || c.RouteSelectionExpression != "$request.body.type" {
		t.Errorf("stage %q expression %q", c.Stage, c.RouteSelectionExpression)
	}
	if want := "wss://" + c.APIID + ".execute-api.us-east-1.amazonaws.com"; c.StageVariables["endpoint"] != want {
		t.Errorf("endpoint %q, want %q", c.StageVariables["endpoint"], want)
	}
	route := c.Routes["$default"]
	l := route.Integration.Lambda
	if !route.RouteResponse || route.Integration.Timeout != 5*time.Second || l.Name != "chat-handler" || l.MemorySize != 512 {
		t.Errorf("$default %+v", route)
	}
	if len(r.Ignored) != 1 || r.Ignored[0].LogicalID != "Role" || !strings.Contains(r.Ignored[0].Reason, "IAM") {
		t.Errorf("ignored %v", r.Ignored)
	}
}

// TestIntrinsics evaluates each intrinsic function as a stage variable.
func TestIntrinsics(t *testing.T) {
	const extra = `  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: !Ref Env
      StageVariables:
        V: %s
Mappings:
  Regions:
    us-east-1: {Size: big, Zones: [a, b]}
    eu-west-1: {Size: small}
Conditions:
  IsDev: !Equals [!Ref Env, dev]
  IsProd: {"Fn::Equals": [{"Ref": "Env"}, prod]}
  DevOrProd: !Or [!Condition IsDev, {Condition: IsProd}]
  Neither: !Not [!Condition DevOrProd]
  Both: !And [!Condition IsDev, !Condition IsProd]
`
	tests := []struct {
		name, expr, want string
	}{
		{"Ref parameter", "!Ref Env", "dev"},
		{"Ref long form", "{Ref: Env}", "dev"},
		{"Ref API", "!Ref Api", "API"},
		{"Ref integration", "!Ref Mock", "INTEGRATION"},
		{"Ref function", "!Ref Fn", "mystack-Fn"},
		{"Ref route", "!Ref DefaultRoute", "ROUTE"},
		{"AWS::Region", "!Ref AWS::Region", "us-east-1"},
		{"AWS::AccountId", "!Ref AWS::AccountId", "000000000000"},
		{"AWS::StackName", "!Ref AWS::StackName", "mystack"},
		{"AWS::StackId", "!Select [0, !Split [/, !Ref AWS::StackId]]", "arn:aws:cloudformation:us-east-1:000000000000:stack"},
		{"AWS::Partition", "!Ref AWS::Partition", "aws"},
		{"AWS::URLSuffix", "!Ref AWS::URLSuffix", "amazonaws.com"},
		{"Sub string", "!Sub '${Env}-${AWS::Region}-${!Literal}'", "dev-us-east-1-${Literal}"},
		{"Sub with variables", "!Sub ['${A}/${Env}', {A: !Ref AWS::Partition}]", "aws/dev"},
		{"Sub long form", "{'Fn::Sub': 'x-${Env}'}", "x-dev"},
		{"Sub GetAtt", "!Sub '${Fn.Arn}'", "arn:aws:lambda:us-east-1:000000000000:function:mystack-Fn"},
		{"GetAtt dotted", "!GetAtt Fn.Arn", "arn:aws:lambda:us-east-1:000000000000:function:mystack-Fn"},
		{"GetAtt list", "!GetAtt [Api, ApiEndpoint]", "wss://API.execute-api.us-east-1.amazonaws.com"},
		{"GetAtt long form", "{'Fn::GetAtt': [Mock, IntegrationId]}", "INTEGRATION"},
		{"Join", "!Join ['-', [a, !Ref Env, c]]", "a-dev-c"},
		{"Join long form", "{'Fn::Join': ['', [a, b]]}", "ab"},
		{"Select", "!Select [1, [x, y, z]]", "y"},
		{"Split and Select", "!Select [2, !Split [',', 'a,b,c']]", "c"},
		{"If true", "!If [IsDev, yes, no]", "yes"},
		{"If false", "!If [IsProd, yes, no]", "no"},
		{"If long form", "{'Fn::If': [DevOrProd, yes, no]}", "yes"},
		{"Not", "!If [Neither, yes, no]", "no"},
		{"And", "!If [Both, yes, no]", "no"},
		{"FindInMap", "!FindInMap [Regions, !Ref AWS::Region, Size]", "big"},
		{"FindInMap long form", "{'Fn::FindInMap': [Regions, eu-west-1, Size]}", "small"},
		{"FindInMap list", "!Join [',', !FindInMap [Regions, us-east-1, Zones]]", "a,b"},
		{"Base64", "!Base64 hello", "aGVsbG8="},
		{"GetAZs", "!Select [0, !GetAZs '']", "us-east-1a"},
		{"NoValue in a list", "!Join [',', [a, !Ref AWS::NoValue, b]]", "a,b"},
		{"number", "42", "42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustLoad(t, base+fmt.Sprintf(extra, tc.expr), Options{})
			want := strings.NewReplacer("API", r.Config.APIID).Replace(tc.want)
			if strings.Contains(want, "INTEGRATION") || strings.Contains(want, "ROUTE") {
				id := genID("mystack/Mock", 7)
				if strings.Contains(want, "ROUTE") {
					id = genID("mystack/DefaultRoute", 7)
				}
				want = strings.NewReplacer("INTEGRATION", id, "ROUTE", id).Replace(want)
			}
			if got := r.Config.StageVariables["V"]; got != want {
				t.Errorf("%s = %q, want %q", tc.expr, got, want)
			}
		})
	}
}

func TestParametersConditionsMappings(t *testing.T) {
	text := base + `  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: !FindInMap [Stages, !Ref Env, Name]
      StageVariables:
        second: !Select [1, !Ref Names]
        count: !Ref Count
  ProdRoute:
    Type: AWS::ApiGatewayV2::Route
    Condition: IsProd
    Properties:
      ApiId: !Ref Api
      RouteKey: prodonly
      Target: !Join [/, [integrations, !Ref Mock]]
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Mappings:
  Stages:
    dev: {Name: development}
    prod: {Name: production}
`
	text = strings.Replace(text, "Parameters:\n", "Parameters:\n  Names: {Type: CommaDelimitedList, Default: 'a, b'}\n  Count: {Type: Number, Default: 3}\n", 1)
	r := mustLoad(t, text, Options{})
	c := r.Config
	if c.Stage != "development" || c.StageVariables["second"] != "b" || c.StageVariables["count"] != "3" {
		t.Errorf("stage %q vars %v", c.Stage, c.StageVariables)
	}
	if _, ok := c.Routes["prodonly"]; ok {
		t.Error("a route whose condition is false must not exist")
	}
	found := false
	for _, i := range r.Ignored {
		found = found || i.LogicalID == "ProdRoute" && strings.Contains(i.Reason, "IsProd is false")
	}
	if !found {
		t.Errorf("ProdRoute not listed as ignored: %v", r.Ignored)
	}
	r = mustLoad(t, text, Options{Parameters: map[string]string{"Env": "prod", "Count": "7", "Names": "x,y"}})
	c = r.Config
	if c.Stage != "production" || c.StageVariables["second"] != "y" || c.StageVariables["count"] != "7" {
		t.Errorf("with parameters: stage %q vars %v", c.Stage, c.StageVariables)
	}
	if _, ok := c.Routes["prodonly"]; !ok {
		t.Error("the route whose condition holds is missing")
	}
}

func TestGlobals(t *testing.T) {
	text := `Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: go1.x
    Timeout: 20
    MemorySize: 256
    CodeUri: fn
    Handler: main
    Tracing: Active
    Environment:
      Variables: {SHARED: global, OVERRIDDEN: global}
  Api:
    Cors: '*'
` + strings.Replace(base, "    Properties: {CodeUri: fn, Runtime: provided.al2023}\n", `    Properties:
      Timeout: 5
      Environment:
        Variables: {OVERRIDDEN: own, OWN: !Sub '${AWS::Region}'}
`, 1) + `  FnRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: fn
      Target: !Join [/, [integrations, !Ref FnIntegration]]
  FnIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
`
	r := mustLoad(t, text, Options{})
	l := r.Config.Routes["fn"].Integration.Lambda
	want := map[string]string{"SHARED": "global", "OVERRIDDEN": "own", "OWN": "us-east-1"}
	if fmt.Sprint(l.Env) != fmt.Sprint(want) || l.Timeout != 5*time.Second || l.MemorySize != 256 || !strings.HasSuffix(l.Build, "fn") {
		t.Errorf("lambda %+v", l)
	}
	if len(r.Ignored) != 2 || r.Ignored[0].Property != "Tracing" || r.Ignored[1].Type != "Globals.Api" {
		t.Errorf("ignored %v", r.Ignored)
	}
}

func TestResources(t *testing.T) {
	text := base + `  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: $default
      DefaultRouteSettings: {ThrottlingBurstLimit: 10}
      StageVariables: {backend: 'http://127.0.0.1:3000'}
  Deployment:
    Type: AWS::ApiGatewayV2::Deployment
    Properties: {ApiId: !Ref Api, StageName: $default}
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Auth
      Target: !Join [/, [integrations, !Ref Proxy]]
  Auth:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Api
      Name: auth
      AuthorizerType: REQUEST
      AuthorizerUri: !GetAtt Boot.Arn
      IdentitySource: route.request.header.Authorization, route.request.querystring.token
      AuthorizerResultTtlInSeconds: 300
  Boot:
    Type: AWS::Lambda::Function
    Properties: {Code: bin, Runtime: provided.al2, FunctionName: booter, Timeout: 30, MemorySize: 1024}
  Proxy:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: HTTP_PROXY
      IntegrationMethod: POST
      IntegrationUri: !Sub '${Stage}/connect'
      TimeoutInMillis: 2000
      RequestParameters: {integration.request.header.X-Source: "'wsgate'"}
  ChatRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: chat
      RouteResponseSelectionExpression: $default
      Target: !Join [/, [integrations, !Ref Http]]
  ChatResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {ApiId: !Ref Api, RouteId: !Ref ChatRoute, RouteResponseKey: $default}
  Http:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: HTTP, IntegrationUri: 'https://backend.example/chat', IntegrationMethod: POST}
  PingRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ping
      Target: !Join [/, [integrations, !Ref Pong]]
  Pong:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: MOCK
      RequestTemplates: {$default: '{"statusCode": 201}'}
      TemplateSelectionExpression: \$default
  PongResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties:
      ApiId: !Ref Api
      IntegrationId: !Ref Pong
      IntegrationResponseKey: $default
      ResponseTemplates: {$default: '{"pong": true}'}
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: connections}
  Unused:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: BOGUS}
`
	text = strings.Replace(text, "      Target: !Join [/, [integrations, !Ref Stage]]", "", 1)
	r := mustLoad(t, strings.Replace(text, "!Sub '${Stage}/connect'", "'http://127.0.0.1:3000/connect'", 1), Options{})
	c := r.Config
	if c.Stage != "" || c.StageVariables["backend"] != "http://127.0.0.1:3000" {
		t.Errorf("stage %q vars %v", c.Stage, c.StageVariables)
	}
	conn := c.Routes["$connect"].Integration
	if conn.Type != config.IntegrationHTTP || conn.URL != "http://127.0.0.1:3000/connect" || conn.Payload != config.PayloadBody ||
		conn.Timeout != 2*time.Second || conn.Headers["X-Source"] != "wsgate" {
		t.Errorf("$connect %+v", conn)
	}
	a := c.Authorizer
	if a.Type != config.AuthLambda || !strings.HasSuffix(a.Lambda.Command, filepath.Join("bin", "bootstrap")) || a.Lambda.Name != "booter" ||
		a.Lambda.Timeout != 30*time.Second || a.Lambda.MemorySize != 1024 || a.CacheTTL != 5*time.Minute ||
		!slices.Equal(a.IdentitySources, []string{"route.request.header.Authorization", "route.request.querystring.token"}) {
		t.Errorf("authorizer %+v", a)
	}
	chat := c.Routes["chat"]
	if !chat.RouteResponse || chat.Integration.Type != config.IntegrationHTTP || chat.Integration.Payload != config.PayloadBody {
		t.Errorf("chat %+v", chat)
	}
	ping := c.Routes["ping"].Integration
	if ping.Type != config.IntegrationMock || ping.StatusCode != 201 || ping.Body == nil || *ping.Body != `{"pong": true}` {
		t.Errorf("ping %+v", ping)
	}
	if def := c.Routes["$default"].Integration; def.Body == nil || *def.Body != "" {
		t.Errorf("a MOCK without integration response answers an empty body, got %+v", def)
	}
	var ignored []string
	for _, i := range r.Ignored {
		ignored = append(ignored, i.LogicalID+"."+i.Property)
	}
	if c.Throttling != (config.RateLimit{Rate: 10000, Burst: 10}) {
		t.Errorf("DefaultRouteSettings with a burst alone: throttling %+v; want AWS's account rate and the burst", c.Throttling)
	}
	want := []string{"Fn.", "Table.", "Unused."}
	if !slices.Equal(ignored, want) {
		t.Errorf("ignored %v, want %v", ignored, want)
	}
}

// TestErrors loads templates with one problem each; the line marked "#<"
// is where it must be reported.
func TestErrors(t *testing.T) {
	route := func(props string) string {
		return "  R:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n      ApiId: !Ref Api\n" + props
	}
	integ := func(props string) string {
		return route("      RouteKey: r\n      Target: !Join [/, [integrations, !Ref I]]\n") +
			"  I:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n      ApiId: !Ref Api\n" + props
	}
	fnRoute := func(fnProps string) string {
		return integ("      IntegrationType: AWS_PROXY\n      IntegrationUri: !GetAtt F.Arn\n") +
			"  F:\n    Type: AWS::Serverless::Function\n    Properties:\n" + fnProps
	}
	// awsInteg is an AWS integration of service URI tail uri, with the
	// request parameters params and the $default request template tmpl.
	awsInteg := func(uri, params, tmpl string) string {
		tmpl, mark := strings.CutSuffix(tmpl, " #<")
		tmpl = "'" + strings.ReplaceAll(tmpl, "'", "''") + "'"
		if mark {
			tmpl += " #<"
		}
		return integ("      IntegrationType: AWS\n      IntegrationUri: arn:aws:apigateway:us-east-1:" + uri + "\n" + params +
			"      RequestTemplates:\n        $default: " + tmpl + "\n")
	}
	const form = "      RequestParameters: {integration.request.header.Content-Type: \"'application/x-www-form-urlencoded'\"}\n"
	stageVar := func(expr string) string {
		return "  S:\n    Type: AWS::ApiGatewayV2::Stage\n    Properties:\n      ApiId: !Ref Api\n      StageName: s\n      StageVariables:\n        V: " + expr + " #<\n"
	}
	tests := []struct {
		name, extra string
		opts        Options
		path, msg   string
	}{
		{"Ref unknown", stageVar("!Ref Nope"), Options{}, "Resources.S.Properties.StageVariables.V", `Ref "Nope" names no parameter`},
		{"GetAtt unknown resource", stageVar("!GetAtt Nope.Arn"), Options{}, "Resources.S.Properties.StageVariables.V", `the template has no resource "Nope"`},
		{"GetAtt unknown attribute", stageVar("!GetAtt Mock.Foo"), Options{}, "Resources.S.Properties.StageVariables.V", "cannot resolve the attribute Foo"},
		{"ImportValue", stageVar("!ImportValue shared"), Options{}, "Resources.S.Properties.StageVariables.V", "Fn::ImportValue is not supported"},
		{"Sub unknown", stageVar("!Sub '${Nope}'"), Options{}, "Resources.S.Properties.StageVariables.V", `Ref "Nope"`},
		{"Sub unclosed", stageVar("!Sub '${Env'"), Options{}, "Resources.S.Properties.StageVariables.V", "without a closing }"},
		{"Select out of range", stageVar("!Select [5, [a]]"), Options{}, "Resources.S.Properties.StageVariables.V", "not within the list"},
		{"Join of a string", stageVar("!Join [',', abc]"), Options{}, "Resources.S.Properties.StageVariables.V", "must be a list"},
		{"If unknown condition", stageVar("!If [Nope, a, b]"), Options{}, "Resources.S.Properties.StageVariables.V", `condition "Nope" is not defined`},
		{"FindInMap without Mappings", stageVar("!FindInMap [M, a, b]"), Options{}, "Resources.S.Properties.StageVariables.V", "no Mappings"},
		{"Equals arity", stageVar("!If [C, a, b]") + "Conditions:\n  C: !Equals [a] #<\n", Options{}, "Conditions.C", "takes a list of 2 arguments"},
		{"parameter override unknown", "", Options{Parameters: map[string]string{"Nope": "x"}}, "Parameters", "-parameter Nope names no parameter"},
		{"parameter without value", "", Options{}, "Parameters.NoDefault", "has no Default"},
		{"HTTP API", "", Options{}, "Resources.Api.Properties.ProtocolType", "HTTP APIs are not supported"},
		{"AWS_IAM", route("      RouteKey: r\n      AuthorizationType: AWS_IAM #<\n      Target: !Join [/, [integrations, !Ref Mock]]\n"), Options{}, "Resources.R.Properties.AuthorizationType", "AWS_IAM is not supported"},
		{"CUSTOM off $connect", route("      RouteKey: r\n      AuthorizationType: CUSTOM #<\n      Target: !Join [/, [integrations, !Ref Mock]]\n"), Options{}, "Resources.R.Properties.AuthorizationType", "only allowed on the $connect route"},
		{"ApiKeyRequired", route("      RouteKey: r\n      ApiKeyRequired: true #<\n      Target: !Join [/, [integrations, !Ref Mock]]\n"), Options{}, "Resources.R.Properties.ApiKeyRequired", "not supported"},
		{"bad target", route("      RouteKey: r\n      Target: integrations/nope #<\n"), Options{}, "Resources.R.Properties.Target", "is not integrations/ID"},
		{"unknown property", route("      RouteKey: r\n      Bogus: 1 #<\n      Target: !Join [/, [integrations, !Ref Mock]]\n"), Options{}, "Resources.R.Properties.Bogus", "not supported"},
		{"VTL request template", integ("      IntegrationType: HTTP_PROXY\n      IntegrationUri: http://127.0.0.1:1/\n      RequestTemplates: {a: b} #<\n"), Options{}, "Resources.I.Properties.RequestTemplates", "VTL templates are not supported"},
		{"AWS SQS without template", integ("      IntegrationType: AWS #<\n      IntegrationUri: arn:aws:apigateway:us-east-1:sqs:path/000000000000/q\n"), Options{}, "Resources.I.Properties.RequestTemplates", "required: an AWS integration sends what its request template writes"},
		{"AWS SQS other parameter", awsInteg("sqs:path/000000000000/q", form, "Action=SendMessage&MessageBody=$input.body&DelaySeconds=5 #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "DelaySeconds=5 is not supported (recognised: Action)"},
		{"AWS SQS VTL", awsInteg("sqs:path/000000000000/q", form, "#set($b = $input.body)Action=SendMessage&MessageBody=$b #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "is not NAME=VALUE"},
		{"AWS SQS body from a path", awsInteg("sqs:path/000000000000/q", form, "Action=SendMessage&MessageBody=$input.path('$.text') #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "wsgate sends the client's message"},
		{"AWS SQS another action", awsInteg("sqs:path/000000000000/q", form, "Action=DeleteQueue #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "maps only SendMessage"},
		{"AWS SQS without Content-Type", awsInteg("sqs:path/000000000000/q", "", "Action=SendMessage&MessageBody=$input.body") + "      RequestParameters: {} #<\n", Options{}, "Resources.I.Properties.RequestParameters", "want integration.request.header.Content-Type"},
		{"AWS SQS FIFO without group", awsInteg("sqs:path/000000000000/q.fifo", form, "Action=SendMessage&MessageBody=$input.body #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "needs MessageGroupId"},
		{"AWS SQS group from the body", awsInteg("sqs:path/000000000000/q.fifo", form, "Action=SendMessage&MessageBody=$input.body&MessageGroupId=$input.path('$.g') #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "MessageGroupId=$input.path('$.g'): want a static value"},
		{"AWS SQS queue URL form", awsInteg("sqs:action/SendMessage #<", form, "Action=SendMessage&MessageBody=$input.body"), Options{}, "Resources.I.Properties.IntegrationUri", "want arn:aws:apigateway:REGION:sqs:path/ACCOUNT/QUEUE"},
		{"AWS SNS without topic", awsInteg("sns:action/Publish", form, "Message=$input.body #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "want a static TopicArn"},
		{"AWS SNS subject", awsInteg("sns:action/Publish", form, "TopicArn=arn:aws:sns:us-east-1:000000000000:t&Message=$input.body&Subject=hi #<"), Options{}, "Resources.I.Properties.RequestTemplates.$default", "Subject=hi is not supported (recognised: Message)"},
		{"AWS EventBridge resources", awsInteg("events:action/PutEvents", "", `{"Entries":[{"Source":"s","DetailType":"d","Detail":"$util.escapeJavaScript($input.body)","Resources":["r"]}]} #<`), Options{}, "Resources.I.Properties.RequestTemplates.$default", "Resources is not supported (recognised: Detail, DetailType)"},
		{"AWS EventBridge dynamic source", awsInteg("events:action/PutEvents", "", `{"Entries":[{"Source":"$context.routeKey","DetailType":"d","Detail":"$util.escapeJavaScript($input.body)"}]} #<`), Options{}, "Resources.I.Properties.RequestTemplates.$default", "Source: only a static string is supported"},
		{"AWS EventBridge two entries", awsInteg("events:action/PutEvents", "", `{"Entries":[{"Source":"s","DetailType":"d","Detail":"$util.escapeJavaScript($input.body)"},{"Source":"s"}]} #<`), Options{}, "Resources.I.Properties.RequestTemplates.$default", "not a PutEvents request wsgate recognises"},
		{"AWS EventBridge path without target", awsInteg("events:path// #<", "", `{"Entries":[{"Source":"s","DetailType":"d","Detail":"$input.body"}]}`), Options{}, "Resources.I.Properties.IntegrationUri", "X-Amz-Target"},
		{"AWS DynamoDB", awsInteg("dynamodb:action/PutItem #<", "", "{}"), Options{}, "Resources.I.Properties.IntegrationUri", "SQS (sqs:path/ACCOUNT/QUEUE), SNS (sns:action/Publish) and EventBridge (events:action/PutEvents) only, not dynamodb"},
		{"AWS Lambda", awsInteg("lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:f/invocations #<", "", "{}"), Options{}, "Resources.I.Properties.IntegrationUri", "use AWS_PROXY"},
		{"AWS template selection", awsInteg("sqs:path/000000000000/q", form, "Action=SendMessage&MessageBody=$input.body") + "      TemplateSelectionExpression: $request.body.kind #<\n", Options{}, "Resources.I.Properties.TemplateSelectionExpression", "template selection is not supported"},
		{"AWS GET", awsInteg("sqs:path/000000000000/q", form, "Action=SendMessage&MessageBody=$input.body") + "      IntegrationMethod: GET #<\n", Options{}, "Resources.I.Properties.IntegrationMethod", "take POST"},
		{"non-POST method", integ("      IntegrationType: HTTP_PROXY\n      IntegrationMethod: GET #<\n      IntegrationUri: http://127.0.0.1:1/\n"), Options{}, "Resources.I.Properties.IntegrationMethod", "wsgate POSTs"},
		{"timeout out of range", integ("      IntegrationType: HTTP_PROXY\n      IntegrationUri: http://127.0.0.1:1/\n      TimeoutInMillis: 40000 #<\n"), Options{}, "routes.r.integration.timeout", "29s"},
		{"function not in template", integ("      IntegrationType: AWS_PROXY\n      IntegrationUri: arn:aws:lambda:us-east-1:000000000000:function:elsewhere #<\n"), Options{}, "Resources.I.Properties.IntegrationUri", `function "elsewhere" is not defined`},
		{"S3 code", fnRoute("      Runtime: go1.x\n      CodeUri: s3://bucket/key.zip #<\n"), Options{}, "Resources.F.Properties.CodeUri", "needs a local directory"},
		{"ZipFile code", fnRoute("      Runtime: go1.x\n      CodeUri: {ZipFile: x} #<\n"), Options{}, "Resources.F.Properties.CodeUri", "needs a local directory"},
		{"missing directory", fnRoute("      Runtime: go1.x\n      CodeUri: nowhere #<\n"), Options{}, "Resources.F.Properties.CodeUri", "is not a directory"},
		{"nothing to run", fnRoute("      Runtime: go1.x\n      CodeUri: empty #<\n"), Options{}, "Resources.F.Properties.CodeUri", "neither an executable bootstrap nor a Go package"},
		{"python runtime", fnRoute("      Runtime: python3.12 #<\n      CodeUri: fn\n"), Options{}, "Resources.F.Properties.Runtime", `runtime "python3.12" is not supported`},
		{"second API", "  Api2: #<\n    Type: AWS::ApiGatewayV2::Api\n    Properties: {ProtocolType: WEBSOCKET}\n", Options{}, "Resources.Api2", "one API per template"},
		{"JWT authorizer", route("      RouteKey: $connect\n      AuthorizationType: CUSTOM\n      AuthorizerId: !Ref A\n      Target: !Join [/, [integrations, !Ref Mock]]\n") +
			"  A:\n    Type: AWS::ApiGatewayV2::Authorizer\n    Properties:\n      ApiId: !Ref Api\n      AuthorizerType: JWT #<\n", Options{}, "Resources.A.Properties.AuthorizerType", "REQUEST authorizers"},
		{"bad identity source", route("      RouteKey: $connect\n      AuthorizationType: CUSTOM\n      AuthorizerId: !Ref A\n      Target: !Join [/, [integrations, !Ref Mock]]\n") +
			"  A:\n    Type: AWS::ApiGatewayV2::Authorizer\n    Properties:\n      ApiId: !Ref Api\n      AuthorizerType: REQUEST\n      AuthorizerUri: !GetAtt Fn.Arn\n      IdentitySource: [method.request.header.X] #<\n", Options{}, "authorizer.identity_sources[0]", "is not an identity source"},
		{"wrong ApiId", route("      RouteKey: r\n      Target: !Join [/, [integrations, !Ref Mock]]\n") + "  S:\n    Type: AWS::ApiGatewayV2::Stage\n    Properties:\n      ApiId: other #<\n      StageName: s\n", Options{}, "Resources.S.Properties.ApiId", "not the template's API"},
		{"unknown section", "Outputz: {} #<\n", Options{}, "Outputz", "unknown template section"},
		{"OpenAPI body", "", Options{}, "Resources.Api.Properties.Body", "not supported"},
		{"route request parameters", route("      RouteKey: r\n      RequestParameters: {} #<\n      Target: !Join [/, [integrations, !Ref Mock]]\n"), Options{}, "Resources.R.Properties.RequestParameters", "not supported"},
		{"VPC link", integ("      IntegrationType: HTTP_PROXY\n      IntegrationUri: http://127.0.0.1:1/\n      ConnectionType: VPC_LINK #<\n"), Options{}, "Resources.I.Properties.ConnectionType", "not supported"},
		{"integration response naming nothing", "  IR:\n    Type: AWS::ApiGatewayV2::IntegrationResponse\n    Properties:\n      ApiId: !Ref Api\n      IntegrationId: nope #<\n      IntegrationResponseKey: $default\n", Options{}, "Resources.IR.Properties.IntegrationId", "names no integration"},
		{"route response naming nothing", "  RR:\n    Type: AWS::ApiGatewayV2::RouteResponse\n    Properties:\n      ApiId: !Ref Api\n      RouteId: nope #<\n      RouteResponseKey: $default\n", Options{}, "Resources.RR.Properties.RouteId", "names no route"},
		{"unknown resource attribute", "  X:\n    Type: AWS::SQS::Queue\n    Propertie: {} #<\n", Options{}, "Resources.X.Propertie", "unknown resource attribute"},
		{"other transform", "Transform: AWS::Include #<\n", Options{}, "Transform", "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := base + tc.extra
			switch tc.name {
			case "parameter without value":
				text = strings.Replace(text, "Parameters:\n", "Parameters:\n  NoDefault: {Type: String} #<\n", 1)
			case "HTTP API":
				text = strings.Replace(text, "ProtocolType: WEBSOCKET", "ProtocolType: HTTP #<", 1)
			case "OpenAPI body":
				text = strings.Replace(text, "  Api:\n", "  Api: #<\n", 1)
				text = strings.Replace(text, "ProtocolType: WEBSOCKET", "ProtocolType: WEBSOCKET\n      Body: {}", 1)
			case "parameter override unknown":
				text = strings.Replace(text, "Parameters:", "Parameters: #<", 1)
			}
			line := 0
			for i, l := range strings.Split(text, "\n") {
				if strings.Contains(l, "#<") {
					line = i + 1
				}
			}
			path := writeTemplate(t, text)
			_, err := Load(path, tc.opts)
			if err == nil {
				t.Fatalf("no error\n%s", numbered(text))
			}
			prefix := fmt.Sprintf("%s:%d: %s: ", path, line, tc.path)
			if line == 0 {
				prefix = fmt.Sprintf("%s: %s: ", path, tc.path)
			}
			found := false
			for _, l := range strings.Split(err.Error(), "\n") {
				found = found || strings.HasPrefix(l, prefix) && strings.Contains(l, tc.msg)
			}
			if !found {
				t.Errorf("got\n%v\nwant a line %q containing %q\n%s", err, prefix, tc.msg, numbered(text))
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.File != path {
				t.Errorf("want a *config.Error in the template, got %T", err)
			}
		})
	}
}

// TestEveryProblemAtOnce: two independent problems are both reported.
func TestEveryProblemAtOnce(t *testing.T) {
	text := strings.Replace(base, "RouteKey: $default", "RouteKey: $default\n      AuthorizationType: AWS_IAM", 1) +
		"  S:\n    Type: AWS::ApiGatewayV2::Stage\n    Properties: {ApiId: !Ref Api, StageName: !Ref Nope}\n"
	_, err := Load(writeTemplate(t, text), Options{})
	if err == nil || !strings.Contains(err.Error(), "AWS_IAM") || !strings.Contains(err.Error(), `"Nope"`) {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestDefaultStackName(t *testing.T) {
	for dir, want := range map[string]string{"my_app.v2": "myappv2", "2fast": "fast", "___": "stack", "chat-api": "chat-api"} {
		if got := defaultStackName(filepath.Join("/x", dir, "template.yaml")); got != want {
			t.Errorf("%s: %q, want %q", dir, got, want)
		}
	}
}

// TestAliasBomb: aliases that expand exponentially are refused quickly.
func TestAliasBomb(t *testing.T) {
	text := `Metadata:
  x0: &a0 [x, x, x, x, x, x, x, x, x, x]
  x1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
  x2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
  x3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
  x4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
  x5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
  x6: &j [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
` + base + `  S:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: s
      StageVariables: {V: !Join ['', *j]}
`
	_, err := Load(writeTemplate(t, text), Options{})
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Fatalf("got %v", err)
	}
}

// TestIgnoredPieces: what has no effect is listed with its reason, never
// skipped.
func TestIgnoredPieces(t *testing.T) {
	text := strings.Replace(base, "ProtocolType: WEBSOCKET", "ProtocolType: WEBSOCKET\n      DisableExecuteApiEndpoint: true", 1) + `  Spare:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: MOCK}
  SpareResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties: {ApiId: !Ref Api, IntegrationId: !Ref Spare, IntegrationResponseKey: $default}
  Rule:
    Type: AWS::ApiGatewayV2::RoutingRule
    Properties: {}
  Fn2:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Runtime: go1.x, Tracing: Active, Architectures: [arm64]}
  FnRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: fn
      Target: !Join [/, [integrations, !Ref FnIntegration]]
  FnIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn2.Arn, CredentialsArn: arn:aws:iam::000000000000:role/x}
  FnIntegrationResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties: {ApiId: !Ref Api, IntegrationId: !Ref FnIntegration, IntegrationResponseKey: $default}
`
	r := mustLoad(t, text, Options{})
	got := map[string]string{}
	for _, i := range r.Ignored {
		got[i.LogicalID+"."+i.Property] = i.Reason
	}
	for key, reason := range map[string]string{
		"Api.DisableExecuteApiEndpoint": "its own listener",
		"Spare.":                        "no route targets it",
		"SpareResponse.":                "no route targets its integration",
		"Rule.":                         "does not create or emulate AWS::ApiGatewayV2::RoutingRule",
		"Fn2.Tracing":                   "X-Ray",
		"Fn2.Architectures":             "builds for this machine",
		"FnIntegration.CredentialsArn":  "does not assume IAM roles",
		"FnIntegrationResponse.":        "pass the backend's response through",
		"Fn.":                           "not used by the API",
	} {
		if !strings.Contains(got[key], reason) {
			t.Errorf("%s: reason %q, want it to mention %q (all: %v)", key, got[key], reason, r.Ignored)
		}
	}
}
