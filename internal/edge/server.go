package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"

	"github.com/wsgate/wsgate/internal/awsevent"
	"github.com/wsgate/wsgate/internal/forwarded"
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
	MaxInflightMessages   int           // received messages of one connection waiting for the handler; more closes with 1013 (default 64)
	CloseTimeout          time.Duration // wait for the peer's close reply before dropping the socket (default 3s)
	// DrainTimeout bounds how long replies to a client's messages may hold
	// back the answer to its close frame (default 2s).
	DrainTimeout time.Duration

	// InflightBudgetMessages and InflightBudgetBytes bound, for the whole
	// server, the messages accepted from clients whose Handler.Message
	// call has not returned, and their payload bytes. At either bound the
	// server stops reading from clients until a Message call returns (see
	// budget.go).
	InflightBudgetMessages int
	InflightBudgetBytes    int
}

// Config configures a Server.
type Config struct {
	// Path is where clients upgrade, "/" or "/{stage}".
	Path string
	// BinaryBase64 delivers binary messages to the handler instead of
	// closing with 1003. SetLimits changes it for new connections.
	BinaryBase64 bool
	// Limits are the limits the server starts with; SetLimits changes
	// them.
	Limits Limits
	// TLS, when set, serves wss://: Serve accepts TLS connections with it.
	TLS *tls.Config
	// Observer, when set, is told of handshakes, sent messages and slow
	// consumers, for metrics.
	Observer Observer
	// Handshakes, when set, is told of every upgrade request with its
	// connection and status once it is answered, for access logs.
	Handshakes HandshakeObserver
	// Proxies are the trusted proxies whose forwarding headers give a
	// connection's SourceIP (see package forwarded); nil trusts nobody.
	// SetProxies replaces them.
	Proxies *forwarded.Proxies
}

// Observer counts what the server does. Its methods are called on the
// handshake, send and event-loop paths: they must be cheap and must not
// block.
type Observer interface {
	// Handshake reports a handshake answered with status (101 when
	// accepted).
	Handshake(status int)
	// MessageSent reports a message queued to a client.
	MessageSent()
	// SlowConsumer reports a client closed because its outbound queue
	// exceeded OutboundQueueBytes.
	SlowConsumer()
}

// noObserver is the Observer of a server configured without one.
type noObserver struct{}

func (noObserver) Handshake(int) {}
func (noObserver) MessageSent()  {}
func (noObserver) SlowConsumer() {}

// RejectError refuses a handshake with an HTTP status. Message is sent as
// the JSON body {"message": Message}.
type RejectError struct {
	Status  int
	Message string
	// Header holds extra response headers, such as WWW-Authenticate.
	Header http.Header
	// Reason explains the refusal in the log; it is never sent.
	Reason string
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("handshake rejected with %d: %s", e.Status, e.Message)
}

// Handler is the gateway's logic at each stage of a connection.
type Handler interface {
	// Connect runs before the upgrade completes. It returns the
	// Sec-WebSocket-Protocol to answer with ("" for none), which must be one
	// the client offered (anything else answers 502, and Disconnect runs),
	// or an error: a *RejectError answers with its status, any other error
	// with 502.
	// Connect may set c.Session.
	Connect(ctx context.Context, c *Conn, r *http.Request) (subprotocol string, err error)
	// Message handles one complete client message. Calls for one connection
	// are sequential and in arrival order, and continue for the messages
	// accepted before the socket closed. Message must return in bounded
	// time (an integration's timeout): the in-flight budget waits for it.
	Message(ctx context.Context, c *Conn, data []byte, binary bool)
	// Disconnect runs once for every connection whose Connect succeeded,
	// after the socket has closed and the connection's last Message call
	// has returned, with the close code and reason.
	Disconnect(ctx context.Context, c *Conn, code int, reason string)
}

