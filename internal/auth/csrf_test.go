package auth

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

func TestCheckCSRF(t *testing.T) {
	tests := []struct {
		name    string
		cookies []string // Cookie header lines
		query   string
		wantWhy string // "" for nil
	}{
		{"match", []string{"jwt=abc; csrf=tok-123"}, "csrf=tok-123", ""},
		{"match, several cookie headers", []string{"jwt=abc", "csrf=tok-123"}, "csrf=tok-123&x=1", ""},
		{"match, quoted cookie", []string{`csrf="tok-123"`}, "csrf=tok-123", ""},
		{"match, same cookie twice", []string{"csrf=tok-123; csrf=tok-123"}, "csrf=tok-123", ""},
		{"mismatch", []string{"csrf=tok-123"}, "csrf=tok-124", "csrf token mismatch"},
		{"mismatch, prefix", []string{"csrf=tok-123"}, "csrf=tok-12", "csrf token mismatch"},
		{"mismatch, case", []string{"csrf=tok-abc"}, "csrf=TOK-ABC", "csrf token mismatch"},
		{"planted cookie first", []string{"csrf=evil; csrf=tok-123"}, "csrf=evil", "csrf token mismatch"},
		{"planted cookie last", []string{"csrf=tok-123; csrf=evil"}, "csrf=tok-123", "csrf token mismatch"},
		{"other cookie names", []string{"xcsrf=tok-123; csrfx=tok-123"}, "csrf=tok-123", "csrf token missing"},
		{"only the cookie", []string{"csrf=tok-123"}, "", "csrf token missing"},
		{"only the query", nil, "csrf=tok-123", "csrf token missing"},
		{"empty query value", []string{"csrf=tok-123"}, "csrf=", "csrf token missing"},
		{"empty cookie value", []string{"csrf="}, "csrf=tok-123", "csrf token missing"},
		{"both empty", []string{"csrf="}, "csrf=", "csrf token missing"},
		{"neither", nil, "", "csrf token missing"},
		{"cookie value in another parameter", []string{"csrf=tok-123"}, "token=tok-123", "csrf token missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Cookie": tt.cookies}
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			err = CheckCSRF(h, q, "csrf", "csrf")
			if tt.wantWhy == "" {
				if err != nil {
					t.Fatalf("CheckCSRF() = %v; want nil", err)
				}
				return
			}
			var d *Denial
			if !errors.As(err, &d) || d.Status != http.StatusForbidden || d.Message != "Forbidden" || d.Reason != tt.wantWhy {
				t.Fatalf("CheckCSRF() = %v; want 403 Forbidden %q", err, tt.wantWhy)
			}
		})
	}
}

func TestCheckCSRFNames(t *testing.T) {
	h := http.Header{"Cookie": {"XSRF-TOKEN=t1; __Host-csrf=t2"}}
	tests := []struct {
		cookie, query string
		q             url.Values
		ok            bool
	}{
		{"XSRF-TOKEN", "_csrf", url.Values{"_csrf": {"t1"}}, true},
		{"__Host-csrf", "state", url.Values{"state": {"t2"}}, true},
		{"__Host-csrf", "state", url.Values{"state": {"t1"}}, false},
		// Of a repeated query parameter the last value counts.
		{"XSRF-TOKEN", "_csrf", url.Values{"_csrf": {"t2", "t1"}}, true},
		{"XSRF-TOKEN", "_csrf", url.Values{"_csrf": {"t1", "t2"}}, false},
		{"XSRF-TOKEN", "_csrf", url.Values{"_csrf": {"t1", ""}}, false},
	}
	for _, tt := range tests {
		if err := CheckCSRF(h, tt.q, tt.cookie, tt.query); (err == nil) != tt.ok {
			t.Errorf("CheckCSRF(cookie %s, query %s=%q) = %v; want ok = %v", tt.cookie, tt.query, tt.q[tt.query], err, tt.ok)
		}
	}
}
