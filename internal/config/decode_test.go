package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		// Unknown keys.
		{"unknown top-level key", "listen: \":8080\"\napi: x",
			[]string{`wsgate.yaml:2: unknown key "api"`}},
		{"misspelt top-level key", "stage: prod\nlisen: \":8080\"",
			[]string{`wsgate.yaml:2: unknown key "lisen"; did you mean "listen"?`}},
		{"unknown key in limits", "# limits\n\n\nstage: prod\nlimits:\n  idle_timeout: 1m\n  listn: 1",
			[]string{`wsgate.yaml:7: unknown key "listn" in limits`}},
		{"misspelt key in an integration", "routes:\n  chat:\n    integration:\n      type: mock\n      timout: 1s",
			[]string{`wsgate.yaml:5: unknown key "timout" in routes.chat.integration; did you mean "timeout"?`}},
		{"unknown key in a route", "routes:\n  chat:\n    integration: {type: mock}\n    bogus: {role: admin}",
			[]string{`wsgate.yaml:4: unknown key "bogus" in routes.chat`}},
		{"unknown key in management.auth", "management:\n  auth:\n    token: abc",
			[]string{`wsgate.yaml:3: unknown key "token" in management.auth`}},
		{"unknown keys everywhere", "a: 1\nlog: {b: 2}\nregistry:\n  c: 3",
			[]string{
				`wsgate.yaml:1: unknown key "a"`,
				`wsgate.yaml:2: unknown key "b" in log`,
				`wsgate.yaml:4: unknown key "c" in registry`,
			}},
		{"Go field name as key", "Listen: \":8080\"",
			[]string{`wsgate.yaml:1: unknown key "Listen"; did you mean "listen"?`}},

		// Types.
		{"string for a duration", "limits:\n  idle_timeout: soon",
			[]string{`wsgate.yaml:2: limits.idle_timeout: want a duration such as "10s" or "2m30s", got "soon"`}},
		{"number for a duration", "shutdown_timeout: 10",
			[]string{`wsgate.yaml:1: shutdown_timeout: want a duration such as "10s" or "2m30s", got 10`}},
		{"string for an integer", "limits:\n  max_frame_bytes: 32k",
			[]string{`wsgate.yaml:2: limits.max_frame_bytes: want a whole number, got "32k"`}},
		{"fraction for an integer", "limits:\n  max_connections: 1.5",
			[]string{`wsgate.yaml:2: limits.max_connections: want a whole number, got 1.5`}},
		{"integer too large", "limits:\n  max_connections: 99999999999999999999",
			[]string{`wsgate.yaml:2: limits.max_connections: want a whole number, got 99999999999999999999`}},
		{"string for a bool", "management:\n  enabled: maybe",
			[]string{`wsgate.yaml:2: management.enabled: want true or false, got "maybe"`}},
		{"list for a string", "listen: [\":8080\"]",
			[]string{`wsgate.yaml:1: listen: want a string, got a list`}},
		{"wrong type hides the problems that follow from it", "limits:\n  ping_interval: 1\n  idle_timeout: 1s",
			[]string{`wsgate.yaml:2: limits.ping_interval: want a duration such as "10s" or "2m30s", got 1`}},
		{"structural errors hide no other problems", "routes:\n  a: {integration: {type: mock}}\n  a: {integration: {type: mock}}\n  b: {integration: {type: http}}",
			[]string{
				`wsgate.yaml:3: routes: duplicate key "a" (first set at line 2)`,
				`wsgate.yaml:4: routes.b.integration.url: required for http integrations`,
			}},
		{"mapping for a string", "routes:\n  chat:\n    integration:\n      type: {name: http}",
			[]string{`wsgate.yaml:4: routes.chat.integration.type: want a string, got a mapping`}},
		{"scalar for a section", "limits: 5",
			[]string{`wsgate.yaml:1: limits: want a mapping of keys, got 5`}},
		{"list for routes", "routes:\n  - $default",
			[]string{`wsgate.yaml:2: routes: want a mapping, got a list`}},
		{"list for headers", "routes:\n  chat:\n    integration:\n      type: http\n      url: http://h/\n      headers: [a]",
			[]string{`wsgate.yaml:6: routes.chat.integration.headers: want a mapping, got a list`}},
		{"long value shortened", "listen: [" + strings.Repeat("x", 100) + "]\nlimits: {idle_timeout: " + strings.Repeat("y", 100) + "}",
			[]string{
				`wsgate.yaml:1: listen: want a string, got a list`,
				`wsgate.yaml:2: limits.idle_timeout: want a duration such as "10s" or "2m30s", got "` + strings.Repeat("y", 40) + `..."`,
			}},

		// Structure.
		{"duplicate key", "listen: \":8080\"\nstage: a\nlisten: \":8081\"",
			[]string{`wsgate.yaml:3: duplicate key "listen" (first set at line 1)`}},
		{"duplicate route", "routes:\n  chat: {integration: {type: mock}}\n  chat: {integration: {type: mock}}",
			[]string{`wsgate.yaml:3: routes: duplicate key "chat" (first set at line 2)`}},
		{"list as a key", "? [a]\n: 1",
			[]string{`wsgate.yaml:1: a key must be a string, got a list`}},
		{"list as the document", "- listen: \":8080\"",
			[]string{`wsgate.yaml:1: the configuration must be a mapping of keys, got a list`}},
		{"scalar as the document", "hello",
			[]string{`wsgate.yaml:1: the configuration must be a mapping of keys, got "hello"`}},
		{"two documents", "listen: \":8080\"\n---\nstage: prod",
			[]string{`wsgate.yaml:2: a second YAML document starts here; the configuration must be a single document`}},
		{"empty second document", "listen: \":8080\"\n---\n",
			[]string{`wsgate.yaml:2: a second YAML document starts here; the configuration must be a single document`}},
		{"syntax error", "listen: \":8080\"\n\nstage: a: b",
			[]string{`wsgate.yaml:3: mapping values are not allowed in this context`}},
		{"syntax error without a line", "listen: \":8080\"\n\nstage: *nope",
			[]string{`wsgate.yaml: unknown anchor 'nope' referenced`}},
		{"syntax error in second document", "stage: a\n---\nb: [",
			[]string{`wsgate.yaml:3: did not find expected node content`}},
		{"tab indentation", "limits:\n\tidle_timeout: 1m",
			[]string{`wsgate.yaml:2: found character that cannot start any token`}},
		{"merge key of a scalar", "limits:\n  <<: 5",
			[]string{`wsgate.yaml:2: limits: the value of a merge key (<<) must be a mapping or a list of mappings, got 5`}},
		{"merge key of a list of scalars", "limits:\n  <<: [5]",
			[]string{`wsgate.yaml:2: limits: the value of a merge key (<<) must be a mapping or a list of mappings, got a list holding 5`}},
		{"mapping that merges itself", "limits: &l\n  <<: *l",
			[]string{`wsgate.yaml:2: limits: merge key (<<) brings in a mapping that contains itself`}},
		{"unknown key brought in by a merge", "base: &b {idel_timeout: 1m}\nlimits: {<<: *b}",
			[]string{
				`wsgate.yaml:1: unknown key "base"`,
				`wsgate.yaml:1: unknown key "idel_timeout" in limits; did you mean "idle_timeout"?`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.in, tt.want...)
		})
	}
}

