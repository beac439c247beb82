package config

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestValidateModels(t *testing.T) {
	const mock = "integration: {type: mock}"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"inline model", "routes:\n  $default:\n    " + mock + "\n    model: {type: object}", nil},
		{"model file", "routes:\n  $default:\n    " + mock + "\n    model_file: send.json", nil},
		{"selection", "routes:\n  send:\n    " + mock + "\n    model_selection_expression: $request.body.kind\n    models:\n      a: {required: [x]}\n      $default: b.json", nil},
		{"model and model_file", "routes:\n  $default:\n    " + mock + "\n    model: {type: object}\n    model_file: send.json",
			[]string{`wsgate.yaml:5: routes.$default.model_file: set either model or model_file, not both`}},
		{"model is a string", "routes:\n  $default:\n    " + mock + "\n    model: send.json",
			[]string{`wsgate.yaml:4: routes.$default.model: a string is not a JSON Schema; to read the schema from a file, use model_file`}},
		{"models without expression", "routes:\n  $default:\n    " + mock + "\n    models: {a: {}}",
			[]string{`wsgate.yaml:4: routes.$default.models: requires model_selection_expression, which selects one of the models for each message (such as "$request.body.action")`}},
		{"expression without models", "routes:\n  $default:\n    " + mock + "\n    model_selection_expression: $request.body.kind",
			[]string{`wsgate.yaml:4: routes.$default.model_selection_expression: requires models, the schemas it selects from`}},
		{"model and models", "routes:\n  $default:\n    " + mock + "\n    model: {}\n    model_selection_expression: $request.body.kind\n    models: {a: {}}",
			[]string{`wsgate.yaml:6: routes.$default.models: set either model (or model_file) for one model, or models with model_selection_expression, not both`}},
		{"bad expression", "routes:\n  $default:\n    " + mock + "\n    model_selection_expression: \"$request.body.\"\n    models: {a: {}}",
			[]string{`wsgate.yaml:4: routes.$default.model_selection_expression: selection expression "$request.body.": at offset 14: empty path segment after "$request.body.": a member name is one or more of A-Z a-z 0-9 _ - (use ['name'] for other names)`}},
		{"empty model", "routes:\n  $default:\n    " + mock + "\n    model_selection_expression: $request.body.kind\n    models:\n      a:",
			[]string{`wsgate.yaml:6: routes.$default.models.a: empty; write the schema, or the path of a JSON file holding it`}},
		{"model on $connect", "routes:\n  $connect:\n    " + mock + "\n    model: {type: object}",
			[]string{`wsgate.yaml:4: routes.$connect.model: not supported on $connect; models validate messages`}},
		{"models on $disconnect", "routes:\n  $disconnect:\n    " + mock + "\n    model_selection_expression: $request.body.kind\n    models: {a: {}}",
			[]string{`wsgate.yaml:5: routes.$disconnect.models: not supported on $disconnect; models validate messages`}},
		{"not JSON value", "routes:\n  $default:\n    " + mock + "\n    model:\n      maximum: .inf",
			[]string{`wsgate.yaml:5: routes.$default.model: .inf is not a JSON value`}},
		{"timestamp key value", "routes:\n  $default:\n    " + mock + "\n    model:\n      default: 2001-12-14",
			[]string{`wsgate.yaml:5: routes.$default.model: 2001-12-14 is not a JSON value`}},
		{"model does not compile", "routes:\n  $default:\n    " + mock + "\n    model: {type: strin}",
			[]string{`wsgate.yaml:4: routes.$default.model: not a valid JSON Schema: /type: fails enum; /type: want array, got string`}},
		{"remote $ref", "routes:\n  $default:\n    " + mock + "\n    model_selection_expression: $request.body.kind\n    models:\n      a: {$ref: \"https://example.com/s.json\"}",
			[]string{`wsgate.yaml:6: routes.$default.models.a: $ref "https://example.com/s.json": references to other documents are not followed; put the definitions in the model itself ("definitions" or "$defs") and refer to them as "#/definitions/name"`}},
		{"2020-12 model", "routes:\n  $default:\n    " + mock + "\n    model: {$schema: \"https://json-schema.org/draft/2020-12/schema\", prefixItems: [{type: string}]}", nil},
		{"duplicate key in model", "routes:\n  $default:\n    " + mock + "\n    model:\n      type: object\n      type: string",
			[]string{`wsgate.yaml:6: routes.$default.model: duplicate key "type" (first set at line 5)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.in, tt.want...) })
	}
}

func TestModelDecodesToJSONValues(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte(`
routes:
  $default:
    integration: {type: mock}
    model:
      type: object
      required: [a, b]
      additionalProperties: false
      properties:
        a: &num {type: integer, minimum: -3, maximum: 1e3, multipleOf: 0.5}
        b: *num
        c: {enum: [null, true, "x", 0x10]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Routes["$default"].Model.Doc
	num := map[string]any{"type": "integer", "minimum": json.Number("-3"), "maximum": json.Number("1000"), "multipleOf": json.Number("0.5")}
	want := map[string]any{
		"type":                 "object",
		"required":             []any{"a", "b"},
		"additionalProperties": false,
		"properties": map[string]any{
			"a": num, "b": num,
			"c": map[string]any{"enum": []any{nil, true, "x", json.Number("16")}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("model\n got %#v\nwant %#v", got, want)
	}
	if line := c.src.lines["routes.$default.model"]; line != 5 {
		t.Fatalf("model line %d, want 5", line)
	}
}

// Aliases repeating a mapping cannot make a schema grow without bound.
func TestModelAliasBomb(t *testing.T) {
	in := "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < 8; i++ {
		in += "a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [*a" + string(rune('0'+i-1))
		for range 9 {
			in += ", *a" + string(rune('0'+i-1))
		}
		in += "]\n"
	}
	in = "routes:\n  $default:\n    integration: {type: mock}\n    model:\n      x-anchors:\n" + indent(in, "        ") + "      enum: *a7\n"
	_, err := Parse("wsgate.yaml", []byte(in))
	if got := messages(err); len(got) != 1 || got[0] != "wsgate.yaml:6: routes.$default.model: the schema holds more than 100000 values" {
		t.Fatalf("Parse: %q", got)
	}
}

func indent(s, prefix string) string {
	out := ""
	for _, line := range splitLines(s) {
		out += prefix + line + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return lines
}
