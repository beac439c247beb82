package edge_test

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

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