func TestParseEmpty(t *testing.T) {
	want := &Config{}
	want.FillDefaults()
	for _, in := range []string{"", "\n\n", " \t\n", "# only a comment\n", "# one\n\n# two\n", "---\n", "---\n# comment\n", "~\n", "null"} {
		c, err := Parse("wsgate.yaml", []byte(in))
		if err != nil {
			t.Errorf("Parse(%q) error: %v", in, err)
			continue
		}
		c.src = source{}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Parse(%q) = %+v; want all defaults %+v", in, c, want)
		}
	}
}

// emptyFiles are configuration files that hold no key.
var emptyFiles = map[string]string{
	"zero bytes":    "",
	"whitespace":    " \n\t\n\n",
	"comments":      "# wsgate.yaml\n\n  # nothing yet\n",
	"document mark": "---\n",
	"marks":         "---\n# comment\n...\n",
	"null":          "~\n",
}

func TestLoadEmptyFile(t *testing.T) {
	for name, content := range emptyFiles {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wsgate.yaml")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			var ce *Error
			if c != nil || !errors.As(err, &ce) || ce.File != path || !strings.Contains(ce.Msg, "no configuration") {
				t.Fatalf("Load(%q) = %v, %v; want an *Error naming the file that says it holds no configuration", content, c, err)
			}
		})
	}
}

func TestParseNullSections(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte("listen:\nlimits:\nroutes:\nmanagement:\n  enabled:\nlog: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.Limits.IdleTimeout != 10*time.Minute || !c.Management.IsEnabled() || len(c.Routes) != 1 {
		t.Errorf("null values did not take their defaults: %+v", c)
	}
}

