package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// scrape reads g's /metrics with the management token and parses it with
// the Prometheus text parser.
func scrape(t *testing.T, g *gt.Gateway) map[string]*dto.MetricFamily {
	t.Helper()
	status, hdr, body := g.MgmtDo(t, "GET", "/metrics", nil, http.Header{"Authorization": {"Bearer " + gt.TestToken}})
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics Content-Type %q", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value is the value of the sample of family name whose labels include
// labels: a counter's or gauge's value, a histogram's sample count. A
// sample that is missing is -1.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestMetricsAfterTraffic(t *testing.T) {
	keys := t.TempDir() + "/keys"
	if err := os.WriteFile(keys, []byte("key-one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := gt.NewBackend(t)
	b.On("/default", func(gt.Event) gt.Reply { return gt.Reply{Status: 500, Body: "boom"} })
	b.On("/send", func(gt.Event) gt.Reply { return gt.Reply{Body: `{"statusCode":"x"}`} })
	g := gt.Start(t, backendConfig(b, fmt.Sprintf(`
authorizer:
  type: apikey
  identity_sources: [route.request.querystring.key]
  apikey: {keys_file: %q}
  cache_ttl: 1m
management:
  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}
`, keys)))

	// Four handshakes: two accepted (the second from the authorizer's
	// cache), one denied by the authorizer, one without credentials.
	c1 := gt.Dial(t, g.URL+"?key=key-one", nil)
	c2 := gt.Dial(t, g.URL+"?key=key-one", nil)
	for key, want := range map[string]int{"key-three": 403, "": 401} {
		if got := dialStatus(g.URL+"?key="+key, nil); got != want {
			t.Fatalf("api key %q: status %d, want %d", key, got, want)
		}
	}
	id := b.ConnectionID(t, "/connect", 0)

	// $default answers 500: an integration error. sendmessage answers a
	// malformed proxy response: an execution error. echo succeeds.
	c1.Send(`{"action":"nope"}`)
	if got := c1.NextText(); !strings.Contains(got, "Internal server error") {
		t.Fatalf("$default gave %q", got)
	}
	c1.Send(`{"action":"sendmessage"}`)
	if got := c1.NextText(); !strings.Contains(got, "Internal server error") {
		t.Fatalf("sendmessage gave %q", got)
	}
	c1.Send(`{"action":"echo"}`)
	c1.NextText()

	// A push to a connection, one to a connection that is gone, and a
	// call without credentials.
	auth := http.Header{"Authorization": {"Bearer " + gt.TestToken}}
	pushTo := id
	if st, _, body := g.MgmtDo(t, "POST", "/@connections/"+pushTo, strings.NewReader("pushed"), auth); st != 200 {
		t.Fatalf("push: %d %s", st, body)
	}
	if st, _, _ := g.MgmtDo(t, "POST", "/prod/@connections/bm9ib2R5aGVyZTEyMzQ=", strings.NewReader("x"), auth); st != 410 {
		t.Fatalf("push to a gone connection: %d", st)
	}
	if st, _, _ := g.MgmtDo(t, "GET", "/metrics", nil, nil); st != 403 {
		t.Fatalf("/metrics without credentials: %d, want 403", st)
	}
	pushed := c1
	if b.ConnectionID(t, "/connect", 1) == id {
		pushed = c2
	}
	if got := pushed.NextText(); got != "pushed" {
		t.Fatalf("push delivered %q", got)
	}

	_ = c1.Close(websocket.StatusNormalClosure, "")
	_ = c2.Close(4000, "bye")
	var fams map[string]*dto.MetricFamily
	gt.Eventually(t, func() bool {
		fams = scrape(t, g)
		return value(fams, "wsgate_disconnects_total", "code", "4xxx") == 1 &&
			value(fams, "wsgate_disconnects_total", "code", "1000") == 1 &&
			value(fams, "wsgate_open_connections") == 0 &&
			value(fams, "wsgate_integration_latency_seconds", "route", "$disconnect") == 2 &&
			value(fams, "wsgate_cluster_nodes") == 1
	}, "disconnects and node count in /metrics")

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"wsgate_connect_count_total", nil, 2},
		{"wsgate_handshakes_total", []string{"status", "101"}, 2},
		{"wsgate_handshakes_total", []string{"status", "403"}, 1},
		{"wsgate_handshakes_total", []string{"status", "401"}, 1},
		{"wsgate_client_errors_total", []string{"route", "$connect"}, 2},
		{"wsgate_authorizer_decisions_total", []string{"decision", "allow"}, 2},
		{"wsgate_authorizer_decisions_total", []string{"decision", "deny"}, 1},
		{"wsgate_authorizer_decisions_total", []string{"decision", "error"}, 0},
		{"wsgate_authorizer_cache_total", []string{"result", "hit"}, 1},
		{"wsgate_authorizer_cache_total", []string{"result", "miss"}, 2},
		{"wsgate_authorizer_latency_seconds", nil, 2},
		{"wsgate_messages_received_total", []string{"route", "$default"}, 1},
		{"wsgate_messages_received_total", []string{"route", "sendmessage"}, 1},
		{"wsgate_messages_received_total", []string{"route", "echo"}, 1},
		{"wsgate_integration_errors_total", []string{"route", "$default"}, 1},
		{"wsgate_integration_errors_total", []string{"route", "sendmessage"}, 0},
		{"wsgate_execution_errors_total", []string{"route", "sendmessage"}, 1},
		{"wsgate_execution_errors_total", []string{"route", "$default"}, 0},
		{"wsgate_integration_latency_seconds", []string{"route", "echo"}, 1},
		{"wsgate_integration_latency_seconds", []string{"route", "$default"}, 1},
		// Two connects and two disconnects.
		{"wsgate_integration_latency_seconds", []string{"route", "$connect"}, 2},
		{"wsgate_integration_latency_seconds", []string{"route", "$disconnect"}, 2},
		// Two error frames, the echo and the push.
		{"wsgate_messages_sent_total", nil, 4},
		{"wsgate_pushes_total", []string{"target", "connection"}, 2},
		{"wsgate_push_deliveries_total", []string{"target", "connection"}, 1},
		{"wsgate_management_calls_total", []string{"operation", "PostToConnection", "status", "200"}, 1},
		{"wsgate_management_calls_total", []string{"operation", "PostToConnection", "status", "410"}, 1},
		{"wsgate_management_calls_total", []string{"operation", "Metrics", "status", "403"}, 1},
		{"wsgate_slow_consumer_closes_total", nil, 0},
	} {
		if got := value(fams, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := value(fams, "wsgate_cluster_engine_call_duration_seconds", "operation", "Register", "result", "ok"); got < 2 {
		t.Errorf("engine Register calls = %v, want at least 2", got)
	}
	// Route labels take only configured keys.
	for _, m := range fams["wsgate_messages_received_total"].GetMetric() {
		if r := m.GetLabel()[0].GetValue(); r == "nope" {
			t.Errorf("unconfigured route key %q is a label", r)
		}
	}
	checkDashboard(t, fams)
}

func TestMetricsOff(t *testing.T) {
	g := gt.Start(t, "management:\n  metrics: false\n")
	if st, _, _ := g.MgmtDo(t, "GET", "/metrics", nil, nil); st != http.StatusNotFound {
		t.Fatalf("/metrics with metrics off: %d, want 404", st)
	}
}

// TestMetricsSeparateRegistries shows two gateways in one process each
// count only their own traffic.
func TestMetricsSeparateRegistries(t *testing.T) {
	cfg := "management:\n  auth: {bearer_tokens_env: WSGATE_TEST_TOKEN}\n"
	g1 := gt.Start(t, cfg)
	g2 := gt.Start(t, cfg)
	gt.Dial(t, g1.URL, nil)
	if got := value(scrape(t, g1), "wsgate_handshakes_total", "status", "101"); got != 1 {
		t.Fatalf("first gateway counted %v handshakes, want 1", got)
	}
	if got := value(scrape(t, g2), "wsgate_handshakes_total", "status", "101"); got != -1 {
		t.Fatalf("second gateway counted %v handshakes, want none", got)
	}
}

// metricName finds the metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\bwsgate_[a-z_]+\b`)

// checkDashboard checks that every metric the Grafana dashboard queries is
// in fams, a scrape of a gateway after traffic.
func checkDashboard(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	data, err := os.ReadFile("../../docs/grafana/wsgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				queried++
				base := name
				if f, ok := fams[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
					base = f.GetName()
				}
				if _, ok := fams[base]; !ok {
					t.Errorf("panel %q queries %s, which a scrape does not have (it has %v)", p.Title, name, names)
				}
			}
		}
	}
	if queried < 10 {
		t.Fatalf("the dashboard queries %d metrics", queried)
	}
}
