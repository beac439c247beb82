package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// lambdaTemplate is a SAM template whose $connect route has a Lambda
// REQUEST authorizer and whose $default route answers with a Lambda
// function, both directories holding a bootstrap executable.
const lambdaTemplate = `Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Timeout: 10
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: dev}
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Authorizer
  Authorizer:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Api
      Name: auth
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AuthFunction.Arn}/invocations
      IdentitySource: [route.request.querystring.Auth]
  AuthFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ./functions/auth}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Join [/, [integrations, !Ref EchoIntegration]]
  DefaultResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: {ApiId: !Ref Api, RouteId: !Ref DefaultRoute, RouteResponseKey: $default}
  EchoIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${EchoFunction.Arn}/invocations
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: ./functions/echo}
`

// TestServeTemplateLambda serves a template whose functions are local
// programs: the authorizer refuses a client without the Auth parameter and
// the $default function answers the others.
func TestServeTemplateLambda(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "echoapp")
	for name, src := range map[string]string{"auth": "authfn", "echo": "echofn"} {
		bin := filepath.Join(dir, "functions", name, "bootstrap")
		out, err := exec.Command("go", "build", "-o", bin, "../integration/testdata/"+src).CombinedOutput()
		if err != nil {
			t.Fatalf("building %s: %v\n%s", src, err, out)
		}
	}
	path := filepath.Join(dir, "template.yaml")
	if err := os.WriteFile(path, []byte(lambdaTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	cfg := writeFile(t, "serve.yaml", fmt.Sprintf("listen: \"127.0.0.1:%d\"\nmanagement: {listen: \"127.0.0.1:%d\"}\nshutdown_timeout: 5s\n", ports[0], ports[1]))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := start(ctx, nil, "serve", "-template", path, "-c", cfg)
	base := fmt.Sprintf("ws://127.0.0.1:%d/dev", ports[0])
	gt.Eventually(t, func() bool {
		select {
		case code := <-srv.done:
			t.Fatalf("serve returned %d\n%s", code, srv.stderr)
		default:
		}
		conn, _, err := gt.TryDial(base+"?Auth=allow", nil)
		if err != nil {
			return false
		}
		_ = conn.CloseNow()
		return true
	}, "serve to accept clients")
	if _, resp, err := gt.TryDial(base, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without Auth: want 401, got %v %v", resp, err)
	}
	c := gt.Dial(t, base+"?Auth=allow", nil)
	c.Send("hello")
	if got := c.NextText(); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	cancel()
	c.ExpectClose(1001)
	if r := srv.wait(t); r.code != 0 || strings.Contains(r.stderr, "template: ignored") {
		t.Fatalf("serve: %v", r)
	}
}
