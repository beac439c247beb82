package edge_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// TestDisconnectAfterQueuedMessages: a client that sends messages while the
// handler is busy with its first one and then goes away has every message
// handled before its Disconnect, and counts toward MaxConnections until
// then.
func TestDisconnectAfterQueuedMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(c *client)
		want disconnect
	}{
		{"dropped socket", func(c *client) { _ = c.nc.Close() }, disconnect{wsproto.CloseAbnormal, ""}},
		{"close handshake", func(c *client) {
			c.send(wsproto.OpClose, true, closePayload(1000, "bye"))
			c.expectClose(1000)
			c.expectEOF()
		}, disconnect{1000, "bye"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, release := holdingRecorder("0")
			l := awsLimits()
			l.MaxConnections = 1
			// The close reply waits for the held message no longer than this.
			l.DrainTimeout = 50 * time.Millisecond
			s := startServer(t, edge.Config{Limits: l}, rec)
			t.Cleanup(release)
			c := s.dial(t)
			const n = 5
			var b []byte
			for i := range n {
				b = append(b, clientFrame(wsproto.OpText, true, []byte(fmt.Sprint(i)))...)
			}
			c.write(b)
			s.rec.waitMessages(t, c.conn, 1)
			tc.end(c)
			eventually(t, func() bool { return s.hub.Get(c.conn.ID()) == nil }, "the server to see the connection end")

			// Messages 1 to 4 wait behind the first: no Disconnect yet,
			// and the connection still holds the only slot.
			if d := s.rec.disconnects(c.conn); len(d) != 0 {
				t.Fatalf("Disconnect%v ran with %d messages still to handle", d, n-1)
			}
			if n := s.Len(); n != 1 {
				t.Fatalf("server counts %d connections, want 1 (the closed one with messages pending)", n)
			}
			if _, resp := s.tryDial(t); resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("upgrade while the closed connection has work pending: %s, want 503", resp.Status)
			}

			release()
			got := s.rec.waitMessages(t, c.conn, n)
			for i, m := range got {
				if m.data != fmt.Sprint(i) {
					t.Fatalf("message #%d is %v", i, m)
				}
			}
			if d := s.rec.waitDisconnect(t, c.conn); d != tc.want {
				t.Fatalf("Disconnect%+v, want %+v", d, tc.want)
			}
			// The recorder's check, at shutdown, requires Disconnect after
			// the last Message call.
			eventually(t, func() bool { return s.Len() == 0 }, "the slot to free (count %d)", s.Len())
			s.dial(t)
		})
	}
}

// TestBudgetPausesReads: while the server-wide in-flight budget is full,
// the server reads nothing more from its clients, so a client's writes
// stall instead of its messages piling up; reading resumes as messages are
// handled, and a client sending far more than the per-connection limit
// while the handler is slow is slowed down rather than closed.
func TestBudgetPausesReads(t *testing.T) {
	rec, release := holdingRecorder("hold")
	l := awsLimits()
	l.InflightBudgetMessages = 2
	s := startServer(t, edge.Config{Limits: l}, rec)
	t.Cleanup(release)
	a, b := s.dial(t), s.dial(t)
	a.sendText("hold a")
	s.rec.waitMessages(t, a.conn, 1)
	b.sendText("hold b")
	s.rec.waitMessages(t, b.conn, 1)
	if st := s.Stats(); st.InflightMessages != 2 || st.InflightBytes != 12 {
		t.Fatalf("stats %+v, want 2 messages and 12 bytes in flight", st)
	}

	// A third client sends far more than the kernel's buffers hold.
	c := s.dial(t)
	if tcp, ok := c.nc.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(16 << 10)
	}
	const n = 200
	msg := func(i int) string { return fmt.Sprintf("%03d:%s", i, strings.Repeat("c", 30000)) }
	var written atomic.Int64
	wrote := make(chan error, 1)
	go func() {
		for i := range n {
			f := clientFrame(wsproto.OpText, true, []byte(msg(i)))
			if err := c.writeErr(f); err != nil {
				wrote <- err
				return
			}
			written.Add(int64(len(f)))
		}
		wrote <- nil
	}()
	eventually(t, func() bool { return s.Stats().PausedReaders > 0 || len(s.rec.messages(c.conn)) > 0 },
		"the server to pause reading or deliver the third client's messages")
	if got := s.rec.messages(c.conn); len(got) != 0 {
		t.Fatalf("%d messages of the third client delivered while the budget was full", len(got))
	}
	if st := s.Stats(); st.InflightMessages != 2 {
		t.Fatalf("stats %+v while paused, want the 2 held messages only", st)
	}
	select {
	case err := <-wrote:
		t.Fatalf("the third client wrote all %d bytes (error %v) while the server was not reading", written.Load(), err)
	default:
	}

	release()
	got := s.rec.waitMessages(t, c.conn, n)
	for i, m := range got {
		if m.data != msg(i) {
			t.Fatalf("message #%d is %.10q…, want %.10q…", i, m.data, msg(i))
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("third client: %v", err)
	}
	if d := s.rec.disconnects(c.conn); len(d) != 0 {
		t.Fatalf("third client disconnected %+v", d)
	}
	eventually(t, func() bool {
		st := s.Stats()
		return st.InflightMessages == 0 && st.InflightBytes == 0 && st.PausedReaders == 0
	},
		"the budget to empty (%+v)", s.Stats())
}

