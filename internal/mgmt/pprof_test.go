package mgmt

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPprof checks that /debug/pprof/ is served only with Pprof set and
// only to authenticated calls: without credentials, with a wrong bearer
// token or with a malformed SigV4 header it gets the same 403 as any other
// call, and with Pprof off it is an unknown path (404) even for a caller
// who authenticates.
func TestPprof(t *testing.T) {
	newServer := func(pprofOn bool) *Server {
		return New(Config{
			BearerTokens: []string{"tok-1"},
			SigV4: []SigV4{{AccessKeyID: testKeyID, SecretAccessKey: testSecret, Region: "us-east-1",
				Now: func() time.Time { return testNow }}},
			Pprof: pprofOn,
		}, newNode(), slog.New(slog.DiscardHandler))
	}
	get := func(s *Server, path, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
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
	paths := []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/symbol"}

	for _, path := range paths {
		for _, auth := range []string{"", "Bearer nope", "AWS4-HMAC-SHA256 Credential=garbage"} {
			for name, s := range map[string]*Server{"on": on, "off": off} {
				rec := get(s, path, auth)
				if rec.Code != http.StatusForbidden || errorType(rec) != "ForbiddenException" {
					t.Errorf("pprof %s, GET %s with Authorization %q: %d %q, want 403 ForbiddenException",
						name, path, auth, rec.Code, errorType(rec))
				}
				if strings.Contains(rec.Body.String(), "goroutine") {
					t.Errorf("pprof %s, GET %s with Authorization %q: the refusal carries a profile: %.200s", name, path, auth, rec.Body)
				}
			}
		}
		rec := get(off, path, "Bearer tok-1")
		if rec.Code != http.StatusNotFound || errorType(rec) != "NotFoundException" {
			t.Errorf("pprof off, GET %s authenticated: %d %q, want 404 NotFoundException", path, rec.Code, errorType(rec))
		}
	}

	rec := get(on, "/debug/pprof/goroutine?debug=1", "Bearer tok-1")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "goroutine profile: total ") {
		t.Errorf("pprof on, goroutine profile authenticated: %d %.200q", rec.Code, rec.Body)
	}
	rec = get(on, "/debug/pprof/", "Bearer tok-1")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("pprof on, index authenticated: %d %.200q", rec.Code, rec.Body)
	}
	// Only the unprefixed paths: a stage prefix does not reach pprof.
	if rec := get(on, "/prod/debug/pprof/goroutine?debug=1", "Bearer tok-1"); rec.Code != http.StatusNotFound {
		t.Errorf("pprof on, GET /prod/debug/pprof/goroutine: %d, want 404", rec.Code)
	}
}
