package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/wsproto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// awsLimits are AWS's frame and message quotas, with a close timeout long
// enough that a close handshake which does not complete fails the test
// instead of being ended by the timeout.
func awsLimits() edge.Limits {
	return edge.Limits{
		MaxFrameBytes:   32 << 10,
		MaxMessageBytes: 128 << 10,
		CloseTimeout:    time.Minute,
	}
}

// expectProtocolClose requires the server to close c with code; the client
// then sends the rest of the frame it was writing, if any, and its close
// reply, and the server must end the TCP connection on that reply (the
// close timeout, a minute, is beyond the test's wait). The Disconnect call
// must report the code and the reason the close frame carried.
func expectProtocolClose(t *testing.T, s *testServer, c *client, code int, rest ...byte) {
	t.Helper()
	reason := c.expectClose(code)
	if reason == "" {
		t.Errorf("close frame %d has no reason", code)
	}
	if len(rest) > 0 {
		c.write(rest)
	}
	c.finishClose(code)
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{code, reason}) {
		t.Fatalf("Disconnect(%d, %q), want (%d, %q)", d.code, d.reason, code, reason)
	}
}

func TestUpgradeAndEcho(t *testing.T) {
	rec := newRecorder()
	rec.onConnect = func(c *edge.Conn, r *http.Request) (string, error) {
		c.Session = r.Header.Get("X-Test-Client")
		return "chat.v1", nil
	}
	rec.onMessage = func(c *edge.Conn, data []byte, _ bool) {
		_ = c.Send(append([]byte(c.Session.(string)+":"), data...))
	}
	s := startServer(t, edge.Config{Path: "/prod", Limits: awsLimits()}, rec)
	c, resp := s.tryDialWith(t, []string{"Sec-WebSocket-Protocol: chat.v2, chat.v1"})
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != testAccept ||
		resp.Header.Get("Sec-WebSocket-Protocol") != "chat.v1" {
		t.Fatalf("upgrade response %s %v", resp.Status, resp.Header)
	}
	c.conn = s.rec.conn(c.name)
	if c.conn.SourceIP() != "127.0.0.1" || c.conn.UserAgent() != "edge-test" || len(c.conn.ID()) != 16 {
		t.Fatalf("conn id=%q ip=%q ua=%q", c.conn.ID(), c.conn.SourceIP(), c.conn.UserAgent())
	}
	if s.hub.Get(c.conn.ID()) != c.conn || s.Len() != 1 {
		t.Fatalf("connection not in the hub (hub has %d, server counts %d)", s.hub.Len(), s.Len())
	}
	c.sendText("hello")
	c.expectText(c.name + ":hello")

	// The trailing-slash form of the stage path upgrades too.
	req := strings.Replace(upgradeRequest(s.addr, "/prod/", "slash", "Sec-WebSocket-Protocol: chat.v1"), "X-Test-Client", "X-Other", 1)
	if resp, body := rawHTTP(t, s.addr, req); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("GET /prod/: %s %s", resp.Status, body)
	}
}

func TestFrameTooBigClosesAtHeader(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	// Only the header of a 40 KB text frame: 2 bytes, a 16-bit length and
	// the masking key. The close must come without any payload.
	f := clientFrame(wsproto.OpText, true, make([]byte, 40<<10))
	c.write(f[:8])
	expectProtocolClose(t, s, c, wsproto.CloseTooBig, f[8:]...)
	if n := len(s.rec.messages(c.conn)); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

func TestFrameAtLimitAccepted(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	payload := strings.Repeat("a", 32<<10)
	c.sendText(payload)
	if got := s.rec.waitMessages(t, c.conn, 1); got[0].data != payload {
		t.Fatalf("got %d bytes, want %d", len(got[0].data), len(payload))
	}
}

func TestMessageTooBigAcrossFrames(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)

	t.Run("at the limit", func(t *testing.T) {
		c := s.dial(t)
		chunk := bytes.Repeat([]byte("b"), 32<<10)
		c.send(wsproto.OpText, false, chunk)
		c.send(wsproto.OpContinuation, false, chunk)
		c.send(wsproto.OpContinuation, false, chunk)
		c.send(wsproto.OpContinuation, true, chunk)
		if got := s.rec.waitMessages(t, c.conn, 1); len(got[0].data) != 128<<10 {
			t.Fatalf("got %d bytes", len(got[0].data))
		}
	})
	t.Run("one byte over", func(t *testing.T) {
		c := s.dial(t)
		chunk := bytes.Repeat([]byte("b"), 32<<10)
		c.send(wsproto.OpText, false, chunk)
		c.send(wsproto.OpContinuation, false, chunk)
		c.send(wsproto.OpContinuation, false, chunk)
		c.send(wsproto.OpContinuation, false, chunk)
		// The header of the frame that would pass 128 KB is enough.
		f := clientFrame(wsproto.OpContinuation, true, []byte("b"))
		c.write(f[:6])
		expectProtocolClose(t, s, c, wsproto.CloseTooBig, f[6:]...)
		if n := len(s.rec.messages(c.conn)); n != 0 {
			t.Fatalf("%d messages delivered", n)
		}
	})
}

func TestBinaryRejected(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	c.send(wsproto.OpBinary, true, []byte{0, 1, 2, 3})
	expectProtocolClose(t, s, c, wsproto.CloseUnsupportedData)
	if n := len(s.rec.messages(c.conn)); n != 0 {
		t.Fatalf("%d messages delivered", n)
	}
}

