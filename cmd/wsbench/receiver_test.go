//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/internal/wsproto"
)

// receiverPair connects n clients to a loopback listener and returns the
// clients as push connections and the server ends.
func receiverPair(t *testing.T, n int) ([]*pushConn, []net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []*pushConn
	var servers []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		conns = append(conns, &pushConn{c: c.(*net.TCPConn), fd: -1, done: make(chan struct{})})
		servers = append(servers, s)
	}
	return conns, servers
}

// TestReceiverFrames sends each epoll-read client a stream the reader must
// put together across reads — a frame larger than the loop's buffer, many
// small frames in one write, a frame in three writes — then a ping, whose
// pong must come back, and a close frame, which ends the connection.
func TestReceiverFrames(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(strconv.Itoa(loops)+" loops", func(t *testing.T) {
			conns, servers := receiverPair(t, 3)
			conns[0].rest = wsproto.AppendFrame(nil, wsproto.OpText, true, pushPayload(nil, 1, 40))
			var measure atomic.Bool
			measure.Store(true)
			if err := startReceiver(conns, loops, &measure); err != nil {
				t.Fatal(err)
			}
			ts := time.Now().UnixNano()
			big := wsproto.AppendFrame(nil, wsproto.OpText, true, pushPayload(nil, ts, 3*recvBufSize/2))
			var small []byte
			for range 100 {
				small = wsproto.AppendFrame(small, wsproto.OpText, true, pushPayload(nil, ts, 64))
			}
			split := wsproto.AppendFrame(nil, wsproto.OpText, true, pushPayload(nil, ts, 300))
			for i, s := range servers {
				for _, part := range [][]byte{big, small, split[:1], split[1:3], split[3:]} {
					if _, err := s.Write(part); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := s.Write(wsproto.AppendFrame(nil, wsproto.OpPing, true, []byte("p"+strconv.Itoa(i)))); err != nil {
					t.Fatal(err)
				}
				_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
				f := make([]byte, 2+4+2)
				if _, err := io.ReadFull(s, f); err != nil {
					t.Fatalf("client %d: no pong: %v", i, err)
				}
				if f[0] != 0x80|byte(wsproto.OpPong) || f[1] != 0x80|2 {
					t.Fatalf("client %d: pong header % x", i, f[:2])
				}
				if _, err := s.Write(wsproto.AppendClose(nil, wsproto.CloseGoingAway, "bye")); err != nil {
					t.Fatal(err)
				}
			}
			for i, p := range conns {
				select {
				case <-p.done:
				case <-time.After(10 * time.Second):
					t.Fatalf("client %d did not end", i)
				}
				want := int64(102)
				if i == 0 {
					want++ // the frame that came with the handshake
				}
				if got := p.received.Load(); got != want || p.bad.Load() != 0 {
					t.Errorf("client %d: %d messages (%d without a timestamp), want %d", i, got, p.bad.Load(), want)
				}
				if !errors.Is(p.err, errClosedByGateway) {
					t.Errorf("client %d ended with %v", i, p.err)
				}
				if n := len(p.lat); n != int(want) || len(p.sentAt) != n {
					t.Errorf("client %d: %d latency samples", i, n)
				}
				if err := p.write([]byte("x")); err == nil {
					t.Errorf("client %d: write after the end succeeded", i)
				}
			}
		})
	}
}

// TestReceiverShutdown ends idle connections from wsbench's side and a
// connection whose server went away: each ends once, with its cause.
func TestReceiverShutdown(t *testing.T) {
	conns, servers := receiverPair(t, 4)
	var measure atomic.Bool
	if err := startReceiver(conns, 2, &measure); err != nil {
		t.Fatal(err)
	}
	_ = servers[3].Close()
	select {
	case <-conns[3].done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection whose server closed did not end")
	}
	if !errors.Is(conns[3].err, io.EOF) {
		t.Errorf("ended with %v, want EOF", conns[3].err)
	}
	frame := closeFrame()
	for _, p := range conns[:3] {
		if err := p.write(frame); err != nil {
			t.Fatal(err)
		}
		p.shutdown()
	}
	for i, p := range conns[:3] {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d did not end after shutdown", i)
		}
		_ = servers[i].SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(servers[i])
		if err != nil || !bytes.Equal(got, frame) {
			t.Errorf("server %d read % x (%v), want the close frame and the end", i, got, err)
		}
	}
	for _, p := range conns {
		p.shutdown() // again, and on a closed socket: nothing happens
	}
}

