package mgmt

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/ui"
)

// TestCrossSiteCallsRefused checks that a page of another site cannot make
// the operator's browser call the management API: a management API without
// authentication (the default on a loopback address) would otherwise take a
// "simple" cross-site POST — a publish to a topic, a push to a user — from
// any page the operator visits, with no preflight to stop it. The UI's own
// calls (same origin) and non-browser clients still pass.
func TestCrossSiteCallsRefused(t *testing.T) {
	s := New(Config{UI: ui.New()}, newNode(), slog.New(slog.DiscardHandler))
	do := func(method, path string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader("hello"))
		r.Host = "127.0.0.1:9090"
		r.Header.Set("Content-Type", "text/plain")
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	for _, path := range []string{"/@topics/news", "/@users/alice", "/@connections/abc"} {
		for _, h := range [][]string{
			{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example"}, // a browser without Fetch Metadata
		} {
			if rec := do("POST", path, h...); rec.Code != http.StatusForbidden {
				t.Errorf("cross-site POST %s (%v): %d %s, want 403", path, h, rec.Code, rec.Body)
			}
		}
	}
	// The inspector's own call, and a non-browser client's.
	if rec := do("POST", "/@topics/news", "Origin", "http://127.0.0.1:9090", "Sec-Fetch-Site", "same-origin"); rec.Code != http.StatusOK {
		t.Errorf("same-origin POST /@topics/news: %d %s, want 200", rec.Code, rec.Body)
	}
	if rec := do("POST", "/@topics/news"); rec.Code != http.StatusOK {
		t.Errorf("POST /@topics/news without Origin: %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestRebindingHostRefusedWithoutAuth checks that a management API without
// authentication answers only requests addressed to a loopback host. A page
// on another site that rebinds its own name to 127.0.0.1 (DNS rebinding) is
// same-origin with its own name, so the browser lets it read the answers:
// the cluster's connections, their authorizer context, the log and message
// tails. Its requests name its own host, which is how they are told apart.
func TestRebindingHostRefusedWithoutAuth(t *testing.T) {
	open := New(Config{UI: ui.New(), OpenHosts: LoopbackHost}, newNode(), slog.New(slog.DiscardHandler))
	withAuth := New(Config{UI: ui.New(), BearerTokens: []string{"tok-1"}, OpenHosts: LoopbackHost}, newNode(), slog.New(slog.DiscardHandler))
	do := func(s *Server, path, host, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = host
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	for _, path := range []string{"/@connections", "/@log?kind=authorizer", "/@nodes"} {
		for _, host := range []string{"rebind.evil.example:9090", "rebind.evil.example"} {
			if rec := do(open, path, host, ""); rec.Code != http.StatusForbidden {
				t.Errorf("no auth, GET %s with Host %s: %d %s, want 403", path, host, rec.Code, rec.Body)
			}
		}
		for _, host := range []string{"127.0.0.1:9090", "localhost:9090", "[::1]:9090", "127.0.0.1", "LOCALHOST:9090", "[::1]", "localhost.", "ui.localhost:9090"} {
			if rec := do(open, path, host, ""); rec.Code != http.StatusOK {
				t.Errorf("no auth, GET %s with Host %s: %d %s, want 200", path, host, rec.Code, rec.Body)
			}
		}
		// With authentication the host does not matter: a token is needed.
		if rec := do(withAuth, path, "gateway.example:9090", "Bearer tok-1"); rec.Code != http.StatusOK {
			t.Errorf("auth, GET %s with Host gateway.example: %d %s, want 200", path, rec.Code, rec.Body)
		}
	}
}