func TestParseAliasesAndMerges(t *testing.T) {
	in := `routes:
  $connect:
    integration: &backend
      type: http
      url: http://127.0.0.1:3000/events
      timeout: 5s
  $disconnect:
    integration: *backend
  chat:
    integration:
      <<: *backend
      url: http://127.0.0.1:3000/chat
    route_response: true
limits:
  <<: [{idle_timeout: 1m, ping_interval: 5s}, {idle_timeout: 2m, handshake_timeout: 3s}]
  ping_interval: 10s
`
	c, err := Parse("wsgate.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Parse error: %v\n%s", err, in)
	}
	chat := c.Routes["chat"].Integration
	if chat.Type != IntegrationHTTP || chat.URL != "http://127.0.0.1:3000/chat" || chat.Timeout != 5*time.Second {
		t.Errorf("merged integration = %+v; want the anchor's type and timeout with its own url", chat)
	}
	l := c.Limits
	if l.IdleTimeout != time.Minute || l.PingInterval != 10*time.Second || l.HandshakeTimeout != 3*time.Second {
		t.Errorf("merged limits = %+v; want idle 1m from the first merge, ping 10s set, handshake 3s from the second", l)
	}
	if !reflect.DeepEqual(c.Routes["$disconnect"].Integration, c.Routes["$connect"].Integration) {
		t.Errorf("aliased integration = %+v; want %+v", c.Routes["$disconnect"].Integration, c.Routes["$connect"].Integration)
	}
	if _, line := c.Position("routes.chat.integration.url"); line != 12 {
		t.Errorf("Position(routes.chat.integration.url) line = %d; want 12", line)
	}
	if _, line := c.Position("routes.chat.integration.type"); line != 4 {
		t.Errorf("Position(routes.chat.integration.type) line = %d; want 4, the anchor's key", line)
	}
}

func TestParseMergeBudget(t *testing.T) {
	// Each level merges the previous one many times; without a budget the
	// keys brought in grow exponentially with the depth.
	var b strings.Builder
	b.WriteString("limits:\n  <<:\n")
	b.WriteString("    - &l0 {idle_timeout: 1m}\n")
	for i := 1; i < 12; i++ {
		b.WriteString("    - &l" + strconv.Itoa(i) + " {<<: [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*l" + strconv.Itoa(i-1))
		}
		b.WriteString("]}\n")
	}
	_, err := Parse("wsgate.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "merge keys (<<) bring in more than 10000 keys") {
		t.Fatalf("Parse error = %v; want the merge budget exceeded", err)
	}
}

