package edge

import (
	"sync/atomic"
	"time"
)

// workerIdle is how long message workers beyond those in use may wait for
// another connection's messages before they end.
const workerIdle = time.Second

// A message worker is a goroutine that runs Conn.work for one connection at
// a time. When a connection's inbox is empty its worker does not end: it
// waits for the next connection that has messages and no worker, and only a
// connection that finds no waiting worker starts a new one. So a steady flow
// of messages reuses goroutines instead of starting one per burst, and the
// stack a handler grows (an integration's HTTP call needs several KB) is
// grown once per worker rather than once per burst.
//
// Waiting workers hold no timer: the sweeper ends the ones not needed. It
// keeps the fewest workers that were waiting at any moment of the last
// workerIdle (the low-water mark of workerPool.waiting) and ends that many,
// since that many were idle the whole time. A timer per worker would be
// armed and disarmed on every message.
//
// Workers belong to no connection: an idle connection holds none, and the
// waiting workers are at most the messages handled at once during the last
// workerIdle or two. Per-connection order is Conn.work's: one worker at a
// time per connection (Conn.working), its messages in arrival order. Workers
// count in Server.wg and end when the server stops (Server.stop, closed by
// Shutdown before it waits for wg).
type workerPool struct {
	// handoff passes a connection with messages to a waiting worker; nil
	// ends the worker that receives it.
	handoff chan *Conn
	// waiting counts the workers waiting on handoff; low is its smallest
	// value since the sweeper last looked.
	waiting, low atomic.Int64
	// lastRetire is when the sweeper last ended idle workers (sweeper
	// only).
	lastRetire time.Time
}

// dispatch has a worker run c.work: a waiting one, or a new one. It never
// blocks, so the event loop may call it with c.mu held.
func (s *Server) dispatch(c *Conn) {
	select {
	case s.workers.handoff <- c:
	default:
		s.wg.Add(1)
		go s.worker(c)
	}
}

// worker runs c.work, then the work of the connections dispatch hands it,
// until the sweeper ends it or the server stops.
func (s *Server) worker(c *Conn) {
	defer s.wg.Done()
	p := &s.workers
	for {
		c.work()
		p.waiting.Add(1)
		select {
		case c = <-p.handoff:
		case <-s.stop:
			p.waiting.Add(-1)
			return
		}
		n := p.waiting.Add(-1)
		for {
			low := p.low.Load()
			if n >= low || p.low.CompareAndSwap(low, n) {
				break
			}
		}
		if c == nil {
			return
		}
	}
}

// retireIdleWorkers ends the workers that have waited for work since the
// last call at least workerIdle ago; the sweeper calls it.
func (s *Server) retireIdleWorkers(now time.Time) {
	p := &s.workers
	// The sweeper's ticks are not exact; a tick a little short of a
	// second after the last retirement still counts as a second.
	if now.Sub(p.lastRetire) < workerIdle*9/10 {
		return
	}
	p.lastRetire = now
	// Ending a worker lowers waiting, so read the mark first, then start
	// the next period at the current count.
	idle := p.low.Swap(p.waiting.Load())
	for range idle {
		select {
		case p.handoff <- nil:
		default:
			return
		}
	}
}
