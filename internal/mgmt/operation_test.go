package mgmt

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestObserveOperations checks the operation and status every call is
// reported with, with and without a stage prefix, for calls refused before
// they are routed too, and that /metrics is served behind authentication.
func TestObserveOperations(t *testing.T) {
	type seen struct {
		op     string
		status int
	}
	var got []seen
	s := New(Config{
		BearerTokens: []string{"tok-1"},
		Pprof:        true,
		Metrics:      http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("m 1\n")) }),
		AsyncAPI:     func() ([]byte, error) { return []byte(`{"asyncapi":"3.0.0"}`), nil },
		Observe:      func(op string, status int) { got = append(got, seen{op, status}) },
	}, newNode(), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		method, path string
		auth         bool
		body         string
		op           string
		status       int
	}{
		{"GET", "/metrics", true, "", "Metrics", 200},
		{"GET", "/metrics", false, "", "Metrics", 403},
		{"GET", "/healthz", false, "", "Health", 200},
		{"GET", "/asyncapi.json", true, "", "AsyncAPI", 200},
		{"GET", "/asyncapi.json", false, "", "AsyncAPI", 403},
		{"POST", "/asyncapi.json", true, "", "Unknown", 404},
		{"GET", "/debug/pprof/cmdline", true, "", "Pprof", 200},
		{"POST", "/@connections/bm9ib2R5aGVyZTEyMzQ=", true, "x", "PostToConnection", 410},
		{"POST", "/prod/@connections/bm9ib2R5aGVyZTEyMzQ=", true, "x", "PostToConnection", 410},
		{"DELETE", "/prod/@connections/bm9ib2R5aGVyZTEyMzQ=", false, "", "DeleteConnection", 403},
		{"GET", "/prod/@topics/a/b", true, "", "GetTopic", 200},
		{"GET", "/@connections", true, "", "ListConnections", 200},
		{"GET", "/prod/@connections?maxResults=0", true, "", "ListConnections", 400},
		{"GET", "/@connections", false, "", "ListConnections", 403},
		{"GET", "/@nodes", true, "", "ListNodes", 200},
		{"GET", "/prod/@nodes", false, "", "ListNodes", 403},
		{"GET", "/@topics?prefix=a", true, "", "ListTopics", 200},
		{"GET", "/prod/@topics?maxResults=0", true, "", "ListTopics", 400},
		{"POST", "/@topics", true, "", "Unknown", 404},
		{"PUT", "/@connections/bm9ib2R5aGVyZTEyMzQ=/topics/a", true, "", "Subscribe", 410},
		{"GET", "/nothing/here/at/all", true, "", "Unknown", 404},
	} {
		got = nil
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.auth {
			r.Header.Set("Authorization", "Bearer tok-1")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
		if len(got) != 1 || got[0] != (seen{tc.op, tc.status}) {
			t.Errorf("%s %s: observed %v, want [{%s %d}]", tc.method, tc.path, got, tc.op, tc.status)
		}
	}
}
