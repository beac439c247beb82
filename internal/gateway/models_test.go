package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// badRequestBody matches AWS's frame for a message that fails its route's
// model, byte for byte, capturing the message id.
func badRequestBody(t *testing.T, frame, connectionID string) string {
	t.Helper()
	m := regexp.MustCompile(`^\{"message" : "Bad request body", "connectionId": "` + regexp.QuoteMeta(connectionID) +
		`", "messageId": "([A-Za-z0-9_=-]+)"\}$`).FindStringSubmatch(frame)
	if m == nil {
		t.Fatalf("frame %s; want the Bad request body frame of connection %s", frame, connectionID)
	}
	return m[1]
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRequestValidation: a message that fails its route's model gets AWS's
// Bad request body frame, the socket stays open and the integration never
// sees it; valid messages go through. One route has a single inline model
// (draft 4), another picks among models by a selection expression with a
// $default from a file (2020-12), a third has no $default. The refusals
// are counted and logged with the reason.
func TestRequestValidation(t *testing.T) {
	b := gt.NewBackend(t)
	defaultModel := writeTemp(t, "default.json", `{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"type": "object", "required": ["action"], "properties": {"n": {"type": "integer"}}}`)
	logPath := filepath.Join(t.TempDir(), "access.log")
	g := gt.Start(t, backendConfig(b, fmt.Sprintf(`  send:
    integration: {type: http, url: %q}
    route_response: true
    model:
      $schema: "http://json-schema.org/draft-04/schema#"
      type: object
      required: [action, message]
      properties:
        message: {type: string, maxLength: 8}
  pick:
    integration: {type: http, url: %q}
    route_response: true
    model_selection_expression: "$request.body.kind"
    models:
      text: {type: object, required: [text]}
      $default: %s
  strict:
    integration: {type: http, url: %q}
    route_response: true
    model_selection_expression: "$request.body.kind"
    models:
      text: {type: object, required: [text]}
access_log:
  format: '{"requestId":"$context.requestId","messageId":"$context.messageId","route":"$context.routeKey","status":"$context.status","error":"$context.error.message","validation":"$context.error.validationErrorString","type":"$context.error.responseType"}'
  output: %s
`, b.URLFor("/send"), b.URLFor("/pick"), defaultModel, b.URLFor("/strict"), logPath)))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)

	tests := []struct {
		name, route, msg string
		valid            bool
	}{
		{"single valid", "send", `{"action":"send","message":"hi"}`, true},
		{"single missing property", "send", `{"action":"send"}`, false},
		{"single too long", "send", `{"action":"send","message":"much too long"}`, false},
		{"selected valid", "pick", `{"action":"pick","kind":"text","text":"x"}`, true},
		{"selected invalid", "pick", `{"action":"pick","kind":"text"}`, false},
		{"$default valid", "pick", `{"action":"pick","kind":"other","n":3}`, true},
		{"$default invalid", "pick", `{"action":"pick","kind":"other","n":"three"}`, false},
		{"no kind uses $default", "pick", `{"action":"pick"}`, true},
		{"no $default", "strict", `{"action":"strict","kind":"other"}`, false},
		{"no $default, matching", "strict", `{"action":"strict","kind":"text","text":"y"}`, true},
	}
	want := map[string]int{}
	for _, tt := range tests {
		c.Send(tt.msg)
		got := c.NextText()
		if tt.valid {
			want[tt.route]++
			if got != tt.msg {
				t.Fatalf("%s: got %s, want the integration's echo", tt.name, got)
			}
			continue
		}
		badRequestBody(t, got, id)
	}
	for route, n := range want {
		if got := len(b.Events("/" + route)); got != n {
			t.Errorf("the %s integration saw %d messages; want %d", route, got, n)
		}
	}

	fams := scrape(t, g)
	for route, n := range map[string]float64{"send": 2, "pick": 2, "strict": 1} {
		if got := value(fams, "wsgate_validation_failures_total", "route", route); got != n {
			t.Errorf("wsgate_validation_failures_total{route=%s} = %v; want %v", route, got, n)
		}
		if got := value(fams, "wsgate_client_errors_total", "route", route); got != n {
			t.Errorf("wsgate_client_errors_total{route=%s} = %v; want %v", route, got, n)
		}
	}

	line := waitLine(t, logPath, "the refused message", func(l map[string]string) bool {
		return l["route"] == "send" && l["status"] == "400" && strings.Contains(l["validation"], "maxLength")
	})
	checkFields(t, "refused", line, map[string]string{
		"error": "Bad request body", "type": "BAD_REQUEST_BODY",
		"validation": "/message: length 13 is over maxLength 8",
	})
	if line["messageId"] == "-" || line["requestId"] == "-" {
		t.Errorf("refused message logged without ids: %v", line)
	}
	line = waitLine(t, logPath, "the message without a $default model", func(l map[string]string) bool {
		return l["route"] == "strict" && l["status"] == "400"
	})
	checkFields(t, "strict", line, map[string]string{"validation": "no model matches the selection expression and there is no $default model"})
}

