package forwarded

import (
	"net/http"
	"net/netip"
	"testing"
)

func proxies(cidrs ...string) *Proxies {
	var ps []netip.Prefix
	for _, c := range cidrs {
		ps = append(ps, netip.MustParsePrefix(c))
	}
	return New(ps)
}

func TestResolve(t *testing.T) {
	lb := proxies("10.0.0.0/8", "2001:db8:1::/48")
	const trusted, untrusted = "10.0.0.2", "198.51.100.9"
	tests := []struct {
		name      string
		peer      string
		header    http.Header
		addr      string
		proto     string
		forwarded bool
	}{
		{"no headers", trusted, nil, trusted, "", false},
		{"untrusted peer: X-Forwarded-For ignored", untrusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}}, untrusted, "", false},
		{"untrusted peer: Forwarded ignored", untrusted,
			http.Header{"Forwarded": {"for=203.0.113.5;proto=https"}}, untrusted, "", false},
		{"one proxy", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}}, "203.0.113.5", "https", true},
		{"client-sent entries left of the client are skipped", trusted,
			http.Header{"X-Forwarded-For": {"1.2.3.4, 203.0.113.5"}}, "203.0.113.5", "", true},
		{"a spoofed trusted address left of the client changes nothing", trusted,
			http.Header{"X-Forwarded-For": {"10.9.9.9, 203.0.113.5"}}, "203.0.113.5", "", true},
		{"chain of trusted proxies", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5, 10.1.1.1", "10.2.2.2"}}, "203.0.113.5", "", true},
		{"all trusted: the left-most", trusted,
			http.Header{"X-Forwarded-For": {"10.3.3.3, 10.1.1.1"}}, "10.3.3.3", "", true},
		{"entries with ports", trusted,
			http.Header{"X-Forwarded-For": {"[2001:db8::7]:4711, 203.0.113.5:1234"}}, "203.0.113.5", "", true},
		{"IPv6 client, IPv6 proxy", "2001:db8:1::1",
			http.Header{"X-Forwarded-For": {"2001:db8:2::9"}}, "2001:db8:2::9", "", true},
		{"IPv4-mapped peer and entry", "::ffff:10.0.0.2",
			http.Header{"X-Forwarded-For": {"::ffff:203.0.113.5"}}, "203.0.113.5", "", true},
		{"malformed right-most entry: the peer", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5, not-an-ip"}}, trusted, "", false},
		{"malformed entry behind a trusted hop: the peer", trusted,
			http.Header{"X-Forwarded-For": {"junk, 10.1.1.1"}}, trusted, "", false},
		{"malformed entry left of the client is not read", trusted,
			http.Header{"X-Forwarded-For": {"junk, 203.0.113.5"}}, "203.0.113.5", "", true},
		{"empty item: the peer", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5,"}}, trusted, "", false},
		{"empty header: the peer", trusted,
			http.Header{"X-Forwarded-For": {""}}, trusted, "", false},
		{"zone refused", trusted,
			http.Header{"X-Forwarded-For": {"fe80::1%eth0"}}, trusted, "", false},
		{"proto of the last X-Forwarded-Proto item", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"http, HTTPS"}}, "203.0.113.5", "https", true},
		{"proto wss is https", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"wss"}}, "203.0.113.5", "https", true},
		{"unknown proto ignored", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"gopher"}}, "203.0.113.5", "", true},
		{"X-Forwarded-Proto alone", trusted,
			http.Header{"X-Forwarded-Proto": {"https"}}, trusted, "https", false},
		{"X-Forwarded-For wins over Forwarded", trusted,
			http.Header{"X-Forwarded-For": {"203.0.113.5"}, "Forwarded": {"for=192.0.2.1"}}, "203.0.113.5", "", true},

		{"Forwarded", trusted,
			http.Header{"Forwarded": {"for=203.0.113.5;proto=https;by=10.0.0.2"}}, "203.0.113.5", "https", true},
		{"Forwarded chain, case-insensitive names", trusted,
			http.Header{"Forwarded": {`For=192.0.2.1, for=203.0.113.5;Proto=http`, `for="[2001:db8:1::5]:8080"`}}, "203.0.113.5", "http", true},
		{"Forwarded quoted IPv6 client with port", trusted,
			http.Header{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}}, "2001:db8:cafe::17", "", true},
		{"Forwarded IPv4 with port", trusted,
			http.Header{"Forwarded": {`for="203.0.113.5:4711"`}}, "203.0.113.5", "", true},
		{"Forwarded quoted comma inside a value", trusted,
			http.Header{"Forwarded": {`for=203.0.113.5;host="a,b"`}}, "203.0.113.5", "", true},
		{"Forwarded unknown client: the peer", trusted,
			http.Header{"Forwarded": {"for=unknown"}}, trusted, "", false},
		{"Forwarded obfuscated client: the peer", trusted,
			http.Header{"Forwarded": {"for=_hidden, for=10.1.1.1"}}, trusted, "", false},
		{"Forwarded obfuscated left of the client is fine", trusted,
			http.Header{"Forwarded": {"for=_hidden, for=203.0.113.5"}}, "203.0.113.5", "", true},
		{"Forwarded unquoted IPv6: malformed", trusted,
			http.Header{"Forwarded": {"for=2001:db8::1"}}, trusted, "", false},
		{"Forwarded without for: malformed", trusted,
			http.Header{"Forwarded": {"proto=https"}}, trusted, "", false},
		{"Forwarded duplicate parameter: malformed", trusted,
			http.Header{"Forwarded": {"for=203.0.113.5;for=192.0.2.1"}}, trusted, "", false},
		{"Forwarded unterminated quote: malformed", trusted,
			http.Header{"Forwarded": {`for="203.0.113.5`}}, trusted, "", false},
		{"Forwarded bad port: malformed", trusted,
			http.Header{"Forwarded": {`for="203.0.113.5:99999"`}}, trusted, "", false},
		{"Forwarded empty pair: malformed", trusted,
			http.Header{"Forwarded": {"for=203.0.113.5;;proto=https"}}, trusted, "", false},
		{"Forwarded malformed anywhere is malformed", trusted,
			http.Header{"Forwarded": {"for=@@@, for=203.0.113.5"}}, trusted, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lb.Resolve(netip.MustParseAddr(tt.peer), tt.header)
			want := Client{Addr: netip.MustParseAddr(tt.addr).Unmap(), Proto: tt.proto, Forwarded: tt.forwarded}
			if got != want {
				t.Errorf("Resolve(%s, %v) = %+v; want %+v", tt.peer, tt.header, got, want)
			}
		})
	}
}