// Server owns the client listener, the event loop and every connection.
type Server struct {
	cfg Config
	// limits are the limits in force, which SetLimits replaces; cfg.Limits
	// keeps those the server started with, for what cannot change.
	limits atomic.Pointer[runtimeLimits]
	h      Handler
	hub    *hub.Hub
	log    *slog.Logger
	engine *nbio.Engine
	http   *http.Server

	baseCtx    context.Context
	cancelBase context.CancelFunc

	// conns counts connections toward MaxConnections: from the start of
	// the handshake until the socket has closed and every message the
	// connection sent has been handled.
	conns atomic.Int64
	// open counts the sockets the event loop holds.
	open     atomic.Int64
	shutdown atomic.Bool

	// upgrading tracks handshakes in progress: net/http's Shutdown stops
	// tracking a request once it is hijacked, so the server waits for them
	// itself before closing the connections it knows.
	upgrading sync.WaitGroup

	// wg tracks every goroutine the server starts after Start: message
	// workers, disconnect handlers and the sweeper.
	wg       sync.WaitGroup
	stopOnce sync.Once
	stop     chan struct{}
	// workers are the message workers waiting for a connection with
	// messages (workers.go).
	workers workerPool

	// flushers write what Send and SendMessage queue; one per CPU, started
	// by Start and stopped with the event loop.
	flushers    []*flusher
	inlineFlush int // outbox size at which a sender writes it itself

	// received and sent count the data messages taken from clients and
	// queued to them, since the server was made.
	received, sent atomic.Uint64

	// budget bounds the inbound work of all connections.
	budget budget
	// pauseLogged is when a pause of reading was last logged (unix ns).
	pauseLogged atomic.Int64
}

// New returns a Server that registers established connections in h. Start
// must be called before Serve.
func New(cfg Config, handler Handler, connHub *hub.Hub, logger *slog.Logger) *Server {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{
		cfg:  cfg,
		h:    handler,
		hub:  connHub,
		log:  logger.With("component", "edge"),
		stop: make(chan struct{}),
	}
	s.workers.handoff = make(chan *Conn)
	s.limits.Store(&runtimeLimits{Limits: cfg.Limits, binaryBase64: cfg.BinaryBase64, proxies: cfg.Proxies})
	s.budget.maxMessages = int64(cfg.Limits.InflightBudgetMessages)
	s.budget.maxBytes = int64(cfg.Limits.InflightBudgetBytes)
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.inlineFlush = inlineFlushBytes
	if q := cfg.Limits.OutboundQueueBytes; q > 0 && q < s.inlineFlush {
		s.inlineFlush = q
	}
	for range runtime.NumCPU() {
		s.flushers = append(s.flushers, newFlusher())
	}
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
		// Read a readable socket until it is empty. nbio closes a socket
		// whose peer has shut down its side (EPOLLRDHUP) right after the
		// reads of that event, so with its default of 3 reads, whatever a
		// client sent beyond 192 KiB before closing its socket was
		// discarded unread. A read shorter than the buffer ends the loop.
		MaxConnReadTimesPerEventLoop: math.MaxInt32,
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

// runtimeLimits are the settings SetLimits and SetProxies replace while
// the server runs.
type runtimeLimits struct {
	Limits
	binaryBase64 bool
	proxies      *forwarded.Proxies
}

// withDefaults returns l with the defaults of the fields whose zero value
// is not "no limit" filled in.
func (l Limits) withDefaults() Limits {
	if l.MaxInflightMessages <= 0 {
		l.MaxInflightMessages = 64
	}
	if l.CloseTimeout <= 0 {
		l.CloseTimeout = 3 * time.Second
	}
	if l.DrainTimeout <= 0 {
		l.DrainTimeout = 2 * time.Second
	}
	return l
}

// lim returns the limits in force.
func (s *Server) lim() *runtimeLimits { return s.limits.Load() }

// SetLimits replaces the limits and the treatment of binary frames while
// the server runs. Connections that open afterwards get the new frame and
// message sizes and binary treatment; every connection gets the new
// timeouts, keepalive period, in-flight bound and close timeouts at its
// next check, and MaxConnections applies to the next handshakes.
// HandshakeTimeout, OutboundQueueBytes and the in-flight budget are sized
// into the listener and the event loop when the server is made: SetLimits
// keeps the values the server started with, and callers refuse a change
// to them. It is safe to call concurrently with everything else.
func (s *Server) SetLimits(l Limits, binaryBase64 bool) {
	l = l.withDefaults()
	l.HandshakeTimeout = s.cfg.Limits.HandshakeTimeout
	l.OutboundQueueBytes = s.cfg.Limits.OutboundQueueBytes
	l.InflightBudgetMessages = s.cfg.Limits.InflightBudgetMessages
	l.InflightBudgetBytes = s.cfg.Limits.InflightBudgetBytes
	for {
		old := s.limits.Load()
		if s.limits.CompareAndSwap(old, &runtimeLimits{Limits: l, binaryBase64: binaryBase64, proxies: old.proxies}) {
			return
		}
	}
}

// SetProxies replaces the trusted proxies for the handshakes that start
// afterwards. It is safe to call concurrently with everything else.
func (s *Server) SetProxies(p *forwarded.Proxies) {
	for {
		old := s.limits.Load()
		next := *old
		next.proxies = p
		if s.limits.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Start starts the event loop and the sweeper.
func (s *Server) Start() error {
	if err := s.engine.Start(); err != nil {
		return fmt.Errorf("start event loop: %w", err)
	}
	if err := s.awaitPollers(); err != nil {
		// Stopping could hang on a poller that never started; the failure
		// is reported and the process is expected to exit.
		return fmt.Errorf("start event loop: %w", err)
	}
	s.wg.Add(1)
	go s.sweep()
	for _, f := range s.flushers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			f.run(s.stop)
		}()
	}
	return nil
}

// Serve accepts clients on ln until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(tlsListener{ln}, s.cfg.TLS)
	}
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Len returns the number of connections counted toward MaxConnections:
// handshakes in progress, open connections, and closed connections whose
// messages are still being handled.
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
	// 1. Stop accepting; handshakes in progress finish or are refused.
	errHTTP := s.http.Shutdown(ctx)
	if errHTTP != nil {
		_ = s.http.Close()
	}
	waitGroup(ctx, &s.upgrading)
	// 2. Close frames to every live socket. Then the readers waiting for
	// the in-flight budget read on, so that the event loop can see the
	// close handshakes through and stop; what they read now is no longer
	// accepted as messages.
	s.forEach(func(c *Conn) { c.Close(wsproto.CloseGoingAway, "Going away") })
	s.budget.stop()
	// 3. Wait for the sockets to close, then drop the stragglers.
	if !s.waitConns(ctx, s.lim().CloseTimeout) {
		s.forEach(func(c *Conn) { c.drop(wsproto.CloseGoingAway, "Going away") })
	}
	// 4. Stop the event loop. It closes whatever is left and has run every
	// close callback when it returns, so every Disconnect is under way.
	s.engine.Stop()
	close(s.stop)
	// 5. Disconnect events and in-flight messages.
	var err error
	if !waitGroup(ctx, &s.wg) {
		err = fmt.Errorf("shutdown: events still in flight were canceled: %w", ctx.Err())
		s.cancelBase()
		s.wg.Wait()
	}
	s.cancelBase()
	return errors.Join(errHTTP, err)
}