// TestRequestValidationNotJSON: a route with a model refuses a body that is
// not JSON (here the $default route, where such bodies go), and a binary
// message, without calling its integration.
func TestRequestValidationNotJSON(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
stage: prod
binary_frames: base64
routes:
  $connect: {integration: {type: http, url: %q}}
  $default:
    integration: {type: http, url: %q}
    route_response: true
    model: {type: object}
`, b.URLFor("/connect"), b.URLFor("/default")))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	c.Send("not json")
	first := badRequestBody(t, c.NextText(), id)
	if err := c.Write(context.Background(), websocket.MessageBinary, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	second := badRequestBody(t, c.NextText(), id)
	if first == second {
		t.Errorf("two refused messages share the message id %s", first)
	}
	c.Send(`{"a":1}`)
	if got := c.NextText(); got != `{"a":1}` {
		t.Fatalf("valid message: got %s", got)
	}
	if n := len(b.Events("/default")); n != 1 {
		t.Fatalf("the integration saw %d messages; want 1", n)
	}
}

// TestRequestValidationConfigErrors: model files that are missing, not
// JSON, not a valid schema or referring to another document fail the
// build at their lines, all of them reported; a local $ref is fine.
// (Inline models are checked when the configuration is parsed:
// internal/config TestValidateModels.)
func TestRequestValidationConfigErrors(t *testing.T) {
	notJSON := writeTemp(t, "bad.json", `{"type": `)
	invalid := writeTemp(t, "invalid.json", `{"type": "strin"}`)
	remote := writeTemp(t, "remote.json", `{"$ref": "https://example.com/schema.json"}`)
	local := writeTemp(t, "local.json", `{"properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {"type": "string"}}}`)
	missing := filepath.Join(t.TempDir(), "missing.json")
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
routes:
  $default:
    integration: {type: mock}
    model_file: %s
  b:
    integration: {type: mock}
    model_selection_expression: $request.body.kind
    models:
      w: %s
      x: %s
      y: %s
      z: %s
`, missing, notJSON, invalid, remote, local)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{})
	if err == nil {
		t.Fatal("a configuration with broken models was built")
	}
	for _, want := range []string{
		"test.yaml:5: routes.$default.model_file: reading the model: open " + missing + ": no such file or directory",
		"test.yaml:10: routes.b.models.w: " + notJSON + ": not a JSON document: ",
		"test.yaml:11: routes.b.models.x: " + invalid + ": not a valid JSON Schema: /type: ",
		"test.yaml:12: routes.b.models.y: " + remote + `: $ref "https://example.com/schema.json": references to other documents are not followed`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("build error\n%v\nwant it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "models.z") {
		t.Errorf("a model with a local $ref was refused: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing model file is not errors.Is(fs.ErrNotExist): %v", err)
	}
}

// TestReloadModels: models are part of what a reload replaces; a reload to
// a model that does not compile is refused at its line and the old model
// stays.
func TestReloadModels(t *testing.T) {
	b := gt.NewBackend(t)
	text := func(model string) string {
		return backendConfig(b, fmt.Sprintf("  send: {integration: {type: http, url: %q}, route_response: true, model: %s}\n", b.URLFor("/send"), model))
	}
	g := gt.Start(t, text(`{required: [a]}`))
	c := gt.Dial(t, g.URL, nil)
	id := b.ConnectionID(t, "/connect", 0)
	c.Send(`{"action":"send","b":1}`)
	badRequestBody(t, c.NextText(), id)

	g.SetYAML(text(`{required: [b]}`))
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Send(`{"action":"send","b":1}`)
	if got := c.NextText(); got != `{"action":"send","b":1}` {
		t.Fatalf("after the reload: %s", got)
	}

	g.SetYAML(text(`{required: b}`))
	err := g.Reload(context.Background())
	var re *gateway.ReloadError
	if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Problems(), "\n"), "routes.send.model: not a valid JSON Schema") {
		t.Fatalf("reload to a broken model: %v", err)
	}
	c.Send(`{"action":"send","a":1}`)
	badRequestBody(t, c.NextText(), id)
}
