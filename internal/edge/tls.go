package edge

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/lesismal/nbio"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// TLS connections. The handshake and the upgrade request are read by
// net/http's goroutine for the connection, on the blocking socket, through
// crypto/tls. At the upgrade the socket moves to the event loop like a plain
// one, and the connection's tls.Conn stays: it now reads the ciphertext the
// event loop received and writes to the event loop, so an idle TLS
// connection holds no goroutine either.
//
// crypto/tls keeps its state across a read that returns a temporary
// net.Error (it is how it survives read deadlines): the transport returns
// errWouldBlock when the event loop has handed over no more bytes, and the
// partial record waits inside the tls.Conn for the next ones. Post-handshake
// messages (TLS 1.3 key updates, whose answers go out through the same
// transport) and close_notify are crypto/tls's own handling.
//
// crypto/tls is used rather than nbio's non-blocking fork of it (llib's
// std/crypto/tls): that fork branches from an old crypto/tls and lacks the
// fixes made since, and its handshakes would run on the event loop's
// goroutines, delaying every other connection of the poller.

// errWouldBlock is what the transport of a moved tls.Conn returns when it
// holds no received bytes. It is temporary, so crypto/tls keeps its state.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "edge: no more bytes received" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// tlsListener wraps every accepted socket in a tlsSocket, the transport its
// tls.Conn keeps after the socket moves to the event loop.
type tlsListener struct{ net.Listener }

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsSocket{raw: c}, nil
}

// tlsSocket is the transport under a client's tls.Conn. Until moveTo it is
// the accepted socket. After it, it is used only with the owning Conn's mu
// held: Read returns the bytes the event loop handed to feedTLSLocked, and
// Write gathers what one tls.Conn call writes so that flush sends it in one
// write.
type tlsSocket struct {
	raw net.Conn // the accepted socket, until moveTo

	tc    *tls.Conn
	nc    *nbio.Conn
	owner *Conn
	in    []byte  // received, not yet read by tc; borrowed from the event loop during a feed
	out   *[]byte // written by tc, not yet flushed; nil when empty

	// used is set by every tc call since the sweeper last looked: a
	// connection that stays unused from one sweep to the next lets its
	// ciphers go (see releaseCiphers).
	used bool
}

// outPool holds the buffers a tlsSocket gathers records into.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// plainPool holds the buffers decrypted data is read into.
var plainPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// moveTo makes the event loop connection nc the transport of tc. The
// accepted socket, which nbio has duplicated and closed, is let go.
func (s *tlsSocket) moveTo(tc *tls.Conn, nc *nbio.Conn, owner *Conn) {
	s.tc, s.nc, s.owner = tc, nc, owner
	s.raw = nil
	releaseBuffers(tc)
	releasePeerCertificates(tc)
}

