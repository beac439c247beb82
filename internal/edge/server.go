package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// Limits bound what one connection may do. The zero value of a field means
// no limit, except where noted.
type Limits struct {
	MaxFrameBytes         int           // largest incoming frame payload; larger closes with 1009
	MaxMessageBytes       int           // largest incoming message; larger closes with 1009
	IdleTimeout           time.Duration // no data frame in either direction for this long closes with 1001
	MaxConnectionDuration time.Duration // connections older than this close with 1001
	PingInterval          time.Duration // keepalive ping period; a peer silent for two periods is dropped
	OutboundQueueBytes    int           // bytes queued to a client beyond which it is closed with 1008
	HandshakeTimeout      time.Duration // time allowed for the upgrade request headers
	MaxConnections        int           // further upgrades get 503
	MaxInflightMessages   int           // received messages waiting for the handler; more closes with 1013 (default 64)
	CloseTimeout          time.Duration // wait for the peer's close reply before dropping the socket (default 3s)
}

// Config configures a Server.
type Config struct {
	// Path is where clients upgrade, "/" or "/{stage}".
	Path string
	// BinaryBase64 delivers binary messages to the handler instead of
	// closing with 1003.
	BinaryBase64 bool
	Limits       Limits
}

// RejectError refuses a handshake with an HTTP status. Message is sent as
// the JSON body {"message": Message}.
type RejectError struct {
	Status  int
	Message string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("handshake rejected with %d: %s", e.Status, e.Message)
}

// Handler is the gateway's logic at each stage of a connection.
type Handler interface {
	// Connect runs before the upgrade completes. It returns the
	// Sec-WebSocket-Protocol to answer with ("" for none), or an error: a
	// *RejectError answers with its status, any other error with 502.
	// Connect may set c.Session.
	Connect(ctx context.Context, c *Conn, r *http.Request) (subprotocol string, err error)
	// Message handles one complete client message. Calls for one connection
	// are sequential and in arrival order.
	Message(ctx context.Context, c *Conn, data []byte, binary bool)
	// Disconnect runs once for every connection whose Connect succeeded,
	// after the socket has closed, with the close code and reason.
	Disconnect(ctx context.Context, c *Conn, code int, reason string)
}

// Server owns the client listener, the event loop and every connection.
type Server struct {
	cfg    Config
	h      Handler
	hub    *hub.Hub
	log    *slog.Logger
	engine *nbio.Engine
	http   *http.Server

	baseCtx    context.Context
	cancelBase context.CancelFunc

	conns    atomic.Int64 // established connections, for MaxConnections
	shutdown atomic.Bool

	// wg tracks every goroutine the server starts after Start: message
	// workers, disconnect handlers and the sweeper.
	wg       sync.WaitGroup
	stopOnce sync.Once
	stop     chan struct{}
}

// New returns a Server that registers established connections in h. Start
// must be called before Serve.
func New(cfg Config, handler Handler, connHub *hub.Hub, logger *slog.Logger) *Server {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Limits.MaxInflightMessages <= 0 {
		cfg.Limits.MaxInflightMessages = 64
	}
	if cfg.Limits.CloseTimeout <= 0 {
		cfg.Limits.CloseTimeout = 3 * time.Second
	}
	s := &Server{
		cfg:  cfg,
		h:    handler,
		hub:  connHub,
		log:  logger.With("component", "edge"),
		stop: make(chan struct{}),
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	routeNbioLogs(s.log)
	maxWrite := 0
	if cfg.Limits.OutboundQueueBytes > 0 {
		// nbio drops a connection whose unsent bytes exceed this; the
		// server's own accounting closes slow consumers well before.
		maxWrite = 2*cfg.Limits.OutboundQueueBytes + 1<<20
	}
	s.engine = nbio.NewEngine(nbio.Config{
		Name:               "wsgate",
		NPoller:            runtime.NumCPU(),
		ReadBufferSize:     64 << 10,
		MaxWriteBufferSize: maxWrite,
	})
	s.engine.OnData(s.onData)
	s.engine.OnClose(s.onClose)
	s.engine.OnWrittenSize(s.onWritten)
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.Limits.HandshakeTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s
}

// Start starts the event loop and the sweeper.
func (s *Server) Start() error {
	if err := s.engine.Start(); err != nil {
		return fmt.Errorf("start event loop: %w", err)
	}
	s.wg.Add(1)
	go s.sweep()
	return nil
}

// Serve accepts clients on ln until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Len returns the number of established connections.
func (s *Server) Len() int { return int(s.conns.Load()) }

// Shutdown stops accepting, closes every connection with 1001, waits for
// their Disconnect calls and for in-flight messages, and stops the event
// loop. It returns ctx's error if that takes longer than ctx allows; the
// server is stopped either way. Shutdown is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() { err = s.doShutdown(ctx) })
	return err
}

