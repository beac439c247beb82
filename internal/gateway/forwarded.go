package gateway

import (
	"net/http"
	"net/netip"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/forwarded"
)

// newProxies is the set of trusted proxies of cfg (trusted_proxies, already
// validated).
func newProxies(cfg *config.Config) *forwarded.Proxies {
	var ps []netip.Prefix
	for _, s := range cfg.TrustedProxies {
		if p, err := config.ParsePrefix(s); err == nil {
			ps = append(ps, p)
		}
	}
	return forwarded.New(ps)
}

// clientOf returns the socket peer's address of upgrade request r ("" when
// it has none) and the scheme the client used: the one a trusted proxy
// reported, else the listener's, "https" with TLS and "http" without.
func (g *Gateway) clientOf(r *http.Request) (peer, scheme string) {
	scheme = proto(r)
	addr, ok := edge.PeerAddr(r)
	if !ok {
		return "", scheme
	}
	if c := g.proxies.Load().Resolve(addr, r.Header); c.Proto != "" {
		scheme = c.Proto
	}
	return addr.String(), scheme
}
