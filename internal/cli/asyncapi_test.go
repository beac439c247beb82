package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/asyncapi/asyncapitest"
)

func TestAsyncAPI(t *testing.T) {
	t.Run("default yaml", func(t *testing.T) {
		r := run(t, nil, "asyncapi")
		if r.code != 0 {
			t.Fatal(r)
		}
		if !strings.HasPrefix(r.stdout, "asyncapi: 3.0.0\n") {
			t.Fatalf("not YAML: %v", r)
		}
		if err := asyncapitest.ValidateYAML([]byte(r.stdout)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("example json", func(t *testing.T) {
		r := run(t, nil, "asyncapi", "-c", "../config/example.yaml", "-format", "json")
		if r.code != 0 {
			t.Fatal(r)
		}
		if err := asyncapitest.ValidateJSON([]byte(r.stdout)); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Servers map[string]struct{ Protocol, Pathname string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		if s := doc.Servers["prod"]; s.Protocol != "wss" || s.Pathname != "/prod" {
			t.Errorf("servers = %+v", doc.Servers)
		}
	})
	t.Run("template", func(t *testing.T) {
		r := run(t, nil, "asyncapi", "-template", "../../examples/seed002/template.yaml",
			"-parameter", "Environment=staging", "-format", "json")
		if r.code != 0 {
			t.Fatal(r)
		}
		if err := asyncapitest.ValidateJSON([]byte(r.stdout)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.stdout, `"pathname": "/staging"`) || !strings.Contains(r.stdout, `"route:pushtowebsocket"`) {
			t.Errorf("template document lacks its stage or route:\n%s", r.stdout)
		}
	})
}

func TestAsyncAPIErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: \":8080\"\nroutes: {send: {integration: {type: nope}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-format", "xml"}, 2, `-format "xml": want yaml or json`},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-region", "eu-west-1"}, 2, "go with -template"},
		{[]string{"-c", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"-c", bad}, 1, "bad.yaml:2"},
	} {
		r := run(t, nil, append([]string{"asyncapi"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: want exit %d and %q on stderr, got %v", tc.args, tc.code, tc.want, r)
		}
	}
}
