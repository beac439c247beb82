package edge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/wsproto"
)

func conns(cs ...*client) []hub.Conn {
	out := make([]hub.Conn, len(cs))
	for i, c := range cs {
		out[i] = c.conn
	}
	return out
}

// TestBroadcastSharedFrame: every subscriber gets exactly the bytes, as a
// text message when they are UTF-8 and binary otherwise, split at the frame
// limit like Send, and in order with what Send queued around them.
func TestBroadcastSharedFrame(t *testing.T) {
	l := awsLimits()
	l.MaxFrameBytes = 1 << 10
	s := startServer(t, edge.Config{Limits: l}, nil)
	cs := []*client{s.dial(t), s.dial(t), s.dial(t)}
	all := conns(cs...)

	bin := []byte{0xff, 0x00, 'a'}
	long := bytes.Repeat([]byte("y"), 2500)
	if n := hub.Broadcast(all, []byte("hello")); n != len(cs) {
		t.Fatalf("Broadcast took %d, want %d", n, len(cs))
	}
	for _, c := range cs {
		if err := c.conn.Send([]byte("direct-" + c.name)); err != nil {
			t.Fatal(err)
		}
	}
	if n := hub.Broadcast(all, bin); n != len(cs) {
		t.Fatalf("Broadcast took %d, want %d", n, len(cs))
	}
	if n := hub.Broadcast(all, long); n != len(cs) {
		t.Fatalf("Broadcast took %d, want %d", n, len(cs))
	}
	for _, c := range cs {
		c.expectText("hello")
		c.expectText("direct-" + c.name)
		if f := c.next(); f.op != wsproto.OpBinary || !f.fin || !bytes.Equal(f.payload, bin) {
			t.Fatalf("%s: got %v, want binary %q", c.name, f, bin)
		}
		var got []byte
		for i, want := range []struct {
			op  wsproto.Opcode
			n   int
			fin bool
		}{{wsproto.OpText, 1024, false}, {wsproto.OpContinuation, 1024, false}, {wsproto.OpContinuation, 452, true}} {
			f := c.next()
			if f.op != want.op || len(f.payload) != want.n || f.fin != want.fin {
				t.Fatalf("%s: fragment %d is %v, want %v fin=%v with %d bytes", c.name, i, f, want.op, want.fin, want.n)
			}
			got = append(got, f.payload...)
		}
		if !bytes.Equal(got, long) {
			t.Fatalf("%s: reassembled message differs", c.name)
		}
	}
}

// TestBroadcastManyInOrder publishes from several goroutines to the same
// connections: each client receives every message once, and the messages of
// one publisher in the order it sent them, however the writes were
// coalesced.
func TestBroadcastManyInOrder(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	cs := []*client{s.dial(t), s.dial(t), s.dial(t), s.dial(t)}
	all := conns(cs...)
	const publishers, each = 3, 200
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				if n := hub.Broadcast(all, fmt.Appendf(nil, "%d/%03d", p, i)); n != len(all) {
					t.Errorf("Broadcast took %d, want %d", n, len(all))
					return
				}
			}
		})
	}
	wg.Wait()
	for _, c := range cs {
		next := make([]int, publishers)
		for range publishers * each {
			f := c.next()
			var p, i int
			if _, err := fmt.Sscanf(string(f.payload), "%d/%d", &p, &i); err != nil || f.op != wsproto.OpText {
				t.Fatalf("%s: unexpected %v", c.name, f)
			}
			if i != next[p] {
				t.Fatalf("%s: publisher %d message %d arrived when %d was due", c.name, p, i, next[p])
			}
			next[p]++
		}
	}
}

