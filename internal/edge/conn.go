package edge

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lesismal/nbio"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/wsproto"
)

var (
	_ hub.Conn     = (*Conn)(nil)
	_ hub.Tappable = (*Conn)(nil)
)

type connState uint8

const (
	stateHandshake connState = iota
	stateOpen
	// stateDraining: the client's close frame arrived while the handler was
	// still answering its earlier messages. Replies still go out; the
	// server's close frame follows them, or the drain timeout.
	stateDraining
	stateClosing // a close frame was sent or received; waiting for the socket to end
	stateClosed
)

type inbound struct {
	data   []byte
	binary bool
}

// Conn is one client connection. Its methods are safe for concurrent use.
type Conn struct {
	id          string
	srv         *Server
	connectedAt time.Time
	sourceIP    string
	userAgent   string

	// Session holds the handler's per-connection state. Handler.Connect sets
	// it before the upgrade completes; later handler calls read it. The
	// server never touches it.
	Session any

	nc *nbio.Conn
	// tls is the TLS transport of a wss:// connection; nil for ws://.
	tls *tlsSocket

	queued       atomic.Int64 // bytes handed to the event loop and not yet written to the socket
	closeOnFlush atomic.Bool  // close the socket once queued reaches zero
	lastActive   atomic.Int64 // unix ns of the last data frame in either direction
	lastRead     atomic.Int64 // unix ns of the last bytes received
	lastPing     atomic.Int64 // unix ns of the last keepalive ping sent
	closeAt      atomic.Int64 // unix ns at which the sweeper closes the connection; 0 for never
	// tap, when set, is told of every data message (SetTap).
	tap atomic.Pointer[tapRef]

	// mu guards the fields below and orders every write to the socket.
	mu           sync.Mutex
	parser       *wsproto.Parser
	parserFailed bool // the parser returned an error; it only reads on for the close reply
	state        connState
	closeCode    int
	closeReason  string
	closingSince time.Time
	closeAtCode  int
	closeAtWhy   string
	inbox        []inbound
	working      bool
	out          *outbox // frames accepted by Send and SendMessage, waiting for a flusher; nil when none
}

// ID returns the connection id.
func (c *Conn) ID() string { return c.id }

// ConnectedAt returns when the upgrade request arrived.
func (c *Conn) ConnectedAt() time.Time { return c.connectedAt }

// SourceIP returns the client's address as seen on the socket.
func (c *Conn) SourceIP() string { return c.sourceIP }

// UserAgent returns the User-Agent of the upgrade request.
func (c *Conn) UserAgent() string { return c.userAgent }

// Info implements hub.Conn.
func (c *Conn) Info() hub.Info {
	return hub.Info{
		ConnectedAt:  c.connectedAt,
		LastActiveAt: time.Unix(0, c.lastActive.Load()),
		SourceIP:     c.sourceIP,
		UserAgent:    c.userAgent,
	}
}

// Send queues data as one message: a text message when data is valid UTF-8,
// a binary one otherwise. Messages over the frame limit are split into
// continuation frames. The message goes into the connection's outbox and one
// of the server's flushers writes it soon after, in order with the
// connection's other frames. When the client's outbound queue would exceed
// its bound, the client is closed as a slow consumer (1008) and Send returns
// hub.ErrClosed.
func (c *Conn) Send(data []byte) error { return c.send(data, false) }

// Reply is Send for the answer to one of the client's messages, called on
// the goroutine that handled it. When the outbox is empty it writes the
// message to the socket itself instead of waking a flusher: a request
// answered by a reply is then one write and no goroutine hand-off. A reply
// that finds frames waiting in the outbox joins them, so that messages
// still reach the client in the order they were accepted.
func (c *Conn) Reply(data []byte) error { return c.send(data, true) }

