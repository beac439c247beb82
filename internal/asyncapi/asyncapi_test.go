package asyncapi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/asyncapi"
	"github.com/wsgate/wsgate/internal/asyncapi/asyncapitest"
	"github.com/wsgate/wsgate/internal/cfntemplate"
	"github.com/wsgate/wsgate/internal/config"
)

// generic is the decoded JSON form of a document, for assertions.
type generic = map[string]any

func build(t *testing.T, cfg *config.Config) generic {
	t.Helper()
	j, err := asyncapi.JSON(cfg, asyncapi.Options{ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := asyncapitest.ValidateJSON(j); err != nil {
		t.Fatalf("JSON document is not valid AsyncAPI 3.0.0: %v\n%s", err, j)
	}
	y, err := asyncapi.YAML(cfg, asyncapi.Options{ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := asyncapitest.ValidateYAML(y); err != nil {
		t.Fatalf("YAML document is not valid AsyncAPI 3.0.0: %v\n%s", err, y)
	}
	if !strings.HasPrefix(string(y), "asyncapi: 3.0.0\n") {
		t.Errorf("YAML starts %q, want asyncapi: 3.0.0 first", strings.SplitN(string(y), "\n", 2)[0])
	}
	var doc generic
	if err := json.Unmarshal(j, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// get follows a path of keys through doc.
func get(t *testing.T, doc any, path ...string) any {
	t.Helper()
	v := doc
	for i, k := range path {
		m, ok := v.(generic)
		if !ok {
			t.Fatalf("%s is %T, not an object", strings.Join(path[:i], "."), v)
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("%s has no %q; it has %v", strings.Join(path[:i], "."), k, keys(m))
		}
	}
	return v
}

func keys(m generic) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func parse(t *testing.T, yml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSchemaRejectsInvalidDocument(t *testing.T) {
	// The validator must be able to fail: a document without info, one with
	// an unknown operation action, one whose server lacks a protocol.
	j, err := asyncapi.JSON(config.Default(), asyncapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, spoil := range map[string]func(generic){
		"no info":        func(d generic) { delete(d, "info") },
		"bad action":     func(d generic) { d["operations"].(generic)["route:$default"].(generic)["action"] = "publish" },
		"no protocol":    func(d generic) { delete(d["servers"].(generic)["default"].(generic), "protocol") },
		"version 2.6.0":  func(d generic) { d["asyncapi"] = "2.6.0" },
		"unknown member": func(d generic) { d["channels"].(generic)["errors"].(generic)["payload"] = generic{} },
	} {
		var d generic
		if err := json.Unmarshal(j, &d); err != nil {
			t.Fatal(err)
		}
		spoil(d)
		b, _ := json.Marshal(d)
		if asyncapitest.ValidateJSON(b) == nil {
			t.Errorf("%s: validates", name)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	doc := build(t, config.Default())
	if got := get(t, doc, "asyncapi"); got != "3.0.0" {
		t.Errorf("asyncapi = %v", got)
	}
	if got := get(t, doc, "info", "title"); got != "local WebSocket API" {
		t.Errorf("title = %v", got)
	}
	srv := get(t, doc, "servers", "default").(generic)
	if srv["protocol"] != "ws" || srv["host"] != "localhost:8080" || srv["pathname"] != "/" {
		t.Errorf("server = %v", srv)
	}
	if _, ok := srv["security"]; ok {
		t.Errorf("authorizer none, yet security %v", srv["security"])
	}
	// The default's one route is $default, a mock echo.
	op := get(t, doc, "operations", "route:$default").(generic)
	if op["action"] != "receive" || get(t, op, "channel", "$ref") != "#/channels/route:$default" {
		t.Errorf("$default operation = %v", op)
	}
	for _, ch := range []string{"push:@connections", "push:@users", "push:@topics", "errors"} {
		get(t, doc, "channels", ch)
		if got := get(t, doc, "operations", ch, "action"); got != "send" {
			t.Errorf("%s action = %v", ch, got)
		}
	}
	frames := get(t, doc, "channels", "errors", "messages").(generic)
	if got := keys(frames); !slices.Equal(got, []string{"Forbidden", "InternalServerError"}) {
		t.Errorf("default config's error frames = %v", got)
	}
	if got := get(t, frames, "Forbidden", "payload", "properties", "message", "const"); got != "Forbidden" {
		t.Errorf("Forbidden frame message = %v", got)
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := config.Load("../config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := build(t, cfg)
	srv := get(t, doc, "servers", "prod").(generic)
	if srv["protocol"] != "wss" || srv["host"] != "ws.example.com:8080" || srv["pathname"] != "/prod" {
		t.Errorf("server = %v", srv)
	}
	schemes := get(t, doc, "components", "securitySchemes").(generic)
	session := get(t, schemes, "cookie.session").(generic)
	if session["type"] != "httpApiKey" || session["in"] != "cookie" || session["name"] != "session" {
		t.Errorf("cookie scheme = %v", session)
	}
	if got := get(t, schemes, "csrfQuery", "name"); got != "csrf" {
		t.Errorf("csrf query = %v", got)
	}
	if got := get(t, schemes, "csrfCookie", "name"); got != "csrf_token" {
		t.Errorf("csrf cookie = %v", got)
	}
	if len(srv["security"].([]any)) != len(schemes) {
		t.Errorf("server lists %d schemes of %d", len(srv["security"].([]any)), len(schemes))
	}
	// Every route has its channel and operation.
	for key := range cfg.Routes {
		get(t, doc, "channels", "route:"+key)
		if got := get(t, doc, "operations", "route:"+key, "x-wsgate-route-key"); got != key {
			t.Errorf("operation route:%s route key %v", key, got)
		}
	}
	get(t, doc, "operations", "route:$refresh", "reply")
}

func TestSeed002Template(t *testing.T) {
	r, err := cfntemplate.Load("../../examples/seed002/template.yaml", cfntemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cfntemplate.Merge(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	doc := build(t, cfg)
	if got := get(t, doc, "servers", "dev", "pathname"); got != "/dev" {
		t.Errorf("pathname = %v", got)
	}
	for _, key := range []string{"$connect", "pushtowebsocket"} {
		get(t, doc, "operations", "route:"+key)
	}
	// The pushtowebsocket route is selected by its action.
	p := get(t, doc, "channels", "route:pushtowebsocket", "messages", "request", "payload", "properties", "action", "const")
	if p != "pushtowebsocket" {
		t.Errorf("action const = %v", p)
	}
}

func TestRoutesModelsAndFrames(t *testing.T) {
	dir := t.TempDir()
	modelFile := filepath.Join(dir, "send.json")
	if err := os.WriteFile(modelFile, []byte(`{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["text"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `
listen: "0.0.0.0:443"
domain_name: chat.example.com
tls: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}
stage: v1
api_id: chat
authorizer:
  type: jwt
  identity_sources: [route.request.header.Authorization, route.request.querystring.tenant]
  jwt: {secret_env: JWT_SECRET, algorithms: [HS256]}
topics: {allow: ["room/*", "user/{principalId}/*"]}
throttling: {rate: 100, burst: 50}
limits: {messages_per_second: {rate: 10, burst: 10}}
routes:
  $connect: {integration: {type: mock}}
  $default: {integration: {type: mock}, route_response: true}
  send:
    integration: {type: http, url: "http://user:secret@127.0.0.1:3000/send?key=k"}
    model_file: `+modelFile+`
  typed:
    integration: {type: mock}
    model_selection_expression: "$request.body.kind"
    models:
      text: {type: object, required: [body], properties: {body: {type: string}}}
      $default: {type: object}
  join: {builtin: subscribe}
  leave: {builtin: unsubscribe}
`)
	doc := build(t, cfg)
	b, _ := json.Marshal(doc)
	for _, secret := range []string{"secret", "key=k", "127.0.0.1:3000"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("document holds %q", secret)
		}
	}
	srv := get(t, doc, "servers", "v1").(generic)
	if srv["protocol"] != "wss" || srv["host"] != "chat.example.com" {
		t.Errorf("server = %v", srv)
	}
	bearer := get(t, doc, "components", "securitySchemes", "header.Authorization").(generic)
	if bearer["type"] != "http" || bearer["scheme"] != "bearer" || bearer["bearerFormat"] != "JWT" {
		t.Errorf("bearer scheme = %v", bearer)
	}
	if got := get(t, doc, "components", "securitySchemes", "querystring.tenant", "in"); got != "query" {
		t.Errorf("tenant in %v", got)
	}
	query := get(t, doc, "channels", "route:$connect", "bindings", "ws", "query", "required")
	if !slices.Equal(query.([]any), []any{"tenant"}) {
		t.Errorf("handshake query required = %v", query)
	}

	// A model file's schema, with its draft.
	send := get(t, doc, "channels", "route:send", "messages", "request", "payload").(generic)
	if send["schemaFormat"] != "application/schema+json;version=draft-07" || get(t, send, "schema", "required").([]any)[0] != "text" {
		t.Errorf("send payload = %v", send)
	}
	// One message per model, draft 4 when the model names none.
	typed := get(t, doc, "channels", "route:typed", "messages").(generic)
	if got := keys(typed); !slices.Equal(got, []string{"model-_default", "model-text"}) {
		t.Errorf("typed messages = %v", got)
	}
	if got := get(t, typed, "model-text", "payload", "schemaFormat"); got != "application/schema+json;version=draft-04" {
		t.Errorf("inline model format = %v", got)
	}
	if got := len(get(t, doc, "operations", "route:typed", "messages").([]any)); got != 2 {
		t.Errorf("typed operation lists %d messages", got)
	}
	// A route response is a reply; a route without one has none.
	if got := get(t, doc, "operations", "route:$default", "reply", "messages").([]any)[0].(generic)["$ref"]; got != "#/channels/route:$default/messages/reply" {
		t.Errorf("$default reply = %v", got)
	}
	if _, ok := get(t, doc, "operations", "route:send").(generic)["reply"]; ok {
		t.Error("send has a reply without route_response")
	}
	// Built-in routes: topic request, and the gateway's reply.
	if got := get(t, doc, "channels", "route:join", "messages", "reply", "payload", "properties", "status", "const"); got != "subscribed" {
		t.Errorf("join reply status = %v", got)
	}
	if got := get(t, doc, "channels", "push:@topics", "x-wsgate-topics-allow").([]any); len(got) != 2 {
		t.Errorf("topics allow = %v", got)
	}
	// The JWT refresh route.
	get(t, doc, "operations", "route:$refresh", "reply")
	// Every frame this configuration can produce.
	frames := keys(get(t, doc, "channels", "errors", "messages").(generic))
	want := []string{"BadRequestBody", "Forbidden", "InternalServerError", "LimitExceeded", "SubscriptionLimitExceeded", "TooManyRequests"}
	if !slices.Equal(frames, want) {
		t.Errorf("frames = %v, want %v", frames, want)
	}
	if got := get(t, doc, "channels", "errors", "messages", "BadRequestBody", "payload", "required").([]any)[2]; got != "messageId" {
		t.Errorf("Bad request body names %v", got)
	}
}

func TestAuthorizers(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		scheme    string
		want      generic
	}{
		{"basic", `authorizer: {type: basic, basic: {htpasswd_file: /nonexistent}}`,
			"header.Authorization", generic{"type": "http", "scheme": "basic"}},
		{"apikey", `authorizer: {type: apikey, apikey: {keys_env: KEYS}}`,
			"header.x-api-key", generic{"type": "httpApiKey", "in": "header", "name": "x-api-key"}},
		{"subprotocol", "subprotocols: [chat]\nauthorizer: {type: jwt, identity_sources: [route.request.subprotocol], jwt: {secret_env: S, algorithms: [HS256]}}",
			"subprotocol", generic{"type": "httpApiKey", "in": "header", "name": "Sec-WebSocket-Protocol"}},
		{"request", `authorizer: {type: request, identity_sources: [route.request.header.X-Tenant, stageVariables.env], request: {url: "http://127.0.0.1:1/auth"}}`,
			"header.X-Tenant", generic{"type": "httpApiKey", "in": "header", "name": "X-Tenant"}},
		{"mtls", "tls: {cert_file: /n/c.pem, key_file: /n/k.pem, client_ca_file: /n/ca.pem}",
			"clientCertificate", generic{"type": "X509"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := build(t, parse(t, tc.yml))
			schemes := get(t, doc, "components", "securitySchemes").(generic)
			if len(schemes) != 1 {
				t.Errorf("schemes = %v, want only %s", keys(schemes), tc.scheme)
			}
			got := get(t, schemes, tc.scheme).(generic)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestModelFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"type": `), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `routes: {send: {integration: {type: mock}, model_file: `+bad+`}}`)
	// The configuration is parsed; the file is broken afterwards, as a
	// file may change between a load and a request for the document.
	if _, err := asyncapi.JSON(cfg, asyncapi.Options{ReadFile: os.ReadFile}); err == nil || !strings.Contains(err.Error(), "routes.send.model_file") {
		t.Errorf("broken model file: err = %v", err)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := asyncapi.JSON(cfg, asyncapi.Options{ReadFile: os.ReadFile}); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("missing model file: err = %v", err)
	}
	// Without ReadFile the file is named, not read.
	j, err := asyncapi.JSON(cfg, asyncapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := asyncapitest.ValidateJSON(j); err != nil {
		t.Error(err)
	}
}

func TestRouteKeysNeedingEscapes(t *testing.T) {
	// Route keys are free text: references to their channels escape them
	// as JSON Pointer and URI fragment require.
	cfg := parse(t, `
routes:
  "send message": {integration: {type: mock}, route_response: true}
  "a/b": {integration: {type: mock}}
  "ü~1%": {integration: {type: mock}}
`)
	doc := build(t, cfg)
	for key, ref := range map[string]string{
		"send message": "#/channels/route:send%20message",
		"a/b":          "#/channels/route:a~1b",
		"ü~1%":         "#/channels/route:%C3%BC~01%25",
	} {
		if got := get(t, doc, "operations", "route:"+key, "channel", "$ref"); got != ref {
			t.Errorf("%q: channel $ref %v, want %v", key, got, ref)
		}
	}
}
