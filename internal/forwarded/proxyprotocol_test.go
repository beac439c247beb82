package forwarded

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// listen starts a ProxyListener on 127.0.0.1 trusting cidrs, and returns it
// with a channel of the connections it accepts.
func listen(t *testing.T, timeout time.Duration, cidrs ...string) (*ProxyListener, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := NewProxyListener(ln, proxies(cidrs...), timeout, slog.New(slog.DiscardHandler))
	accepted := make(chan net.Conn, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := pl.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		_ = pl.Close()
		<-done
		for c := range accepted {
			_ = c.Close()
		}
	})
	return pl, accepted
}

func dial(t *testing.T, ln net.Listener, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if first != nil {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func v2Header(t *testing.T, src, dst string) []byte {
	t.Helper()
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	h := proxyproto.HeaderProxyFromAddrs(2, s, d)
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyListenerHeaders(t *testing.T) {
	tests := []struct {
		name   string
		header []byte
		remote string
	}{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\n"), "203.0.113.5:4711"},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::5 2001:db8::1 4711 443\r\n"), "[2001:db8::5]:4711"},
		{"v2 TCP4", v2Header(t, "203.0.113.5:4711", "192.0.2.1:443"), "203.0.113.5:4711"},
		{"v2 TCP6", v2Header(t, "[2001:db8::5]:4711", "[2001:db8::1]:443"), "[2001:db8::5]:4711"},
		{"v1 UNKNOWN: the socket's peer", []byte("PROXY UNKNOWN\r\n"), "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, accepted := listen(t, 5*time.Second, "127.0.0.1/32")
			// The header and what follows it in one write: the bytes read
			// past the header must not be lost.
			dial(t, pl, append(append([]byte(nil), tt.header...), "hello"...))
			c := <-accepted
			if got := c.RemoteAddr().String(); !strings.HasPrefix(got, tt.remote) {
				t.Errorf("RemoteAddr %s; want %s", got, tt.remote)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
				t.Fatalf("read %q, %v; want hello", buf, err)
			}
		})
	}
}

func TestProxyListenerDetach(t *testing.T) {
	pl, accepted := listen(t, 5*time.Second, "127.0.0.1/32")
	client := dial(t, pl, []byte("PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\nfirst"))
	c := <-accepted
	_ = c.RemoteAddr() // reads the header, and buffers what came with it
	raw, rest := c.(*ProxyConn).Detach()
	if string(rest) != "first" {
		t.Fatalf("Detach returned %q; want the bytes after the header", rest)
	}
	if _, ok := raw.(*net.TCPConn); !ok {
		t.Fatalf("Detach returned a %T; want the *net.TCPConn", raw)
	}
	if _, err := client.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(raw, buf); err != nil || string(buf) != "second" {
		t.Fatalf("the socket read %q, %v", buf, err)
	}
}

// TestProxyListenerRefuses: a missing, malformed, oversized or late header
// closes the connection; Read reports ErrProxyHeader and the client sees
// the connection end without a byte.
func TestProxyListenerRefuses(t *testing.T) {
	big := v2Header(t, "203.0.113.5:4711", "192.0.2.1:443")
	// Claim a payload longer than maxProxyHeader.
	big[14], big[15] = 0x10, 0x00
	big = append(big, make([]byte, 0x1000)...)
	tests := []struct {
		name  string
		first []byte
	}{
		{"no header", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"v1 garbage", []byte("PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\n")},
		{"v1 without CRLF", []byte("PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\n")},
		{"v2 bad version", append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x31, 0x11, 0, 12)},
		{"v2 over the size bound", big},
		{"late header", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, accepted := listen(t, 200*time.Millisecond, "127.0.0.1/32")
			client := dial(t, pl, tt.first)
			c := <-accepted
			_, err := c.Read(make([]byte, 1))
			if !errors.Is(err, ErrProxyHeader) {
				t.Fatalf("Read: %v; want ErrProxyHeader", err)
			}
			_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := client.Read(make([]byte, 1))
			if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("client read %d bytes, %v; want the connection closed", n, err)
			}
		})
	}
}

// TestProxyListenerUntrustedPeer: a connection from outside trusted_proxies
// is closed by Accept, which goes on to the next one.
func TestProxyListenerUntrustedPeer(t *testing.T) {
	pl, accepted := listen(t, 5*time.Second, "10.0.0.0/8")
	client := dial(t, pl, []byte("PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\n"))
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := client.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client read %d bytes, %v; want the connection closed", n, err)
	}
	select {
	case c := <-accepted:
		t.Fatalf("Accept returned a connection from an untrusted peer: %v", c.RemoteAddr())
	default:
	}
}
