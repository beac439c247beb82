package edge

import (
	"bufio"
	"net"
	"net/http"
	"time"
)

// HandshakeObserver is told of every upgrade request once it is answered,
// for access logs.
type HandshakeObserver interface {
	// HandshakeDone reports the upgrade request r, whose handling began at
	// start, answered with status: 101 for an accepted handshake, reported
	// before the client can see the 101 (so before any message of the
	// connection), or the status it was refused with (0 when the socket
	// failed before any answer). reason says why a handshake was refused,
	// for logs: a RejectError's Reason (its Message when it has none), or
	// the server's own reason; it holds no value of the request. c is the
	// connection Connect saw, with the Session it set; nil when the request
	// was refused before a connection was made (wrong path, not an
	// upgrade, server full or shutting down).
	// HandshakeDone is called on the request's goroutine, once per request,
	// and must not block.
	HandshakeDone(r *http.Request, c *Conn, status int, reason string, start time.Time)
}

// handshakeWriter is the ResponseWriter of an upgrade request while a
// HandshakeObserver is set: it records the connection and the status
// answered, and reports them once.
type handshakeWriter struct {
	http.ResponseWriter
	start    time.Time
	conn     *Conn
	status   int
	reason   string
	reported bool
}

func (w *handshakeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *handshakeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *handshakeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observeHandshake wraps w to report the handshake of r when the server has
// a HandshakeObserver; the returned function reports it, if nothing did
// before, with the status answered.
func (s *Server) observeHandshake(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	if s.cfg.Handshakes == nil {
		return w, func() {}
	}
	hw := &handshakeWriter{ResponseWriter: w, start: time.Now()}
	return hw, func() { s.handshakeDone(hw, r, hw.status) }
}

// handshakeConn records c as the connection of the handshake w answers.
func handshakeConn(w http.ResponseWriter, c *Conn) {
	if hw, ok := w.(*handshakeWriter); ok {
		hw.conn = c
	}
}

// handshakeDone reports the handshake w answers with status, once.
func (s *Server) handshakeDone(w http.ResponseWriter, r *http.Request, status int) {
	hw, ok := w.(*handshakeWriter)
	if !ok || hw.reported {
		return
	}
	hw.reported = true
	s.cfg.Handshakes.HandshakeDone(r, hw.conn, status, hw.reason, hw.start)
}
