package edge_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

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
			hold := make(chan struct{})
			var once sync.Once
			release := func() { once.Do(func() { close(hold) }) }
			rec := newRecorder()
			rec.onMessage = func(_ *edge.Conn, data []byte, _ bool) {
				if string(data) == "0" {
					<-hold
				}
			}
			l := awsLimits()
			l.MaxConnections = 1
			s := startServer(t, edge.Config{Limits: l}, rec)
			// Before the server's shutdown, which waits for the handler.
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
