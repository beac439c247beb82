package mgmt

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
)

// newNode returns a single node on an in-memory engine, not started, so
// not ready.
func newNode() *cluster.Node {
	return cluster.NewNode(cluster.Config{NodeID: "n1"}, cluster.NewMemory(), hub.New())
}

func TestCloseParams(t *testing.T) {
	cases := []struct {
		query  string
		code   int
		reason string
		ok     bool
	}{
		{"", 1000, "Connection Closed Normally", true},
		{"code=1000", 1000, "", true},
		{"code=3000", 3000, "", true},
		{"code=4999&reason=bye", 4999, "bye", true},
		{"reason=bye", 1000, "bye", true},
		{"code=4000&reason=" + strings.Repeat("é", 61), 4000, strings.Repeat("é", 61), true},
		{"code=4000&reason=" + strings.Repeat("r", 124), 0, "", false},
		{"code=1001", 0, "", false},
		{"code=2999", 0, "", false},
		{"code=5000", 0, "", false},
		{"code=", 0, "", false},
		{"code=4000x", 0, "", false},
		{"reason=%ff", 0, "", false},
	}
	for _, tc := range cases {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		code, reason, err := closeParams(q)
		if ok := err == nil; ok != tc.ok || code != tc.code || reason != tc.reason {
			t.Errorf("%q: (%d, %q, %v), want (%d, %q, ok=%v)", tc.query, code, reason, err, tc.code, tc.reason, tc.ok)
		}
		if err != nil && asError(err).Type != "BadRequestException" {
			t.Errorf("%q: %v, want BadRequestException", tc.query, err)
		}
	}
}

// TestRouting checks that every call is reached with and without a stage,
// including topics that contain "/" or look like other calls.
func TestRouting(t *testing.T) {
	s := New(Config{}, newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	cases := []struct {
		method, path string
		status       int
	}{
		{"GET", "/@topics/a/b", 200},
		{"GET", "/prod/@topics/a/b", 200},
		{"GET", "/@topics/@connections/x", 200},
		{"GET", "/@topics/", 400},
		{"POST", "/@users/u", 410},
		{"POST", "/prod/@users/u", 410},
		{"GET", "/prod/@users/u", 200},
		{"POST", "/@connections/x", 410},
		{"POST", "/prod/@connections/x", 410},
		{"PUT", "/@connections/x/topics/a/b", 410},
		{"DELETE", "/prod/@connections/x/topics/a/b", 410},
		{"POST", "/@batch", 400},
		{"POST", "/prod/@batch", 400},
		{"POST", "/a/b/@batch", 404},
		{"GET", "/nothing", 404},
		{"GET", "/nothing/", 404},
		{"GET", "/", 404},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 503},
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader("x")))
		if w.Code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, w.Code, w.Body, tc.status)
		}
	}
}

func TestRateLimit(t *testing.T) {
	s := New(Config{RateLimit: RateLimit{Rate: 0.001, Burst: 2}}, newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var codes []int
	for range 3 {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", "/@topics/t", nil))
		codes = append(codes, w.Code)
		if w.Code == http.StatusTooManyRequests && strings.Join(w.Header()["X-Amzn-ErrorType"], ",") != "LimitExceededException" {
			t.Fatalf("429 with error type %q", strings.Join(w.Header()["X-Amzn-ErrorType"], ","))
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("statuses %v, want [200 200 429]", codes)
	}
}

// TestBatchTrailingDataIsRefused checks that a batch body with a stray
// closing bracket after its object is refused as malformed, as any other
// trailing data is.
func TestBatchTrailingDataIsRefused(t *testing.T) {
	s := New(Config{}, newNode(), slog.New(slog.DiscardHandler))
	for _, body := range []string{
		`{"items":[{"topic":"a","data":"x"}]} x`,
		`{"items":[{"topic":"a","data":"x"}]}}`,
		`{"items":[{"topic":"a","data":"x"}]}]`,
		`{"items":[{"topic":"a","data":"x"}]}]]]}}`,
	} {
		r := httptest.NewRequest("POST", "/@batch", strings.NewReader(body))
		status, typ, msg := serve(s, r)
		if status != http.StatusBadRequest || typ != "BadRequestException" {
			t.Errorf("POST /@batch %q: %d %s %q, want 400 BadRequestException", body, status, typ, msg)
		}
	}
}
