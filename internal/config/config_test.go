package config

import (
	"log/slog"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	if _, err := Parse(defaultName, DefaultYAML); err != nil {
		t.Fatalf("embedded default.yaml does not parse: %v", err)
	}
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if file, line := c.Position("route_selection_expression"); file != "default.yaml" || line == 0 {
		t.Errorf("Default().Position(route_selection_expression) = %s:%d; want a line in default.yaml", file, line)
	}

	// The embedded file and FillDefaults must agree: the file is the
	// documentation of the defaults.
	got := *c
	got.src = source{}
	var want Config
	want.FillDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v\nwant FillDefaults of a zero Config = %+v", got, want)
	}

	r, ok := c.Routes[RouteDefault]
	if len(c.Routes) != 1 || !ok || r.Integration.Type != IntegrationMock || r.Integration.Body != nil || !r.RouteResponse {
		t.Errorf("default routes = %+v; want one $default mock that echoes", c.Routes)
	}
	if c.Listen != ":8080" || c.Stage != "" || c.Management.Listen != "127.0.0.1:9090" || !c.Management.Loopback() ||
		c.Management.HasAuth() || c.Registry.Type != RegistryMemory {
		t.Errorf("Default() = %+v", c)
	}
}

func TestExample(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("example.yaml", data)
	if err != nil {
		t.Fatalf("example.yaml: %v", err)
	}
	for _, key := range []string{RouteConnect, RouteDisconnect, RouteDefault, "sendmessage"} {
		if _, ok := c.Routes[key]; !ok {
			t.Errorf("example.yaml has no %s route", key)
		}
	}
	if c.Routes[RouteConnect].Integration.Type != IntegrationHTTP {
		t.Errorf("example.yaml: $connect is not an http integration")
	}

	// Every key of the schema appears in the example.
	used := map[string]bool{}
	for path := range c.src.lines {
		used[schemaPath(path)] = true
	}
	// The example shows one authorizer; the others' keys, and the key
	// sources its JWT section does not use, are documented in default.yaml.
	exclusive := []string{"authorizer.request", "authorizer.basic", "authorizer.apikey", "authorizer.lambda",
		"authorizer.jwt.secret_env", "authorizer.jwt.secret_file", "authorizer.jwt.public_key_file",
		"management.auth.sigv4.secret_access_key_file", "registry.nats",
		// ACME replaces the example's certificate files; the management
		// listener refuses it.
		"tls.acme", "management.tls.acme",
		// The example writes its models inline.
		"routes.*.model_file"}
	for _, path := range schemaPaths(reflect.TypeFor[Config](), "") {
		if !used[path] && !slices.ContainsFunc(exclusive, func(p string) bool { return path == p || strings.HasPrefix(path, p+".") }) {
			t.Errorf("example.yaml does not use %s", path)
		}
	}
}

func TestDefaultYAMLDocumentsEveryKey(t *testing.T) {
	for _, path := range schemaPaths(reflect.TypeFor[Config](), "") {
		key := path[strings.LastIndexByte(path, '.')+1:]
		if key == "*" {
			continue
		}
		if !regexp.MustCompile(`(?m)^[ #]*` + regexp.QuoteMeta(key) + `:`).Match(DefaultYAML) {
			t.Errorf("default.yaml does not document %s", path)
		}
	}
}

// schemaPaths returns the dotted path of every key that type t accepts,
// with "*" for the keys of a map.
func schemaPaths(t reflect.Type, prefix string) []string {
	var paths []string
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeFor[time.Duration]() {
			break
		}
		fields := yamlFields(t)
		for _, name := range slices.Sorted(maps.Keys(fields)) {
			p := joinPath(prefix, name)
			paths = append(paths, p)
			paths = append(paths, schemaPaths(t.Field(fields[name]).Type, p)...)
		}
	case reflect.Map:
		p := prefix + ".*"
		paths = append(paths, p)
		paths = append(paths, schemaPaths(t.Elem(), p)...)
	}
	return paths
}

// schemaPath replaces the map keys in a recorded path with "*".
func schemaPath(path string) string {
	for _, m := range []string{"routes", "headers", "require", "stage_variables", "env", "models"} {
		before, after, ok := strings.Cut(path, m+".")
		if !ok {
			continue
		}
		_, rest, more := strings.Cut(after, ".")
		path = before + m + ".*"
		if more {
			path += "." + rest
		}
	}
	return path
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		listen string
		want   bool
	}{
		{"127.0.0.1:9090", true},
		{"127.1.2.3:9090", true},
		{"[::1]:9090", true},
		{"[::ffff:127.0.0.1]:9090", true},
		{"localhost:9090", true},
		{"LocalHost:9090", true},
		{":9090", false},
		{"0.0.0.0:9090", false},
		{"[::]:9090", false},
		{"10.0.0.1:9090", false},
		{"192.168.1.10:9090", false},
		{"[fe80::1]:9090", false},
		{"example.com:9090", false},
		{"localhost.example.com:9090", false},
		{"128.0.0.1:9090", false},
		{"127.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := (Management{Listen: tt.listen}).Loopback(); got != tt.want {
			t.Errorf("Management{Listen: %q}.Loopback() = %v; want %v", tt.listen, got, tt.want)
		}
	}
}

func TestHasAuth(t *testing.T) {
	tests := []struct {
		auth ManagementAuth
		want bool
	}{
		{ManagementAuth{}, false},
		{ManagementAuth{BearerTokensEnv: "T"}, true},
		{ManagementAuth{BearerTokensFile: "/f"}, true},
		{ManagementAuth{BearerTokensEnv: "T", BearerTokensFile: "/f"}, true},
	}
	for _, tt := range tests {
		if got := (Management{Auth: tt.auth}).HasAuth(); got != tt.want {
			t.Errorf("HasAuth with %+v = %v; want %v", tt.auth, got, tt.want)
		}
	}
}

func TestIsEnabled(t *testing.T) {
	on, off := true, false
	if !(Management{}).IsEnabled() || !(Management{Enabled: &on}).IsEnabled() || (Management{Enabled: &off}).IsEnabled() {
		t.Error("IsEnabled: want nil and true on, false off")
	}
}

func TestUIEnabled(t *testing.T) {
	on, off := true, false
	for _, c := range []struct {
		m    Management
		want bool
	}{
		{Management{}, true},
		{Management{UI: &on}, true},
		{Management{UI: &off}, false},
		{Management{Enabled: &off}, false},
		{Management{Enabled: &off, UI: &on}, false},
	} {
		if got := c.m.UIEnabled(); got != c.want {
			t.Errorf("UIEnabled(enabled %v, ui %v) = %v, want %v", c.m.Enabled, c.m.UI, got, c.want)
		}
	}
}

func TestStage(t *testing.T) {
	tests := []struct {
		stage, event, path string
	}{
		{"", "$default", "/"},
		{"prod", "prod", "/prod"},
	}
	for _, tt := range tests {
		c := &Config{Stage: tt.stage}
		if got := c.EventStage(); got != tt.event {
			t.Errorf("EventStage() with stage %q = %q; want %q", tt.stage, got, tt.event)
		}
		if got := c.UpgradePath(); got != tt.path {
			t.Errorf("UpgradePath() with stage %q = %q; want %q", tt.stage, got, tt.path)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	tests := map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo,
	}
	for level, want := range tests {
		if got := (Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("Log{Level: %q}.SlogLevel() = %v; want %v", level, got, want)
		}
	}
}
