package gateway

import (
	"net"

	"github.com/wsgate/wsgate/internal/forwarded"
)

// clientListener is ln, wrapped to read a PROXY protocol header from every
// connection when proxy_protocol is set.
func (g *Gateway) clientListener(ln net.Listener) net.Listener {
	if !g.cfg.ProxyProtocol {
		return ln
	}
	return forwarded.NewProxyListener(ln, g.proxies.Load(), g.cfg.Limits.HandshakeTimeout, g.log.With("component", "edge"))
}