func TestBinaryBase64Delivered(t *testing.T) {
	s := startServer(t, edge.Config{BinaryBase64: true, Limits: awsLimits()}, nil)
	c := s.dial(t)
	c.send(wsproto.OpBinary, true, []byte{0x00, 0xff, 0xfe, 0x80})
	c.send(wsproto.OpBinary, false, []byte{0xc3})
	c.send(wsproto.OpContinuation, true, []byte{0x28})
	c.sendText("text")
	want := []message{{"\x00\xff\xfe\x80", true}, {"\xc3\x28", true}, {"text", false}}
	got := s.rec.waitMessages(t, c.conn, 3)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
}

func TestInvalidUTF8(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"single frame", [][]byte{clientFrame(wsproto.OpText, true, []byte("ok\xffok"))}},
		{"surrogate", [][]byte{clientFrame(wsproto.OpText, true, []byte("\xed\xa0\x80"))}},
		{"sequence split across fragments", [][]byte{
			clientFrame(wsproto.OpText, false, []byte("abc\xc3")),
			clientFrame(wsproto.OpContinuation, true, []byte("(def")),
		}},
		{"truncated at the end of the message", [][]byte{
			clientFrame(wsproto.OpText, false, []byte("abc")),
			clientFrame(wsproto.OpContinuation, true, []byte("\xe2\x82")),
		}},
		// The rest of the message is never sent: the close must come
		// after the first fragment alone.
		{"fail fast in an unfinished message", [][]byte{
			clientFrame(wsproto.OpText, false, []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t)
			for _, f := range tc.frames {
				c.write(f)
			}
			expectProtocolClose(t, s, c, wsproto.CloseInvalidPayload)
			if n := len(s.rec.messages(c.conn)); n != 0 {
				t.Fatalf("%d messages delivered", n)
			}
		})
	}
	t.Run("valid sequence split across fragments", func(t *testing.T) {
		c := s.dial(t)
		c.send(wsproto.OpText, false, []byte("caf\xc3"))
		c.send(wsproto.OpContinuation, false, []byte("\xa9 \xf0\x9f"))
		c.send(wsproto.OpContinuation, true, []byte("\x98\x80"))
		if got := s.rec.waitMessages(t, c.conn, 1); got[0].data != "café 😀" {
			t.Fatalf("message %q", got[0].data)
		}
	})
}

func TestProtocolErrors(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	withRSV := func(rsv byte) []byte {
		f := clientFrame(wsproto.OpText, true, []byte("x"))
		f[0] |= rsv
		return f
	}
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"unmasked frame", wsproto.AppendFrame(nil, wsproto.OpText, true, []byte("hello"))},
		{"unmasked ping", wsproto.AppendFrame(nil, wsproto.OpPing, true, nil)},
		{"rsv1", withRSV(0x40)},
		{"rsv2", withRSV(0x20)},
		{"rsv3", withRSV(0x10)},
		{"continuation without start", clientFrame(wsproto.OpContinuation, true, []byte("x"))},
		{"fragmented ping", clientFrame(wsproto.OpPing, false, []byte("x"))},
		{"fragmented close", clientFrame(wsproto.OpClose, false, closePayload(1000, ""))},
		{"ping over 125 bytes", clientFrame(wsproto.OpPing, true, make([]byte, 126))},
		{"close over 125 bytes", clientFrame(wsproto.OpClose, true, closePayload(1000, strings.Repeat("r", 124)))},
		{"new message inside a fragmented one", append(
			clientFrame(wsproto.OpText, false, []byte("a")),
			clientFrame(wsproto.OpText, true, []byte("b"))...)},
		{"64-bit length with the top bit set", []byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1}},
	}
	for _, op := range []wsproto.Opcode{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		cases = append(cases, struct {
			name  string
			bytes []byte
		}{fmt.Sprintf("reserved opcode %#x", byte(op)), clientFrame(op, true, nil)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t)
			c.write(tc.bytes)
			expectProtocolClose(t, s, c, wsproto.CloseProtocolError)
			if n := len(s.rec.messages(c.conn)); n != 0 {
				t.Fatalf("%d messages delivered", n)
			}
		})
	}
}

