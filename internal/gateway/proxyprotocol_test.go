package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// maskedText is a client's masked text frame holding s (under 126 bytes).
func maskedText(s string) []byte {
	key := [4]byte{1, 2, 3, 4}
	f := []byte{0x81, 0x80 | byte(len(s)), key[0], key[1], key[2], key[3]}
	for i := range len(s) {
		f = append(f, s[i]^key[i%4])
	}
	return f
}

// rawUpgrade is a WebSocket upgrade request for g.
func rawUpgrade(g *gt.Gateway, extra string) string {
	return "GET /prod HTTP/1.1\r\nHost: " + g.Addr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// rawDial connects to g over TCP and writes first in one write.
func rawDial(t *testing.T, g *gt.Gateway, first []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// readText reads one unmasked, unfragmented text frame of under 126 bytes.
func readText(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[0] != 0x81 || h[1] >= 126 {
		t.Fatalf("frame header % x; want a short text frame", h)
	}
	b := make([]byte, h[1])
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func v2(t *testing.T, src, dst string) []byte {
	t.Helper()
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	b, err := proxyproto.HeaderProxyFromAddrs(2, s, d).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProxyProtocol: behind a load balancer speaking the PROXY protocol,
// a raw TCP client's header gives identity.sourceIp, and the upgrade
// request and a first message written with the header in one packet all
// arrive. X-Forwarded-For from the client (not a trusted proxy) is ignored.
func TestProxyProtocol(t *testing.T) {
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, "trusted_proxies: [127.0.0.1]\nproxy_protocol: true\n"))
	tests := []struct {
		name   string
		header []byte
		source string
	}{
		{"v1", []byte("PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\n"), "203.0.113.5"},
		{"v1 IPv6", []byte("PROXY TCP6 2001:db8::5 2001:db8::1 4711 443\r\n"), "2001:db8::5"},
		{"v2", v2(t, "198.51.100.7:4711", "192.0.2.1:443"), "198.51.100.7"},
		{"v2 IPv6", v2(t, "[2001:db8::7]:4711", "[2001:db8::1]:443"), "2001:db8::7"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := append([]byte(nil), tt.header...)
			first = append(first, rawUpgrade(g, "X-Forwarded-For: 192.0.2.99\r\n")...)
			first = append(first, maskedText(fmt.Sprintf(`{"action":"echo","n":%d}`, i))...)
			_, r := rawDial(t, g, first)
			resp, err := http.ReadResponse(r, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v %v", resp, err)
			}
			if got, want := readText(t, r), fmt.Sprintf(`{"action":"echo","n":%d}`, i); got != want {
				t.Fatalf("echo %q; want %q", got, want)
			}
			ev := b.WaitEvent(t, "/connect", func(e gt.Event) bool { return e.RequestContext.Identity.SourceIP == tt.source })
			if got := ev.Headers["X-Forwarded-For"]; got != "192.0.2.99, "+tt.source {
				t.Errorf("X-Forwarded-For %q; want the client's value with the header's source appended", got)
			}
			msg := b.WaitEvent(t, "/echo", func(e gt.Event) bool { return e.RequestContext.ConnectionID == ev.RequestContext.ConnectionID })
			if got := msg.RequestContext.Identity.SourceIP; got != tt.source {
				t.Errorf("message identity.sourceIp %q; want %q", got, tt.source)
			}
		})
	}
}

// TestProxyProtocolRefused: with proxy_protocol, a connection without a
// valid header, or from a peer outside trusted_proxies, is closed before
// any byte is answered and the $connect integration never runs.
func TestProxyProtocolRefused(t *testing.T) {
	b := gt.NewBackend(t)
	trusted := gt.Start(t, backendConfig(b, "trusted_proxies: [127.0.0.1]\nproxy_protocol: true\n"))
	untrusted := gt.Start(t, backendConfig(b, "trusted_proxies: [10.0.0.0/8]\nproxy_protocol: true\n"))
	good := []byte("PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\n")
	tests := []struct {
		name  string
		g     *gt.Gateway
		first []byte
	}{
		{"no header", trusted, []byte(rawUpgrade(trusted, ""))},
		{"malformed v1", trusted, append([]byte("PROXY TCP4 203.0.113.500 192.0.2.1 4711 443\r\n"), rawUpgrade(trusted, "")...)},
		{"malformed v2", trusted, append(append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0x00, 0x03, 1, 2, 3), rawUpgrade(trusted, "")...)},
		{"untrusted peer", untrusted, append(good, rawUpgrade(untrusted, "")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := rawDial(t, tt.g, tt.first)
			n, err := r.Read(make([]byte, 1))
			if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
			}
		})
	}
	if n := len(b.Events("/connect")); n != 0 {
		t.Fatalf("$connect ran %d times; want 0", n)
	}
	// A connection with a valid header from a trusted peer is still served.
	_, r := rawDial(t, trusted, append(good, rawUpgrade(trusted, "")...))
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade after refusals: %v %v", resp, err)
	}
}
