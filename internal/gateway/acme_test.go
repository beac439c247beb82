package gateway_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/acmecert/acmetest"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

const acmeDomain = "ws." + acmetest.Zone

// acmeDialOptions trusts roots and reaches every name on 127.0.0.1, as the
// test zone resolves for the CA; the TLS server name stays the URL's host.
func acmeDialOptions(roots *tls.Config) *websocket.DialOptions {
	dialer := &net.Dialer{}
	tr := &http.Transport{
		TLSClientConfig: roots,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func acmeYAML(ca *acmetest.Server, cacheDir, extra string) string {
	return fmt.Sprintf(`stage: prod
tls:
  acme:
    domains: [%s]
    email: ops@%s
    directory_url: %s
    ca_file: %q
    cache_dir: %q
%s`, acmeDomain, acmetest.Zone, ca.URL, ca.CAFile, cacheDir, extra)
}

// TestACMEWSS runs the gateway with tls.acme against pebble: the CA checks
// the tls-alpn-01 challenge on the client listener, and a client trusting
// only the CA's root exchanges messages over wss://.
func TestACMEWSS(t *testing.T) {
	ca := acmetest.Start(t)
	cacheDir := filepath.Join(t.TempDir(), "acme")
	g := gt.Start(t, acmeYAML(ca, cacheDir, ""))
	ca.Validate(freePort(t), port(t, g.Addr()))

	url := fmt.Sprintf("wss://%s:%d/prod", acmeDomain, port(t, g.Addr()))
	c := gt.Dial(t, url, acmeDialOptions(&tls.Config{RootCAs: ca.Roots()}))
	for i := range 3 {
		msg := fmt.Sprintf(`{"action":"echo","n":%d}`, i)
		c.Send(msg)
		if got := c.NextText(); got != msg {
			t.Fatalf("echo = %q; want %q", got, msg)
		}
	}
	if n := ca.Orders(); n != 1 {
		t.Fatalf("orders = %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, acmeDomain)); err != nil {
		t.Fatalf("certificate not cached: %v", err)
	}

	// A second client is served the certificate obtained for the first.
	c2 := gt.Dial(t, url, acmeDialOptions(&tls.Config{RootCAs: ca.Roots()}))
	c2.Send("again")
	if got := c2.NextText(); got != "again" {
		t.Fatalf("echo = %q", got)
	}
	if n := ca.Orders(); n != 1 {
		t.Fatalf("orders after a second client = %d, want 1", n)
	}

	// A name outside tls.acme.domains fails the handshake; the listener
	// keeps serving.
	other := fmt.Sprintf("wss://other.%s:%d/prod", acmetest.Zone, port(t, g.Addr()))
	if _, _, err := gt.TryDial(other, acmeDialOptions(&tls.Config{RootCAs: ca.Roots()})); err == nil {
		t.Fatal("dial for a domain not listed succeeded")
	}
	if n := ca.Orders(); n != 1 {
		t.Fatalf("orders after an unlisted name = %d, want 1", n)
	}
	c.Send("still")
	if got := c.NextText(); got != "still" {
		t.Fatalf("echo = %q", got)
	}
}

// TestACMEHTTP01 answers the http-01 challenge on tls.acme.http_listen when
// the CA cannot reach the TLS listener.
func TestACMEHTTP01(t *testing.T) {
	ca := acmetest.Start(t)
	g := gt.Start(t, acmeYAML(ca, t.TempDir(), "    http_listen: 127.0.0.1:0\n"))
	if g.ACMEHTTPAddr() == "" {
		t.Fatal("no http-01 listener")
	}
	ca.Validate(port(t, g.ACMEHTTPAddr()), freePort(t))

	url := fmt.Sprintf("wss://%s:%d/prod", acmeDomain, port(t, g.Addr()))
	c := gt.Dial(t, url, acmeDialOptions(&tls.Config{RootCAs: ca.Roots()}))
	c.Send("hello")
	if got := c.NextText(); got != "hello" {
		t.Fatalf("echo = %q", got)
	}
	if n := ca.Orders(); n != 2 {
		t.Fatalf("orders = %d, want 2: tls-alpn-01 failing, then http-01", n)
	}
}

// TestACMEUnreachableCA checks that when the CA cannot be reached the
// handshake fails, the reason is logged with the domain, and the gateway
// keeps serving.
func TestACMEUnreachableCA(t *testing.T) {
	g := gt.Start(t, fmt.Sprintf(`stage: prod
tls:
  acme:
    domains: [%s]
    directory_url: https://127.0.0.1:%d/dir
    cache_dir: %q
`, acmeDomain, freePort(t), t.TempDir()))
	url := fmt.Sprintf("wss://%s:%d/prod", acmeDomain, port(t, g.Addr()))
	for range 2 {
		_, _, err := gt.TryDial(url, acmeDialOptions(&tls.Config{InsecureSkipVerify: true}))
		if err == nil {
			t.Fatal("dial succeeded without a certificate")
		}
	}
	logs := g.Logs.String()
	if !strings.Contains(logs, "cannot obtain a certificate") || !strings.Contains(logs, "domain="+acmeDomain) ||
		!strings.Contains(logs, "connection refused") {
		t.Fatalf("the gateway log does not say why:\n%s", logs)
	}
}

// TestACMEConfigErrors checks that problems found building the ACME
// manager name the key and its line, and that a missing file or variable
// counts as missing on this machine.
func TestACMEConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, extra, key, want string
		missing                bool
	}{
		{"ca_file not PEM", "    ca_file: " + notPEM + "\n", "tls.acme.ca_file",
			"test.yaml:5: tls.acme.ca_file: " + notPEM + " holds no PEM certificate", false},
		{"ca_file missing", "    ca_file: " + filepath.Join(dir, "none.pem") + "\n", "tls.acme.ca_file",
			"test.yaml:5: tls.acme.ca_file: open " + filepath.Join(dir, "none.pem") + ": no such file or directory", true},
		{"EAB key unset", "    eab_key_id: kid\n    eab_hmac_key_env: WSGATE_TEST_UNSET_EAB\n", "tls.acme.eab_hmac_key_env",
			"test.yaml:6: tls.acme.eab_hmac_key_env: environment variable WSGATE_TEST_UNSET_EAB is unset or empty", true},
		{"and a client CA that does not load", "    ca_file: " + notPEM + "\n  client_ca_file: " + notPEM + "\n", "tls.acme.ca_file",
			"test.yaml:5: tls.acme.ca_file: " + notPEM + " holds no PEM certificate\n" +
				"test.yaml:6: tls.client_ca_file: " + notPEM + " holds no PEM certificate", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			yaml := "tls:\n  acme:\n    domains: [ws.example.com]\n    cache_dir: " + dir + "\n" + c.extra
			cfg, err := config.Parse("test.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Listen = "127.0.0.1:0"
			cfg.Management.Listen = "127.0.0.1:0"
			_, err = gateway.New(cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" }})
			if err == nil || err.Error() != c.want {
				t.Fatalf("err = %v\nwant %s", err, c.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Path != c.key {
				t.Fatalf("err %v is not a config.Error at its key", err)
			}
			if config.IsMissing(err) != c.missing {
				t.Fatalf("IsMissing = %v, want %v", !c.missing, c.missing)
			}
		})
	}
}