func (s *Server) doShutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	// 1. Stop accepting; pending handshakes finish (or are refused).
	errHTTP := s.http.Shutdown(ctx)
	if errHTTP != nil {
		_ = s.http.Close()
	}
	// 2. Close frames to every live socket.
	s.hub.Range(func(hc hub.Conn) bool {
		if c, ok := hc.(*Conn); ok && c.srv == s {
			c.Close(wsproto.CloseGoingAway, "Going away")
		}
		return true
	})
	// 3. Wait for the sockets to close, then drop the stragglers.
	waitDone := func(d time.Duration) bool {
		deadline := time.NewTimer(d)
		defer deadline.Stop()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for s.conns.Load() > 0 {
			select {
			case <-ctx.Done():
				return false
			case <-deadline.C:
				return false
			case <-tick.C:
			}
		}
		return true
	}
	if !waitDone(s.cfg.Limits.CloseTimeout) {
		s.hub.Range(func(hc hub.Conn) bool {
			if c, ok := hc.(*Conn); ok && c.srv == s {
				c.drop(wsproto.CloseGoingAway, "Going away")
			}
			return true
		})
		waitDone(time.Second)
	}
	close(s.stop)
	// 4. Disconnect events and in-flight messages.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: %d connections and their events still draining: %w", s.conns.Load(), ctx.Err())
		s.cancelBase()
		<-done
	}
	s.cancelBase()
	s.engine.Stop()
	return errors.Join(errHTTP, err)
}