// TestBroadcastSlowConsumer: a subscriber that stops reading is closed with
// 1008 once its queue is over the bound; the others get every message, in
// order. The messages are small, so that a reading client (however slowly
// the race detector lets it read) stays far from the bound.
func TestBroadcastSlowConsumer(t *testing.T) {
	l := awsLimits()
	l.OutboundQueueBytes = 64 << 10
	l.MaxFrameBytes = 0
	s := startServer(t, edge.Config{Limits: l}, nil)
	slow := s.dial(t)
	if tcp, ok := slow.nc.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(4 << 10)
	}
	fast := []*client{s.dial(t), s.dial(t)}
	all := conns(slow, fast[0], fast[1])

	pad := strings.Repeat("x", 1<<10)
	type result struct {
		name string
		got  int
		err  error
	}
	results := make(chan result, len(fast))
	for _, c := range fast {
		go func() {
			for i := 0; ; i++ {
				f, err := c.nextErr()
				if err != nil {
					results <- result{c.name, i, err}
					return
				}
				if string(f.payload) == "end" {
					results <- result{c.name, i, nil}
					return
				}
				if want := fmt.Sprintf("%05d", i); f.op != wsproto.OpText || !strings.HasPrefix(string(f.payload), want) {
					results <- result{c.name, i, fmt.Errorf("message %d is %v", i, f)}
					return
				}
			}
		}()
	}
	sent, closedAt := 0, -1
	for ; sent < 20000 && (closedAt < 0 || sent < closedAt+50); sent++ {
		n := hub.Broadcast(all, []byte(fmt.Sprintf("%05d", sent)+pad))
		switch {
		case closedAt < 0 && n == len(all)-1:
			closedAt = sent
		case closedAt < 0 && n != len(all), closedAt >= 0 && n != len(all)-1:
			t.Fatalf("publish %d reached %d connections", sent, n)
		}
	}
	if closedAt < 0 {
		t.Fatal("the stalled subscriber was never closed")
	}
	hub.Broadcast(all, []byte("end"))
	for range fast {
		if r := <-results; r.err != nil || r.got != sent {
			t.Fatalf("%s: received %d of %d: %v", r.name, r.got, sent, r.err)
		}
	}
	if d := s.rec.waitDisconnect(t, slow.conn); d != (disconnect{wsproto.ClosePolicyViolation, "slow consumer"}) {
		t.Fatalf("slow client: Disconnect(%d, %q), want (1008, \"slow consumer\")", d.code, d.reason)
	}
	if err := slow.conn.SendMessage(hub.NewMessage([]byte("more"))); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("SendMessage after the slow consumer was closed: %v", err)
	}
	for _, c := range fast {
		if d := s.rec.disconnects(c.conn); len(d) != 0 {
			t.Fatalf("fast client disconnected: %+v", d)
		}
	}
}

// TestBroadcastThenClose: messages accepted before a close reach the client
// before the close frame.
func TestBroadcastThenClose(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	c := s.dial(t)
	for i := range 50 {
		hub.Broadcast(conns(c), fmt.Appendf(nil, "m%02d", i))
	}
	c.conn.Close(wsproto.CloseNormal, "bye")
	for i := range 50 {
		c.expectText(fmt.Sprintf("m%02d", i))
	}
	if reason := c.expectClose(wsproto.CloseNormal); reason != "bye" {
		t.Fatalf("close reason %q", reason)
	}
	c.finishClose(wsproto.CloseNormal)
	s.rec.waitDisconnect(t, c.conn)
}

// BenchmarkBroadcast fans 64-byte messages out to connections whose
// clients read them, as a topic publish does; b.N messages per connection.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) { benchBroadcast(b, n) })
	}
}

func benchBroadcast(b *testing.B, n int) {
	rec := newRecorder()
	h := hub.New()
	srv := edge.New(edge.Config{Limits: awsLimits()}, rec, h, slog.New(slog.DiscardHandler))
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s := &testServer{Server: srv, rec: rec, hub: h, addr: ln.Addr().String(), path: "/"}
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = s.dial(b)
	}
	all := conns(cs...)
	payload := bytes.Repeat([]byte("p"), 64)
	frameLen := len(wsproto.AppendFrame(nil, wsproto.OpText, true, payload))
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for left := frameLen * b.N; left > 0; {
				k, err := c.br.Read(buf[:min(len(buf), left)])
				if err != nil {
					b.Error(err)
					return
				}
				left -= k
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		hub.Broadcast(all, payload)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
	for _, c := range cs {
		_ = c.nc.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		b.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		b.Errorf("Serve: %v", err)
	}
}

// TestBroadcastStampsLastActive: a fan-out records, as every connection's
// last activity, the one time its Message was prepared.
func TestBroadcastStampsLastActive(t *testing.T) {
	s := startServer(t, edge.Config{Limits: awsLimits()}, nil)
	cs := []*client{s.dial(t), s.dial(t)}
	m := hub.NewMessage([]byte("stamp"))
	for _, c := range cs {
		if err := c.conn.SendMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		c.expectText("stamp")
		if got := c.conn.Info().LastActiveAt.UnixNano(); got != m.At() {
			t.Errorf("%s: lastActiveAt %d, want the message's time %d", c.name, got, m.At())
		}
	}
}