// TestProtocolErrorClosingHandshake: after a protocol error the server
// reads on until the client's close reply, answering nothing and
// delivering nothing, and ends the connection on that reply; a second
// protocol error while it waits ends it at once.
func TestProtocolErrorClosingHandshake(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	// The rest of the broken frame's payload looks like a close frame;
	// it must be skipped as payload.
	lookalike := clientFrame(wsproto.OpClose, true, closePayload(1000, ""))
	broken := append([]byte{0x81 | 0x40, byte(0x80 | len(lookalike))}, maskKey[:]...)
	broken = append(broken, lookalike...)
	traffic := [][]byte{
		clientFrame(wsproto.OpText, true, []byte("late")),
		clientFrame(wsproto.OpPing, true, []byte("ping")),
		clientFrame(wsproto.OpBinary, false, []byte{1}),
		clientFrame(wsproto.OpContinuation, true, make([]byte, 40<<10)),
	}

	t.Run("close reply", func(t *testing.T) {
		c := s.dial(t)
		c.write(broken[:3])
		reason := c.expectClose(wsproto.CloseProtocolError)
		c.write(broken[3:])
		for _, f := range traffic {
			c.write(f)
		}
		// The server waits for the close reply: the connection is open.
		c.write(clientFrame(wsproto.OpText, true, []byte("x"))[:3])
		if d := s.rec.disconnects(c.conn); len(d) != 0 {
			t.Fatalf("disconnected before the close reply: %v", d)
		}
		c.write(clientFrame(wsproto.OpText, true, []byte("x"))[3:])
		c.finishClose(wsproto.CloseProtocolError)
		if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseProtocolError, reason}) {
			t.Fatalf("Disconnect(%d, %q), want (1002, %q)", d.code, d.reason, reason)
		}
		if m := s.rec.messages(c.conn); len(m) != 0 {
			t.Fatalf("messages delivered after the error: %v", m)
		}
	})
	t.Run("second protocol error", func(t *testing.T) {
		c := s.dial(t)
		c.write(broken)
		reason := c.expectClose(wsproto.CloseProtocolError)
		c.write(traffic[0])
		c.write(wsproto.AppendFrame(nil, wsproto.OpText, true, []byte("unmasked")))
		c.expectEOF()
		if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseProtocolError, reason}) {
			t.Fatalf("Disconnect(%d, %q), want (1002, %q)", d.code, d.reason, reason)
		}
	})
}

func TestPingAnsweredWithPong(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	for _, payload := range []string{"", "hello", strings.Repeat("p", 125), "\x00\xff binary"} {
		c.send(wsproto.OpPing, true, []byte(payload))
		f := c.next()
		if f.op != wsproto.OpPong || string(f.payload) != payload {
			t.Fatalf("ping %q answered with %v", payload, f)
		}
	}
	// An unsolicited pong is ignored.
	c.send(wsproto.OpPong, true, []byte("unsolicited"))
	c.send(wsproto.OpPing, true, []byte("after"))
	if f := c.next(); f.op != wsproto.OpPong || string(f.payload) != "after" {
		t.Fatalf("got %v after an unsolicited pong", f)
	}
	if n := len(s.rec.messages(c.conn)); n != 0 {
		t.Fatalf("control frames produced %d messages", n)
	}
}

func TestControlFramesBetweenFragments(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	c.send(wsproto.OpText, false, []byte("Hello"))
	c.send(wsproto.OpPing, true, []byte("p1"))
	c.send(wsproto.OpContinuation, false, []byte(", "))
	c.send(wsproto.OpPong, true, []byte("unsolicited"))
	c.send(wsproto.OpPing, true, nil)
	c.send(wsproto.OpContinuation, true, []byte("World"))
	for _, want := range []string{"p1", ""} {
		if f := c.next(); f.op != wsproto.OpPong || string(f.payload) != want {
			t.Fatalf("got %v, want pong %q", f, want)
		}
	}
	if got := s.rec.waitMessages(t, c.conn, 1); got[0] != (message{"Hello, World", false}) {
		t.Fatalf("message %+v", got[0])
	}
}

func TestOneByteAtATime(t *testing.T) {
	s := startServer(t, edge.Config{BinaryBase64: true, Limits: awsLimits()}, nil)
	c := s.dial(t)
	long := strings.Repeat("0123456789", 30) // a 16-bit length
	var stream []byte
	stream = append(stream, clientFrame(wsproto.OpText, true, []byte("first"))...)
	stream = append(stream, clientFrame(wsproto.OpText, false, []byte("κό"))...)
	stream = append(stream, clientFrame(wsproto.OpPing, true, []byte("mid"))...)
	stream = append(stream, clientFrame(wsproto.OpContinuation, true, []byte("σμε"))...)
	stream = append(stream, clientFrame(wsproto.OpText, true, []byte(long))...)
	stream = append(stream, clientFrame(wsproto.OpBinary, true, []byte{1, 2, 3})...)
	stream = append(stream, clientFrame(wsproto.OpText, true, nil)...)
	for i := range stream {
		c.write(stream[i : i+1])
	}
	if f := c.next(); f.op != wsproto.OpPong || string(f.payload) != "mid" {
		t.Fatalf("got %v, want pong", f)
	}
	want := []message{{"first", false}, {"κόσμε", false}, {long, false}, {"\x01\x02\x03", true}, {"", false}}
	if got := s.rec.waitMessages(t, c.conn, len(want)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
}

func TestMessagePipelinedWithUpgrade(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	var extra []byte
	extra = append(extra, clientFrame(wsproto.OpText, true, []byte("in the handshake segment"))...)
	extra = append(extra, clientFrame(wsproto.OpPing, true, []byte("early"))...)
	extra = append(extra, clientFrame(wsproto.OpText, true, []byte("second"))...)
	c := s.dial(t, extra...)
	if f := c.next(); f.op != wsproto.OpPong || string(f.payload) != "early" {
		t.Fatalf("got %v, want pong", f)
	}
	want := []message{{"in the handshake segment", false}, {"second", false}}
	if got := s.rec.waitMessages(t, c.conn, 2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
}

func TestClientClose(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	for _, tc := range []struct {
		code   int
		reason string
	}{
		{1000, "bye"},
		{1001, ""},
		{1000, "ünïcode reason"},
		{3000, "registered"},
		{4999, strings.Repeat("r", 123)},
	} {
		t.Run(fmt.Sprintf("%d %q", tc.code, tc.reason), func(t *testing.T) {
			c := s.dial(t)
			c.send(wsproto.OpClose, true, closePayload(tc.code, tc.reason))
			f := c.next()
			if f.op != wsproto.OpClose || f.closeCode() != tc.code {
				t.Fatalf("server answered %v, want close %d", f, tc.code)
			}
			c.expectEOF()
			if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{tc.code, tc.reason}) {
				t.Fatalf("Disconnect(%d, %q), want (%d, %q)", d.code, d.reason, tc.code, tc.reason)
			}
		})
	}
}

func TestClientCloseNoStatus(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	c.send(wsproto.OpClose, true, nil)
	if f := c.next(); f.op != wsproto.OpClose || len(f.payload) != 0 {
		t.Fatalf("server answered %v, want an empty close frame", f)
	}
	c.expectEOF()
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseNoStatus, ""}) {
		t.Fatalf("Disconnect(%d, %q), want (1005, \"\")", d.code, d.reason)
	}
}

