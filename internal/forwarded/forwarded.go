// Package forwarded finds a client's address and scheme behind trusted
// proxies (load balancers) from the X-Forwarded-For, Forwarded (RFC 7239)
// and X-Forwarded-Proto headers.
//
// The headers are believed only when the socket's peer is a trusted proxy;
// from any other peer they say nothing. The client is then the right-most
// address in the chain that is not itself a trusted proxy: every address
// to its right was written by a proxy that is trusted, and everything to
// its left may have been written by the client. Whatever cannot be read is
// not guessed at: a header that is malformed where it is read, or that ends
// in an unknown or obfuscated node, leaves the socket's peer as the client.
package forwarded

import (
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is a set of trusted proxy addresses. The zero value and a nil
// *Proxies trust nobody. Its methods are safe for concurrent use.
type Proxies struct {
	prefixes []netip.Prefix
}

// New returns the proxies within prefixes.
func New(prefixes []netip.Prefix) *Proxies {
	return &Proxies{prefixes: append([]netip.Prefix(nil), prefixes...)}
}

// Trusted reports whether a is one of the proxies. An IPv4-mapped IPv6
// address is taken as the IPv4 address.
func (p *Proxies) Trusted(a netip.Addr) bool {
	if p == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, pr := range p.prefixes {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// Empty reports whether no proxy is trusted.
func (p *Proxies) Empty() bool { return p == nil || len(p.prefixes) == 0 }

// Client is what the headers say about the client.
type Client struct {
	// Addr is the client's address: from the headers when they could be
	// believed and read, else the peer.
	Addr netip.Addr
	// Proto is the scheme the client used, "http" or "https", when a
	// trusted proxy said which; "" otherwise.
	Proto string
	// Forwarded reports whether Addr came from the headers.
	Forwarded bool
}

// Resolve returns the client of a request with headers h that arrived from
// peer. X-Forwarded-For is read when the request has one, Forwarded
// otherwise; X-Forwarded-Proto (or the proto of the Forwarded element the
// client was found in) gives the scheme.
func (p *Proxies) Resolve(peer netip.Addr, h http.Header) Client {
	peer = peer.Unmap()
	c := Client{Addr: peer}
	if !p.Trusted(peer) {
		return c
	}
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		if a, ok := p.rightmost(splitList(xff), parseXFF); ok {
			c.Addr, c.Forwarded = a.addr, true
		}
		c.Proto = proto(lastItem(h.Values("X-Forwarded-Proto")))
		return c
	}
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		elems, ok := parseForwarded(fwd)
		if !ok {
			return c
		}
		if a, ok := p.rightmost(elems, nil); ok {
			c.Addr, c.Forwarded = a.addr, true
			c.Proto = proto(a.proto)
		}
		return c
	}
	c.Proto = proto(lastItem(h.Values("X-Forwarded-Proto")))
	return c
}

// hop is one entry of a forwarding chain.
type hop struct {
	raw   string // the X-Forwarded-For entry, before parsing
	addr  netip.Addr
	proto string
	ok    bool // addr was read: not unknown, obfuscated or malformed
}

// rightmost walks the chain from the right and returns the first hop that
// is not a trusted proxy, or the left-most hop when all are. It fails on a
// hop it cannot read before it finds one.
func (p *Proxies) rightmost(chain []hop, parse func(string) (netip.Addr, bool)) (hop, bool) {
	if len(chain) == 0 {
		return hop{}, false
	}
	for i := len(chain) - 1; i >= 0; i-- {
		h := chain[i]
		if parse != nil {
			h.addr, h.ok = parse(h.raw)
		}
		if !h.ok {
			return hop{}, false
		}
		if !p.Trusted(h.addr) || i == 0 {
			return h, true
		}
	}
	return hop{}, false
}

// splitList splits header lines into their comma-separated items, trimmed;
// empty items are kept so that they fail as malformed.
func splitList(lines []string) []hop {
	var out []hop
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		for item := range strings.SplitSeq(l, ",") {
			out = append(out, hop{raw: strings.TrimSpace(item)})
		}
	}
	return out
}

// lastItem is the last comma-separated item of the header lines, trimmed.
func lastItem(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	l := lines[len(lines)-1]
	if i := strings.LastIndexByte(l, ','); i >= 0 {
		l = l[i+1:]
	}
	return strings.TrimSpace(l)
}

// proto normalises a forwarded scheme: "http" or "https" (ws and wss are
// taken as their HTTP counterparts), "" for anything else.
func proto(s string) string {
	switch strings.ToLower(s) {
	case "http", "ws":
		return "http"
	case "https", "wss":
		return "https"
	}
	return ""
}

// parseXFF reads an X-Forwarded-For entry: an address, possibly with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711"), as some proxies write.
func parseXFF(s string) (netip.Addr, bool) {
	return parseNode(s)
}

// parseNode reads an address with an optional port and brackets around an
// IPv6 address. A zone is refused.
func parseNode(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return valid(a)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return valid(ap.Addr())
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return valid(a)
		}
	}
	return netip.Addr{}, false
}

func valid(a netip.Addr) (netip.Addr, bool) {
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
