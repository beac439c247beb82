package cfntemplate

import (
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// FuzzParse: no template makes the loader panic or loop, and every template
// it accepts gives YAML that config.Parse accepts.
//
// The seeds are small templates in compact form, and inputs over 2 KiB are
// skipped, so that the engine spends its time on new inputs rather than on
// minimizing long ones (docs/fuzzing.md).
func FuzzParse(f *testing.F) {
	api := "Resources: {A: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}}, "
	route := "R: {Type: AWS::ApiGatewayV2::Route, Properties: {ApiId: !Ref A, RouteKey: $connect, AuthorizationType: CUSTOM, AuthorizerId: !Ref Z, Target: !Join [/, [integrations, !Ref I]]}}, "
	for _, s := range []string{
		api + route + "I: {Type: AWS::ApiGatewayV2::Integration, Properties: {ApiId: !Ref A, IntegrationType: AWS_PROXY, IntegrationUri: !Sub '${F.Arn}'}}, " +
			"Z: {Type: AWS::ApiGatewayV2::Authorizer, Properties: {ApiId: !Ref A, AuthorizerType: REQUEST, AuthorizerUri: !GetAtt F.Arn, IdentitySource: route.request.querystring.Auth}}, " +
			"F: {Type: AWS::Serverless::Function, Properties: {CodeUri: ./functions/onConnect, Runtime: go1.x, Environment: {Variables: {ID: !Ref A}}}}}}",
		api + "S: {Type: AWS::ApiGatewayV2::Stage, Properties: {ApiId: !Ref A, StageName: !If [C, !Select [0, !Split [',', 'a,b']], !FindInMap [M, k, v]]}}}\nConditions: {C: !And [!Equals [1, 1], !Not [!Condition D]], D: {'Fn::Or': [false, false]}}\nMappings: {M: {k: {v: x}}}",
		`{"Parameters": {"P": {"Type": "CommaDelimitedList", "Default": "a,b"}}, "Resources": {"A": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Name": {"Fn::Join": ["-", {"Ref": "P"}]}}}}}`,
		"Resources: {A: {Type: AWS::ApiGatewayV2::Api, Properties: {Name: !Sub ['${A}${!x}${AWS::Region}${V}', {V: !Base64 x}]}}}",
		"Conditions: {A: !Condition B, B: !Not [!Condition A]}\nResources: {}",
		"x: &a [*a]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2048 {
			t.Skip()
		}
		r, err := Parse("testdata/seed/template.yaml", data, Options{})
		if err != nil {
			return
		}
		if _, err := config.Parse("imported.yaml", r.YAML()); err != nil {
			t.Fatalf("YAML of an accepted template does not parse: %v\n%s", err, r.YAML())
		}
	})
}
