package edge

import (
	"sync"
	"time"
)

// The in-flight budget bounds, for the whole server, the messages accepted
// from clients whose Handler.Message call has not returned, in number and
// in payload bytes. It counts a message until Message returns rather than
// until the handler takes it, because the message's memory (its payload,
// the event built from it, the request carrying it) lives until then; and
// it counts the messages of closed connections, which are still delivered.
// So the work and memory that clients leave behind stay bounded however
// many of them send and go away.
//
// When the budget is full the event loop stops reading from sockets: a
// poller about to hand data to a connection waits, outside the connection's
// lock, until a Message call returns. The data stays in the kernel and TCP
// flow control slows the clients down, instead of the gateway buffering it.
//
// nbio v1.6.12 has no way to stop reading one socket in its default
// level-triggered mode: the epoll registration is not exported, and a
// readable socket that is not read is reported again at once. In its
// EPOLLONESHOT mode every write re-arms reading, so a paused socket would be
// read again by the next reply written to it. Blocking the poller's data
// callback is what remains, and since the budget is shared, every poller
// that has data to hand over waits anyway. What it costs, for the
// connections of a waiting poller and only while the budget is full: their
// control frames (pings, close frames) are not read, a peer that closed is
// noticed late, and bytes the kernel would not take at once are written when
// reading resumes (writes from the handler and the flushers themselves go
// straight to the socket and never wait for a poller). The keepalive and
// idle checks do not count time spent paused against a client.
//
// Nothing waits for a paused reader: the budget is freed by Message calls
// returning, and they run on the connections' workers, which need no poller;
// Send never blocks. A handler that waits for something slow still returns
// by its integration's timeout. Shutdown lifts the pause for good once it
// has sent its close frames, so that the event loop sees the close
// handshakes through and stops, and shutdown finishes within its deadline.
//
// A poller checks the budget before handing over what it read, and then
// hands over all of it, so the budget can be exceeded by what one read
// holds, per poller: at most 64 KiB (the read buffer) plus one message the
// connection had been assembling, and at most the per-connection limit of
// messages. The same holds for the bytes a client sent with its upgrade
// request.
type budget struct {
	maxMessages int64 // 0: no bound
	maxBytes    int64 // 0: no bound

	// mu guards the fields below.
	mu       sync.Mutex
	messages int64
	bytes    int64
	room     chan struct{} // closed when the budget has room again; nil while nobody waits
	waiting  int           // readers waiting for room
	resumed  time.Time     // when readers last stopped waiting
	stopped  bool          // shutting down: nobody waits any more
}

// acquire counts a message of n bytes. It never blocks.
func (b *budget) acquire(n int) {
	b.mu.Lock()
	b.messages++
	b.bytes += int64(n)
	b.mu.Unlock()
}

// release uncounts a message of n bytes and wakes the waiting readers if
// the budget has room.
func (b *budget) release(n int) {
	b.mu.Lock()
	b.messages--
	b.bytes -= int64(n)
	if b.room != nil && !b.fullLocked() {
		close(b.room)
		b.room = nil
	}
	b.mu.Unlock()
}

func (b *budget) fullLocked() bool {
	if b.stopped {
		return false
	}
	return (b.maxMessages > 0 && b.messages >= b.maxMessages) || (b.maxBytes > 0 && b.bytes >= b.maxBytes)
}

// wait returns once the budget has room or stop has been called. It
// reports whether it had to wait; when it has to, it first calls onPause
// with the budget's use.
func (b *budget) wait(onPause func(messages, bytes int64)) bool {
	b.mu.Lock()
	if !b.fullLocked() {
		b.mu.Unlock()
		return false
	}
	b.waiting++
	if onPause != nil {
		messages, bytes := b.messages, b.bytes
		b.mu.Unlock()
		onPause(messages, bytes)
		b.mu.Lock()
	}
	for b.fullLocked() {
		if b.room == nil {
			b.room = make(chan struct{})
		}
		room := b.room
		b.mu.Unlock()
		<-room
		b.mu.Lock()
	}
	b.waiting--
	b.resumed = time.Now()
	b.mu.Unlock()
	return true
}

// stop ends every wait, for good.
func (b *budget) stop() {
	b.mu.Lock()
	b.stopped = true
	if b.room != nil {
		close(b.room)
		b.room = nil
	}
	b.mu.Unlock()
}

// pause reports whether readers are waiting and when a wait last ended.
func (b *budget) pause() (paused bool, resumed time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting > 0, b.resumed
}

// Stats is a snapshot of a server's connections and inbound work.
type Stats struct {
	// Connections is what Len returns.
	Connections int
	// InflightMessages and InflightBytes count the messages accepted from
	// clients whose Handler.Message call has not returned, and their
	// payload bytes.
	InflightMessages int
	InflightBytes    int64
	// PausedReaders counts the event-loop pollers waiting for the
	// in-flight budget to have room before they read on.
	PausedReaders int
}

// Messages returns the server's totals of data messages received from
// clients (handed to Handler.Message) and queued to them (by Send and
// SendMessage), since it was made. It takes no lock.
func (s *Server) Messages() (received, sent uint64) {
	return s.received.Load(), s.sent.Load()
}

// Stats returns a snapshot of the server's connections and inbound work.
func (s *Server) Stats() Stats {
	b := &s.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{
		Connections:      s.Len(),
		InflightMessages: int(b.messages),
		InflightBytes:    b.bytes,
		PausedReaders:    b.waiting,
	}
}
