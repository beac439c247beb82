package throttle

import (
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// A rate this small never refills a token during a test.
const tiny = 1e-9

func TestNew(t *testing.T) {
	mock := config.Integration{Type: config.IntegrationMock}
	cfg := &config.Config{
		Throttling: config.RateLimit{Rate: tiny, Burst: 3},
		Routes: map[string]config.Route{
			"$default":    {Integration: mock},
			"$disconnect": {Integration: mock},
			"send":        {Integration: mock, Throttling: config.RateLimit{Rate: tiny, Burst: 1}},
		},
	}
	th := New(cfg)
	for _, tt := range []struct {
		route string
		allow int // requests allowed before the bucket is empty; -1: unlimited
	}{
		{"$default", 3},
		{"send", 1},
		{"$connect", 3}, // the stage default throttles handshakes without a $connect route
		{"$disconnect", -1},
		{"other", -1},
	} {
		n := 0
		for range 10 {
			if th.Allow(tt.route) {
				n++
			}
		}
		want := tt.allow
		if want < 0 {
			want = 10
		}
		if n != want {
			t.Errorf("route %s allowed %d of 10; want %d", tt.route, n, want)
		}
		if th.Limited(tt.route) != (tt.allow >= 0) {
			t.Errorf("Limited(%s) = %v", tt.route, th.Limited(tt.route))
		}
	}
}

func TestRoutesHaveTheirOwnBuckets(t *testing.T) {
	mock := config.Integration{Type: config.IntegrationMock}
	th := New(&config.Config{
		Throttling: config.RateLimit{Rate: tiny, Burst: 2},
		Routes:     map[string]config.Route{"a": {Integration: mock}, "b": {Integration: mock}},
	})
	for range 2 {
		if !th.Allow("a") {
			t.Fatal("a refused within its burst")
		}
	}
	if th.Allow("a") {
		t.Fatal("a allowed past its burst")
	}
	if !th.Allow("b") || !th.Allow("b") {
		t.Fatal("b refused: it shares a's bucket")
	}
}

func TestNoThrottling(t *testing.T) {
	mock := config.Integration{Type: config.IntegrationMock}
	th := New(&config.Config{Routes: map[string]config.Route{"$default": {Integration: mock}}})
	if th != nil {
		t.Fatalf("New without rates = %+v; want nil", th)
	}
	for range 100 {
		if !th.Allow("$default") || !th.Allow("$connect") {
			t.Fatal("nil Throttle refused a request")
		}
	}
	// Only $connect throttled: the route's own setting.
	th = New(&config.Config{Routes: map[string]config.Route{
		"$connect": {Integration: mock, Throttling: config.RateLimit{Rate: tiny, Burst: 1}},
		"$default": {Integration: mock},
	}})
	if !th.Allow("$connect") || th.Allow("$connect") {
		t.Error("$connect bucket of burst 1 did not allow exactly one handshake")
	}
	if th.Limited("$default") {
		t.Error("$default limited without a rate")
	}
}
