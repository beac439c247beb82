package edge_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
)

// goroutineID is the number runtime.Stack prints for the calling
// goroutine.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	return string(buf[:bytes.IndexByte(buf, ' ')])
}

// TestMessageWorkersReused: messages sent one after another, each after
// the reply to the previous one (so the connection's inbox is empty in
// between and each starts a new burst), are handled by a waiting worker
// rather than each on a goroutine of its own. A message that arrives
// before the previous worker is back waiting may still get a new one, so
// the test allows up to half as many goroutines as messages; with a
// goroutine per burst there would be one per message.
func TestMessageWorkersReused(t *testing.T) {
	const n = 40
	var mu sync.Mutex
	seen := map[string]bool{}
	rec := newRecorder()
	rec.onMessage = func(c *edge.Conn, data []byte, _ bool) {
		mu.Lock()
		seen[goroutineID()] = true
		mu.Unlock()
		_ = c.Send(data)
	}
	s := startServer(t, edge.Config{Limits: awsLimits()}, rec)
	c := s.dial(t)
	for i := range n {
		c.sendText(fmt.Sprint(i))
		c.expectText(fmt.Sprint(i))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > n/2 {
		t.Fatalf("%d messages sent one at a time ran on %d goroutines, want at most %d", n, len(seen), n/2)
	}
}

// TestIdleWorkersEnd: workers started for messages handled at once wait
// for more work, and once none has come for about workerIdle (one second)
// the sweeper ends them, without a timer per worker.
func TestIdleWorkersEnd(t *testing.T) {
	const n = 6
	var inside sync.WaitGroup
	inside.Add(n)
	release := make(chan struct{})
	rec := newRecorder()
	rec.onMessage = func(c *edge.Conn, data []byte, _ bool) {
		if string(data) != "again" {
			inside.Done()
			<-release
		}
		_ = c.Reply(data)
	}
	// The sweeper runs every 250 ms with these limits.
	lim := awsLimits()
	lim.DrainTimeout = time.Second
	s := startServer(t, edge.Config{Limits: lim}, rec)
	var clients []*client
	for i := range n {
		c := s.dial(t)
		clients = append(clients, c)
		c.sendText(fmt.Sprint(i))
	}
	inside.Wait() // n workers, each in a handler
	close(release)
	for i, c := range clients {
		c.expectText(fmt.Sprint(i))
	}
	eventually(t, func() bool { return edge.WaitingWorkers(s.Server) == n }, "%d workers waiting, want %d", edge.WaitingWorkers(s.Server), n)
	eventually(t, func() bool { return edge.WaitingWorkers(s.Server) == 0 }, "%d idle workers left, want 0", edge.WaitingWorkers(s.Server))
	// A message after they ended gets a new worker and its reply.
	clients[0].sendText("again")
	clients[0].expectText("again")
}

// TestHandlerPanicClosesOnlyItsConnection: a handler that panics on a
// message ends that connection with 1011 and logs the panic with its
// stack; the server, the other connections and the worker pool go on.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	rec := newRecorder()
	rec.onMessage = func(c *edge.Conn, data []byte, _ bool) {
		if string(data) == "boom" {
			panic("handler bug")
		}
		_ = c.Reply(data)
	}
	s := startServer(t, edge.Config{Limits: awsLimits()}, rec)
	a, b := s.dial(t), s.dial(t)
	a.sendText("boom")
	if reason := a.expectClose(1011); reason != "Internal server error" {
		t.Errorf("close reason %q", reason)
	}
	for i := range 3 {
		b.sendText(fmt.Sprint(i))
		b.expectText(fmt.Sprint(i))
	}
	if logs := s.logs.String(); !strings.Contains(logs, "message handler panicked") || !strings.Contains(logs, "handler bug") ||
		!strings.Contains(logs, "workers_test.go") {
		t.Errorf("the panic, its value and its stack are not logged:\n%s", logs)
	}
}
