package cli_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// TestConnectAndPostOverTLS: connect dials wss:// and post calls https://
// trusting -cacert, presenting the client certificate of -cert and -key
// where the listeners require one.
func TestConnectAndPostOverTLS(t *testing.T) {
	t.Setenv("WSGATE_MGMT_TOKEN", "")
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "cli test CA")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	client := ca.Client(t, "operator")
	clientCert, clientKey := client.WriteFiles(t, dir, "client")
	b := gt.NewBackend(t)
	g := gt.Start(t, fmt.Sprintf(`
stage: prod
tls: {cert_file: %[1]q, key_file: %[2]q}
management:
  tls: {cert_file: %[1]q, key_file: %[2]q, client_ca_file: %[3]q}
routes:
  $connect: {integration: {type: http, url: %[4]q}}
  $default: {integration: {type: mock}, route_response: true}
`, cert, key, caFile, b.URLFor("/connect")))

	r := run(t, strings.NewReader("over wss\n"), "connect", "-cacert", caFile, g.URL)
	if r.code != 0 || r.stdout != "< over wss\n" || !strings.Contains(r.stderr, "connected to wss://") {
		t.Fatalf("connect over TLS: %v", r)
	}
	if r := run(t, strings.NewReader("x\n"), "connect", g.URL); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("connect without -cacert to a certificate the system does not trust: %v", r)
	}

	c := gt.Dial(t, g.URL, &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}})
	id := b.ConnectionID(t, "/connect", 1)
	r = run(t, nil, "post", "-endpoint", g.MgmtURL, "-cacert", caFile, "-cert", clientCert, "-key", clientKey, "--", id, "over https")
	if r.code != 0 || r.stdout != "200 OK\n" {
		t.Fatalf("post over TLS: %v", r)
	}
	if got := c.NextText(); got != "over https" {
		t.Fatalf("client received %q", got)
	}
	// The management listener requires a client certificate.
	if r := run(t, nil, "post", "-endpoint", g.MgmtURL, "-cacert", caFile, "--", id, "no certificate"); r.code == 0 {
		t.Fatalf("post without a client certificate: %v", r)
	}
	if r := run(t, nil, "post", "-endpoint", g.MgmtURL, "-cert", clientCert, "--", id, "x"); r.code != 2 || !strings.Contains(r.stderr, "-cert and -key go together") {
		t.Fatalf("post with -cert alone: %v", r)
	}
}
