// Package seed002_test runs seed 002's CloudFormation template, unchanged,
// with wsgate: the functions are built from their Go sources and run under
// wsgate's Lambda Runtime API, and their management API calls, made through
// the AWS SDK for Go v1 and v2 to https://{api}.execute-api.{region}.amazonaws.com,
// reach wsgate.
package seed002_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/cfntemplate"
	"github.com/wsgate/wsgate/internal/config"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// base is the part of the configuration a template cannot say. The
// management API requires a bearer token, so the functions' calls pass only
// with the credentials wsgate gives them.
const base = `
management:
  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}
`

func start(t *testing.T, template string, params map[string]string) *gt.Gateway {
	t.Helper()
	r, err := cfntemplate.Load(template, cfntemplate.Options{Parameters: params})
	if err != nil {
		t.Fatalf("loading %s: %v", template, err)
	}
	b, err := config.Parse("base.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cfntemplate.Merge(b, r)
	if err != nil {
		t.Fatalf("merging %s: %v", template, err)
	}
	return gt.StartConfig(t, cfg)
}

func TestSeed002(t *testing.T) {
	g := start(t, "template.yaml", nil)
	if !strings.HasSuffix(g.URL, "/dev") {
		t.Fatalf("client URL %s: want the stage dev of the Environment parameter's default", g.URL)
	}

	t.Run("no Auth is 401", func(t *testing.T) {
		_, resp, err := gt.TryDial(g.URL, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial without Auth: want 401, got %v %v", resp, err)
		}
	})

	t.Run("refused token is 401", func(t *testing.T) {
		_, resp, err := gt.TryDial(g.URL+"?Auth=deny", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial with a refused token: want 401, got %v %v", resp, err)
		}
	})

	t.Run("push through the v1 SDK", func(t *testing.T) {
		c := gt.Dial(t, g.URL+"?Auth=myFakeToken", nil)
		gt.Eventually(t, func() bool {
			for _, line := range strings.Split(g.Logs.String(), "\n") {
				if strings.Contains(line, "authorized with context map[") && strings.Contains(line, "createdAt:2019-01-03T12:15:42") &&
					strings.Contains(line, "org:my-org") && strings.Contains(line, "principalId:my-username") && strings.Contains(line, "role:admin") {
					return true
				}
			}
			return false
		}, "onConnect did not log the authorizer's context")
		c.Send(`{"message": "hello", "action": "pushtowebsocket"}`)
		if got := c.NextText(); got != "Hello there!" {
			t.Fatalf("want Hello there!, got %q", got)
		}
	})
}

func TestSeed002Parameter(t *testing.T) {
	g := start(t, "template.yaml", map[string]string{"Environment": "staging"})
	if !strings.HasSuffix(g.URL, "/staging") {
		t.Fatalf("client URL %s: want the stage staging", g.URL)
	}
	c := gt.Dial(t, g.URL+"?Auth=myFakeToken", nil)
	c.Send(`{"message": "hello", "action": "pushtowebsocket"}`)
	if got := c.NextText(); got != "Hello there!" {
		t.Fatalf("want Hello there!, got %q", got)
	}
}

func TestSeed002SDKv2(t *testing.T) {
	g := start(t, "testdata/sdkv2.yaml", nil)
	c := gt.Dial(t, g.URL, nil)
	c.Send(`{"action": "pushtowebsocket"}`)
	if got := c.NextText(); got != "Hello from v2!" {
		t.Fatalf("want Hello from v2!, got %q", got)
	}
	c.Send(`{"action": "pushfromcontext"}`)
	want := "Hello from " + g.Config.DomainName + "!"
	if got := c.NextText(); got != want || !strings.Contains(want, ".execute-api.us-east-1.amazonaws.com") {
		t.Fatalf("want %q (an execute-api domain), got %q", want, got)
	}
}

// TestSeed002Import runs the configuration `wsgate import` prints for the
// template, with the management section added as a -c file would give it:
// the same API, the same push.
func TestSeed002Import(t *testing.T) {
	r, err := cfntemplate.Load("template.yaml", cfntemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	text := string(r.YAML()) + base
	cfg, err := config.Parse("imported.yaml", []byte(text))
	if err != nil {
		t.Fatalf("the imported configuration does not parse: %v\n%s", err, text)
	}
	if cfg.APIID != r.Config.APIID || cfg.DomainName != r.Config.DomainName || cfg.Stage != "dev" {
		t.Fatalf("imported api_id %q, domain_name %q, stage %q; the template gives %q, %q, dev",
			cfg.APIID, cfg.DomainName, cfg.Stage, r.Config.APIID, r.Config.DomainName)
	}
	g := gt.StartConfig(t, cfg)
	if _, resp, err := gt.TryDial(g.URL, nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without Auth: want 401, got %v %v", resp, err)
	}
	c := gt.Dial(t, g.URL+"?Auth=myFakeToken", nil)
	c.Send(`{"message": "hello", "action": "pushtowebsocket"}`)
	if got := c.NextText(); got != "Hello there!" {
		t.Fatalf("want Hello there!, got %q", got)
	}
}
