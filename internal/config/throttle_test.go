package config

import (
	"net/netip"
	"testing"
)

func TestValidateThrottlingAndProxies(t *testing.T) {
	const mock = "{integration: {type: mock}"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"stage throttling", "throttling: {rate: 10, burst: 20}", nil},
		{"stage rate without burst", "throttling: {rate: 10}",
			[]string{`wsgate.yaml:1: throttling.burst: must be at least 1 when rate is set`}},
		{"negative stage rate", "throttling:\n  rate: -1\n  burst: 1",
			[]string{`wsgate.yaml:2: throttling.rate: must not be negative (0 means unlimited)`}},
		{"route throttling", "routes:\n  $connect: " + mock + ", throttling: {rate: 1, burst: 1}}\n  $default: " + mock + ", throttling: {rate: 0.5, burst: 3}}", nil},
		{"route burst missing", "routes:\n  $default: " + mock + ",\n    throttling: {rate: 2}}",
			[]string{`wsgate.yaml:3: routes.$default.throttling.burst: must be at least 1 when rate is set`}},
		{"throttling on $disconnect", "routes:\n  $disconnect: " + mock + ",\n    throttling: {rate: 2, burst: 2}}",
			[]string{`wsgate.yaml:3: routes.$disconnect.throttling: not supported on $disconnect; only client requests are throttled`}},
		{"trusted proxies", `trusted_proxies: ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1"]`, nil},
		{"bad trusted proxy", "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n  - proxy.example.com",
			[]string{
				`wsgate.yaml:3: trusted_proxies[1]: "10.0.0.0/33" is not a CIDR such as "10.0.0.0/8" or an address`,
				`wsgate.yaml:4: trusted_proxies[2]: "proxy.example.com" is not a CIDR such as "10.0.0.0/8" or an address`,
			}},
		{"proxy protocol with trusted proxies", "trusted_proxies: [10.0.0.1]\nproxy_protocol: true", nil},
		{"proxy protocol alone", "proxy_protocol: true",
			[]string{`wsgate.yaml:1: proxy_protocol: needs trusted_proxies: the PROXY protocol header is accepted only from them`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.in, tt.want...) })
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.0.2.7", "192.0.2.7/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"fe80::1%eth0", ""},
		{"10.0.0.0/", ""},
		{"", ""},
		{"example.com", ""},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParsePrefix(%q) = %v; want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != netip.MustParsePrefix(tt.want) {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
