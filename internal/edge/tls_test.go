package edge_test

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/tlsconfig"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// startTLSServer starts a server for cfg serving TLS with a certificate of
// a new CA; its clients speak TLS version v (0: any).
func startTLSServer(t *testing.T, cfg edge.Config, v uint16) (*testServer, *tlstest.CA) {
	t.Helper()
	ca := tlstest.NewCA(t, "edge test CA")
	cert := ca.Server(t, "127.0.0.1").TLSCertificate(t)
	cfg.TLS = tlsconfig.ServerConfig(tlsconfig.Settings{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
		NextProtos:     []string{"http/1.1"},
	})
	s := startServer(t, cfg, nil)
	s.clientTLS = &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v}
	return s, ca
}

var tlsVersions = []uint16{tls.VersionTLS13, tls.VersionTLS12}

func TestTLSFramesBothWays(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			s, _ := startTLSServer(t, edge.Config{}, v)
			// A frame in the same record as the upgrade request waits in
			// the tls.Conn when the socket moves to the event loop.
			c := s.dial(t, clientFrame(wsproto.OpText, true, []byte("with the upgrade"))...)
			c.sendText("hello")
			big := strings.Repeat("0123456789", 3000) // two TLS records
			c.sendText(big)
			got := s.rec.waitMessages(t, c.conn, 3)
			if got[0].data != "with the upgrade" || got[1].data != "hello" || got[2].data != big {
				t.Fatalf("messages = %.40v", got)
			}
			if err := c.conn.Send([]byte("from the server")); err != nil {
				t.Fatal(err)
			}
			c.expectText("from the server")
			if err := c.conn.Send([]byte(big)); err != nil {
				t.Fatal(err)
			}
			c.expectText(big)

			// The client closes: the server answers and ends the stream.
			c.send(wsproto.OpClose, true, closePayload(wsproto.CloseNormal, "bye"))
			c.expectClose(wsproto.CloseNormal)
			c.expectEOF()
			if d := s.rec.waitDisconnect(t, c.conn); d.code != wsproto.CloseNormal || d.reason != "bye" {
				t.Fatalf("disconnect = %+v", d)
			}

			// The server closes.
			c2 := s.dial(t)
			c2.conn.Close(wsproto.CloseGoingAway, "Going away")
			c2.expectClose(wsproto.CloseGoingAway)
			c2.finishClose(wsproto.CloseGoingAway)
			if d := s.rec.waitDisconnect(t, c2.conn); d.code != wsproto.CloseGoingAway {
				t.Fatalf("disconnect = %+v", d)
			}
		})
	}
}

// trickleConn writes one byte at a time, so that the server receives TLS
// records in pieces.
type trickleConn struct{ net.Conn }

func (c trickleConn) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

func TestTLSPartialRecords(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			s, _ := startTLSServer(t, edge.Config{}, v)
			s.wrap = func(nc net.Conn) net.Conn { return trickleConn{nc} }
			c := s.dial(t)
			msg := strings.Repeat("partial ", 2500) // 20,000 bytes, two records
			c.sendText(msg)
			c.sendText("small")
			got := s.rec.waitMessages(t, c.conn, 2)
			if got[0].data != msg || got[1].data != "small" {
				t.Fatalf("messages = %.40v", got)
			}
			if err := c.conn.Send([]byte("answer")); err != nil {
				t.Fatal(err)
			}
			c.expectText("answer")
		})
	}
}

// recordingConn keeps every byte it reads.
type recordingConn struct {
	net.Conn
	mu   sync.Mutex
	read []byte
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.read = append(c.read, b[:n]...)
	c.mu.Unlock()
	return n, err
}

// recordTypes returns the content type of each TLS record in b.
func recordTypes(b []byte) []byte {
	var types []byte
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint16(b[3:5]))
		types = append(types, b[0])
		if len(b) < 5+n {
			break
		}
		b = b[5+n:]
	}
	return types
}

func TestTLSCloseNotify(t *testing.T) {
	// TLS 1.2 shows record types in the clear: an alert is type 21. The
	// server's close_notify follows its close frame before the socket
	// closes.
	s, _ := startTLSServer(t, edge.Config{}, tls.VersionTLS12)
	var raw *recordingConn
	s.wrap = func(nc net.Conn) net.Conn { raw = &recordingConn{Conn: nc}; return raw }
	c := s.dial(t)
	c.conn.Close(wsproto.CloseNormal, "done")
	c.expectClose(wsproto.CloseNormal)
	c.send(wsproto.OpClose, true, closePayload(wsproto.CloseNormal, ""))
	if _, err := c.nextErr(); err != io.EOF {
		t.Fatalf("read after the close handshake: %v; want io.EOF (close_notify)", err)
	}
	raw.mu.Lock()
	types := recordTypes(raw.read)
	raw.mu.Unlock()
	if len(types) == 0 || types[len(types)-1] != 21 {
		t.Fatalf("record types from the server: %v; want an alert (21) last", types)
	}
}

func TestTLSCorruptRecordDrops(t *testing.T) {
	for _, v := range tlsVersions {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			s, _ := startTLSServer(t, edge.Config{}, v)
			var tcp net.Conn
			s.wrap = func(nc net.Conn) net.Conn { tcp = nc; return nc }
			c := s.dial(t)
			c.sendText("fine")
			s.rec.waitMessages(t, c.conn, 1)
			// An application data record that fails to decrypt.
			bad := append([]byte{23, 3, 3, 0, 40}, make([]byte, 40)...)
			if _, err := tcp.Write(bad); err != nil {
				t.Fatal(err)
			}
			if d := s.rec.waitDisconnect(t, c.conn); d.code != wsproto.CloseAbnormal {
				t.Fatalf("disconnect = %+v; want 1006", d)
			}
		})
	}
}

