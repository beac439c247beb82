package gateway_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// TestProxyProtocolTLS: with TLS and proxy_protocol, the PROXY header
// precedes the TLS handshake; the header gives identity.sourceIp, the
// $connect event says https, and a first message written with the upgrade
// request is answered once the socket has moved to the event loop.
func TestProxyProtocolTLS(t *testing.T) {
	s := newTLSSetup(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, "trusted_proxies: [127.0.0.1]\nproxy_protocol: true\ntls: {cert_file: "+s.certFile+", key_file: "+s.keyFile+"}\n"))

	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("PROXY TCP4 203.0.113.9 192.0.2.1 4711 443\r\n")); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{RootCAs: s.ca.Pool(), ServerName: "127.0.0.1"})
	first := append([]byte(rawUpgrade(g, "")), maskedText(`{"action":"echo","n":1}`)...)
	if _, err := tc.Write(first); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(tc)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if got := readText(t, r); got != `{"action":"echo","n":1}` {
		t.Fatalf("echo %q", got)
	}
	ev := b.WaitEvent(t, "/connect", func(e gt.Event) bool { return e.RequestContext.Identity.SourceIP == "203.0.113.9" })
	if got := ev.Headers["X-Forwarded-Proto"]; got != "https" {
		t.Errorf("X-Forwarded-Proto %q; want https", got)
	}
	// The connection keeps working on the event loop.
	if _, err := tc.Write(maskedText(`{"action":"echo","n":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, r); got != `{"action":"echo","n":2}` {
		t.Fatalf("echo %q", got)
	}
}