// forEach calls f for every connection of this server in the hub.
func (s *Server) forEach(f func(*Conn)) {
	s.hub.Range(func(hc hub.Conn) bool {
		if c, ok := hc.(*Conn); ok && c.srv == s {
			f(c)
		}
		return true
	})
}

// waitConns waits up to d, or until ctx is done, for every socket to
// close. It reports whether they all did.
func (s *Server) waitConns(ctx context.Context, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.open.Load() > 0 {
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

// waitGroup waits for wg or ctx, whichever comes first, and reports whether
// wg finished.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// ServeHTTP performs the WebSocket upgrade at the configured path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.upgrading.Add(1)
	defer s.upgrading.Done()
	w, reported := s.observeHandshake(w, r)
	defer reported()
	if r.URL.Path != s.cfg.Path && !(s.cfg.Path != "/" && r.URL.Path == s.cfg.Path+"/") {
		s.reject(w, http.StatusNotFound, "Not Found", "not the upgrade path")
		return
	}
	if status, err := wsproto.CheckUpgrade(r); err != nil {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		s.reject(w, status, err.Error(), err.Error())
		return
	}
	if s.shutdown.Load() {
		s.reject(w, http.StatusServiceUnavailable, "Service Unavailable", "shutting down")
		return
	}
	if !s.reserve() {
		s.reject(w, http.StatusServiceUnavailable, "Service Unavailable", "at limits.max_connections")
		return
	}
	// From here the connection counts; the event loop's close callback
	// releases it once the socket is handed over.
	handedOver := false
	defer func() {
		if !handedOver {
			s.conns.Add(-1)
		}
	}()
	c := s.newConn(r)
	handshakeConn(w, c)
	sub, err := s.h.Connect(r.Context(), c, r)
	if err != nil {
		var rej *RejectError
		if errors.As(err, &rej) {
			for k, v := range rej.Header {
				w.Header()[k] = v
			}
			why := rej.Reason
			if why == "" {
				why = rej.Message
			}
			s.reject(w, rej.Status, rej.Message, why)
			return
		}
		s.log.Warn("connect failed", "connectionId", c.id, "err", err)
		s.reject(w, http.StatusBadGateway, "Bad Gateway", err.Error())
		return
	}
	if sub != "" && !wsproto.Offered(wsproto.ParseSubprotocols(r.Header), sub) {
		// Not one the client offered: the client would fail the handshake,
		// and a value with CR or LF would add headers to the 101. The value
		// is not logged: clients put tokens in their offer.
		s.log.Warn("connect chose a subprotocol the client did not offer; refusing the handshake", "connectionId", c.id)
		s.disconnectLater(c, wsproto.CloseInternalError, "subprotocol not offered")
		s.reject(w, http.StatusBadGateway, "Bad Gateway", "connect chose a subprotocol the client did not offer")
		return
	}
	if s.shutdown.Load() {
		s.log.Info("connect refused during shutdown", "connectionId", c.id)
		s.disconnectLater(c, wsproto.CloseGoingAway, "Going away")
		s.reject(w, http.StatusServiceUnavailable, "Service Unavailable", "shutting down")
		return
	}
	handedOver, err = s.upgrade(w, r, c, sub)
	if err != nil {
		s.log.Debug("upgrade failed", "connectionId", c.id, "err", err)
		if !handedOver {
			s.disconnectLater(c, wsproto.CloseAbnormal, "")
		}
	}
}

// reserve counts a new connection unless MaxConnections is reached.
func (s *Server) reserve() bool {
	max := int64(s.lim().MaxConnections)
	if max <= 0 {
		s.conns.Add(1)
		return true
	}
	for {
		n := s.conns.Load()
		if n >= max {
			return false
		}
		if s.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *Server) newConn(r *http.Request) *Conn {
	now := time.Now()
	ip := clientIP(s.lim().proxies, r)
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

// clientIP is the address of r's client: the socket's peer, or what a
// trusted proxy's headers say.
func clientIP(p *forwarded.Proxies, r *http.Request) string {
	peer, ok := PeerAddr(r)
	if !ok {
		return r.RemoteAddr
	}
	return p.Resolve(peer, r.Header).Addr.String()
}

// PeerAddr is the address of r's socket peer (after a PROXY protocol
// header, the address the header gave).
func PeerAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// upgrade moves the socket to the event loop and answers 101. It reports
// whether the event loop took the socket over: from then on the loop's close
// callback accounts for the connection and reports its Disconnect.
//
// The connection enters the hub before the 101 is written, under c.mu, so a
// message posted as soon as the client sees the 101 finds it and is written
// after the 101.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, c *Conn, sub string) (bool, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false, errors.New("response writer cannot be hijacked")
	}
	netConn, brw, err := hj.Hijack()
	if err != nil {
		return false, fmt.Errorf("hijack: %w", err)
	}
	buffered := pending(brw.Reader)
	raw := netConn
	tc, isTLS := netConn.(*tls.Conn)
	var sock *tlsSocket
	if isTLS {
		if sock, ok = tc.NetConn().(*tlsSocket); !ok {
			_ = netConn.Close()
			return false, errors.New("TLS connection without its transport")
		}
		raw = sock.raw
	}
	// A listener wrapper gives up the socket beneath with the bytes it read
	// and did not return: plaintext for ws://, TLS records for wss://.
	var tlsRest []byte
	if d, ok := raw.(detacher); ok {
		var rest []byte
		raw, rest = d.Detach()
		if isTLS {
			tlsRest = rest
		} else {
			buffered = append(buffered, rest...)
		}
	}
	nc, err := nbio.NBConn(raw)
	if err != nil {
		_ = raw.Close()
		return false, fmt.Errorf("move socket to event loop: %w", err)
	}
	c.nc = nc
	l := s.lim()
	if sock != nil {
		sock.moveTo(tc, nc, c)
		c.tls = sock
	}
	c.parser = wsproto.NewParser(wsproto.Limits{
		MaxFrameBytes:   l.MaxFrameBytes,
		MaxMessageBytes: l.MaxMessageBytes,
		RejectBinary:    !l.binaryBase64,
	})
	nc.SetSession(c)

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

	c.mu.Lock()
	defer c.mu.Unlock()
	s.hub.Add(c)
	s.open.Add(1)
	if _, err := s.engine.AddConn(nc); err != nil {
		// The event loop closed the socket and runs the close callback.
		return true, fmt.Errorf("add to event loop: %w", err)
	}
	// Counted before the client can see the 101.
	s.cfg.Observer.Handshake(http.StatusSwitchingProtocols)
	s.handshakeDone(w, r, http.StatusSwitchingProtocols)
	c.writeLocked([]byte(b.String()))
	c.state = stateOpen
	if len(buffered) > 0 {
		c.feedLocked(buffered)
	}
	if c.tls != nil {
		// Records that arrived with the upgrade request wait in the
		// tls.Conn, or in the listener wrapper; the event loop will not
		// report them.
		c.feedTLSLocked(tlsRest)
		// Many connections stay idle long after the upgrade: their
		// ciphers are derived again when their next record comes or
		// goes, not kept until then.
		if c.state == stateOpen {
			releaseCiphers(c.tls.tc)
			c.tls.used = false
		}
	}
	// Asked first: the arguments of a call cost an allocation even when
	// the level is off, on every connect and close.
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("connection opened", "connectionId", c.id, "sourceIp", c.sourceIP)
	}
	return true, nil
}

