package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// pingTemplate is a WebSocket API whose "ping" route answers {"pong":true}
// from a MOCK integration, with a permission wsgate ignores.
const pingTemplate = `Parameters:
  StageName: {Type: String, Default: dev}
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: !Ref StageName}
  PingRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ping
      Target: !Join [/, [integrations, !Ref Pong]]
  PingResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {ApiId: !Ref Api, RouteId: !Ref PingRoute, RouteResponseKey: $default}
  Pong:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: MOCK}
  PongResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties:
      ApiId: !Ref Api
      IntegrationId: !Ref Pong
      IntegrationResponseKey: $default
      ResponseTemplates: {$default: '{"pong":true}'}
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: connections}
`

func writeTemplateFile(t *testing.T, text string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "chat")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "template.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateTemplate(t *testing.T) {
	path := writeTemplateFile(t, pingTemplate)
	r := run(t, nil, "validate", "-template", path, "-parameter", "StageName=prod")
	if r.code != 0 || !strings.Contains(r.stdout, path+": ok") ||
		!strings.Contains(r.stdout, "ignored: Table (AWS::DynamoDB::Table)") {
		t.Fatalf("%v", r)
	}
	bad := writeTemplateFile(t, strings.Replace(pingTemplate, "IntegrationType: MOCK", "IntegrationType: MOCK, Bogus: 1", 1))
	r = run(t, nil, "validate", "-template", bad)
	if r.code != 1 || !strings.Contains(r.stdout, bad+":21: Resources.Pong.Properties.Bogus: property Bogus of AWS::ApiGatewayV2::Integration is not supported") {
		t.Fatalf("%v", r)
	}
	r = run(t, nil, "validate", "-template", path, "-parameter", "Nope=1")
	if r.code != 1 || !strings.Contains(r.stdout, "-parameter Nope names no parameter") {
		t.Fatalf("%v", r)
	}
}

func TestTemplateFlagErrors(t *testing.T) {
	path := writeTemplateFile(t, pingTemplate)
	for _, args := range [][]string{
		{"serve", "-parameter", "A=1"},
		{"validate", "-region", "eu-west-1"},
		{"serve", "-template", path, "-parameter", "novalue"},
		{"serve", "-template", path, "-workers", "2"},
		{"import"},
		{"import", "-template", path, "-c", "x.yaml"},
	} {
		if r := run(t, nil, args...); r.code != 2 {
			t.Errorf("%v: want a usage error, got %v", args, r)
		}
	}
}

func TestImport(t *testing.T) {
	path := writeTemplateFile(t, pingTemplate)
	r := run(t, nil, "import", "-template", path, "-stack-name", "chat-prod", "-region", "eu-west-1")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	c, err := config.Parse("imported.yaml", []byte(r.stdout))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	ping := c.Routes["ping"]
	if c.Stage != "dev" || !ping.RouteResponse || ping.Integration.Body == nil || *ping.Integration.Body != `{"pong":true}` ||
		!strings.HasSuffix(c.DomainName, ".execute-api.eu-west-1.amazonaws.com") || len(c.Routes) != 1 {
		t.Errorf("imported %+v", c)
	}
	if !strings.Contains(r.stdout, "# (stack chat-prod, region eu-west-1") || !strings.Contains(r.stdout, "#   Table (AWS::DynamoDB::Table)") {
		t.Errorf("header:\n%s", r.stdout)
	}
	out := writeFile(t, "imported.yaml", r.stdout)
	if v := run(t, nil, "validate", "-c", out); v.code != 0 {
		t.Errorf("validate of the imported config: %v", v)
	}
}

func TestTemplateClashWithConfig(t *testing.T) {
	path := writeTemplateFile(t, pingTemplate)
	cfg := writeFile(t, "wsgate.yaml", "listen: \":0\"\nroutes:\n  $default:\n    integration: {type: mock}\n")
	r := run(t, nil, "validate", "-template", path, "-c", cfg)
	if r.code != 1 || !strings.Contains(r.stdout, cfg+":2: routes: set by the template") {
		t.Fatalf("%v", r)
	}
	r = run(t, nil, "serve", "-template", path, "-c", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, cfg+":2: routes: set by the template") {
		t.Fatalf("%v", r)
	}
}

// TestServeTemplate serves a template with the listeners of a -c config
// and answers on its route.
func TestServeTemplate(t *testing.T) {
	ports := freePorts(t, 2)
	client, mgmt := ports[0], ports[1]
	cfg := writeFile(t, "serve.yaml", fmt.Sprintf("listen: \"127.0.0.1:%d\"\nmanagement: {listen: \"127.0.0.1:%d\"}\nshutdown_timeout: 5s\n", client, mgmt))
	path := writeTemplateFile(t, pingTemplate)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := start(ctx, nil, "serve", "-template", path, "-parameter", "StageName=prod", "-c", cfg)
	url := fmt.Sprintf("ws://127.0.0.1:%d/prod", client)
	gt.Eventually(t, func() bool {
		select {
		case code := <-srv.done:
			t.Fatalf("serve returned %d\n%s", code, srv.stderr)
		default:
		}
		conn, _, err := gt.TryDial(url, nil)
		if err != nil {
			return false
		}
		_ = conn.CloseNow()
		return true
	}, "serve to accept clients")
	c := gt.Dial(t, url, nil)
	c.Send(`{"action":"ping"}`)
	if got := c.NextText(); got != `{"pong":true}` {
		t.Fatalf("ping answered %q", got)
	}

	// A reload reads the template again with the same -parameter: the
	// stage stays prod (a stage change would be refused).
	if err := os.WriteFile(path, []byte(strings.Replace(pingTemplate, `{"pong":true}`, `{"pong":2}`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/reload", mgmt), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /reload: %s %s", resp.Status, body)
	}
	c.Send(`{"action":"ping"}`)
	if got := c.NextText(); got != `{"pong":2}` {
		t.Fatalf("ping answered %q after the reload", got)
	}
	cancel()
	c.ExpectClose(1001)
	r := srv.wait(t)
	if r.code != 0 {
		t.Fatalf("serve after cancel: %v", r)
	}
	if n := strings.Count(r.stderr, "template: ignored"); n != 1 || !strings.Contains(r.stderr, "resource=Table") {
		t.Errorf("want the ignored table logged once, stderr:\n%s", r.stderr)
	}
}