func TestTLSPlainClientRefused(t *testing.T) {
	s, _ := startTLSServer(t, edge.Config{}, 0)
	resp, _ := rawHTTP(t, s.addr, upgradeRequest(s.addr, "/", "plain"))
	if resp.StatusCode != 400 {
		t.Fatalf("plain upgrade request to the TLS listener: %s; want 400", resp.Status)
	}
	if n := s.rec.acceptedCount(); n != 0 {
		t.Fatalf("%d connections accepted", n)
	}
}

// TestTLSKeyUpdate has OpenSSL's client ask for a TLS 1.3 key update
// (KeyUpdate with update_requested): the server must take the client's new
// keys and move to new ones itself, and messages must flow both ways after.
// It runs for each TLS 1.3 cipher suite, with sweeps frequent enough that
// an idle connection lets its AES-GCM ciphers go between the steps: they
// must be derived again from the traffic secrets of the moment, before and
// after the key update.
func TestTLSKeyUpdate(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	for _, suite := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
		t.Run(suite, func(t *testing.T) { testKeyUpdate(t, suite) })
	}
}

func testKeyUpdate(t *testing.T, suite string) {
	// A close timeout of 40 ms makes the sweep run every 10 ms; no
	// connection here closes.
	s, ca := startTLSServer(t, edge.Config{Limits: edge.Limits{CloseTimeout: 40 * time.Millisecond}}, tls.VersionTLS13)
	caFile := ca.WriteFile(t, t.TempDir(), "ca.pem")
	cmd := exec.Command("openssl", "s_client", "-connect", s.addr, "-tls1_3", "-ciphersuites", suite, "-CAfile", caFile, "-verify_return_error")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &logBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				lines <- l
			}
			if err != nil {
				return
			}
		}
	}()
	waitLine := func(sub string) {
		t.Helper()
		for l := range lines {
			if strings.Contains(l, sub) {
				return
			}
		}
		t.Fatalf("openssl output ended before %q; stderr:\n%s", sub, stderr.String())
	}
	write := func(b []byte) {
		t.Helper()
		if _, err := stdin.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte(upgradeRequest(s.addr, "/", "openssl")))
	waitLine("Cipher is " + suite)
	waitLine("101 Switching Protocols")
	conn := s.rec.conn("openssl")
	if conn == nil {
		t.Fatal("Connect was not called")
	}
	aes := strings.Contains(suite, "AES")
	idle := func(when string) {
		t.Helper()
		if aes {
			eventually(t, func() bool { return edge.CiphersReleased(conn) }, "the ciphers released %s", when)
		} else if edge.CiphersReleased(conn) {
			t.Fatalf("%s ciphers released", suite)
		}
	}
	idle("after the upgrade")
	write(clientFrame(wsproto.OpText, true, []byte("before the key update\n")))
	s.rec.waitMessages(t, conn, 1)
	idle("before the key update")

	write([]byte("K\n")) // s_client: send KeyUpdate, update_requested
	eventually(t, func() bool { return strings.Contains(stderr.String(), "KEYUPDATE") }, "openssl sends the key update")
	write(clientFrame(wsproto.OpText, true, []byte("after the key update\n")))
	got := s.rec.waitMessages(t, conn, 2)
	if got[1].data != "after the key update\n" {
		t.Fatalf("messages = %v", got)
	}
	idle("after the key update")
	if err := conn.Send([]byte("\nanswer after the key update\n")); err != nil {
		t.Fatal(err)
	}
	waitLine("answer after the key update")
	idle("after the answer")
	write(clientFrame(wsproto.OpText, true, []byte("last\n")))
	if got := s.rec.waitMessages(t, conn, 3); got[2].data != "last\n" {
		t.Fatalf("messages = %v", got)
	}
	if d := s.rec.disconnects(conn); len(d) != 0 {
		t.Fatalf("disconnected: %v", d)
	}
	_ = stdin.Close()
}

// TestTLSHandshakeTimeout: a client that connects and never completes the
// TLS handshake is disconnected after the handshake timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	s, _ := startTLSServer(t, edge.Config{Limits: edge.Limits{HandshakeTimeout: 100 * time.Millisecond}}, 0)
	for _, partial := range [][]byte{nil, {22, 3, 1, 0, 200, 1}} { // nothing; the start of a ClientHello
		nc, err := net.DialTimeout("tcp", s.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(partial); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(ioTimeout))
		_, err = io.ReadAll(nc)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("a stalled handshake (%d bytes sent) was not closed by the server", len(partial))
		}
		nc.Close()
	}
	if n := s.rec.acceptedCount(); n != 0 {
		t.Fatalf("%d connections accepted", n)
	}
}

// TestTLSIdleConnectionsHoldNoGoroutine: once upgraded, a wss://
// connection lives in the event loop like a ws:// one; the goroutine that
// did its handshake has ended.
func TestTLSIdleConnectionsHoldNoGoroutine(t *testing.T) {
	s, _ := startTLSServer(t, edge.Config{}, 0)
	warm := s.dial(t)
	warm.sendText("warm")
	s.rec.waitMessages(t, warm.conn, 1)
	before := runtime.NumGoroutine()
	const n = 50
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = s.dial(t)
	}
	// The clients here are synchronous tls.Conns: any goroutine added is
	// the server's.
	eventually(t, func() bool { return runtime.NumGoroutine()-before < n/5 },
		"goroutines to settle (%d before %d idle wss connections)", before, n)
	for i, c := range clients {
		c.sendText(fmt.Sprint(i))
		s.rec.waitMessages(t, c.conn, 1)
	}
}
