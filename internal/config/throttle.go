package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// throttling checks the throttling settings and the trusted proxies.
func (k *checker) throttling(c *Config) {
	k.rate("throttling", c.Throttling)
	for _, key := range slices.Sorted(maps.Keys(c.Routes)) {
		r := c.Routes[key].Throttling
		if r == (RateLimit{}) {
			continue
		}
		path := "routes." + key + ".throttling"
		if key == RouteDisconnect {
			k.add(path, "not supported on $disconnect; only client requests are throttled")
			continue
		}
		k.rate(path, r)
	}
	for i, p := range c.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			k.add(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		}
	}
	if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
		k.pair("proxy_protocol", "needs trusted_proxies: the PROXY protocol header is accepted only from them",
			"trusted_proxies", "must list the load balancers when proxy_protocol is true")
	}
}

// ParsePrefix parses a trusted_proxies entry: a CIDR ("10.0.0.0/8",
// "2001:db8::/32") or a single address, which stands for itself alone. An
// IPv4-mapped IPv6 address is taken as the IPv4 address.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as \"10.0.0.0/8\" or an address", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: a zone is not allowed", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as \"10.0.0.0/8\" or an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
