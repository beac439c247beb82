package forwarded

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// maxProxyHeader bounds the PROXY protocol header wsgate reads: version 1
// headers are at most 107 bytes, version 2 headers 16 bytes plus their
// addresses and TLVs (a load balancer's few extensions). A longer header is
// refused.
const maxProxyHeader = 1024

// ProxyListener accepts connections that start with a PROXY protocol header
// (version 1 or 2, github.com/pires/go-proxyproto parses it) from trusted
// proxies. A connection from any other peer is closed as it is accepted,
// without reading from it. Of a trusted peer's connection, the header is read
// by the first call to Read, RemoteAddr or LocalAddr — in the goroutine that
// serves the connection, never in Accept — within the header timeout; a
// missing, malformed or late header closes the connection, and its Read then
// fails. The header's source address is the connection's RemoteAddr; a
// LOCAL header (a proxy's health check) or one for an unspecified transport
// leaves the socket's peer.
type ProxyListener struct {
	net.Listener
	proxies *Proxies
	timeout time.Duration
	log     *slog.Logger
}

// NewProxyListener wraps ln. timeout bounds the wait for the header.
func NewProxyListener(ln net.Listener, proxies *Proxies, timeout time.Duration, log *slog.Logger) *ProxyListener {
	return &ProxyListener{Listener: ln, proxies: proxies, timeout: timeout, log: log}
}

// Accept returns the next connection from a trusted proxy, closing those
// from other peers.
func (l *ProxyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := addrOf(c.RemoteAddr())
		if !l.proxies.Trusted(peer) {
			l.log.Debug("connection closed: PROXY protocol is accepted only from trusted_proxies", "peer", peer.String())
			_ = c.Close()
			continue
		}
		return &ProxyConn{Conn: c, l: l}, nil
	}
}

// ProxyConn is a connection accepted by a ProxyListener.
type ProxyConn struct {
	net.Conn
	l *ProxyListener

	once   sync.Once
	err    error
	br     *bufio.Reader
	remote net.Addr
	local  net.Addr

	// deadlineMu guards readDeadline, the read deadline set by the
	// connection's user, restored once the header is read.
	deadlineMu   sync.Mutex
	readDeadline time.Time
}

// ErrProxyHeader is the error of a connection whose PROXY protocol header
// was missing, malformed or late.
var ErrProxyHeader = errors.New("invalid PROXY protocol header")

func (c *ProxyConn) readHeader() {
	c.once.Do(func() {
		c.remote, c.local = c.Conn.RemoteAddr(), c.Conn.LocalAddr()
		if c.l.timeout > 0 {
			_ = c.Conn.SetReadDeadline(time.Now().Add(c.l.timeout))
		}
		c.br = bufio.NewReaderSize(c.Conn, maxProxyHeader)
		h, err := proxyproto.Read(c.br)
		if err == nil && !h.Command.IsLocal() && !h.Command.IsProxy() {
			err = proxyproto.ErrUnsupportedProtocolVersionAndCommand
		}
		if err != nil {
			c.l.log.Debug("connection closed: invalid PROXY protocol header", "peer", c.remote.String(), "err", err)
			c.err = fmt.Errorf("%w: %v", ErrProxyHeader, err)
			c.br = nil
			_ = c.Conn.Close()
			return
		}
		if h.Command.IsProxy() {
			if src, dst, ok := h.TCPAddrs(); ok {
				c.remote, c.local = src, dst
			}
		}
		c.deadlineMu.Lock()
		_ = c.Conn.SetReadDeadline(c.readDeadline)
		c.deadlineMu.Unlock()
	})
}

// Read reads what follows the header.
func (c *ProxyConn) Read(p []byte) (int, error) {
	c.readHeader()
	if c.err != nil {
		return 0, c.err
	}
	if c.br != nil && c.br.Buffered() > 0 {
		// Only what is buffered: the reader never reads the socket again.
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client's address from the header, or the socket's peer.
func (c *ProxyConn) RemoteAddr() net.Addr {
	c.readHeader()
	return c.remote
}

// LocalAddr is the destination address from the header, or the socket's.
func (c *ProxyConn) LocalAddr() net.Addr {
	c.readHeader()
	return c.local
}

// SetDeadline sets the socket's deadlines.
func (c *ProxyConn) SetDeadline(t time.Time) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.readDeadline = t
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline sets the socket's read deadline.
func (c *ProxyConn) SetReadDeadline(t time.Time) error {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.readDeadline = t
	return c.Conn.SetReadDeadline(t)
}

// Detach returns the socket beneath and the bytes read past the header that
// Read has not returned yet, which come before anything the socket still
// holds. The ProxyConn must not be used afterwards.
func (c *ProxyConn) Detach() (net.Conn, []byte) {
	var rest []byte
	if c.br != nil && c.br.Buffered() > 0 {
		b, _ := c.br.Peek(c.br.Buffered())
		rest = append([]byte(nil), b...)
	}
	c.br = nil
	return c.Conn, rest
}

// addrOf is the IP address of a, invalid when it has none.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