func (c *Conn) send(data []byte, direct bool) error {
	op := wsproto.OpText
	if !utf8.Valid(data) {
		op = wsproto.OpBinary
	}
	frame := wsproto.AppendMessage(nil, op, data, c.srv.lim().MaxFrameBytes)
	c.mu.Lock()
	if !c.acceptLocked(len(frame)) {
		c.mu.Unlock()
		return hub.ErrClosed
	}
	c.srv.sent.Add(1)
	c.srv.cfg.Observer.MessageSent()
	if direct && c.out == nil {
		// A tap sees the message before the client can, as it does
		// when a flusher writes it.
		if t := c.tap.Load(); t != nil {
			t.tap.Message(true, data, op == wsproto.OpBinary)
		}
		c.writeRawLocked(frame)
		c.mu.Unlock()
		return nil
	}
	c.queueLocked(frame)
	c.mu.Unlock()
	if t := c.tap.Load(); t != nil {
		t.tap.Message(true, data, op == wsproto.OpBinary)
	}
	return nil
}

// SetTap implements hub.Tappable: t is told of the connection's data
// messages from now on, those received as the handler takes them and
// those sent once they are queued; nil stops it.
func (c *Conn) SetTap(t hub.Tap) {
	if t == nil {
		c.tap.Store(nil)
		return
	}
	c.tap.Store(&tapRef{t})
}

// tapRef holds a connection's tap.
type tapRef struct{ tap hub.Tap }

// acceptLocked reports whether the connection takes a data frame of n
// bytes. A client whose outbound queue (the bytes the socket has not taken)
// would exceed its bound is closed as a slow consumer. Bytes waiting in the
// outbox do not count: they wait for the gateway, not for the client, and
// the outbox is written by the sender itself once it holds
// inlineFlushBytes.
func (c *Conn) acceptLocked(n int) bool {
	if !c.admitLocked(n) {
		return false
	}
	c.lastActive.Store(time.Now().UnixNano())
	return true
}

// admitLocked is acceptLocked without stamping lastActive, for a fan-out
// that stamps every connection with the one time it read.
func (c *Conn) admitLocked(n int) bool {
	return (c.state == stateOpen || c.state == stateDraining) && c.roomLocked(n)
}

// roomLocked reports whether n more bytes fit in the client's outbound
// queue, and closes a client that is over its bound as a slow consumer.
// Control frames the server sends (pongs, keepalive pings) count like data:
// a client that pings without reading fills its queue with pongs.
func (c *Conn) roomLocked(n int) bool {
	if limit := c.srv.cfg.Limits.OutboundQueueBytes; limit > 0 && c.queued.Load()+int64(n) > int64(limit) {
		c.srv.log.Info("closing slow consumer", "connectionId", c.id, "queuedBytes", c.queued.Load())
		c.srv.cfg.Observer.SlowConsumer()
		c.dropLocked(wsproto.ClosePolicyViolation, "slow consumer")
		return false
	}
	return true
}

// writeControlLocked writes a pong or ping within the outbound queue bound.
func (c *Conn) writeControlLocked(frame []byte) {
	if c.roomLocked(len(frame)) {
		c.writeLocked(frame)
	}
}

// CloseAt arranges for the connection to be closed with code and reason at
// t, as a credential's expiry requires; a later call moves the time. A zero
// t cancels it. The check runs with the idle-timeout sweep, so the close
// comes within one sweep interval after t.
func (c *Conn) CloseAt(t time.Time, code int, reason string) {
	c.mu.Lock()
	c.closeAtCode, c.closeAtWhy = code, reason
	c.mu.Unlock()
	if t.IsZero() {
		c.closeAt.Store(0)
		return
	}
	c.closeAt.Store(t.UnixNano())
}

// Close sends a close frame with code and reason and waits, without
// blocking the caller, for the client's reply; a client that does not reply
// within the close timeout is dropped. The code and reason are what the
// $disconnect event reports.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	c.closeLocked(code, reason)
	c.mu.Unlock()
}

// drop closes the socket at once, reporting code and reason.
func (c *Conn) drop(code int, reason string) {
	c.mu.Lock()
	c.dropLocked(code, reason)
	c.mu.Unlock()
}

func (c *Conn) closeLocked(code int, reason string) {
	if c.state == stateDraining {
		// The client is waiting for the server's close frame: it goes now,
		// and the $disconnect reports the client's code.
		c.replyCloseLocked()
		return
	}
	if c.state != stateOpen {
		return
	}
	c.state = stateClosing
	c.closeCode, c.closeReason = code, reason
	c.closingSince = time.Now()
	c.writeLocked(wsproto.AppendClose(nil, code, reason))
}