func (s *tlsSocket) Read(p []byte) (int, error) {
	if s.nc == nil {
		return s.raw.Read(p)
	}
	if len(s.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(p, s.in)
	s.in = s.in[n:]
	return n, nil
}

func (s *tlsSocket) Write(p []byte) (int, error) {
	if s.nc == nil {
		return s.raw.Write(p)
	}
	if s.out == nil {
		s.out = outPool.Get().(*[]byte)
	}
	*s.out = append(*s.out, p...)
	return len(p), nil
}

// use readies tc for a call: it derives again the ciphers an idle
// connection let go.
func (s *tlsSocket) use() error {
	s.used = true
	return restoreCiphers(s.tc)
}

// releaseIdle lets tc's ciphers go when tc was not used since the last
// call. The sweeper calls it, so a connection loses its ciphers after one
// to two sweep intervals of silence, and one that talks keeps them.
func (s *tlsSocket) releaseIdle() {
	if s.used {
		s.used = false
		return
	}
	releaseCiphers(s.tc)
}

// flush sends what tc wrote since the last flush.
func (s *tlsSocket) flush() {
	if s.out == nil {
		return
	}
	b := *s.out
	s.owner.queued.Add(int64(len(b)))
	if _, err := s.nc.Write(b); err != nil {
		// The event loop has closed the socket; onClose reports it.
		s.owner.queued.Add(-int64(len(b)))
	}
	// The event loop copies what the socket did not take.
	if cap(b) <= 256<<10 {
		*s.out = b[:0]
		outPool.Put(s.out)
	}
	s.out = nil
}

func (s *tlsSocket) Close() error {
	if s.nc != nil {
		return s.nc.Close()
	}
	return s.raw.Close()
}

func (s *tlsSocket) LocalAddr() net.Addr {
	if s.nc != nil {
		return s.nc.LocalAddr()
	}
	return s.raw.LocalAddr()
}

func (s *tlsSocket) RemoteAddr() net.Addr {
	if s.nc != nil {
		return s.nc.RemoteAddr()
	}
	return s.raw.RemoteAddr()
}

// The deadlines crypto/tls sets while sending close_notify concern the
// blocking socket only: event loop writes never block.
func (s *tlsSocket) SetDeadline(t time.Time) error {
	if s.nc != nil {
		return nil
	}
	return s.raw.SetDeadline(t)
}

func (s *tlsSocket) SetReadDeadline(t time.Time) error {
	if s.nc != nil {
		return nil
	}
	return s.raw.SetReadDeadline(t)
}

func (s *tlsSocket) SetWriteDeadline(t time.Time) error {
	if s.nc != nil {
		return nil
	}
	return s.raw.SetWriteDeadline(t)
}

// writeTLSLocked encrypts b and hands it to the event loop.
func (c *Conn) writeTLSLocked(b []byte) {
	if !c.useTLSLocked() {
		return
	}
	_, err := c.tls.tc.Write(b)
	c.tls.flush()
	if err != nil {
		c.srv.log.Debug("TLS write failed", "connectionId", c.id, "err", err)
		c.dropLocked(wsproto.CloseAbnormal, "")
	}
}

// feedTLSLocked decrypts data, received from the event loop (nil: only what
// the tls.Conn holds already), and parses the messages it carries.
func (c *Conn) feedTLSLocked(data []byte) {
	if !c.useTLSLocked() {
		return
	}
	s := c.tls
	s.in = data
	bp := plainPool.Get().(*[]byte)
	for c.state != stateClosed {
		n, err := s.tc.Read(*bp)
		if n > 0 {
			c.feedLocked((*bp)[:n])
		}
		if err == nil {
			continue
		}
		if err != errWouldBlock {
			// io.EOF is the client's close_notify. Anything else is a
			// record that failed to decrypt or an alert; crypto/tls has
			// sent the alert due.
			if err != io.EOF {
				c.srv.log.Debug("TLS read failed", "connectionId", c.id, "err", err)
			}
			s.flush()
			c.dropLocked(wsproto.CloseAbnormal, "")
		}
		break
	}
	plainPool.Put(bp)
	// What is left belongs to a closed connection; the buffer is the
	// event loop's.
	s.in = nil
	s.flush()
	releaseBuffers(s.tc)
}

// useTLSLocked readies the tls.Conn for a call. When it cannot (deriving
// a key failed, which crypto/hkdf and crypto/aes do not for the sizes
// asked), it drops the connection and reports false.
func (c *Conn) useTLSLocked() bool {
	if err := c.tls.use(); err != nil {
		c.srv.log.Warn("TLS keys not derived", "connectionId", c.id, "err", err)
		c.dropLocked(wsproto.CloseAbnormal, "")
		return false
	}
	return true
}

// closeNotifyLocked sends close_notify, the TLS end of the stream, before a
// graceful close of the socket.
func (c *Conn) closeNotifyLocked() {
	if c.tls == nil || !c.useTLSLocked() {
		return
	}
	if err := c.tls.tc.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
		c.srv.log.Debug("TLS close_notify failed", "connectionId", c.id, "err", err)
	}
	c.tls.flush()
}