// ServeHTTP performs the WebSocket upgrade at the configured path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.cfg.Path && !(s.cfg.Path != "/" && r.URL.Path == s.cfg.Path+"/") {
		writeReject(w, http.StatusNotFound, "Not Found")
		return
	}
	if status, err := wsproto.CheckUpgrade(r); err != nil {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		writeReject(w, status, err.Error())
		return
	}
	if s.shutdown.Load() {
		writeReject(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	if max := s.cfg.Limits.MaxConnections; max > 0 && s.conns.Load() >= int64(max) {
		writeReject(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	c := s.newConn(r)
	sub, err := s.h.Connect(r.Context(), c, r)
	if err != nil {
		var rej *RejectError
		if errors.As(err, &rej) {
			writeReject(w, rej.Status, rej.Message)
			return
		}
		s.log.Warn("connect failed", "connectionId", c.id, "err", err)
		writeReject(w, http.StatusBadGateway, "Bad Gateway")
		return
	}
	if s.shutdown.Load() {
		s.log.Info("connect refused during shutdown", "connectionId", c.id)
		s.disconnectLater(c, wsproto.CloseGoingAway, "Going away")
		writeReject(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	if err := s.upgrade(w, r, c, sub); err != nil {
		s.log.Debug("upgrade failed", "connectionId", c.id, "err", err)
		s.disconnectLater(c, wsproto.CloseAbnormal, "")
	}
}

func (s *Server) newConn(r *http.Request) *Conn {
	now := time.Now()
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ip = host
	}
	c := &Conn{
		id:          awsevent.NewID(),
		srv:         s,
		connectedAt: now,
		sourceIP:    ip,
		userAgent:   r.UserAgent(),
	}
	c.lastActive.Store(now.UnixNano())
	c.lastRead.Store(now.UnixNano())
	c.lastPing.Store(now.UnixNano())
	return c
}

// upgrade writes the 101 response and moves the socket to the event loop.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, c *Conn, sub string) error {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return errors.New("response writer cannot be hijacked")
	}
	netConn, brw, err := hj.Hijack()
	if err != nil {
		return fmt.Errorf("hijack: %w", err)
	}
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(wsproto.AcceptKey(r.Header.Get("Sec-WebSocket-Key")))
	b.WriteString("\r\n")
	if sub != "" {
		b.WriteString("Sec-WebSocket-Protocol: ")
		b.WriteString(sub)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	// The client may act on the 101 at once, for instance by asking its
	// backend to post to the connection. The connection is counted and in
	// the hub before the 101 is written, and c.mu is held until it is open,
	// so a Send or Close that races with the handshake waits for it instead
	// of finding the connection closed.
	c.mu.Lock()
	s.conns.Add(1)
	s.hub.Add(c)
	_ = netConn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := netConn.Write([]byte(b.String())); err != nil {
		c.state = stateClosed
		c.mu.Unlock()
		s.hub.Remove(c)
		s.conns.Add(-1)
		_ = netConn.Close()
		return fmt.Errorf("write 101: %w", err)
	}
	_ = netConn.SetDeadline(time.Time{})
	buffered := pending(brw.Reader)
	nc, err := nbio.NBConn(netConn)
	if err != nil {
		c.state = stateClosed
		c.mu.Unlock()
		s.hub.Remove(c)
		s.conns.Add(-1)
		_ = netConn.Close()
		return fmt.Errorf("move socket to event loop: %w", err)
	}
	c.nc = nc
	c.parser = wsproto.NewParser(wsproto.Limits{
		MaxFrameBytes:   s.cfg.Limits.MaxFrameBytes,
		MaxMessageBytes: s.cfg.Limits.MaxMessageBytes,
		RejectBinary:    !s.cfg.BinaryBase64,
	})
	nc.SetSession(c)
	c.state = stateOpen
	if _, err := s.engine.AddConn(nc); err != nil {
		// AddConn closed the socket; onClose reports the disconnect.
		c.mu.Unlock()
		return nil
	}
	if len(buffered) > 0 {
		c.feedLocked(buffered)
	}
	c.mu.Unlock()
	s.log.Info("connection opened", "connectionId", c.id, "sourceIp", c.sourceIP)
	return nil
}

// pending returns the bytes the HTTP server had read past the handshake.
func pending(r *bufio.Reader) []byte {
	n := r.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := r.Peek(n)
	return append([]byte(nil), b...)
}

func (s *Server) disconnectLater(c *Conn, code int, reason string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.h.Disconnect(s.baseCtx, c, code, reason)
	}()
}

func writeReject(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) onData(nc *nbio.Conn, data []byte) {
	c, ok := nc.Session().(*Conn)
	if !ok {
		_ = nc.Close()
		return
	}
	c.mu.Lock()
	c.feedLocked(data)
	c.mu.Unlock()
}

func (s *Server) onWritten(nc *nbio.Conn, _ []byte, n int) {
	if c, ok := nc.Session().(*Conn); ok {
		if c.queued.Add(-int64(n)) <= 0 && c.closeOnFlush.Load() {
			// Called with the socket's write lock held: close from
			// another goroutine.
			go func() { _ = nc.Close() }()
		}
	}
}

func (s *Server) onClose(nc *nbio.Conn, err error) {
	c, ok := nc.Session().(*Conn)
	if !ok {
		return
	}
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	code, reason := c.closeCode, c.closeReason
	if c.state == stateOpen || code == 0 {
		code, reason = wsproto.CloseAbnormal, ""
	}
	c.state = stateClosed
	c.mu.Unlock()
	s.hub.Remove(c)
	s.log.Info("connection closed", "connectionId", c.id, "code", code, "reason", reason)
	if err != nil {
		s.log.Debug("socket error", "connectionId", c.id, "err", err)
	}
	// Count the disconnect before the connection stops counting, so that
	// Shutdown, which waits for both, never sees neither.
	s.disconnectLater(c, code, reason)
	s.conns.Add(-1)
}

// sweep enforces timeouts and sends keepalive pings for every connection.
func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(s.sweepInterval())
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.hub.Range(func(hc hub.Conn) bool {
				if c, ok := hc.(*Conn); ok && c.srv == s {
					c.check(now)
				}
				return true
			})
		}
	}
}

func (s *Server) sweepInterval() time.Duration {
	d := time.Second
	l := s.cfg.Limits
	for _, v := range []time.Duration{l.IdleTimeout, l.MaxConnectionDuration, l.PingInterval, l.CloseTimeout} {
		if v > 0 && v/4 < d {
			d = v / 4
		}
	}
	if d < 5*time.Millisecond {
		d = 5 * time.Millisecond
	}
	return d
}