func TestClientCloseAfterData(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	// A message, then a close in the same segment: the message is
	// delivered, data after the close is ignored.
	var b []byte
	b = append(b, clientFrame(wsproto.OpText, true, []byte("last words"))...)
	b = append(b, clientFrame(wsproto.OpClose, true, closePayload(1000, "done"))...)
	b = append(b, clientFrame(wsproto.OpText, true, []byte("after close"))...)
	c.write(b)
	if f := c.next(); f.op != wsproto.OpClose || f.closeCode() != 1000 {
		t.Fatalf("server answered %v", f)
	}
	c.expectEOF()
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{1000, "done"}) {
		t.Fatalf("Disconnect %+v", d)
	}
	if got := s.rec.waitMessages(t, c.conn, 1); got[0].data != "last words" {
		t.Fatalf("messages %v", got)
	}
}

func TestClientCloseInvalid(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			c := s.dial(t)
			c.send(wsproto.OpClose, true, closePayload(code, ""))
			expectProtocolClose(t, s, c, wsproto.CloseProtocolError)
		})
	}
	t.Run("1-byte payload", func(t *testing.T) {
		c := s.dial(t)
		c.send(wsproto.OpClose, true, []byte{0x03})
		expectProtocolClose(t, s, c, wsproto.CloseProtocolError)
	})
	t.Run("invalid utf-8 reason", func(t *testing.T) {
		c := s.dial(t)
		c.send(wsproto.OpClose, true, closePayload(1000, "bad \xff"))
		expectProtocolClose(t, s, c, wsproto.CloseInvalidPayload)
	})
}

func TestTCPDropWithoutClose(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	t.Run("between messages", func(t *testing.T) {
		c := s.dial(t)
		c.sendText("one")
		s.rec.waitMessages(t, c.conn, 1)
		_ = c.nc.Close()
		if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseAbnormal, ""}) {
			t.Fatalf("Disconnect(%d, %q), want (1006, \"\")", d.code, d.reason)
		}
		if s.hub.Get(c.conn.ID()) != nil {
			t.Fatal("closed connection still in the hub")
		}
		if err := c.conn.Send([]byte("late")); !errors.Is(err, hub.ErrClosed) {
			t.Fatalf("Send after disconnect: %v, want hub.ErrClosed", err)
		}
	})
	t.Run("inside a frame", func(t *testing.T) {
		c := s.dial(t)
		c.write(clientFrame(wsproto.OpText, true, []byte("never finished"))[:9])
		_ = c.nc.Close()
		if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseAbnormal, ""}) {
			t.Fatalf("Disconnect(%d, %q), want (1006, \"\")", d.code, d.reason)
		}
	})
	eventually(t, func() bool { return s.Len() == 0 }, "connection count to drop to 0 (is %d)", s.Len())
}

func TestIdleTimeout(t *testing.T) {
	l := awsLimits()
	l.IdleTimeout = 300 * time.Millisecond
	s := startServer(t, edge.Config{Limits: l}, nil)
	c := s.dial(t)
	if reason := c.expectClose(wsproto.CloseGoingAway); reason != "Going away" {
		t.Fatalf("close reason %q", reason)
	}
	c.finishClose(wsproto.CloseGoingAway)
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseGoingAway, "Going away"}) {
		t.Fatalf("Disconnect(%d, %q), want (1001, \"Going away\")", d.code, d.reason)
	}
}

