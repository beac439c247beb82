package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestAssets checks what the UI is made of: one page, one stylesheet and
// plain ES modules that import only each other, with nothing loaded from
// another origin and no inline script, style or event handler attribute,
// so that the Content Security Policy holds.
func TestAssets(t *testing.T) {
	h := New()
	paths := h.Paths()
	if paths[0] != "" || !slices.Contains(paths, "app.js") || !slices.Contains(paths, "style.css") {
		t.Fatalf("Paths() = %q, want the page, app.js and style.css", paths)
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/|@import`)
	cssURL := regexp.MustCompile(`(?i)url\(`)
	imports := regexp.MustCompile(`(?m)^import .* from "([^"]+)";$`)
	handlers := regexp.MustCompile(`(?i)<[^>]+\son[a-z]+=`)
	for _, p := range paths[1:] {
		body, err := fs.ReadFile(assets, "assets/"+p)
		if err != nil {
			t.Fatal(err)
		}
		text := string(body)
		if m := external.FindString(text); m != "" && !strings.HasSuffix(p, ".svg") {
			t.Errorf("%s refers to another origin or stylesheet: %q", p, m)
		}
		if strings.HasSuffix(p, ".css") && cssURL.MatchString(text) {
			t.Errorf("%s loads a resource with url()", p)
		}
		if strings.HasSuffix(p, ".js") {
			for _, m := range imports.FindAllStringSubmatch(text, -1) {
				if !strings.HasPrefix(m[1], "./") || !slices.Contains(paths, strings.TrimPrefix(m[1], "./")) {
					t.Errorf("%s imports %q, which is not one of the assets", p, m[1])
				}
			}
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s uses %s; the UI inserts text only", p, bad)
				}
			}
		}
	}
	page, err := fs.ReadFile(assets, "assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if m := handlers.FindString(string(page)); m != "" {
		t.Errorf("index.html has an inline event handler: %q", m)
	}
	if strings.Contains(string(page), "<style") || strings.Contains(string(page), " style=") {
		t.Error("index.html has inline style")
	}
	for _, s := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(page), -1) {
		if !strings.Contains(s, `src="`) {
			t.Errorf("index.html has an inline script: %s", s)
		}
	}
}

func TestServe(t *testing.T) {
	h := New()
	for _, c := range []struct {
		path, status, ctype string
	}{
		{"", "200", "text/html; charset=utf-8"},
		{"app.js", "200", "text/javascript; charset=utf-8"},
		{"style.css", "200", "text/css; charset=utf-8"},
		{"index.html", "404", ""},
		{"nope", "404", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = c.path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if got := http.StatusText(rec.Code); rec.Code != map[string]int{"200": 200, "404": 404}[c.status] {
			t.Errorf("GET %q: %d %s, want %s", c.path, rec.Code, got, c.status)
			continue
		}
		if c.ctype != "" && rec.Header().Get("Content-Type") != c.ctype {
			t.Errorf("GET %q: Content-Type %q, want %q", c.path, rec.Header().Get("Content-Type"), c.ctype)
		}
		if c.status == "200" && rec.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("GET %q: no Content-Security-Policy", c.path)
		}
	}
}
