package auth

import (
	"strconv"
	"strings"
)

// OriginPolicy is the Origin allow-list checked before any authorizer runs.
// Browsers do not apply the same-origin policy to WebSockets and send the
// user's cookies with a cross-site handshake, so a page on any site could
// otherwise connect as the user (cross-site WebSocket hijacking).
//
// An OriginPolicy is immutable and safe for concurrent use. A nil policy,
// or one made from no patterns, allows every origin.
type OriginPolicy struct {
	exact     []origin
	wildcards []origin // host holds the suffix, with its leading dot
	any       bool
}

// origin is a parsed scheme://host[:port], lower-cased, with the scheme's
// default port removed.
type origin struct {
	scheme, host, port string
}

// NewOriginPolicy returns the policy allowing the origins that patterns
// name. A pattern is scheme://host[:port], matched exactly except that the
// scheme and host are case-insensitive and a default port may be written or
// left out (https://a.com is https://a.com:443). A pattern whose host starts
// with "*." matches any host with one or more labels in front of the rest:
// https://*.example.com matches https://a.example.com and
// https://a.b.example.com but not https://example.com. A pattern that does
// not parse matches nothing (config validation rejects it first).
func NewOriginPolicy(patterns []string) *OriginPolicy {
	p := &OriginPolicy{any: len(patterns) == 0}
	for _, s := range patterns {
		wild := false
		if scheme, rest, ok := strings.Cut(s, "://*."); ok {
			s, wild = scheme+"://"+rest, true
		}
		o, ok := parseOrigin(s)
		if !ok {
			continue
		}
		if wild {
			o.host = "." + o.host
			p.wildcards = append(p.wildcards, o)
		} else {
			p.exact = append(p.exact, o)
		}
	}
	return p
}

// Allowed reports whether a handshake with this Origin header value may
// proceed. An empty value is allowed: clients that are not browsers do not
// send Origin, and they cannot be made to carry a user's cookies by another
// site. "null", sent by sandboxed frames and file: pages, and any value that
// is not a plain scheme://host[:port] are refused unless the policy allows
// everything.
func (p *OriginPolicy) Allowed(value string) bool {
	if p == nil || p.any || value == "" {
		return true
	}
	o, ok := parseOrigin(value)
	if !ok {
		return false
	}
	for _, e := range p.exact {
		if o == e {
			return true
		}
	}
	for _, w := range p.wildcards {
		if o.scheme == w.scheme && o.port == w.port &&
			len(o.host) > len(w.host) && strings.HasSuffix(o.host, w.host) {
			return true
		}
	}
	return false
}

// parseOrigin parses the serialised origin scheme://host[:port] (RFC 6454).
// It refuses anything else, such as a path, user information, a query, an
// empty label in the host or characters that are not in a host name, so
// that no oddly written value can pass for an allowed host.
func parseOrigin(s string) (origin, bool) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !isScheme(scheme) || rest == "" {
		return origin{}, false
	}
	host, port := rest, ""
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return origin{}, false
		}
		host = rest[:end+1]
		after := rest[end+1:]
		if after != "" {
			var hasPort bool
			port, hasPort = strings.CutPrefix(after, ":")
			if !hasPort {
				return origin{}, false
			}
		}
		if !isIPv6Literal(host) {
			return origin{}, false
		}
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		if !isHostName(host) {
			return origin{}, false
		}
	}
	scheme = strings.ToLower(scheme)
	host = strings.ToLower(host)
	if port != "" || strings.HasSuffix(rest, ":") {
		n, ok := parsePort(port)
		if !ok {
			return origin{}, false
		}
		port = strconv.Itoa(n)
		if port == defaultPort(scheme) {
			port = ""
		}
	}
	return origin{scheme: scheme, host: host, port: port}, true
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, n <= 65535
}

// isScheme reports whether s is an RFC 3986 scheme.
func isScheme(s string) bool {
	if s == "" || !asciiLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !asciiLetter(c) && !asciiDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isHostName reports whether s is a dot-separated sequence of non-empty
// labels of letters, digits, hyphens and underscores (an IPv4 address is
// one too).
func isHostName(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !asciiLetter(c) && !asciiDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// isIPv6Literal reports whether s is "[" hex digits, colons and dots "]".
func isIPv6Literal(s string) bool {
	if len(s) < 4 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if !asciiDigit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') && c != ':' && c != '.' {
			return false
		}
	}
	return true
}

func asciiLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func asciiDigit(c byte) bool  { return c >= '0' && c <= '9' }