var floorSummaryRE = regexp.MustCompile(`(?m)^summary: mode=floor n=(\d+) writers=(\d+) uring=(\d+) read_loops=(\d+) size=64 rate=20 deliveries=(\d+) expected=(\d+) p50=\S+ p99=\S+ last_p50=\S+ last_p99=\S+ last_max=\S+ writer_cpu=\S+ wsbench_cpu=\S+$`)

// TestFloorShort runs the floor for half a second with each reader, and
// with io_uring sends in batches smaller than a writer's share.
func TestFloorShort(t *testing.T) {
	for _, tc := range []struct{ loops, uring string }{{"0", "0"}, {"1", "0"}, {"2", "0"}, {"1", "8"}} {
		t.Run("loops "+tc.loops+" uring "+tc.uring, func(t *testing.T) {
			if tc.uring != "0" {
				u, err := newURingSender(8)
				if err != nil {
					t.Skipf("no io_uring here: %v", err)
				}
				u.close()
			}
			var out, errs bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := runFloor(ctx, strings.Fields("-n 50 -rate 20 -duration 500ms -writers 2 -read-loops "+tc.loops+" -uring "+tc.uring), &out, &errs)
			if err != nil {
				t.Fatalf("%v\n%s%s", err, out.String(), errs.String())
			}
			m := floorSummaryRE.FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("no summary line in:\n%s", out.String())
			}
			if m[1] != "50" || m[3] != tc.uring || m[4] != tc.loops || m[5] != "500" || m[6] != "500" {
				t.Errorf("summary %q", m[0])
			}
			if !strings.Contains(out.String(), "writer: writes=500 waits=") || !strings.Contains(out.String(), " failed=0") {
				t.Errorf("writer line:\n%s", out.String())
			}
		})
	}
}

func TestFloorOptions(t *testing.T) {
	o, err := parseFloorOptions(nil, io.Discard)
	if err != nil || o.n != 10_000 || o.sweeps() != 100 || o.size != 64 {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	o.uring = 256
	back, err := parseFloorWriterOptions(o.writerArgs()[1:], io.Discard)
	if err != nil || back.n != o.n || back.rate != o.rate || back.duration != o.duration || back.writers != o.writers || back.size != o.size || back.uring != 256 {
		t.Errorf("writer args round trip: %+v, %v", back, err)
	}
	for _, args := range []string{"-n 0", "-n 20000", "-rate 0", "-rate 2000", "-writers 0", "-read-loops -1", "-read-loops 65", "-uring -1", "-uring 4097", "-size 10", "-duration 0s", "-duration 3m -timeout 2m", "extra"} {
		if _, err := parseFloorOptions(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	for _, args := range []string{"-read-loops -1", "-read-loops 65"} {
		if _, err := parsePushOptions(strings.Fields("-mode topic -gateway ./wsgate "+args), io.Discard); err == nil {
			t.Errorf("push %q accepted", args)
		}
	}
}

var pushSummaryRE = regexp.MustCompile(`(?m)^summary: mode=topic placement=same_node gateways=1 registry=memory http_client=raw n=20 .* deliveries=(\d+) expected=(\d+) `)

// TestPushTopicShort publishes to 20 subscribers of a gateway built from
// this tree for half a second with each reader, and checks that every
// delivery arrived and every connection ended cleanly.
func TestPushTopicShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	bin := gatewayBinary(t)
	for _, loops := range []string{"0", "2"} {
		t.Run(loops+" loops", func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			err := runPush(ctx, strings.Fields("-mode topic -n 20 -rate 20 -duration 500ms -timeout 50s -gateway "+bin+" -workdir "+t.TempDir()+
				" -port "+strconv.Itoa(freePort(t))+" -mgmt-port "+strconv.Itoa(freePort(t))+" -read-loops "+loops), &out, io.Discard)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			m := pushSummaryRE.FindStringSubmatch(out.String())
			if m == nil || m[1] != "200" || m[2] != "200" {
				t.Fatalf("summary %q in:\n%s", m, out.String())
			}
			if !strings.Contains(out.String(), "0 connections closed during the run") {
				t.Errorf("connections closed during the run:\n%s", out.String())
			}
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(line, "gateway 0: exit status 0") && !strings.HasSuffix(line, "0 warning/error log lines []") {
					t.Errorf("gateway log: %s", line)
				}
			}
			if !slices.ContainsFunc(strings.Split(out.String(), "\n"), func(l string) bool { return strings.HasPrefix(l, "gateway 0: exit status 0") }) {
				t.Errorf("gateway did not exit cleanly:\n%s", out.String())
			}
		})
	}
}

