package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type refused []string

func (r refused) Error() string      { return strings.Join(r, "; ") }
func (r refused) Problems() []string { return r }

func do(s *Server, method, path, token string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	s.ServeHTTP(w, r)
	return w
}

// TestReloadCall checks POST /reload: authenticated like every call, 200
// once applied, 400 with the problems of a refused configuration, 500 for
// any other failure, and absent without a Reload function.
func TestReloadCall(t *testing.T) {
	var result error
	calls := 0
	s := New(Config{BearerTokens: []string{"t1"}, Reload: func(context.Context) error { calls++; return result }},
		newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))

	if w := do(s, "POST", "/reload", ""); w.Code != http.StatusForbidden || calls != 0 {
		t.Fatalf("without a token: %d, %d calls", w.Code, calls)
	}
	if w := do(s, "POST", "/reload", "t1"); w.Code != http.StatusOK || calls != 1 || w.Body.String() != `{"message":"reloaded"}` {
		t.Fatalf("reload: %d %s, %d calls", w.Code, w.Body, calls)
	}
	result = refused{"wsgate.yaml:3: limits.max_frame_bytes: must be positive", "wsgate.yaml:9: routes: x"}
	w := do(s, "POST", "/reload", "t1")
	var body struct {
		Message string
		Errors  []string
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusBadRequest ||
		strings.Join(w.Header()["X-Amzn-ErrorType"], "") != "BadRequestException" || len(body.Errors) != 2 || body.Errors[0] != result.(refused)[0] {
		t.Fatalf("refused: %d %s (%v)", w.Code, w.Body, err)
	}
	result = errors.New("reading wsgate.yaml: permission denied")
	if w := do(s, "POST", "/reload", "t1"); w.Code != http.StatusInternalServerError {
		t.Fatalf("failure: %d %s", w.Code, w.Body)
	}
	if w := do(s, "GET", "/reload", "t1"); w.Code == http.StatusOK {
		t.Fatalf("GET /reload: %d", w.Code)
	}

	off := New(Config{}, newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if w := do(off, "POST", "/reload", ""); w.Code != http.StatusNotFound {
		t.Fatalf("without Reload: %d %s", w.Code, w.Body)
	}
}

// TestSetAccess replaces the tokens and the rate limit of a serving
// server: the old token is refused and the new one accepted; an unchanged
// rate limit keeps its bucket, a new one starts a new bucket.
func TestSetAccess(t *testing.T) {
	s := New(Config{BearerTokens: []string{"old"}, RateLimit: RateLimit{Rate: 0.001, Burst: 2}},
		newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if w := do(s, "GET", "/@topics/t", "old"); w.Code != http.StatusOK {
		t.Fatalf("old token before: %d", w.Code)
	}
	s.SetAccess([]string{"new"}, nil, RateLimit{Rate: 0.001, Burst: 2})
	if w := do(s, "GET", "/@topics/t", "old"); w.Code != http.StatusForbidden {
		t.Fatalf("old token after: %d", w.Code)
	}
	// The bucket was kept: two calls made, the third is over.
	if w := do(s, "GET", "/@topics/t", "new"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("third call in the kept bucket: %d", w.Code)
	}
	s.SetAccess([]string{"new"}, nil, RateLimit{Rate: 0.001, Burst: 3})
	if w := do(s, "GET", "/@topics/t", "new"); w.Code != http.StatusOK {
		t.Fatalf("new token with a new bucket: %d", w.Code)
	}
	s.SetAccess(nil, nil, RateLimit{})
	if w := do(s, "GET", "/@topics/t", ""); w.Code != http.StatusOK {
		t.Fatalf("no authentication, no limit: %d", w.Code)
	}
}