// TestIdleTimeoutResetByData keeps a connection busy for twice the idle
// timeout with data flowing one way at a time. Every message arriving, and
// every Send succeeding, shows the connection was still open; the close
// comes once the data stops. A trial in which the test itself was held up
// for half an idle timeout between two messages proves nothing, and runs
// again on a new connection.
func TestIdleTimeoutResetByData(t *testing.T) {
	const idle = time.Second
	const pace = idle / 10
	const n = int(2 * idle / pace)
	l := awsLimits()
	l.IdleTimeout = idle
	s := startServer(t, edge.Config{Limits: l}, nil)

	// busy calls step n times, pace apart, on a new connection and returns
	// the connection, or nil when the test was held up.
	busy := func(t *testing.T, step func(c *client, i int)) *client {
		c := s.dial(t)
		last := time.Now()
		for i := range n {
			now := time.Now()
			if now.Sub(last) > idle/2 {
				_ = c.nc.Close()
				return nil
			}
			last = now
			step(c, i)
			time.Sleep(pace)
		}
		return c
	}
	trials := func(t *testing.T, step func(c *client, i int)) *client {
		for range 3 {
			if c := busy(t, step); c != nil {
				return c
			}
		}
		t.Skip("the test was held up for half an idle timeout in every trial")
		return nil
	}

	t.Run("client to server", func(t *testing.T) {
		t.Parallel()
		c := trials(t, func(c *client, i int) { c.sendText(fmt.Sprint(i)) })
		c.expectClose(wsproto.CloseGoingAway)
		c.finishClose(wsproto.CloseGoingAway)
		if got := s.rec.messages(c.conn); len(got) != n {
			t.Fatalf("%d of %d messages delivered before the idle close", len(got), n)
		}
		if d := s.rec.waitDisconnect(t, c.conn); d.code != wsproto.CloseGoingAway {
			t.Fatalf("Disconnect %+v", d)
		}
	})
	t.Run("server to client", func(t *testing.T) {
		t.Parallel()
		c := trials(t, func(c *client, i int) {
			if err := c.conn.Send([]byte(fmt.Sprint(i))); err != nil {
				t.Fatalf("Send #%d: %v", i, err)
			}
			c.expectText(fmt.Sprint(i))
		})
		c.expectClose(wsproto.CloseGoingAway)
		c.finishClose(wsproto.CloseGoingAway)
		if d := s.rec.waitDisconnect(t, c.conn); d.code != wsproto.CloseGoingAway {
			t.Fatalf("Disconnect %+v", d)
		}
	})
	t.Run("pings do not count", func(t *testing.T) {
		t.Parallel()
		c := s.dial(t)
		for range n {
			if err := c.writeErr(clientFrame(wsproto.OpPing, true, nil)); err != nil {
				break
			}
			f := c.next()
			if f.op == wsproto.OpClose {
				if f.closeCode() != wsproto.CloseGoingAway {
					t.Fatalf("closed with %d", f.closeCode())
				}
				c.finishClose(wsproto.CloseGoingAway)
				s.rec.waitDisconnect(t, c.conn)
				return
			}
			time.Sleep(pace)
		}
		t.Fatal("pings kept the connection open for two idle timeouts")
	})
}

func TestMaxConnectionDuration(t *testing.T) {
	l := awsLimits()
	l.MaxConnectionDuration = 300 * time.Millisecond
	l.IdleTimeout = time.Hour
	s := startServer(t, edge.Config{Limits: l}, nil)
	c := s.dial(t)
	if reason := c.expectClose(wsproto.CloseGoingAway); reason != "Going away" {
		t.Fatalf("close reason %q", reason)
	}
	c.finishClose(wsproto.CloseGoingAway)
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseGoingAway, "Going away"}) {
		t.Fatalf("Disconnect(%d, %q), want (1001, \"Going away\")", d.code, d.reason)
	}
}

func TestKeepalivePings(t *testing.T) {
	l := awsLimits()
	l.PingInterval = 400 * time.Millisecond
	s := startServer(t, edge.Config{Limits: l}, nil)
	live := s.dial(t)
	silent := s.dial(t)

	// The live client answers every ping until the silent one, which
	// never reads or writes, has been dropped, and for at least three
	// intervals.
	pings := 0
	for pings < 3 || len(s.rec.disconnects(silent.conn)) == 0 {
		f := live.next()
		if f.op != wsproto.OpPing {
			t.Fatalf("live client got %v, want a ping", f)
		}
		pings++
		live.send(wsproto.OpPong, true, f.payload)
	}
	if d := s.rec.disconnects(silent.conn)[0]; d.code != wsproto.CloseAbnormal {
		t.Fatalf("silent client: Disconnect(%d, %q), want 1006", d.code, d.reason)
	}
	if d := s.rec.disconnects(live.conn); len(d) != 0 {
		t.Fatalf("live client disconnected: %+v", d)
	}
	live.sendText("still here")
	s.rec.waitMessages(t, live.conn, 1)

	// The silent client got pings, and then the socket closed without a
	// close frame.
	for {
		f, err := silent.nextErr()
		if err != nil {
			break
		}
		if f.op != wsproto.OpPing {
			t.Fatalf("silent client got %v, want only pings", f)
		}
	}
}

