package mgmt

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNonCanonicalPathsAreNotFound checks that a path with an empty, "." or
// ".." segment is answered 404 NotFoundException, never redirected: a
// redirect re-escapes the connection id and sends the caller elsewhere.
func TestNonCanonicalPathsAreNotFound(t *testing.T) {
	s := New(Config{}, newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	paths := []string{
		"//@connections/ID%3D",
		"/prod//@connections/ID%3D",
		"/./@connections/ID%3D",
		"/prod/./@connections/ID%3D",
		"/prod/../@connections/ID%3D",
		"/../@connections/ID%3D",
		"/@connections/ID%3D/.",
		"/@connections/./ID%3D",
		"/@connections/x/topics/a//b",
		"/@connections/x/topics/a/./b",
		"/prod/@topics/a/../b",
		"/@topics//a",
		"//healthz",
		"/./readyz",
	}
	for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
		for _, p := range paths {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, p, strings.NewReader("x")))
			typ := strings.Join(w.Header()["X-Amzn-ErrorType"], ",")
			if w.Code != http.StatusNotFound || typ != "NotFoundException" || w.Header().Get("Location") != "" {
				t.Errorf("%s %s: %d %s Location=%q, want 404 NotFoundException", method, p,
					w.Code, typ, w.Header().Get("Location"))
			}
		}
	}
}

// TestNoPathIsRedirected routes every path built from a set of segments,
// canonical or not, with every method, and requires that none is answered
// with a redirect: ServeMux also redirects /tree to /tree/ when only the
// latter has a handler, which would drop the stage.
func TestNoPathIsRedirected(t *testing.T) {
	s := New(Config{}, newNode(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	segs := []string{"", ".", "..", "prod", "@connections", "@topics", "@users", "@batch", "topics", "ID%3D", "a", "healthz"}
	var paths []string
	var build func(prefix string, depth int)
	build = func(prefix string, depth int) {
		paths = append(paths, prefix, prefix+"/")
		if depth == 0 {
			return
		}
		for _, sg := range segs {
			build(prefix+"/"+sg, depth-1)
		}
	}
	build("", 3)
	for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
		for _, p := range paths {
			if p == "" {
				continue
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, httptest.NewRequest(method, p, strings.NewReader("x")))
			if w.Code >= 300 && w.Code < 400 || w.Header().Get("Location") != "" {
				t.Fatalf("%s %s: %d Location=%q, want no redirect", method, p, w.Code, w.Header().Get("Location"))
			}
		}
	}
}