// TestKeepaliveWhilePaused: a client the server does not read while the
// budget is full is not dropped for its silence.
func TestKeepaliveWhilePaused(t *testing.T) {
	rec, release := holdingRecorder("hold")
	l := awsLimits()
	l.InflightBudgetMessages = 1
	l.PingInterval = 50 * time.Millisecond
	s := startServer(t, edge.Config{Limits: l}, rec)
	t.Cleanup(release)
	a := s.dial(t)
	a.sendText("hold")
	s.rec.waitMessages(t, a.conn, 1)
	c := s.dial(t)
	c.sendText("queued")
	eventually(t, func() bool { return s.Stats().PausedReaders > 0 }, "reading to pause")
	// The server keeps pinging c, which it cannot hear: five pings span
	// more than two ping intervals, after which a silent client is
	// dropped when reading is not paused.
	for i := 0; i < 5; {
		f := c.next()
		if f.op != wsproto.OpPing {
			t.Fatalf("got %v while paused, want pings", f)
		}
		i++
	}
	if !(s.Stats().PausedReaders > 0) {
		t.Fatal("reading resumed by itself")
	}
	release()
	s.rec.waitMessages(t, c.conn, 1)
	if d := s.rec.disconnects(c.conn); len(d) != 0 {
		t.Fatalf("client dropped while paused: %+v", d)
	}
}

// holdingRecorder returns a recorder whose handler holds every message that
// starts with prefix until release is called. Tests register release with
// t.Cleanup after startServer, so that it runs before the server's
// shutdown, which waits for the handler.
func holdingRecorder(prefix string) (rec *recorder, release func()) {
	hold := make(chan struct{})
	var once sync.Once
	rec = newRecorder()
	rec.onMessage = func(_ *edge.Conn, data []byte, _ bool) {
		if strings.HasPrefix(string(data), prefix) {
			<-hold
		}
	}
	return rec, func() { once.Do(func() { close(hold) }) }
}

// replyingRecorder answers every message with "re: " and the message,
// holding those that start with "hold" until release is called.
func replyingRecorder() (rec *recorder, release func()) {
	rec, release = holdingRecorder("hold")
	hold := rec.onMessage
	rec.onMessage = func(c *edge.Conn, data []byte, binary bool) {
		hold(c, data, binary)
		_ = c.Send(append([]byte("re: "), data...))
	}
	return rec, release
}

// TestRepliesBeforeCloseReply: when the client's close frame arrives while
// the handler is still answering its earlier messages, the replies go out
// first and the server's close frame after them (RFC 6455 section 5.5.1).
func TestRepliesBeforeCloseReply(t *testing.T) {
	rec, release := replyingRecorder()
	s := startServer(t, edge.Config{Limits: awsLimits()}, rec)
	t.Cleanup(release)
	c := s.dial(t)
	var b []byte
	for _, m := range []string{"a", "hold b", "c"} {
		b = append(b, clientFrame(wsproto.OpText, true, []byte(m))...)
	}
	b = append(b, clientFrame(wsproto.OpClose, true, closePayload(1000, "bye"))...)
	c.write(b)
	c.expectText("re: a")
	release()
	c.expectText("re: hold b")
	c.expectText("re: c")
	if reason := c.expectClose(1000); reason != "" {
		t.Fatalf("close reply with reason %q", reason)
	}
	c.expectEOF()
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{1000, "bye"}) {
		t.Fatalf("Disconnect%+v, want (1000, bye)", d)
	}
}

// TestCloseReplyAfterDrainTimeout: replies that take longer than the drain
// timeout do not hold the close reply back any further; the messages are
// still handled, and the Disconnect comes after them.
func TestCloseReplyAfterDrainTimeout(t *testing.T) {
	rec, release := replyingRecorder()
	l := awsLimits()
	l.DrainTimeout = 50 * time.Millisecond
	s := startServer(t, edge.Config{Limits: l}, rec)
	t.Cleanup(release)
	c := s.dial(t)
	c.write(append(clientFrame(wsproto.OpText, true, []byte("hold")), clientFrame(wsproto.OpClose, true, closePayload(4000, "done"))...))
	s.rec.waitMessages(t, c.conn, 1)
	if reason := c.expectClose(4000); reason != "" {
		t.Fatalf("close reply with reason %q", reason)
	}
	c.expectEOF()
	if d := s.rec.disconnects(c.conn); len(d) != 0 {
		t.Fatalf("Disconnect%+v while the message is still being handled", d)
	}
	release()
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{4000, "done"}) {
		t.Fatalf("Disconnect%+v, want (4000, done)", d)
	}
}
