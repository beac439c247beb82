package auth

import (
	"strconv"
	"strings"
	"testing"
)

func TestOriginPolicy(t *testing.T) {
	patterns := []string{
		"https://app.example.com",
		"http://localhost:3000",
		"https://*.example.com",
		"https://Admin.Example.org:443",
		"http://[::1]:8080",
		"https://api.example.net:8443",
		"https://*.tenants.example.net:8443",
		"not a pattern",
	}
	tests := []struct {
		name     string
		patterns []string
		origin   string
		want     bool
	}{
		{"exact", patterns, "https://app.example.com", true},
		{"host case-insensitive", patterns, "https://APP.Example.COM", true},
		{"scheme case-insensitive", patterns, "HTTPS://app.example.com", true},
		{"default port written", patterns, "https://app.example.com:443", true},
		{"default port in the pattern", patterns, "https://admin.example.org", true},
		{"default port in both", patterns, "https://admin.example.org:443", true},
		{"leading zeros in the port", patterns, "https://admin.example.org:0443", true},
		{"other port", patterns, "https://app.example.com:8443", false},
		{"http for an https pattern", patterns, "http://app.example.com", false},
		{"exact with port", patterns, "http://localhost:3000", true},
		{"missing port", patterns, "http://localhost", false},
		{"wrong port", patterns, "http://localhost:3001", false},
		{"ipv6 literal", patterns, "http://[::1]:8080", true},
		{"ipv6 other port", patterns, "http://[::1]:8081", false},
		{"non-default port", patterns, "https://api.example.net:8443", true},
		{"non-default port left out", patterns, "https://api.example.net", false},

		{"wildcard one label", patterns, "https://a.example.com", true},
		{"wildcard two labels", patterns, "https://a.b.example.com", true},
		{"wildcard upper case", patterns, "https://A.EXAMPLE.COM", true},
		{"wildcard default port", patterns, "https://a.example.com:443", true},
		{"wildcard other port", patterns, "https://a.example.com:8443", false},
		{"wildcard bare domain", patterns, "https://example.com", false},
		{"wildcard empty label", patterns, "https://.example.com", false},
		{"wildcard hyphen lookalike", patterns, "https://evil-example.com", false},
		{"wildcard glued label", patterns, "https://evilexample.com", false},
		{"wildcard as a prefix", patterns, "https://example.com.evil.net", false},
		{"wildcard as a label", patterns, "https://a.example.com.evil.net", false},
		{"wildcard http", patterns, "http://a.example.com", false},
		{"wildcard with port", patterns, "https://x.tenants.example.net:8443", true},
		{"wildcard without its port", patterns, "https://x.tenants.example.net", false},
		{"wildcard bare domain with port", patterns, "https://tenants.example.net:8443", false},

		{"no origin", patterns, "", true},
		{"null", patterns, "null", false},
		{"unlisted", patterns, "https://evil.com", false},
		{"trailing slash", patterns, "https://app.example.com/", false},
		{"path", patterns, "https://app.example.com/x", false},
		{"query", patterns, "https://app.example.com?x", false},
		{"fragment", patterns, "https://app.example.com#x", false},
		{"user info", patterns, "https://evil.com@app.example.com", false},
		{"user info in the wildcard", patterns, "https://x@a.example.com", false},
		{"backslash", patterns, `https://evil.com\.example.com`, false},
		{"trailing dot", patterns, "https://app.example.com.", false},
		{"empty port", patterns, "https://app.example.com:", false},
		{"port out of range", patterns, "http://localhost:65536", false},
		{"port with sign", patterns, "http://localhost:+3000", false},
		{"no scheme", patterns, "app.example.com", false},
		{"no host", patterns, "https://", false},
		{"space", patterns, "https://app.example.com ", false},
		{"percent-encoded", patterns, "https://app%2eexample.com", false},
		{"non-ascii", patterns, "https://äpp.example.com", false},
		{"the bad pattern itself", patterns, "not a pattern", false},

		{"no patterns", nil, "https://evil.com", true},
		{"no patterns, null", []string{}, "null", true},
		{"no patterns, garbage", nil, "::::", true},
		{"only bad patterns", []string{"ftp//x"}, "https://evil.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewOriginPolicy(tt.patterns).Allowed(tt.origin); got != tt.want {
				t.Errorf("Allowed(%q) = %v; want %v", tt.origin, got, tt.want)
			}
		})
	}
	var nilPolicy *OriginPolicy
	if !nilPolicy.Allowed("https://evil.com") {
		t.Errorf("nil policy refused an origin; want everything allowed")
	}
}

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in   string
		want origin
		ok   bool
	}{
		{"https://a.com", origin{"https", "a.com", ""}, true},
		{"HTTPS://A.com:443", origin{"https", "a.com", ""}, true},
		{"http://a.com:80", origin{"http", "a.com", ""}, true},
		{"http://a.com:443", origin{"http", "a.com", "443"}, true},
		{"wss://a.com:443", origin{"wss", "a.com", ""}, true},
		{"chrome-extension://abcdef", origin{"chrome-extension", "abcdef", ""}, true},
		{"http://127.0.0.1:08080", origin{"http", "127.0.0.1", "8080"}, true},
		{"http://[::1]", origin{"http", "[::1]", ""}, true},
		{"http://[::1]x", origin{}, false},
		{"http://[::1", origin{}, false},
		{"http://[]", origin{}, false},
		{"http://[zz]", origin{}, false},
		{"http://a.com:123456", origin{}, false},
		{"1http://a.com", origin{}, false},
		{"://a.com", origin{}, false},
		{"null", origin{}, false},
	}
	for _, tt := range tests {
		got, ok := parseOrigin(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseOrigin(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzOriginPolicyAllowed checks that Allowed never panics, never allows a
// value that is not a bare origin, and only allows hosts the policy names.
func FuzzOriginPolicyAllowed(f *testing.F) {
	p := NewOriginPolicy([]string{"https://app.example.com", "https://*.example.com", "http://localhost:3000"})
	for _, s := range []string{
		"", "null", "https://app.example.com", "https://a.b.example.com:443", "https://example.com",
		"https://evil-example.com", "https://example.com.evil.net", "http://localhost:3000", "http://[::1]:80",
		"https://a.example.com/", "https://x@a.example.com", "https://a.example.com:", "HTTPS://A.EXAMPLE.COM",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if !p.Allowed(value) || value == "" {
			return
		}
		scheme, rest, ok := strings.Cut(strings.ToLower(value), "://")
		if !ok {
			t.Fatalf("Allowed(%q) = true for a value without a scheme", value)
		}
		host, port := rest, ""
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		n := -1
		if port != "" {
			var err error
			if n, err = strconv.Atoi(port); err != nil || strings.Trim(port, "0123456789") != "" {
				t.Fatalf("Allowed(%q) = true with port %q", value, port)
			}
		}
		if strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" ||
			strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
			t.Fatalf("Allowed(%q) = true with host %q", value, host)
		}
		switch {
		case scheme == "http" && host == "localhost" && n == 3000:
		case scheme == "https" && (n == -1 || n == 443) && strings.HasSuffix(host, ".example.com"):
		default:
			t.Fatalf("Allowed(%q) = true; the policy names no such origin", value)
		}
	})
}
