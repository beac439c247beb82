package model

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/route"
)

func mustCompile(t *testing.T, src string) *Schema {
	t.Helper()
	s, err := CompileJSON([]byte(src))
	if err != nil {
		t.Fatalf("compile %s: %v", src, err)
	}
	return s
}

const draft4Message = `{
	"$schema": "http://json-schema.org/draft-04/schema#",
	"type": "object",
	"required": ["action", "message"],
	"properties": {
		"action": {"type": "string"},
		"message": {"type": "string", "maxLength": 5},
		"count": {"type": "integer", "minimum": 0, "exclusiveMinimum": true}
	}
}`

func TestValidateSingle(t *testing.T) {
	tests := []struct {
		name, schema, body string
		// want is "" for a valid body, else a substring of the detail.
		want string
	}{
		{"draft4 valid", draft4Message, `{"action":"send","message":"hi"}`, ""},
		{"draft4 missing", draft4Message, `{"action":"send"}`, "/: missing properties message"},
		{"draft4 type", draft4Message, `{"action":"send","message":3}`, "/message: want string, got number"},
		{"draft4 maxLength", draft4Message, `{"action":"send","message":"toolong"}`, "/message: length 7 is over maxLength 5"},
		// Draft 4's boolean exclusiveMinimum: 0 itself is refused.
		{"draft4 exclusiveMinimum", draft4Message, `{"action":"a","message":"m","count":0}`, "/count: fails exclusiveMinimum"},
		{"draft4 exclusiveMinimum ok", draft4Message, `{"action":"a","message":"m","count":1}`, ""},
		// Without $schema the model is draft 4, as AWS models are: a
		// boolean exclusiveMaximum compiles (2020-12 wants a number).
		{"no $schema is draft4", `{"properties":{"n":{"maximum":3,"exclusiveMaximum":true}}}`, `{"n":3}`, "/n: fails exclusiveMaximum"},
		{"2020-12 valid", `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"}],"items":false}`, `["a"]`, ""},
		{"2020-12 prefixItems", `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"}],"items":false}`, `["a",1]`, ": not allowed"},
		{"2020-12 $defs", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$ref":"#/$defs/n","$defs":{"n":{"type":"number"}}}`, `"x"`, "want number, got string"},
		{"draft4 definitions", `{"$ref":"#/definitions/n","definitions":{"n":{"type":"number"}}}`, `1`, ""},
		{"additional", `{"additionalProperties":false,"properties":{"a":{}}}`, `{"a":1,"b":2}`, "additional properties not allowed: b"},
		// format asserts in draft 4 and is an annotation in 2020-12.
		{"draft4 format", `{"format":"email"}`, `"x"`, "/: fails format"},
		{"2020-12 format annotation", `{"$schema":"https://json-schema.org/draft/2020-12/schema","format":"email"}`, `"x"`, ""},
		{"not JSON", draft4Message, `hello`, "the body is not JSON"},
		{"trailing data", `{}`, `{} {}`, "the body is not JSON"},
		{"empty body", `{}`, ``, "the body is not JSON"},
		{"pattern hides value", `{"properties":{"token":{"pattern":"^a+$"}}}`, `{"token":"secret-value"}`, "/token: fails pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Single(mustCompile(t, tt.schema)).Validate([]byte(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want valid", err)
				}
				return
			}
			var inv *Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Validate: %v, want *Invalid", err)
			}
			if !strings.Contains(inv.Detail, tt.want) {
				t.Fatalf("detail %q, want it to contain %q", inv.Detail, tt.want)
			}
			if strings.Contains(inv.Detail, "secret-value") {
				t.Fatalf("detail %q shows the message's value", inv.Detail)
			}
		})
	}
}

