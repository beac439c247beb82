package cfntemplate

import (
	"strings"
	"testing"
)

// withParams is base with the parameter declarations decl in place of its
// own (Env is kept).
func withParams(decl string) string {
	const own = "Parameters:\n  Env: {Type: String, Default: dev}\n"
	return "Parameters:\n  Env: {Type: String, Default: dev}\n" + decl + strings.TrimPrefix(base, own)
}

// TestNoEchoParameterNotEchoed: the value of a NoEcho parameter is a secret
// (a password given with -parameter); a problem with it does not repeat it.
func TestNoEchoParameterNotEchoed(t *testing.T) {
	const secret = "hunter2-secret"
	for name, decl := range map[string]string{
		"Number":        "  Pw: {Type: Number, NoEcho: true}\n",
		"AllowedValues": "  Pw: {Type: String, NoEcho: true, AllowedValues: [a, b]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeTemplate(t, withParams(decl)), Options{Parameters: map[string]string{"Pw": secret}})
			if err == nil {
				t.Fatal("the value was accepted")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats the NoEcho value: %v", err)
			}
			if !strings.Contains(err.Error(), ":3: Parameters.Pw") {
				t.Errorf("want the problem at line 3, Parameters.Pw; got %v", err)
			}
		})
	}
	// Without NoEcho the value is shown, as it helps.
	_, err := Load(writeTemplate(t, withParams("  N: {Type: Number}\n")), Options{Parameters: map[string]string{"N": "abc"}})
	if err == nil || !strings.Contains(err.Error(), `"abc"`) {
		t.Errorf("want the value of a parameter without NoEcho shown, got %v", err)
	}
}

// TestResourceConditionMustBeAName: a resource's Condition that is not the
// name of a condition is an error at its line, not silently dropped (which
// would create the resource unconditionally).
func TestResourceConditionMustBeAName(t *testing.T) {
	for name, cond := range map[string]string{
		"list":  "[Never]",
		"empty": `""`,
		"null":  "~",
		"Ref":   "!Ref Env",
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := base + `  Other:
    Type: AWS::ApiGatewayV2::Route
    Condition: ` + cond + `
    Properties: {ApiId: !Ref Api, RouteKey: other, Target: !Join [/, [integrations, !Ref Mock]]}
`
			r, err := Load(writeTemplate(t, tmpl), Options{})
			if err == nil {
				t.Fatalf("Condition: %s was accepted; routes: %v", cond, r.Config.Routes)
			}
			if !strings.Contains(err.Error(), ":25: Resources.Other.Condition") {
				t.Errorf("want the problem at line 25, Resources.Other.Condition; got %v", err)
			}
		})
	}
}

// TestFindInMapDefaultValue: a fourth argument of Fn::FindInMap
// ({DefaultValue: VALUE}) is refused at its line, as CloudFormation refuses
// it without the AWS::LanguageExtensions transform, rather than ignored.
func TestFindInMapDefaultValue(t *testing.T) {
	stage := func(args string) string {
		return "Mappings: {M: {k: {v: x}}}\n" + base + `  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: !FindInMap ` + args + `}
`
	}
	r, err := Load(writeTemplate(t, stage("[M, k, v]")), Options{})
	if err != nil || r.Config.Stage != "x" {
		t.Fatalf("three arguments: stage %v, %v; want x", r, err)
	}
	for _, args := range []string{"[M, k, missing, {DefaultValue: prod}]", "[M, k, v, {DefaultValue: prod}]", "[M, k, v, garbage]"} {
		_, err := Load(writeTemplate(t, stage(args)), Options{})
		if err == nil || !strings.Contains(err.Error(), "AWS::LanguageExtensions") || !strings.Contains(err.Error(), "Resources.Stage") {
			t.Errorf("%s: want the fourth argument refused, got %v", args, err)
		}
	}
}