func TestNobodyTrusted(t *testing.T) {
	h := http.Header{"X-Forwarded-For": {"203.0.113.5"}, "X-Forwarded-Proto": {"https"}}
	peer := netip.MustParseAddr("10.0.0.2")
	for _, p := range []*Proxies{nil, {}, New(nil)} {
		if got := p.Resolve(peer, h); got != (Client{Addr: peer}) {
			t.Errorf("%+v.Resolve = %+v; want the peer", p, got)
		}
		if !p.Empty() {
			t.Errorf("%+v not Empty", p)
		}
	}
	if got := proxies("10.0.0.0/8").Resolve(netip.Addr{}, h); got != (Client{}) {
		t.Errorf("invalid peer: %+v", got)
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"203.0.113.5", "for=203.0.113.5;proto=https", `for="[2001:db8::1]:80"`, "a, b,, c", `for="\"`, "for=_x"} {
		f.Add(s, s)
	}
	lb := proxies("10.0.0.0/8")
	peer := netip.MustParseAddr("10.0.0.2")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		for _, h := range []http.Header{{"X-Forwarded-For": {xff}}, {"Forwarded": {fwd}}} {
			c := lb.Resolve(peer, h)
			if !c.Addr.IsValid() {
				t.Fatalf("Resolve(%q) gave no address", h)
			}
			if !c.Forwarded && c.Addr != peer {
				t.Fatalf("Resolve(%q) = %v without Forwarded", h, c)
			}
			if c.Proto != "" && c.Proto != "http" && c.Proto != "https" {
				t.Fatalf("proto %q", c.Proto)
			}
		}
	})
}
