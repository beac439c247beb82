package forwarded

import (
	"net/netip"
	"strings"
)

// parseForwarded reads the elements of Forwarded header lines (RFC 7239
// section 4): comma-separated elements of semicolon-separated name=value
// pairs, each value a token or a quoted string. An element's "for" node is
// its hop's address: an IPv4 address, or a bracketed IPv6 address in a
// quoted string, either with an optional port; "unknown" and obfuscated
// identifiers ("_hidden") are valid but carry no address. It fails on
// anything that breaks the grammar, an element without "for", a parameter
// given twice in one element, or a "for" that is not a node.
func parseForwarded(lines []string) ([]hop, bool) {
	var out []hop
	for _, l := range lines {
		elems, ok := splitElements(l)
		if !ok {
			return nil, false
		}
		for _, e := range elems {
			h, ok := parseElement(e)
			if !ok {
				return nil, false
			}
			out = append(out, h)
		}
	}
	return out, len(out) > 0
}

// splitElements splits a header line at the commas outside quoted strings.
func splitElements(l string) ([]string, bool) {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, l[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, false
	}
	return append(out, l[start:]), true
}

// parseElement reads one forwarded-element.
func parseElement(e string) (hop, bool) {
	var h hop
	seen := map[string]bool{}
	hasFor := false
	for pair := range strings.SplitSeq(e, ";") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			return hop{}, false
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok || !isToken(name) {
			return hop{}, false
		}
		name = strings.ToLower(name)
		if seen[name] {
			return hop{}, false
		}
		seen[name] = true
		v, ok := unquote(value)
		if !ok {
			return hop{}, false
		}
		switch name {
		case "for":
			hasFor = true
			h.addr, h.ok, ok = parseForNode(v)
			if !ok {
				return hop{}, false
			}
		case "proto":
			h.proto = v
		}
	}
	return h, hasFor
}

// parseForNode reads a "for" node: an address (ok true), or "unknown" or an
// obfuscated identifier, which are well-formed but name no address (ok
// false). wellFormed is false for anything else.
func parseForNode(v string) (a netip.Addr, ok, wellFormed bool) {
	host := v
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return netip.Addr{}, false, false
		}
		host = v[1:end]
		if rest := v[end+1:]; rest != "" && !validPort(rest) {
			return netip.Addr{}, false, false
		}
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return netip.Addr{}, false, false
		}
		return addr.Unmap(), true, true
	}
	if i := strings.IndexByte(v, ':'); i >= 0 {
		host = v[:i]
		if !validPort(v[i:]) {
			return netip.Addr{}, false, false
		}
	}
	switch {
	case strings.EqualFold(host, "unknown"), isObfuscated(host):
		return netip.Addr{}, false, true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, false, false
	}
	return addr, true, true
}

// validPort reads ":port" where port is a number or an obfuscated port.
func validPort(s string) bool {
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	p := s[1:]
	if isObfuscated(p) {
		return true
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// isObfuscated reports whether s is an obfuscated identifier: "_" followed
// by ALPHA, DIGIT, ".", "_" or "-" (RFC 7239 section 6.3).
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// unquote reads a token or a quoted string (RFC 9110 section 5.6).
func unquote(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, isToken(v)
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i >= len(v)-1 {
				return "", false
			}
			b.WriteByte(v[i])
		case c == '"':
			return "", false
		case c < 0x20 && c != '\t', c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
