package edge

import "time"

// workerIdle is how long a message worker waits for another connection's
// messages before it ends.
const workerIdle = time.Second

// A message worker is a goroutine that runs Conn.work for one connection at
// a time. When a connection's inbox is empty its worker does not end: it
// waits up to workerIdle for the next connection that has messages and no
// worker, and only a connection that finds no waiting worker starts a new
// one. So a steady flow of messages reuses goroutines instead of starting
// one per burst, and the stack a handler grows (an integration's HTTP call
// needs several KB) is grown once per worker rather than once per burst.
//
// Workers belong to no connection: an idle connection holds none, and the
// waiting workers are at most the messages handled at once during the last
// workerIdle. Per-connection order is Conn.work's: one worker at a time per
// connection (Conn.working), its messages in arrival order. Workers count
// in Server.wg and end when the server stops (Server.stop, closed by
// Shutdown before it waits for wg).

// dispatch has a worker run c.work: a waiting one, or a new one. It never
// blocks, so the event loop may call it with c.mu held.
func (s *Server) dispatch(c *Conn) {
	select {
	case s.idleWorkers <- c:
	default:
		s.wg.Add(1)
		go s.worker(c)
	}
}

// worker runs c.work, then the work of the connections dispatch hands it,
// until none comes for workerIdle or the server stops.
func (s *Server) worker(c *Conn) {
	defer s.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		c.work()
		idle.Reset(workerIdle)
		select {
		case c = <-s.idleWorkers:
		case <-idle.C:
			return
		case <-s.stop:
			return
		}
	}
}