func TestSlowConsumer(t *testing.T) {
	l := awsLimits()
	l.OutboundQueueBytes = 256 << 10
	l.MaxFrameBytes = 0
	s := startServer(t, edge.Config{Limits: l}, nil)
	slow := s.dial(t)
	if tcp, ok := slow.nc.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(4 << 10)
	}
	fast := s.dial(t)

	// The fast client's messages add up to far less than the queue bound,
	// so only a stall caused by the slow client could close it.
	const fastN = 200
	received := make(chan []string, 1)
	go func() {
		var got []string
		for len(got) < fastN {
			f, err := fast.nextErr()
			if err != nil || f.op != wsproto.OpText {
				break
			}
			got = append(got, string(f.payload))
		}
		received <- got
	}()

	big := bytes.Repeat([]byte("x"), 64<<10)
	var slowErr error
	sent := 0
	for i := 0; i < 10000 && slowErr == nil; i++ {
		slowErr = slow.conn.Send(big)
		if sent < fastN {
			if err := fast.conn.Send([]byte(fmt.Sprintf("m%03d", sent))); err != nil {
				t.Fatalf("Send to the fast client: %v", err)
			}
			sent++
		}
	}
	if !errors.Is(slowErr, hub.ErrClosed) {
		t.Fatalf("Send to the slow client never failed (last error %v)", slowErr)
	}
	for ; sent < fastN; sent++ {
		if err := fast.conn.Send([]byte(fmt.Sprintf("m%03d", sent))); err != nil {
			t.Fatalf("Send to the fast client: %v", err)
		}
	}
	if d := s.rec.waitDisconnect(t, slow.conn); d != (disconnect{wsproto.ClosePolicyViolation, "slow consumer"}) {
		t.Fatalf("slow client: Disconnect(%d, %q), want (1008, \"slow consumer\")", d.code, d.reason)
	}
	if err := slow.conn.Send([]byte("more")); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Send after the slow consumer was closed: %v", err)
	}
	got := <-received
	if len(got) != fastN {
		t.Fatalf("fast client received %d of %d messages", len(got), fastN)
	}
	for i, m := range got {
		if m != fmt.Sprintf("m%03d", i) {
			t.Fatalf("fast client message #%d is %q", i, m)
		}
	}
	if d := s.rec.disconnects(fast.conn); len(d) != 0 {
		t.Fatalf("fast client disconnected: %+v", d)
	}
}

// TestPingFloodIsSlowConsumer: pongs count toward the outbound queue like
// data, so a client that pings in a loop and never reads is closed as a slow
// consumer, not dropped by the event loop once its write buffer overflows.
func TestPingFloodIsSlowConsumer(t *testing.T) {
	l := awsLimits()
	l.OutboundQueueBytes = 64 << 10
	s := startServer(t, edge.Config{Limits: l}, nil)
	// The client's receive buffer keeps its size: shrinking it below the
	// window it has already advertised makes it drop the server's segments,
	// with the acknowledgements they carry, and stalls both directions.
	c := s.dial(t)
	pings := bytes.Repeat(clientFrame(wsproto.OpPing, true, bytes.Repeat([]byte("p"), 125)), 1000)
	deadline := time.Now().Add(ioTimeout)
	for len(s.rec.disconnects(c.conn)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a client pinging without reading was never disconnected")
		}
		// Fails once the server has closed the socket.
		_ = c.writeErr(pings)
	}
	if d := s.rec.disconnects(c.conn)[0]; d != (disconnect{wsproto.ClosePolicyViolation, "slow consumer"}) {
		t.Fatalf("Disconnect(%d, %q), want (1008, \"slow consumer\")", d.code, d.reason)
	}
}

// TestSendRightAfterUpgrade sends to each connection as soon as its client
// has read the 101: a connection is open from the moment the client can
// know it is.
func TestSendRightAfterUpgrade(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	for i := range 50 {
		c := s.dial(t)
		if err := c.conn.Send([]byte("welcome")); err != nil {
			t.Fatalf("connection #%d: Send right after the upgrade: %v", i, err)
		}
		c.expectText("welcome")
		if s.hub.Get(c.conn.ID()) == nil {
			t.Fatalf("connection #%d is not in the hub after the upgrade", i)
		}
		_ = c.nc.Close()
	}
}

func TestMaxInflightMessages(t *testing.T) {
	release := make(chan struct{})
	rec := newRecorder()
	rec.onMessage = func(*edge.Conn, []byte, bool) { <-release }
	l := awsLimits()
	l.MaxInflightMessages = 4
	s := startServer(t, edge.Config{Limits: l}, rec)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	c := s.dial(t)
	// The handler holds the first message; four more fill the queue
	// whether or not the first has left it, and the sixth overflows.
	for i := range 6 {
		c.sendText(fmt.Sprint(i))
	}
	reason := c.expectClose(wsproto.CloseTryAgainLater)
	c.hangUp(wsproto.CloseTryAgainLater)
	// The messages accepted before the overflow are still handled, and
	// the Disconnect comes after them.
	close(release)
	released = true
	if d := s.rec.waitDisconnect(t, c.conn); d != (disconnect{wsproto.CloseTryAgainLater, reason}) {
		t.Fatalf("Disconnect(%d, %q), want (1013, %q)", d.code, d.reason, reason)
	}
	// Four or five were accepted, as the first had left the queue or not.
	got := s.rec.messages(c.conn)
	if len(got) != 4 && len(got) != 5 {
		t.Fatalf("%d messages handled, want the 4 or 5 accepted before the overflow: %v", len(got), got)
	}
	for i, m := range got {
		if m.data != fmt.Sprint(i) {
			t.Fatalf("message #%d is %v", i, m)
		}
	}
}

