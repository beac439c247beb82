package gateway_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// tlsSetup is a CA and a server certificate for 127.0.0.1 in PEM files.
type tlsSetup struct {
	ca                *tlstest.CA
	dir               string
	certFile, keyFile string
}

func newTLSSetup(t *testing.T) *tlsSetup {
	t.Helper()
	ca := tlstest.NewCA(t, "wsgate test CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	return &tlsSetup{ca: ca, dir: dir, certFile: cert, keyFile: key}
}

// dialOptions trusts the setup's CA, with TLS versions limited to v (0:
// any), and client certificates certs.
func (s *tlsSetup) dialOptions(v uint16, certs ...tls.Certificate) *websocket.DialOptions {
	cfg := &tls.Config{RootCAs: s.ca.Pool(), MinVersion: v, MaxVersion: v, Certificates: certs}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}}
}

func TestTLSEcho(t *testing.T) {
	s := newTLSSetup(t)
	g := gt.Start(t, fmt.Sprintf("stage: prod\ntls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile))
	if !strings.HasPrefix(g.URL, "wss://") {
		t.Fatalf("client URL %q; want wss://", g.URL)
	}
	if !strings.Contains(g.Logs.String(), "clients="+g.URL) {
		t.Errorf("the listening log line does not show %s:\n%s", g.URL, g.Logs.String())
	}
	for _, v := range []struct {
		name string
		v    uint16
	}{{"TLS 1.3", tls.VersionTLS13}, {"TLS 1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			c := gt.Dial(t, g.URL, s.dialOptions(v.v))
			for i := range 3 {
				msg := fmt.Sprintf(`{"action":"echo","n":%d}`, i)
				c.Send(msg)
				if got := c.NextText(); got != msg {
					t.Fatalf("echo = %q; want %q", got, msg)
				}
			}
			// A message across TLS records (16 KiB each) both ways, in
			// one frame of max_frame_bytes.
			big := strings.Repeat("x", 32<<10)
			c.Send(big)
			if got := c.NextText(); got != big {
				t.Fatalf("large echo: %d bytes back; want %d", len(got), len(big))
			}
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("close handshake: %v", err)
			}
		})
	}
}

func TestTLSRefusesOldVersions(t *testing.T) {
	s := newTLSSetup(t)
	g := gt.Start(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile))
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", g.Addr(), &tls.Config{RootCAs: s.ca.Pool(), MinVersion: v, MaxVersion: v})
		if err == nil {
			conn.Close()
			t.Fatalf("a %s handshake succeeded", tls.VersionName(v))
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("%s handshake: %v; want a protocol version alert", tls.VersionName(v), err)
		}
	}
	// The refusals did not stop the listener.
	c := gt.Dial(t, g.URL, s.dialOptions(0))
	c.Send("still here")
	if got := c.NextText(); got != "still here" {
		t.Fatalf("echo = %q", got)
	}
}

// waitCtx is a bound for the few calls of a test that wait on the network.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTLSManagement(t *testing.T) {
	s := newTLSSetup(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q}
management:
  tls: {cert_file: %q, key_file: %q}
`, s.certFile, s.keyFile, s.certFile, s.keyFile)))
	if !strings.HasPrefix(g.MgmtURL, "https://") {
		t.Fatalf("management URL %q; want https://", g.MgmtURL)
	}
	g.MgmtClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool()}}}
	c := gt.Dial(t, g.URL, s.dialOptions(0))
	id := b.ConnectionID(t, "/connect", 0)
	if ev := b.Events("/connect")[0]; ev.Headers["X-Forwarded-Proto"] != "https" {
		t.Errorf("$connect X-Forwarded-Proto = %q; want https", ev.Headers["X-Forwarded-Proto"])
	}
	status, _, body := g.MgmtDo(t, "POST", "/@connections/"+strings.ReplaceAll(id, "=", "%3D"), strings.NewReader("over https"), nil)
	if status != http.StatusOK {
		t.Fatalf("POST over https: %d %s", status, body)
	}
	if got := c.NextText(); got != "over https" {
		t.Fatalf("pushed message = %q", got)
	}
	// Plain HTTP to the TLS listener is refused.
	resp, err := http.Get("http://" + g.ManagementAddr() + "/@connections")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS management listener: %d; want 400", resp.StatusCode)
		}
	}
}
