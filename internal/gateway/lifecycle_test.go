package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// sendLarge writes msg as one text message in frames of at most 32 KiB, as
// the gateway's default max_frame_bytes requires.
func sendLarge(t testing.TB, c *websocket.Conn, msg []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(len(msg), 32<<10)
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return w.Close()
}

// largeMessage is message i of a test: about size bytes, recognisable by
// its prefix.
func largeMessage(i, size int) []byte {
	prefix := fmt.Sprintf("msg-%03d:", i)
	return []byte(prefix + strings.Repeat("x", size-len(prefix)))
}

// connectionGone reports whether the management API answers 410 for id: the
// gateway has seen the socket close.
func connectionGone(t testing.TB, g *gt.Gateway, id string) bool {
	status, _, _ := g.MgmtDo(t, "GET", "/@connections/"+strings.ReplaceAll(id, "=", "%3D"), nil, nil)
	return status == http.StatusGone
}

// TestDisconnectAfterEveryMessage: a client sends large messages to a slow
// http backend and goes away. Every message reaches the backend, the
// $disconnect event comes after the last of them has been answered, and
// until then the connection holds its place under max_connections.
func TestDisconnectAfterEveryMessage(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name string
		end  func(c *websocket.Conn)
		code int
	}{
		{"close handshake", func(c *websocket.Conn) { go func() { _ = c.Close(websocket.StatusNormalClosure, "bye") }() }, 1000},
		{"dropped socket", func(c *websocket.Conn) { _ = c.CloseNow() }, 1006},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := gt.NewBackend(t)
			hold := gt.NewGate()
			var answeredMu sync.Mutex
			answered := 0
			b.On("/default", func(e gt.Event) gt.Reply {
				if strings.HasPrefix(e.Body, "msg-000:") {
					hold.Wait()
				}
				time.Sleep(10 * time.Millisecond) // a slow backend
				answeredMu.Lock()
				answered++
				answeredMu.Unlock()
				return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
			})
			g := gt.Start(t, disconnectConfig(b, "{max_connections: 1}"))
			t.Cleanup(hold.Open)
			c := gt.Dial(t, g.URL, nil)
			id := b.ConnectionID(t, "/connect", 0)
			for i := range n {
				if err := sendLarge(t, c.Conn, largeMessage(i, 100<<10)); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			b.WaitEvent(t, "/default", nil)
			tc.end(c.Conn)
			gt.Eventually(t, func() bool { return connectionGone(t, g, id) }, "the gateway to see the socket close")

			// The backend still holds the first message: no $disconnect,
			// and the closed connection keeps the only slot.
			if evs := b.Events("/disconnect"); len(evs) != 0 {
				t.Fatalf("$disconnect sent while %d messages were still to be delivered", n-len(b.Events("/default")))
			}
			if conn, resp, err := gt.TryDial(g.URL, nil); err == nil {
				_ = conn.CloseNow()
				t.Fatal("a second client connected while the closed one, at max_connections 1, still had messages in flight")
			} else if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("second client: %v (response %v), want 503", err, resp)
			}

			hold.Open()
			b.WaitEvent(t, "/disconnect", nil)
			evs := b.Events("")
			var msgs []string
			for i, e := range evs {
				switch e.Path {
				case "/default":
					msgs = append(msgs, e.Body[:8])
				case "/disconnect":
					if i != len(evs)-1 {
						t.Fatalf("$disconnect is event %d of %d; %d events came after it", i+1, len(evs), len(evs)-1-i)
					}
					if int(e.RequestContext.DisconnectStatusCode) != tc.code {
						t.Fatalf("disconnectStatusCode %d, want %d", e.RequestContext.DisconnectStatusCode, tc.code)
					}
				}
			}
			if len(msgs) != n {
				t.Fatalf("the backend got %d messages before $disconnect, want %d: %v", len(msgs), n, msgs)
			}
			for i, m := range msgs {
				if m != fmt.Sprintf("msg-%03d:", i) {
					t.Fatalf("message #%d is %q", i, m)
				}
			}
			answeredMu.Lock()
			got := answered
			answeredMu.Unlock()
			if got != n {
				t.Fatalf("$disconnect sent when %d of %d messages had been answered", got, n)
			}
			// The slot is free once the $disconnect is under way.
			gt.Eventually(t, func() bool {
				conn, _, err := gt.TryDial(g.URL, nil)
				if err != nil {
					return false
				}
				_ = conn.CloseNow()
				return true
			}, "a new client to connect")
		})
	}
}