// detacher is a connection that a listener wrapped, such as one that read a
// PROXY protocol header (forwarded.ProxyConn): it gives up the socket
// beneath for the event loop, with the bytes it read and did not return.
type detacher interface {
	Detach() (net.Conn, []byte)
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

// reject answers a handshake with status and the message msg, and reports
// it to the observers; reason, which is never sent, says why for the
// HandshakeObserver.
func (s *Server) reject(w http.ResponseWriter, status int, msg, reason string) {
	s.cfg.Observer.Handshake(status)
	if hw, ok := w.(*handshakeWriter); ok && hw.reason == "" {
		hw.reason = reason
	}
	writeReject(w, status, msg)
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
		if p, ok := nc.Session().(*pollerProbe); ok {
			select {
			case p.seen <- struct{}{}:
			default:
			}
			return
		}
		_ = nc.Close()
		return
	}
	// Wait, without c.mu, while the in-flight budget is full: the data
	// read so far waits with the poller, the rest in the kernel.
	s.budget.wait(s.logPause)
	c.mu.Lock()
	if c.tls != nil {
		c.feedTLSLocked(data)
	} else {
		c.feedLocked(data)
	}
	c.mu.Unlock()
}

// pauseLogEvery spaces out the log lines about reading paused, which under
// sustained overload would come with every message.
const pauseLogEvery = 10 * time.Second