func TestMessagesInOrder(t *testing.T) {
	rec := newRecorder()
	rec.onMessage = func(_ *edge.Conn, data []byte, _ bool) {
		if data[len(data)-1]%3 == 0 {
			runtime.Gosched()
		}
	}
	const n = 300
	l := awsLimits()
	l.MaxInflightMessages = n
	s := startServer(t, edge.Config{Limits: l}, rec)
	clients := []*client{s.dial(t), s.dial(t), s.dial(t)}
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for _, c := range clients {
		wg.Go(func() {
			for i := range n {
				if err := c.writeErr(clientFrame(wsproto.OpText, true, []byte(fmt.Sprintf("%s/%03d", c.name, i)))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range clients {
		got := s.rec.waitMessages(t, c.conn, n)
		for i, m := range got {
			if want := fmt.Sprintf("%s/%03d", c.name, i); m.data != want {
				t.Fatalf("%s: message #%d is %q, want %q", c.name, i, m.data, want)
			}
		}
	}
}

func TestMaxConnections(t *testing.T) {
	l := awsLimits()
	l.MaxConnections = 2
	s := startServer(t, edge.Config{Limits: l}, nil)
	a := s.dial(t)
	s.dial(t)
	before := s.rec.acceptedCount()
	_, resp := s.tryDial(t)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third upgrade: %s, want 503", resp.Status)
	}
	if s.rec.acceptedCount() != before {
		t.Fatal("Connect ran for a connection over the limit")
	}
	// A slot frees once a connection has closed.
	_ = a.nc.Close()
	s.rec.waitDisconnect(t, a.conn)
	eventually(t, func() bool { return s.Len() < 2 }, "connection count to drop")
	s.dial(t)
}

func TestHTTPRejections(t *testing.T) {
	s := startServer(t, edge.Config{Path: "/prod", Limits: awsLimits()}, nil)
	valid := upgradeRequest(s.addr, "/prod", "http")
	smuggled := clientFrame(wsproto.OpText, true, []byte("smuggled"))
	for _, tc := range []struct {
		name   string
		req    string
		status int
	}{
		{"wrong path", strings.Replace(valid, "/prod", "/dev", 1), http.StatusNotFound},
		{"root path", strings.Replace(valid, "/prod", "/", 1), http.StatusNotFound},
		{"plain GET", "GET /prod HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"no Connection: upgrade", strings.Replace(valid, "Connection: Upgrade", "Connection: keep-alive", 1), http.StatusBadRequest},
		{"no Upgrade: websocket", strings.Replace(valid, "Upgrade: websocket", "Upgrade: h2c", 1), http.StatusBadRequest},
		{"POST", strings.Replace(valid, "GET", "POST", 1), http.StatusMethodNotAllowed},
		{"version 8", strings.Replace(valid, "Version: 13", "Version: 8", 1), http.StatusUpgradeRequired},
		{"no version", strings.Replace(valid, "Sec-WebSocket-Version: 13\r\n", "", 1), http.StatusUpgradeRequired},
		{"short key", strings.Replace(valid, testKey, "c2hvcnQ=", 1), http.StatusBadRequest},
		{"no key", strings.Replace(valid, "Sec-WebSocket-Key: "+testKey+"\r\n", "", 1), http.StatusBadRequest},
		// A request body would reach the frame parser as the client's
		// first frames.
		{"body with Content-Length", upgradeRequest(s.addr, "/prod", "http", fmt.Sprintf("Content-Length: %d", len(smuggled))) + string(smuggled), http.StatusBadRequest},
		{"chunked body", upgradeRequest(s.addr, "/prod", "http", "Transfer-Encoding: chunked") + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status != http.StatusNotFound {
				r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.req)))
				if err != nil {
					t.Fatal(err)
				}
				if st, _ := wsproto.CheckUpgrade(r); st != tc.status {
					t.Fatalf("wsproto.CheckUpgrade says %d, the test expects %d", st, tc.status)
				}
			}
			resp, body := rawHTTP(t, s.addr, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d (body %s)", resp.Status, tc.status, body)
			}
			var msg struct{ Message string }
			if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Message == "" {
				t.Fatalf("body %q is not {\"message\": ...}", body)
			}
			if tc.status == http.StatusUpgradeRequired && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Fatalf("426 without Sec-WebSocket-Version: 13 (headers %v)", resp.Header)
			}
		})
	}
	if n := s.rec.acceptedCount(); n != 0 {
		t.Fatalf("Connect ran %d times for rejected requests", n)
	}
}

func TestConnectRejected(t *testing.T) {
	rec := newRecorder()
	rec.onConnect = func(_ *edge.Conn, r *http.Request) (string, error) {
		switch r.URL.Query().Get("deny") {
		case "auth":
			return "", &edge.RejectError{Status: http.StatusUnauthorized, Message: "Unauthorized"}
		case "fail":
			return "", errors.New("backend unreachable")
		}
		return "", nil
	}
	s := startServer(t, edge.Config{Path: "/prod", Limits: awsLimits()}, rec)
	for _, tc := range []struct {
		query  string
		status int
		msg    string
	}{
		{"auth", http.StatusUnauthorized, "Unauthorized"},
		{"fail", http.StatusBadGateway, "Bad Gateway"},
	} {
		req := strings.Replace(upgradeRequest(s.addr, "/prod?deny="+tc.query, "x"), "X-Test-Client", "X-Ignored", 1)
		resp, body := rawHTTP(t, s.addr, req)
		var msg struct{ Message string }
		_ = json.Unmarshal([]byte(body), &msg)
		if resp.StatusCode != tc.status || msg.Message != tc.msg {
			t.Fatalf("deny=%s: %s %s, want %d %q", tc.query, resp.Status, body, tc.status, tc.msg)
		}
	}
	eventually(t, func() bool { return s.Len() == 0 }, "rejected handshakes to stop counting")
	if n := s.hub.Len(); n != 0 {
		t.Fatalf("rejected connections in the hub: %d", n)
	}
	// rec.check, run at shutdown, requires that no Disconnect ran for them.
}

