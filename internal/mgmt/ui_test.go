package mgmt

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/ui"
)

// TestUI checks that the inspector's page and assets are served without
// authentication, with their content types and security headers, that
// nothing else under /ui/ escapes authentication, and that without UI the
// paths are unknown.
func TestUI(t *testing.T) {
	var ops []string
	newServer := func(withUI bool) *Server {
		cfg := Config{BearerTokens: []string{"tok-1"}, Observe: func(op string, _ int) { ops = append(ops, op) }}
		if withUI {
			cfg.UI = ui.New()
		}
		return New(cfg, newNode(), slog.New(slog.DiscardHandler))
	}
	do := func(s *Server, method, path, auth string, header ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	// Set without canonicalizing, as AWS spells it.
	errorType := func(rec *httptest.ResponseRecorder) string {
		return strings.Join(rec.Header()["X-Amzn-ErrorType"], ",")
	}
	on, off := newServer(true), newServer(false)

	for path, want := range map[string]string{
		"/ui/":            "text/html; charset=utf-8",
		"/ui/app.js":      "text/javascript; charset=utf-8",
		"/ui/style.css":   "text/css; charset=utf-8",
		"/ui/favicon.svg": "image/svg+xml",
	} {
		rec := do(on, "GET", path, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s without a token: %d %s, want 200", path, rec.Code, rec.Body)
		}
		h := rec.Header()
		if got := h.Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
		}
		if got := h.Get("Content-Security-Policy"); got != ui.ContentSecurityPolicy || !strings.Contains(got, "default-src 'self'") || strings.Contains(got, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, got)
		}
		if h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: Cache-Control %q, ETag %q, X-Content-Type-Options %q", path, h.Get("Cache-Control"), h.Get("ETag"), h.Get("X-Content-Type-Options"))
		}
		if again := do(on, "GET", path, "", "If-None-Match", h.Get("ETag")); again.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, again.Code)
		}
		// The page is the same with a token, and HEAD answers too.
		if rec := do(on, "GET", path, "Bearer wrong"); rec.Code != http.StatusOK {
			t.Errorf("GET %s with a wrong token: %d, want 200", path, rec.Code)
		}
		if rec := do(on, "HEAD", path, ""); rec.Code != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200", path, rec.Code)
		}
	}
	page := do(on, "GET", "/ui/", "").Body.String()
	if !strings.Contains(page, `<script type="module" src="app.js"></script>`) || strings.Contains(page, "<script>") || strings.Contains(page, "style=") {
		t.Errorf("the page has inline script or style, or no module script:\n%s", page)
	}

	rec := do(on, "GET", "/ui", "")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d Location %q, want 301 /ui/", rec.Code, rec.Header().Get("Location"))
	}

	// Anything else under /ui/ is routed as before, behind authentication:
	// an unknown asset, another method, and a stage named "ui".
	for _, c := range []struct{ method, path string }{
		{"GET", "/ui/nope.js"}, {"GET", "/ui/index.html"}, {"POST", "/ui/"}, {"DELETE", "/ui/app.js"},
		{"GET", "/ui/@connections"}, {"POST", "/ui/@topics/a"},
	} {
		if rec := do(on, c.method, c.path, ""); rec.Code != http.StatusForbidden {
			t.Errorf("%s %s without a token: %d, want 403", c.method, c.path, rec.Code)
		}
	}
	if rec := do(on, "GET", "/ui/nope.js", "Bearer tok-1"); rec.Code != http.StatusNotFound || errorType(rec) != "NotFoundException" {
		t.Errorf("GET /ui/nope.js authenticated: %d %q, want 404 NotFoundException", rec.Code, errorType(rec))
	}
	if rec := do(on, "GET", "/ui/@connections", "Bearer tok-1"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"items"`) {
		t.Errorf("GET /ui/@connections (stage ui) authenticated: %d %s, want the listing", rec.Code, rec.Body)
	}

	for _, path := range []string{"/ui", "/ui/", "/ui/app.js"} {
		if rec := do(off, "GET", path, ""); rec.Code != http.StatusForbidden {
			t.Errorf("UI off, GET %s without a token: %d, want 403", path, rec.Code)
		}
		if rec := do(off, "GET", path, "Bearer tok-1"); rec.Code != http.StatusNotFound || errorType(rec) != "NotFoundException" {
			t.Errorf("UI off, GET %s authenticated: %d %q, want 404 NotFoundException", path, rec.Code, errorType(rec))
		}
	}

	ops = nil
	do(on, "GET", "/ui/app.js", "")
	do(on, "GET", "/ui", "")
	if strings.Join(ops, ",") != "UI,UI" {
		t.Errorf("operations of UI calls: %v, want UI, UI", ops)
	}
}

// TestUIRateLimited checks that the UI's assets count against the rate
// limit like every other call.
func TestUIRateLimited(t *testing.T) {
	s := New(Config{BearerTokens: []string{"tok-1"}, UI: ui.New(), RateLimit: RateLimit{Rate: 0.001, Burst: 1}}, newNode(), slog.New(slog.DiscardHandler))
	codes := []int{}
	for range 2 {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/", nil))
		codes = append(codes, rec.Code)
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusTooManyRequests {
		t.Errorf("two GET /ui/ within a burst of 1: %v, want [200 429]", codes)
	}
}