// TestCloseAllBeforeReading: a run that fails before its connections are
// read closes them without waiting for readers that never started.
func TestCloseAllBeforeReading(t *testing.T) {
	conns, servers := receiverPair(t, 2)
	r := &pushRun{conns: conns}
	done := make(chan struct{})
	go func() {
		r.closeAll()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("closeAll waited for readers that never started")
	}
	for i, s := range servers {
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, err := io.ReadAll(s); err != nil || len(got) != len(closeFrame()) {
			t.Errorf("server %d read % x (%v), want a close frame and the end", i, got, err)
		}
	}
}

// waitReadable waits until fd has something to read.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 10_000); n != 1 || err != nil {
		t.Fatalf("poll: %d, %v", n, err)
	}
}

// TestReceiverPartialFrame feeds one frame in three writes, the first two
// inside its header, reading after each: the reader keeps what it has and
// counts the message once the last part arrives.
func TestReceiverPartialFrame(t *testing.T) {
	conns, servers := receiverPair(t, 1)
	p := conns[0]
	if err := p.detach(); err != nil {
		t.Fatal(err)
	}
	var measure atomic.Bool
	l := &recvLoop{conns: make([]*pushConn, p.fd+1), live: 1, buf: make([]byte, 0, recvBufSize), measure: &measure}
	l.conns[p.fd] = p
	frame := wsproto.AppendFrame(nil, wsproto.OpText, true, pushPayload(nil, time.Now().UnixNano(), 300))
	for i, part := range [][]byte{frame[:1], frame[1:3], frame[3:]} {
		if _, err := servers[0].Write(part); err != nil {
			t.Fatal(err)
		}
		waitReadable(t, p.fd)
		l.readable(p, false)
		want := []int{1, 3, 0}[i]
		if len(p.pending) != want || p.received.Load() != int64(i/2) {
			t.Fatalf("after part %d: %d bytes pending (want %d), %d messages", i+1, len(p.pending), want, p.received.Load())
		}
	}
	l.end(p, io.EOF)
	select {
	case <-p.done:
	default:
		t.Fatal("end did not end the connection")
	}
}

// TestReceiverEndAfterData: a frame and the peer's close that arrive
// before the loop reads are one event; the loop reads both, counts the
// frame and ends the connection.
func TestReceiverEndAfterData(t *testing.T) {
	conns, servers := receiverPair(t, 2)
	for _, s := range servers {
		if _, err := s.Write(wsproto.AppendFrame(nil, wsproto.OpText, true, pushPayload(nil, 1, 40))); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	for _, p := range conns {
		raw, err := p.c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		_ = raw.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
			n, _ = unix.Poll(fds, 10_000)
		})
		if n != 1 {
			t.Fatal("the peer's close did not arrive")
		}
	}
	var measure atomic.Bool
	if err := startReceiver(conns, 1, &measure); err != nil {
		t.Fatal(err)
	}
	for i, p := range conns {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d: the peer closed after a frame and the connection did not end (%d messages)", i, p.received.Load())
		}
		if p.received.Load() != 1 || !errors.Is(p.err, io.EOF) {
			t.Errorf("client %d: %d messages, ended with %v", i, p.received.Load(), p.err)
		}
	}
}

// TestURingSendAll sends a frame to three sockets and a bad descriptor
// through a ring taking two sends per enter: the bad one fails alone.
func TestURingSendAll(t *testing.T) {
	u, err := newURingSender(2)
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	defer u.close()
	conns, servers := receiverPair(t, 3)
	fds := []int{-1}
	for _, p := range conns {
		if err := p.detach(); err != nil {
			t.Fatal(err)
		}
		defer p.closeFD()
		fds = append(fds, p.fd)
	}
	frame := wsproto.AppendFrame(nil, wsproto.OpText, true, []byte("floor"))
	counts := &floorWrites{until: time.Now().Add(10 * time.Second)}
	for range 2 {
		if err := u.sendAll(fds, frame, counts); err != nil {
			t.Fatal(err)
		}
	}
	if counts.writes.Load() != 6 || counts.failed.Load() != 2 {
		t.Errorf("writes %d, failed %d; want 6 and 2", counts.writes.Load(), counts.failed.Load())
	}
	for i, s := range servers {
		got := make([]byte, 2*len(frame))
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, slices.Concat(frame, frame)) {
			t.Errorf("server %d read %q (%v)", i, got, err)
		}
	}
}
