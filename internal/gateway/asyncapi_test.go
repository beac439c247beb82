package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/asyncapi/asyncapitest"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestAsyncAPIEndpoint fetches GET /asyncapi.json over the management
// listener: refused without credentials, a valid AsyncAPI 3.0 document of
// the configuration in force with them, following a reload, and a 500
// that names nothing when a model file has gone.
func TestAsyncAPIEndpoint(t *testing.T) {
	model := filepath.Join(t.TempDir(), "send.json")
	if err := os.WriteFile(model, []byte(`{"type": "object", "required": ["text"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const base = `
stage: prod
management:
  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}
routes:
  $default: {integration: {type: mock}, route_response: true}
`
	g := gt.Start(t, base)
	auth := http.Header{"Authorization": {"Bearer " + gt.TestToken}}

	st, _, body := g.MgmtDo(t, "GET", "/asyncapi.json", nil, nil)
	if st != http.StatusForbidden || strings.Contains(body, "asyncapi") {
		t.Fatalf("without credentials: %d %s", st, body)
	}
	st, hdr, body := g.MgmtDo(t, "GET", "/asyncapi.json", nil, auth)
	if st != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("with credentials: %d %v %s", st, hdr, body)
	}
	if err := asyncapitest.ValidateJSON([]byte(body)); err != nil {
		t.Fatalf("invalid document: %v\n%s", err, body)
	}
	var doc struct {
		Servers  map[string]struct{ Pathname string }
		Channels map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Servers["prod"].Pathname != "/prod" || doc.Channels["route:$default"] == nil || doc.Channels["route:send"] != nil {
		t.Fatalf("document before reload: %s", body)
	}

	// A reload adds a route with a model file: the document follows.
	g.SetYAML(base + "  send: {integration: {type: mock}, model_file: " + model + "}\n")
	if err := g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _, body = g.MgmtDo(t, "GET", "/asyncapi.json", nil, auth)
	if st != http.StatusOK {
		t.Fatalf("after reload: %d %s", st, body)
	}
	if err := asyncapitest.ValidateJSON([]byte(body)); err != nil {
		t.Fatalf("invalid document after reload: %v", err)
	}
	if !strings.Contains(body, `"route:send"`) || !strings.Contains(body, `"text"`) {
		t.Fatalf("document after reload lacks route send or its model: %s", body)
	}

	// The model file is gone: the call fails without saying where.
	if err := os.Remove(model); err != nil {
		t.Fatal(err)
	}
	st, hdr, body = g.MgmtDo(t, "GET", "/asyncapi.json", nil, auth)
	if st != http.StatusInternalServerError || hdr.Get("X-Amzn-ErrorType") == "" || strings.Contains(body, model) {
		t.Fatalf("model file gone: %d %v %s", st, hdr, body)
	}

	// Each call is counted under its operation.
	fams := scrape(t, g)
	for status, want := range map[string]float64{"200": 2, "403": 1, "500": 1} {
		if got := value(fams, "wsgate_management_calls_total", "operation", "AsyncAPI", "status", status); got != want {
			t.Errorf("AsyncAPI calls with status %s: %v, want %v", status, got, want)
		}
	}
}