// TestSubprotocolMustBeOffered: the 101 carries the handler's subprotocol
// only when it is, exactly, one the client offered; anything else is the
// handler's failure (502), and the connection, whose Connect succeeded, gets
// its Disconnect.
func TestSubprotocolMustBeOffered(t *testing.T) {
	rec := newRecorder()
	rec.onConnect = func(_ *edge.Conn, r *http.Request) (string, error) {
		return r.URL.Query().Get("sub"), nil
	}
	s := startServer(t, edge.Config{Limits: awsLimits()}, rec)
	for _, tc := range []struct {
		name, offer, sub string
		status           int
	}{
		{"offered", "chat, superchat", "superchat", http.StatusSwitchingProtocols},
		{"none chosen", "chat", "", http.StatusSwitchingProtocols},
		{"not offered", "chat", "superchat", http.StatusBadGateway},
		{"nothing offered", "", "chat", http.StatusBadGateway},
		{"other case", "chat", "Chat", http.StatusBadGateway},
		{"a whole offer list", "chat, superchat", "chat, superchat", http.StatusBadGateway},
		{"header injection", "chat", "chat\r\nSet-Cookie: session=stolen", http.StatusBadGateway},
		{"not a token", "a/b", "a/b", http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.acceptedConns())
			var offer []string
			if tc.offer != "" {
				offer = append(offer, "Sec-WebSocket-Protocol: "+tc.offer)
			}
			req := upgradeRequest(s.addr, "/?sub="+url.QueryEscape(tc.sub), "sub-"+tc.name, offer...)
			resp, body := rawHTTP(t, s.addr, req)
			if c := resp.Header.Get("Set-Cookie"); c != "" {
				t.Fatalf("response sets a cookie: %q", c)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s (body %q), want %d", resp.Status, body, tc.status)
			}
			if got := resp.Header.Values("Sec-WebSocket-Protocol"); tc.status == http.StatusSwitchingProtocols && tc.sub != "" {
				if len(got) != 1 || got[0] != tc.sub {
					t.Fatalf("Sec-WebSocket-Protocol %q, want %q", got, tc.sub)
				}
			} else if len(got) != 0 {
				t.Fatalf("Sec-WebSocket-Protocol %q, want none", got)
			}
			conns := rec.acceptedConns()
			if len(conns) != before+1 {
				t.Fatalf("Connect ran %d times", len(conns)-before)
			}
			// The client has hung up: every connection ends with one
			// Disconnect, a refused one with 1011.
			d := rec.waitDisconnect(t, conns[len(conns)-1])
			if tc.status == http.StatusBadGateway && d.code != wsproto.CloseInternalError {
				t.Fatalf("Disconnect(%d, %q), want 1011", d.code, d.reason)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	l := awsLimits()
	l.CloseTimeout = 300 * time.Millisecond
	s := startServer(t, edge.Config{Limits: l}, nil)
	var polite []*client
	for range 3 {
		polite = append(polite, s.dial(t))
	}
	silent := s.dial(t)

	var wg sync.WaitGroup
	errs := make(chan error, len(polite))
	for _, c := range polite {
		wg.Go(func() {
			f, err := c.nextErr()
			if err != nil || f.op != wsproto.OpClose || f.closeCode() != wsproto.CloseGoingAway || f.closeReason() != "Going away" {
				errs <- fmt.Errorf("%s: got %v %v, want close 1001 \"Going away\"", c.name, f, err)
				return
			}
			if err := c.writeErr(clientFrame(wsproto.OpClose, true, closePayload(1001, ""))); err != nil {
				errs <- err
				return
			}
			if f, err := c.nextErr(); err == nil {
				errs <- fmt.Errorf("%s: got %v after the close handshake", c.name, f)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Shutdown returns after every Disconnect has run.
	for _, c := range append(polite, silent) {
		d := s.rec.disconnects(c.conn)
		if len(d) != 1 || d[0] != (disconnect{wsproto.CloseGoingAway, "Going away"}) {
			t.Errorf("%s: Disconnect calls %+v, want one (1001, \"Going away\")", c.name, d)
		}
	}
	// The silent client got the close frame too, then was dropped.
	if reason := silent.expectClose(wsproto.CloseGoingAway); reason != "Going away" {
		t.Fatalf("silent client: close reason %q", reason)
	}
	silent.expectEOF()
	if s.Len() != 0 || s.hub.Len() != 0 {
		t.Fatalf("after Shutdown: server counts %d, hub holds %d", s.Len(), s.hub.Len())
	}
	if nc, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		_ = nc.Close()
		t.Fatal("listener still accepts after Shutdown")
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestReplyKeepsOrder: Reply writes at once only when nothing waits in the
// outbox; behind queued messages it waits its turn, so the client gets
// every message in the order the handler sent them.
func TestReplyKeepsOrder(t *testing.T) {
	rec := newRecorder()
	rec.onMessage = func(c *edge.Conn, data []byte, _ bool) {
		for i := range 50 {
			msg := fmt.Sprintf("%s-%d", data, i)
			if i%3 == 0 {
				_ = c.Send([]byte(msg))
			} else {
				_ = c.Reply([]byte(msg))
			}
		}
	}
	s := startServer(t, edge.Config{Limits: awsLimits()}, rec)
	c := s.dial(t)
	for round := range 4 {
		c.sendText(fmt.Sprint(round))
		for i := range 50 {
			c.expectText(fmt.Sprintf("%d-%d", round, i))
		}
	}
}