func (s *Server) logPause(messages, bytes int64) {
	now := time.Now().UnixNano()
	last := s.pauseLogged.Load()
	if now-last < int64(pauseLogEvery) || !s.pauseLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("client reads paused: the in-flight budget is full", "inflightMessages", messages, "inflightBytes", bytes)
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
	c.closeCode, c.closeReason = code, reason
	c.dropOutLocked()
	// Messages the connection sent are still handled; the worker reports
	// the Disconnect after the last of them, so that it is the last event
	// of the connection.
	pending := len(c.inbox)
	working := c.working
	c.mu.Unlock()
	s.hub.Remove(c)
	s.open.Add(-1)
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("connection closed", "connectionId", c.id, "code", code, "reason", reason, "pendingMessages", pending)
	}
	if err != nil {
		s.log.Debug("socket error", "connectionId", c.id, "err", err)
	}
	if !working {
		s.disconnect(c, code, reason)
	}
}

// disconnect reports the end of a connection whose socket has closed and
// whose messages have all been handled, and frees its place among
// MaxConnections.
func (s *Server) disconnect(c *Conn, code int, reason string) {
	// Count the disconnect before the connection stops counting, so that
	// Shutdown, which waits for both, never sees neither.
	s.disconnectLater(c, code, reason)
	s.conns.Add(-1)
}

// sweep enforces timeouts and sends keepalive pings for every connection.
func (s *Server) sweep() {
	defer s.wg.Done()
	every := s.sweepInterval()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			paused, resumed := s.budget.pause()
			s.forEach(func(c *Conn) { c.check(now, paused, resumed) })
			s.retireIdleWorkers(now)
			// SetLimits may have shortened a timeout.
			if d := s.sweepInterval(); d != every {
				every = d
				t.Reset(d)
			}
		}
	}
}

func (s *Server) sweepInterval() time.Duration {
	d := time.Second
	l := s.lim()
	for _, v := range []time.Duration{l.IdleTimeout, l.MaxConnectionDuration, l.PingInterval, l.CloseTimeout, l.DrainTimeout} {
		if v > 0 && v/4 < d {
			d = v / 4
		}
	}
	if d < 5*time.Millisecond {
		d = 5 * time.Millisecond
	}
	return d
}