func (c *Conn) dropLocked(code int, reason string) {
	switch c.state {
	case stateClosed:
		return
	case stateOpen, stateHandshake:
		c.closeCode, c.closeReason = code, reason
	}
	c.state = stateClosing
	if c.closingSince.IsZero() {
		c.closingSince = time.Now()
	}
	_ = c.nc.Close()
}

// replyCloseLocked answers the client's close frame, echoing its code, and
// closes the socket once everything before the answer has been written.
func (c *Conn) replyCloseLocked() {
	c.state = stateClosing
	c.closingSince = time.Now()
	c.writeLocked(wsproto.AppendClose(nil, c.closeCode, ""))
	c.closeWhenFlushedLocked()
}

// writeLocked hands frame to the event loop after whatever the outbox
// holds. It never blocks: bytes the socket cannot take now are queued and
// counted in c.queued.
func (c *Conn) writeLocked(frame []byte) {
	if c.out != nil {
		c.out.frames = append(c.out.frames, frame)
		c.out.bytes += len(frame)
		c.flushOutLocked()
		return
	}
	c.writeRawLocked(frame)
}

// writeRawLocked writes b to the socket. The event loop copies what the
// socket does not take now, so b may be reused once it returns.
func (c *Conn) writeRawLocked(b []byte) {
	if c.tls != nil {
		c.writeTLSLocked(b)
		return
	}
	c.queued.Add(int64(len(b)))
	if _, err := c.nc.Write(b); err != nil {
		// The event loop has closed the socket; onClose reports it.
		c.queued.Add(-int64(len(b)))
	}
}

// closeWhenFlushedLocked closes the socket once everything queued has been
// written, so that a close frame is not lost.
func (c *Conn) closeWhenFlushedLocked() {
	c.closeNotifyLocked()
	c.closeOnFlush.Store(true)
	if c.queued.Load() <= 0 {
		_ = c.nc.Close()
	}
}

// feedLocked parses data. After a protocol error the parser reads on for
// the client's reply to the close frame the error sent, and the socket is
// closed as soon as it arrives (or the stream can no longer be followed)
// rather than at the close timeout.
func (c *Conn) feedLocked(data []byte) {
	if c.state == stateClosed {
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
	err := c.parser.Feed(data, (*frameHandler)(c))
	if err != nil && !c.parserFailed {
		c.parserFailed = true
		var ce *wsproto.CloseError
		if errors.As(err, &ce) {
			c.srv.log.Debug("closing on protocol error", "connectionId", c.id, "code", ce.Code, "reason", ce.Reason)
			c.closeLocked(ce.Code, ce.Reason)
		} else {
			c.srv.log.Warn("closing on unexpected read error", "connectionId", c.id, "err", err)
			c.closeLocked(wsproto.CloseInternalError, "internal error")
		}
	}
	if c.parserFailed && c.parser.Closed() {
		c.closeWhenFlushedLocked()
	}
}

// check runs from the sweeper: timeouts and keepalive. While reading is
// paused (see budget.go) a client cannot be heard, so neither the idle
// timeout nor the keepalive holds the silence against it; after the pause
// they count from when reading resumed.
func (c *Conn) check(now time.Time, paused bool, resumed time.Time) {
	l := c.srv.lim()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case stateDraining:
		if now.Sub(c.closingSince) >= l.DrainTimeout {
			c.replyCloseLocked()
		}
	case stateClosing:
		if now.Sub(c.closingSince) >= l.CloseTimeout {
			_ = c.nc.Close()
		}
	case stateOpen:
		lastActive, lastRead := time.Unix(0, c.lastActive.Load()), time.Unix(0, c.lastRead.Load())
		if resumed.After(lastActive) {
			lastActive = resumed
		}
		if resumed.After(lastRead) {
			lastRead = resumed
		}
		switch at := c.closeAt.Load(); {
		case at != 0 && now.UnixNano() >= at:
			c.closeLocked(c.closeAtCode, c.closeAtWhy)
		case l.MaxConnectionDuration > 0 && now.Sub(c.connectedAt) >= l.MaxConnectionDuration:
			c.closeLocked(wsproto.CloseGoingAway, "Going away")
		case !paused && l.IdleTimeout > 0 && now.Sub(lastActive) >= l.IdleTimeout:
			c.closeLocked(wsproto.CloseGoingAway, "Going away")
		case !paused && l.PingInterval > 0 && now.Sub(lastRead) >= 2*l.PingInterval:
			c.dropLocked(wsproto.CloseAbnormal, "ping timeout")
		case l.PingInterval > 0 && now.Sub(time.Unix(0, c.lastPing.Load())) >= l.PingInterval:
			c.lastPing.Store(now.UnixNano())
			c.writeControlLocked(wsproto.AppendFrame(nil, wsproto.OpPing, true, nil))
		}
		if c.tls != nil && c.state == stateOpen {
			c.tls.releaseIdle()
		}
	}
}