func TestValidateSelected(t *testing.T) {
	expr, err := route.ParseExpression("$request.body.action")
	if err != nil {
		t.Fatal(err)
	}
	send := mustCompile(t, `{"required":["message"]}`)
	join := mustCompile(t, `{"required":["room"]}`)
	def := mustCompile(t, `{"required":["action"]}`)
	tests := []struct {
		name   string
		models map[string]*Schema
		body   string
		valid  bool
		model  string
	}{
		{"selected valid", map[string]*Schema{"send": send, "join": join}, `{"action":"send","message":"x"}`, true, ""},
		{"selected invalid", map[string]*Schema{"send": send, "join": join}, `{"action":"join","message":"x"}`, false, "join"},
		{"no match, no $default", map[string]*Schema{"send": send}, `{"action":"other"}`, false, ""},
		{"no match, $default valid", map[string]*Schema{"send": send, "$default": def}, `{"action":"other"}`, true, ""},
		{"no match, $default invalid", map[string]*Schema{"send": send, "$default": def}, `{"x":1}`, false, "$default"},
		{"not JSON uses $default", map[string]*Schema{"send": send, "$default": def}, `not json`, false, "$default"},
		{"not JSON without $default", map[string]*Schema{"send": send}, `not json`, false, ""},
		// A message whose action is "" yields no key; a model named ""
		// cannot be configured, and none is selected.
		{"empty action", map[string]*Schema{"send": send}, `{"action":""}`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Selected(expr, tt.models).Validate([]byte(tt.body))
			if tt.valid {
				if err != nil {
					t.Fatalf("Validate: %v, want valid", err)
				}
				return
			}
			var inv *Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Validate: %v, want *Invalid", err)
			}
			if inv.Model != tt.model {
				t.Fatalf("model %q, want %q (%s)", inv.Model, tt.model, inv.Detail)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, schema, want string }{
		{"remote ref", `{"$ref":"https://example.com/schema.json"}`, `$ref "https://example.com/schema.json": references to other documents are not followed`},
		{"relative ref", `{"properties":{"a":{"$ref":"other.json#/x"}}}`, `references to other documents are not followed`},
		{"file ref", `{"$ref":"file:///etc/passwd"}`, `references to other documents are not followed`},
		{"bad type", `{"type":"strin"}`, "not a valid JSON Schema"},
		{"draft4 rejects numeric exclusiveMinimum", `{"exclusiveMinimum":3}`, "not a valid JSON Schema"},
		{"bad pattern", `{"pattern":"("}`, "pattern"},
		{"not JSON", `{"type":`, "not a JSON document"},
		{"missing pointer", `{"$ref":"#/definitions/none"}`, "definitions/none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileJSON([]byte(tt.schema))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "wsgate:///") {
				t.Fatalf("error %q shows the internal schema URL", err)
			}
		})
	}
}

// A schema whose $ref loops on itself fails the message instead of
// recursing forever.
func TestRefCycle(t *testing.T) {
	s := mustCompile(t, `{"$ref":"#/definitions/a","definitions":{"a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"}}}`)
	if err := Single(s).Validate([]byte(`{}`)); err == nil {
		t.Fatal("a cyclic schema validated a message")
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 1000)
	got := truncate(long, maxDetail)
	if len(got) > maxDetail || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("truncate: %d bytes, %q...", len(got), got[:10])
	}
	if truncate("short", maxDetail) != "short" {
		t.Fatal("truncate changed a short string")
	}
}

// FuzzValidate: any body, valid or not, gets an answer: nil or an *Invalid
// whose detail is bounded.
func FuzzValidate(f *testing.F) {
	expr, err := route.ParseExpression("$request.body.kind")
	if err != nil {
		f.Fatal(err)
	}
	set := Selected(expr, map[string]*Schema{
		"a":        mustCompileF(f, draft4Message),
		"b":        mustCompileF(f, `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","uniqueItems":true,"items":{"pattern":"^x+$"}}`),
		"$default": mustCompileF(f, `{"additionalProperties":false,"properties":{"kind":{"enum":["a","b"]}}}`),
	})
	f.Add([]byte(`{"kind":"a","action":"x","message":"hi"}`))
	f.Add([]byte(`{"kind":"b"}`))
	f.Add([]byte(`["x","x","secretsecret"]`))
	f.Add([]byte(`{"kind":"c","zzz":1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		err := set.Validate(body)
		if err == nil {
			return
		}
		var inv *Invalid
		if !errors.As(err, &inv) {
			t.Fatalf("Validate: %T %v", err, err)
		}
		if len(inv.Detail) > maxDetail {
			t.Fatalf("detail of %d bytes", len(inv.Detail))
		}
	})
}

func mustCompileF(f *testing.F, src string) *Schema {
	s, err := CompileJSON([]byte(src))
	if err != nil {
		f.Fatal(err)
	}
	return s
}

func BenchmarkValidate(b *testing.B) {
	s, err := CompileJSON([]byte(draft4Message))
	if err != nil {
		b.Fatal(err)
	}
	set := Single(s)
	body := []byte(`{"action":"send","message":"hello","count":3}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := set.Validate(body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPathologicalInputs: inputs that make backtracking regexp engines or
// pairwise uniqueness checks take exponential or quadratic time finish
// here, within the go test timeout, on bodies of the gateway's largest
// message size.
func TestPathologicalInputs(t *testing.T) {
	const size = 128 << 10
	evil := mustCompile(t, `{"properties":{"s":{"pattern":"^(a+)+$"}}}`)
	body := `{"s":"` + strings.Repeat("a", size-16) + `b"}`
	var inv *Invalid
	if err := Single(evil).Validate([]byte(body)); !errors.As(err, &inv) || inv.Detail != "/s: fails pattern" {
		t.Fatalf("pattern: %v", err)
	}
	unique := mustCompile(t, `{"uniqueItems":true}`)
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < size-16; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strconv.Itoa(i))
	}
	b.WriteString(",0]")
	if err := Single(unique).Validate([]byte(b.String())); !errors.As(err, &inv) || inv.Detail != "/: fails uniqueItems" {
		t.Fatalf("uniqueItems: %v", err)
	}
}
