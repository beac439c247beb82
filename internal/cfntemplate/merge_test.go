package cfntemplate

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

func TestMergeKeepsTheFileAndTakesTheTemplate(t *testing.T) {
	r, err := Load("testdata/seed/template.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	baseCfg, err := config.Parse("wsgate.yaml", []byte("listen: 127.0.0.1:7000\nlimits:\n  idle_timeout: 1m\nlog: {level: debug}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(baseCfg, r)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7000" || c.Limits.IdleTimeout != time.Minute || c.Log.Level != "debug" {
		t.Errorf("the file's keys were lost: %+v", c)
	}
	if c.Stage != "dev" || c.APIID != r.Config.APIID || len(c.Routes) != 2 || c.Authorizer.Type != config.AuthLambda {
		t.Errorf("the template's keys were lost: %+v", c)
	}
	if baseCfg.APIID != "local" || len(baseCfg.Routes) != 1 {
		t.Error("Merge changed its base")
	}
}

func TestMergeWithoutFileHasOnlyTheTemplateRoutes(t *testing.T) {
	r, err := Load("testdata/seed/template.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Routes["$default"]; ok || len(c.Routes) != 2 {
		t.Errorf("routes %v: the default config's $default mock must not leak in", c.Routes)
	}
	if c.Listen != ":8080" || c.Management.Listen != "127.0.0.1:9090" {
		t.Errorf("defaults not filled: %q %q", c.Listen, c.Management.Listen)
	}
}

func TestMergeClash(t *testing.T) {
	r, err := Load("testdata/seed/template.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	baseCfg, err := config.Parse("wsgate.yaml", []byte("listen: :7000\nstage: prod\nroutes:\n  $default:\n    integration: {type: mock}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Merge(baseCfg, r)
	if err == nil {
		t.Fatal("want a clash")
	}
	for _, want := range []string{"wsgate.yaml:2: stage: set by the template testdata/seed/template.yaml", "wsgate.yaml:3: routes: set by the template"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// TestImportRoundTrip: the YAML of a result, parsed as a wsgate
// configuration, is the configuration Merge builds from the template.
func TestImportRoundTrip(t *testing.T) {
	for _, path := range []string{"testdata/seed/template.yaml", "testdata/json/template.json", "testdata/awsservices/template.yaml"} {
		t.Run(path, func(t *testing.T) {
			r, err := Load(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			data := r.YAML()
			parsed, err := config.Parse("imported.yaml", data)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			merged, err := Merge(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			absPaths(t, parsed)
			if !sameEffect(parsed, merged) {
				t.Errorf("imported:\n%+v\nmerged:\n%+v\nyaml:\n%s", parsed, merged, data)
			}
			if !strings.HasPrefix(string(data), "# wsgate configuration equivalent to the CloudFormation template "+path) {
				t.Errorf("header:\n%s", data)
			}
			for _, i := range r.Ignored {
				if !strings.Contains(string(data), "#   "+i.String()) {
					t.Errorf("ignored %v not listed in\n%s", i, data)
				}
			}
			if strings.Contains(string(data), filepath.Dir(mustAbs(t, path))) {
				t.Errorf("paths below the current directory must be relative:\n%s", data)
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// absPaths makes the relative function paths of an imported configuration
// absolute, as the template's are.
func absPaths(t *testing.T, c *config.Config) {
	fix := func(l *config.Lambda) {
		if l.Build != "" {
			l.Build = mustAbs(t, l.Build)
		}
		if l.Command != "" {
			l.Command = mustAbs(t, l.Command)
		}
	}
	fix(&c.Authorizer.Lambda)
	for k, r := range c.Routes {
		fix(&r.Integration.Lambda)
		c.Routes[k] = r
	}
}

// sameEffect compares the keys a template owns and the defaults around
// them.
func sameEffect(a, b *config.Config) bool {
	return a.Stage == b.Stage && a.APIID == b.APIID && a.DomainName == b.DomainName &&
		a.RouteSelectionExpression == b.RouteSelectionExpression &&
		reflect.DeepEqual(a.StageVariables, b.StageVariables) &&
		reflect.DeepEqual(a.Authorizer, b.Authorizer) && reflect.DeepEqual(a.Routes, b.Routes) &&
		a.Listen == b.Listen && reflect.DeepEqual(a.Limits, b.Limits) && reflect.DeepEqual(a.Management, b.Management)
}

func TestYAMLOutsideTheCurrentDirectory(t *testing.T) {
	path := writeTemplate(t, base+`  FnRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: fn
      Target: !Join [/, [integrations, !Ref FnIntegration]]
  FnIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt Fn.Arn}
`)
	r, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	data := r.YAML()
	c, err := config.Parse("x.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	build := c.Routes["fn"].Integration.Lambda.Build
	if !strings.HasPrefix(build, "..") || mustAbs(t, build) != filepath.Join(filepath.Dir(path), "fn") {
		t.Errorf("build %q: want the function's directory relative to the current one\n%s", build, data)
	}
}