// work hands the inbox to the handler, one message at a time, until it is
// empty. A connection whose client has sent its close frame meanwhile gets
// the server's close frame from here, after the replies; one whose socket
// closed gets its Disconnect from here, after its last message: onClose
// leaves that to the worker.
func (c *Conn) work() {
	defer c.srv.wg.Done()
	for {
		c.mu.Lock()
		if len(c.inbox) == 0 {
			c.working = false
			c.inbox = nil
			if c.state == stateDraining {
				c.replyCloseLocked()
			}
			closed := c.state == stateClosed
			code, reason := c.closeCode, c.closeReason
			c.mu.Unlock()
			if closed {
				c.srv.disconnect(c, code, reason)
			}
			return
		}
		m := c.inbox[0]
		c.inbox[0] = inbound{}
		c.inbox = c.inbox[1:]
		c.mu.Unlock()
		c.srv.received.Add(1)
		if t := c.tap.Load(); t != nil {
			t.tap.Message(false, m.data, m.binary)
		}
		c.handle(m)
		c.srv.budget.release(len(m.data))
	}
}

// handle runs the handler on message m. A handler that panics ends this
// connection, closed with 1011 Internal Error, and the panic is logged with
// its stack; the process and the other connections go on, as net/http's
// server survives a handler's panic.
func (c *Conn) handle(m inbound) {
	defer func() {
		if v := recover(); v != nil {
			c.srv.log.Error("message handler panicked; closing the connection", "connectionId", c.id,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			c.Close(wsproto.CloseInternalError, "Internal server error")
		}
	}()
	c.srv.h.Message(c.srv.baseCtx, c, m.data, m.binary)
}

// frameHandler receives decoded frames; its methods run with c.mu held.
type frameHandler Conn

func (h *frameHandler) OnMessage(op wsproto.Opcode, payload []byte) error {
	c := (*Conn)(h)
	if c.state != stateOpen {
		return nil
	}
	c.lastActive.Store(time.Now().UnixNano())
	if len(c.inbox) >= c.srv.lim().MaxInflightMessages {
		return &wsproto.CloseError{Code: wsproto.CloseTryAgainLater, Reason: "too many messages in flight"}
	}
	c.srv.budget.acquire(len(payload))
	c.inbox = append(c.inbox, inbound{data: append([]byte(nil), payload...), binary: op == wsproto.OpBinary})
	if !c.working {
		c.working = true
		c.srv.wg.Add(1)
		c.srv.dispatch(c)
	}
	return nil
}

func (h *frameHandler) OnPing(payload []byte) error {
	c := (*Conn)(h)
	if c.state == stateOpen {
		c.writeControlLocked(wsproto.AppendFrame(nil, wsproto.OpPong, true, payload))
	}
	return nil
}

func (h *frameHandler) OnPong([]byte) error { return nil }

func (h *frameHandler) OnClose(code int, reason string) error {
	c := (*Conn)(h)
	switch c.state {
	case stateOpen:
		// The client started the close handshake: answer and end. Replies
		// to its earlier messages still being handled go first, as RFC
		// 6455 section 5.5.1 allows, for at most the drain timeout.
		c.closeCode, c.closeReason = code, reason
		if c.working {
			c.state = stateDraining
			c.closingSince = time.Now()
			return nil
		}
		c.replyCloseLocked()
	case stateClosing:
		// The client answered our close frame.
		c.closeWhenFlushedLocked()
	}
	return nil
}