func TestParseDefaultsFilled(t *testing.T) {
	// Zero values written out take the defaults, like absent keys.
	in := `listen: ""
api_id: ""
route_selection_expression: ""
binary_frames: ""
shutdown_timeout: 0s
limits:
  max_frame_bytes: 0
  max_message_bytes: 0
  idle_timeout: 0s
  max_connection_duration: 0s
  ping_interval: 0s
  outbound_queue_bytes: 0
  handshake_timeout: 0s
  max_connections: 0
  close_drain_timeout: 0s
  max_inflight_messages: 0
  inflight_budget_messages: 0
  inflight_budget_bytes: 0
routes:
  $default:
    integration:
      type: mock
      timeout: 0s
      status_code: 0
  chat:
    integration:
      type: http
      url: http://127.0.0.1:3000/chat
registry:
  type: ""
log:
  level: ""
  format: ""
`
	c, err := Parse("wsgate.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"stage", c.Stage, ""},
		{"api_id", c.APIID, "local"},
		{"domain_name", c.DomainName, ""},
		{"route_selection_expression", c.RouteSelectionExpression, "$request.body.action"},
		{"binary_frames", c.BinaryFrames, BinaryReject},
		{"shutdown_timeout", c.ShutdownTimeout, 10 * time.Second},
		{"limits.max_frame_bytes", c.Limits.MaxFrameBytes, 32768},
		{"limits.max_message_bytes", c.Limits.MaxMessageBytes, 131072},
		{"limits.idle_timeout", c.Limits.IdleTimeout, 10 * time.Minute},
		{"limits.max_connection_duration", c.Limits.MaxConnectionDuration, 2 * time.Hour},
		{"limits.ping_interval", c.Limits.PingInterval, 30 * time.Second},
		{"limits.outbound_queue_bytes", c.Limits.OutboundQueueBytes, 1 << 20},
		{"limits.handshake_timeout", c.Limits.HandshakeTimeout, 10 * time.Second},
		{"limits.max_connections", c.Limits.MaxConnections, 0},
		{"limits.close_drain_timeout", c.Limits.CloseDrainTimeout, 2 * time.Second},
		{"limits.max_inflight_messages", c.Limits.MaxInflightMessages, 64},
		{"limits.inflight_budget_messages", c.Limits.InflightBudgetMessages, 16384},
		{"limits.inflight_budget_bytes", c.Limits.InflightBudgetBytes, 64 << 20},
		{"routes", len(c.Routes), 2},
		{"routes.$default.integration.timeout", c.Routes["$default"].Integration.Timeout, 29 * time.Second},
		{"routes.$default.integration.status_code", c.Routes["$default"].Integration.StatusCode, 200},
		{"routes.$default.integration.body", c.Routes["$default"].Integration.Body, (*string)(nil)},
		{"routes.$default.route_response", c.Routes["$default"].RouteResponse, false},
		{"routes.chat.integration.timeout", c.Routes["chat"].Integration.Timeout, 29 * time.Second},
		{"routes.chat.integration.status_code", c.Routes["chat"].Integration.StatusCode, 0},
		{"management.listen", c.Management.Listen, "127.0.0.1:9090"},
		{"management.enabled", *c.Management.Enabled, true},
		{"management.auth", c.Management.HasAuth(), false},
		{"registry.type", c.Registry.Type, RegistryMemory},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v; want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestFillDefaultsKeepsValues(t *testing.T) {
	off := false
	body := ""
	c := Config{
		Listen:          ":1",
		ShutdownTimeout: time.Second,
		Limits:          Limits{MaxFrameBytes: 200, PingInterval: time.Second},
		Routes:          map[string]Route{"chat": {Integration: Integration{Type: IntegrationMock, StatusCode: 201, Timeout: time.Second, Body: &body}}},
		Management:      Management{Enabled: &off},
		Log:             Log{Level: "debug"},
	}
	c.FillDefaults()
	again := c
	again.FillDefaults()
	if c.Listen != ":1" || c.ShutdownTimeout != time.Second || c.Limits.MaxFrameBytes != 200 ||
		c.Limits.PingInterval != time.Second || c.Management.IsEnabled() || c.Log.Level != "debug" {
		t.Errorf("FillDefaults replaced set values: %+v", c)
	}
	r := c.Routes["chat"]
	if len(c.Routes) != 1 || r.Integration.StatusCode != 201 || r.Integration.Timeout != time.Second || r.Integration.Body != &body {
		t.Errorf("FillDefaults changed the routes: %+v", c.Routes)
	}
	if !reflect.DeepEqual(c, again) {
		t.Errorf("FillDefaults is not idempotent")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wsgate.yaml")
	if err := os.WriteFile(path, []byte("stage: prod\nlimits:\n  idle_timeout: -1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + ":3: limits.idle_timeout: must be greater than 0, got -1s"
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v; want %s", err, want)
	}

	if err := os.WriteFile(path, []byte("stage: prod\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if file, line := c.Position("stage"); file != path || line != 1 || c.Stage != "prod" {
		t.Errorf("Load: stage %q at %s:%d; want prod at %s:1", c.Stage, file, line, path)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of a missing file: error %v; want one naming %s", err, missing)
	}
}

func TestPosition(t *testing.T) {
	in := `stage: prod
route_selection_expression: "$request.body.type"
routes:
  $default:
    integration:
      type: http
      url: http://127.0.0.1:3000/default
`
	c, err := Parse("chat.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		line int
	}{
		{"stage", 1},
		{"route_selection_expression", 2},
		{"routes", 3},
		{"routes.$default", 4},
		{"routes.$default.integration", 5},
		{"routes.$default.integration.url", 7},
		{"listen", 0},
		{"routes.$default.integration.timeout", 0},
		{"nonsense", 0},
	}
	for _, tt := range tests {
		file, line := c.Position(tt.path)
		if file != "chat.yaml" || line != tt.line {
			t.Errorf("Position(%q) = %s:%d; want chat.yaml:%d", tt.path, file, line, tt.line)
		}
	}

	err = c.Errorf("route_selection_expression", "unexpected %q", "type")
	if got, want := err.Error(), `chat.yaml:2: route_selection_expression: unexpected "type"`; got != want {
		t.Errorf("Errorf = %q; want %q", got, want)
	}
	err = c.Errorf("routes.$default.integration.timeout", "too slow")
	if got, want := err.Error(), `chat.yaml:5: routes.$default.integration.timeout: too slow`; got != want {
		t.Errorf("Errorf of an absent key = %q; want the line of its nearest ancestor: %q", got, want)
	}
	err = c.Errorf("limits.idle_timeout", "too short")
	if got, want := err.Error(), `chat.yaml: limits.idle_timeout: too short`; got != want {
		t.Errorf("Errorf with no ancestor in the file = %q; want %q", got, want)
	}

	var hand Config
	if file, line := hand.Position("stage"); file != "" || line != 0 {
		t.Errorf("hand-built Position = %q, %d; want empty", file, line)
	}
	if got, want := hand.Errorf("stage", "bad").Error(), "stage: bad"; got != want {
		t.Errorf("hand-built Errorf = %q; want %q", got, want)
	}
}
