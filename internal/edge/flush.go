package edge

import (
	"runtime"
	"sync"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// Write coalescing. Senders do not write data messages to the socket
// themselves: Send, and SendMessage with the frame a fan-out (hub.Broadcast)
// shares between its connections, append the frame to the connection's
// outbox and queue the connection with one of the server's flushers, a fixed
// number of goroutines that write each queued connection's frames with as
// few write calls as possible. While a flusher works through its queue,
// further messages append to the outboxes still waiting, so under load one
// write carries several messages to a client; the cost of a delivery then
// shrinks from a system call to a copy. When idle, a message is written as
// soon as its flusher wakes.
//
// Every write to a socket happens with the connection's mu held, and a
// write first takes whatever the outbox holds, so messages reach a client
// in the order they were accepted no matter which goroutine writes them.
const (
	// coalesceBytes bounds the bytes gathered into one write.
	coalesceBytes = 64 << 10
	// directFrameBytes: frames at least this long are written as they are
	// instead of being copied into the gathering buffer.
	directFrameBytes = 16 << 10
	// inlineFlushBytes: an outbox holding this much (or the outbound queue
	// bound, if smaller) is written by the sender at once rather than left
	// for its flusher, so that flushers falling behind never hold more than
	// this per connection.
	inlineFlushBytes = 64 << 10
	// yieldEvery: a flusher lets other goroutines run after writing this
	// many connections' outboxes (about half a millisecond of writes).
	yieldEvery = 64
)

// outbox holds the frames a connection accepted and has not yet written.
// Its frames are shared with other connections and never modified.
type outbox struct {
	frames [][]byte
	bytes  int
}

var outboxPool = sync.Pool{New: func() any { return new(outbox) }}

// gatherPool holds the buffers frames are copied into to be written together.
var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func (o *outbox) release() {
	clear(o.frames)
	o.frames = o.frames[:0]
	if cap(o.frames) > 256 {
		o.frames = nil
	}
	o.bytes = 0
	outboxPool.Put(o)
}

// flusher writes the outboxes of the connections queued with it.
type flusher struct {
	// queueMu guards queue.
	queueMu sync.Mutex
	queue   []*Conn
	wake    chan struct{} // capacity 1: a token means the queue may be non-empty
}

func newFlusher() *flusher { return &flusher{wake: make(chan struct{}, 1)} }

// enqueue queues c, whose outbox has just become non-empty.
func (f *flusher) enqueue(c *Conn) {
	f.queueMu.Lock()
	f.queue = append(f.queue, c)
	first := len(f.queue) == 1
	f.queueMu.Unlock()
	if first {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// run flushes queued connections until stop is closed.
func (f *flusher) run(stop <-chan struct{}) {
	var list []*Conn
	for {
		select {
		case <-f.wake:
		case <-stop:
			return
		}
		for {
			f.queueMu.Lock()
			list, f.queue = f.queue, list[:0]
			f.queueMu.Unlock()
			if len(list) == 0 {
				break
			}
			for i, c := range list {
				c.flush()
				list[i] = nil
				if i%yieldEvery == yieldEvery-1 {
					// A fan-out keeps every flusher busy for tens of
					// milliseconds; yielding now and then lets the
					// publish handlers and the event loops, which
					// would otherwise wait for the scheduler's 10 ms
					// preemption, run in between.
					runtime.Gosched()
				}
			}
		}
	}
}

// flusherFor returns the flusher that writes c's outbox.
func (s *Server) flusherFor(c *Conn) *flusher {
	return s.flushers[uint(c.nc.Hash())%uint(len(s.flushers))]
}

// encodeMessage is the wire encoding of a message for a server whose frames
// carry at most maxFrame bytes; hub.Message caches it for a fan-out.
func encodeMessage(data []byte, binary bool, maxFrame int) []byte {
	op := wsproto.OpText
	if binary {
		op = wsproto.OpBinary
	}
	return wsproto.AppendMessage(nil, op, data, maxFrame)
}

// SendMessage implements hub.MessageSender: it accepts m like Send, sharing
// m's frame with every other connection of the fan-out. A client over its outbound queue bound is closed as a
// slow consumer (1008) and SendMessage returns hub.ErrClosed.
func (c *Conn) SendMessage(m *hub.Message) error {
	frame := m.Encoded(c.srv.lim().MaxFrameBytes, encodeMessage)
	c.mu.Lock()
	if !c.admitLocked(len(frame)) {
		c.mu.Unlock()
		return hub.ErrClosed
	}
	c.lastActive.Store(m.At())
	c.queueLocked(frame)
	c.srv.sent.Add(1)
	c.srv.cfg.Observer.MessageSent()
	c.mu.Unlock()
	if t := c.tap.Load(); t != nil {
		t.tap.Message(true, m.Data(), m.Binary())
	}
	return nil
}

// queueLocked appends frame to the outbox and makes sure a flusher will
// write it.
func (c *Conn) queueLocked(frame []byte) {
	if c.out == nil {
		c.out = outboxPool.Get().(*outbox)
		c.out.frames = append(c.out.frames, frame)
		c.out.bytes = len(frame)
		c.srv.flusherFor(c).enqueue(c)
		return
	}
	c.out.frames = append(c.out.frames, frame)
	c.out.bytes += len(frame)
	if c.out.bytes >= c.srv.inlineFlush {
		c.flushOutLocked()
	}
}

// flush writes c's outbox, if any; flushers call it.
func (c *Conn) flush() {
	c.mu.Lock()
	c.flushOutLocked()
	c.mu.Unlock()
}

// flushOutLocked writes the outbox's frames in order, small ones gathered
// into as few writes as possible, and empties it. The connection may stay
// in a flusher's queue; the flusher then finds nothing to write.
func (c *Conn) flushOutLocked() {
	ob := c.out
	if ob == nil {
		return
	}
	c.out = nil
	if len(ob.frames) == 1 {
		c.writeRawLocked(ob.frames[0])
		ob.release()
		return
	}
	bp := gatherPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, f := range ob.frames {
		if len(buf) > 0 && (len(f) >= directFrameBytes || len(buf)+len(f) > coalesceBytes) {
			c.writeRawLocked(buf)
			buf = buf[:0]
		}
		if len(f) >= directFrameBytes {
			c.writeRawLocked(f)
			continue
		}
		buf = append(buf, f...)
	}
	if len(buf) > 0 {
		c.writeRawLocked(buf)
	}
	// The event loop copies whatever the socket did not take, so the
	// buffer is free again.
	if cap(buf) <= 2*coalesceBytes {
		*bp = buf[:0]
		gatherPool.Put(bp)
	}
	ob.release()
}

// dropOutLocked discards the outbox of a closed connection.
func (c *Conn) dropOutLocked() {
	if ob := c.out; ob != nil {
		c.out = nil
		ob.release()
	}
}
