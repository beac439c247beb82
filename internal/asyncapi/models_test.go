package asyncapi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/asyncapi"
	"github.com/wsgate/wsgate/internal/asyncapi/asyncapitest"
)

// TestModelMessagesOnePerModel: every model of a route is a message of its
// channel, also when two model names differ only in characters a message
// key cannot hold ("a b" and "a_b", "$default" and "_default"): none
// replaces another.
func TestModelMessagesOnePerModel(t *testing.T) {
	doc := build(t, parse(t, `
routes:
  send:
    integration: {type: mock}
    model_selection_expression: "$request.body.kind"
    models:
      "a b": {required: [space]}
      a_b: {required: [underscore]}
      _default: {required: [underscore_default]}
      $default: {required: [dollar_default]}
`))
	msgs := get(t, doc, "channels", "route:send", "messages").(generic)
	if len(msgs) != 4 {
		t.Fatalf("%d messages %v for 4 models", len(msgs), keys(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		req := get(t, m, "payload", "schema", "required").([]any)
		seen[req[0].(string)] = true
	}
	for _, want := range []string{"space", "underscore", "underscore_default", "dollar_default"} {
		if !seen[want] {
			t.Errorf("the model requiring %q is missing from the document", want)
		}
	}
	if got := len(get(t, doc, "operations", "route:send", "messages").([]any)); got != 4 {
		t.Errorf("the operation lists %d messages for 4 models", got)
	}
}

// TestModelSchemaFormatIsTheValidatedDraft: the schemaFormat of a model
// names the draft the gateway validates it as. "$schema":
// "http://json-schema.org/schema#" (the latest draft) compiles as 2020-12,
// so prefixItems applies; the document must not call it draft 4.
func TestModelSchemaFormatIsTheValidatedDraft(t *testing.T) {
	for schema, want := range map[string]string{
		"http://json-schema.org/schema#":                "2020-12",
		"https://json-schema.org/schema":                "2020-12",
		"http://json-schema.org/draft-04/schema#":       "draft-04",
		"http://json-schema.org/draft-07/schema":        "draft-07",
		"https://json-schema.org/draft/2019-09/schema":  "2019-09",
		"https://json-schema.org/draft/2020-12/schema#": "2020-12",
	} {
		doc := build(t, parse(t, `
routes:
  send:
    integration: {type: mock}
    model: {$schema: "`+schema+`", type: array}
`))
		got := get(t, doc, "channels", "route:send", "messages", "request", "payload", "schemaFormat")
		if got != "application/schema+json;version="+want {
			t.Errorf("$schema %s: schemaFormat %v, want version=%s", schema, got, want)
		}
	}
}

// TestModelFileNumbersExact: a model file's numbers reach the document as
// written, as the gateway validates them (exactly, with json.Number): an
// integer beyond 2^53 keeps its last digits, and a number beyond float64's
// range does not stop the document from being written.
func TestModelFileNumbersExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ids.json")
	if err := os.WriteFile(path, []byte(`{"properties": {"id": {"enum": [9007199254740993]}, "big": {"maximum": 1e400}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `routes: {send: {integration: {type: mock}, model_file: `+path+`}}`)
	j, err := asyncapi.JSON(cfg, asyncapi.Options{ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := asyncapitest.ValidateJSON(j); err != nil {
		t.Fatalf("JSON document is not valid AsyncAPI 3.0.0: %v", err)
	}
	y, err := asyncapi.YAML(cfg, asyncapi.Options{ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"9007199254740993", `"maximum": 1e400`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("document lacks %s:\n%s", want, j)
		}
	}
	for _, want := range []string{"- 9007199254740993\n", "maximum: 1e400\n"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("YAML document lacks %q:\n%s", want, y)
		}
	}
}
