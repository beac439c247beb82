package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRouteLabelsAreBounded(t *testing.T) {
	m := New([]string{"sendmessage"}, func() float64 { return 0 })
	m.Message("sendmessage")
	m.Message("made-up-by-a-client")
	m.ClientError("another")
	if got := testutil.ToFloat64(m.route(DefaultRoute).messages); got != 1 {
		t.Errorf("$default messages = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.route("sendmessage").messages); got != 1 {
		t.Errorf("sendmessage messages = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.reg, "wsgate_messages_received_total"); n != 2 {
		t.Errorf("%d route series, want 2 ($default and sendmessage)", n)
	}
}

func TestIntegrationOutcomes(t *testing.T) {
	m := New([]string{"a"}, func() float64 { return 0 })
	m.Integration("a", time.Millisecond, 200, nil, true)
	m.Integration("a", time.Millisecond, 502, nil, true)
	m.Integration("a", time.Millisecond, 0, errors.New("timeout"), true)
	m.Integration("a", 0, 200, nil, false)
	r := m.route("a")
	if got := testutil.ToFloat64(r.integrationErrors); got != 1 {
		t.Errorf("integration errors = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.executionErrors); got != 1 {
		t.Errorf("execution errors = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.reg, "wsgate_integration_latency_seconds"); n != 2 {
		t.Errorf("latency series = %d, want 2", n)
	}
}

func TestLabels(t *testing.T) {
	for code, want := range map[int]string{1000: "1000", 1015: "1015", 4401: "4401", 4000: "4xxx", 3001: "3xxx", 999: "other", 5000: "other"} {
		if got := codeLabel(code); got != want {
			t.Errorf("codeLabel(%d) = %q, want %q", code, got, want)
		}
	}
	for status, want := range map[int]string{101: "101", 429: "429", 99: "other", 600: "other"} {
		if got := statusLabel(status); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestNilMetricsCountNothing(t *testing.T) {
	var m *Metrics
	m.Message("a")
	m.Integration("a", time.Second, 500, nil, true)
	m.Handshake(101)
	m.Disconnect(1000)
	m.Push(PushTopic, 3)
	m.EngineCall("Register", time.Millisecond, nil)
	m.AddRoutes([]string{"b"})
	m.Reload(ReloadApplied)
}

// TestMessagePathAllocatesNothing guards the per-message cost: counting a
// message, its integration call and its reply allocates nothing.
func TestMessagePathAllocatesNothing(t *testing.T) {
	m := New([]string{"sendmessage"}, func() float64 { return 0 })
	allocs := testing.AllocsPerRun(1000, func() {
		m.Message("sendmessage")
		m.Integration("sendmessage", time.Millisecond, 200, nil, true)
		m.MessageSent()
		m.Handshake(101)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message", allocs)
	}
}

// TestConnectionPathAllocatesNothing guards the per-connection cost:
// counting a handshake, its authorizer decision, the connect and the close
// allocates nothing.
func TestConnectionPathAllocatesNothing(t *testing.T) {
	m := New(nil, func() float64 { return 0 })
	allocs := testing.AllocsPerRun(1000, func() {
		m.Handshake(101)
		m.Authorizer("allow", time.Millisecond)
		m.Connect()
		m.Disconnect(1000)
		m.Disconnect(1006)
		m.Disconnect(4401)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per connection", allocs)
	}
}

func BenchmarkMessagePath(b *testing.B) {
	m := New([]string{"sendmessage"}, func() float64 { return 0 })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Message("sendmessage")
			m.Integration("sendmessage", time.Millisecond, 200, nil, true)
			m.MessageSent()
		}
	})
}

// TestAddRoutes gives a route added by a reload its own label, keeps the
// counts of the routes there were, and counts reloads by outcome.
func TestAddRoutes(t *testing.T) {
	m := New([]string{"a"}, func() float64 { return 0 })
	m.Message("a")
	m.Message("b")
	m.AddRoutes([]string{"b"})
	m.Message("b")
	if got := testutil.ToFloat64(m.route("b").messages); got != 1 {
		t.Errorf("b messages = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.route("a").messages); got != 1 {
		t.Errorf("a messages = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.route(DefaultRoute).messages); got != 1 {
		t.Errorf("$default messages = %v, want 1", got)
	}
	before := testutil.ToFloat64(m.reloadedAt)
	m.Reload(ReloadRefused)
	m.Reload(ReloadApplied)
	if got := testutil.ToFloat64(m.reloads.WithLabelValues(ReloadRefused)); got != 1 {
		t.Errorf("refused reloads = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.reloads.WithLabelValues(ReloadFailed)); got != 0 {
		t.Errorf("failed reloads = %v, want 0", got)
	}
	if before <= 0 || testutil.ToFloat64(m.reloadedAt) < before {
		t.Errorf("load time %v then %v", before, testutil.ToFloat64(m.reloadedAt))
	}
}

func TestAccessLogDropped(t *testing.T) {
	m := New(nil, func() float64 { return 0 })
	m.AccessLogDropped(3)
	m.AccessLogDropped(1)
	if got := testutil.ToFloat64(m.accessDrops); got != 4 {
		t.Errorf("wsgate_access_log_dropped_total = %v, want 4", got)
	}
	var nilMetrics *Metrics
	nilMetrics.AccessLogDropped(1)
}
