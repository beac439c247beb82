package acmecert_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wsgate/wsgate/internal/acmecert"
	"github.com/wsgate/wsgate/internal/acmecert/acmetest"
	"github.com/wsgate/wsgate/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, acmetest.IgnoreGoroutines...)
}

const domain = "gw." + acmetest.Zone

// tlsServer is a TLS listener served by a Manager: it completes each
// handshake and writes "ok".
type tlsServer struct {
	ln   net.Listener
	port int
	wg   sync.WaitGroup
}

func serveTLS(t *testing.T, mgr *acmecert.Manager) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	tl := tls.NewListener(ln, mgr.TLSConfig())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(c, "ok")
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *tlsServer) close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

// closedPort returns a port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newManager(t *testing.T, cfg config.ACME, logs io.Writer) *acmecert.Manager {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mgr, err := acmecert.New(cfg, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Close)
	return mgr
}

// handshake connects to port with server name name, trusting roots, and
// returns the server's certificate chain and the byte it wrote.
func handshake(t *testing.T, port int, name string, cfg *tls.Config) (*tls.ConnectionState, error) {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName = name
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	if string(got) != "ok" {
		return nil, errors.New("server wrote " + string(got))
	}
	cs := c.(*tls.Conn).ConnectionState()
	return &cs, nil
}

// TestObtainAndReuse obtains a certificate through a real TLS listener that
// answers pebble's tls-alpn-01 challenge, then restarts on the same cache
// directory and serves the same certificate without a request to the CA.
func TestObtainAndReuse(t *testing.T) {
	ca := acmetest.Start(t)
	cacheDir := filepath.Join(t.TempDir(), "acme")
	cfg := config.ACME{
		Domains:      []string{domain},
		Email:        "ops@" + acmetest.Zone,
		DirectoryURL: ca.URL,
		CAFile:       ca.CAFile,
		CacheDir:     cacheDir,
	}
	mgr := newManager(t, cfg, nil)
	srv := serveTLS(t, mgr)
	ca.Validate(closedPort(t), srv.port)

	cs, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	leaf := cs.PeerCertificates[0]
	if err := leaf.VerifyHostname(domain); err != nil {
		t.Fatal(err)
	}
	if n := ca.Orders(); n != 1 {
		t.Fatalf("orders = %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, domain)); err != nil {
		t.Fatalf("certificate not cached: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cacheDir, "acme_account+key")); err != nil {
		t.Fatalf("account key not cached: %v", err)
	}
	// The cache holds private keys.
	if fi, err := os.Stat(cacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache directory: %v, mode %v; want 700", err, fi.Mode().Perm())
	}

	// A second handshake is served from memory.
	if _, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()}); err != nil {
		t.Fatal(err)
	}
	if n := ca.Orders(); n != 1 {
		t.Fatalf("orders after a second handshake = %d, want 1", n)
	}

	// Restart: a new manager and listener on the same cache directory.
	srv.close()
	mgr.Close()
	mgr2 := newManager(t, cfg, nil)
	srv2 := serveTLS(t, mgr2)
	cs2, err := handshake(t, srv2.port, domain, &tls.Config{RootCAs: ca.Roots()})
	if err != nil {
		t.Fatalf("handshake after restart: %v", err)
	}
	if got := cs2.PeerCertificates[0].SerialNumber; got.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("serial after restart = %v, want the cached %v", got, leaf.SerialNumber)
	}
	if n, a := ca.Orders(), ca.Accounts(); n != 1 || a != 1 {
		t.Fatalf("after the restart: %d orders and %d accounts, want the first 1 and 1", n, a)
	}
}

// TestUnlistedNameRefused checks that a server name outside tls.acme.domains
// (or none at all) fails the handshake and orders nothing.
func TestUnlistedNameRefused(t *testing.T) {
	ca := acmetest.Start(t)
	logs := &logBuffer{}
	mgr := newManager(t, config.ACME{
		Domains: []string{domain}, DirectoryURL: ca.URL, CAFile: ca.CAFile, CacheDir: t.TempDir(),
	}, logs)
	srv := serveTLS(t, mgr)
	ca.Validate(closedPort(t), srv.port)

	for _, name := range []string{"other." + acmetest.Zone, acmetest.Zone, ""} {
		_, err := handshake(t, srv.port, name, &tls.Config{RootCAs: ca.Roots(), InsecureSkipVerify: name == ""})
		if err == nil {
			t.Fatalf("handshake for %q succeeded", name)
		}
	}
	if n := ca.Requests(); n != 0 {
		t.Fatalf("the CA got %d requests, want none", n)
	}
	if out := logs.String(); strings.Contains(out, "level=WARN") || !strings.Contains(out, "other."+acmetest.Zone) {
		t.Fatalf("want refusals at debug level only, got:\n%s", out)
	}
}

// TestUnreachableDirectory checks that handshakes fail, without hanging,
// when the CA cannot be reached, and that the failure is logged once with
// the domain and the reason.
func TestUnreachableDirectory(t *testing.T) {
	logs := &logBuffer{}
	mgr := newManager(t, config.ACME{
		Domains:      []string{domain},
		DirectoryURL: "https://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/dir",
		CacheDir:     t.TempDir(),
	}, logs)
	// A clock that stands still: both failures fall in one logging period.
	acmecert.SetNow(mgr, func() time.Time { return time.Unix(1e9, 0) })
	srv := serveTLS(t, mgr)
	for range 2 {
		_, err := handshake(t, srv.port, domain, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			t.Fatal("handshake succeeded without a certificate")
		}
	}
	out := logs.String()
	if n := strings.Count(out, "cannot obtain a certificate"); n != 1 {
		t.Fatalf("failure logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "domain="+domain) || !strings.Contains(out, "connection refused") {
		t.Fatalf("log lacks the domain or the reason:\n%s", out)
	}
}

// TestHTTP01 checks the http-01 challenge: the CA cannot reach the TLS
// listener, so tls-alpn-01 fails and the order after it is validated on the
// HTTP handler.
func TestHTTP01(t *testing.T) {
	ca := acmetest.Start(t)
	mgr := newManager(t, config.ACME{
		Domains: []string{domain}, DirectoryURL: ca.URL, CAFile: ca.CAFile, CacheDir: t.TempDir(),
		HTTPListen: "127.0.0.1:0",
	}, nil)
	h := mgr.HTTPHandler()
	if h == nil {
		t.Fatal("no http-01 handler with http_listen set")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); <-done })

	srv := serveTLS(t, mgr)
	ca.Validate(ln.Addr().(*net.TCPAddr).Port, closedPort(t))
	if _, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()}); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if n := ca.Orders(); n != 2 {
		t.Fatalf("orders = %d, want 2 (tls-alpn-01 failing, then http-01)", n)
	}

	// Any other request on the HTTP listener is redirected to https.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+ln.Addr().String()+"/prod?x=1", nil)
	req.Host = domain
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://"+domain+"/prod?x=1" {
		t.Fatalf("redirect = %d %q", resp.StatusCode, loc)
	}
}

// TestNoHTTPHandlerByDefault checks the http-01 handler exists only when
// http_listen is set.
func TestNoHTTPHandlerByDefault(t *testing.T) {
	mgr := newManager(t, config.ACME{Domains: []string{domain}, CacheDir: t.TempDir()}, nil)
	if mgr.HTTPHandler() != nil {
		t.Fatal("http-01 handler without http_listen")
	}
}

// TestExternalAccountBinding checks the account is bound to the key id and
// HMAC key of eab_key_id and eab_hmac_key_env when the CA requires it.
func TestExternalAccountBinding(t *testing.T) {
	const keyID, hmacKey = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	ca := acmetest.Start(t, acmetest.RequireEAB(keyID, hmacKey))
	cfg := config.ACME{
		Domains: []string{domain}, DirectoryURL: ca.URL, CAFile: ca.CAFile, CacheDir: t.TempDir(),
		EABKeyID: keyID, EABHMACKeyEnv: "ACME_EAB_KEY",
	}
	logger := slog.New(slog.DiscardHandler)
	mgr, err := acmecert.New(cfg, func(k string) string {
		if k == "ACME_EAB_KEY" {
			return hmacKey
		}
		return ""
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Close)
	srv := serveTLS(t, mgr)
	ca.Validate(closedPort(t), srv.port)
	if _, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()}); err != nil {
		t.Fatalf("handshake with EAB: %v", err)
	}

	// Without the binding the CA refuses the account: no certificate.
	cfg.EABKeyID, cfg.EABHMACKeyEnv, cfg.CacheDir = "", "", t.TempDir()
	logs := &logBuffer{}
	bare := newManager(t, cfg, logs)
	srv2 := serveTLS(t, bare)
	if _, err := handshake(t, srv2.port, domain, &tls.Config{RootCAs: ca.Roots()}); err == nil {
		t.Fatal("handshake succeeded without the binding the CA requires")
	}
	if out := logs.String(); !strings.Contains(out, "externalAccountRequired") {
		t.Fatalf("log lacks the CA's reason:\n%s", out)
	}
}

// TestNewErrors checks the problems New reports, and that a secret never
// appears in them.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileInPlace := filepath.Join(dir, "file")
	if err := os.WriteFile(fileInPlace, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "not!base64url!secret"
	cases := []struct {
		name string
		cfg  config.ACME
		env  map[string]string
		key  string
		want string
	}{
		{"missing ca_file", config.ACME{CAFile: filepath.Join(dir, "missing.pem")}, nil, "ca_file", "no such file"},
		{"ca_file without PEM", config.ACME{CAFile: notPEM}, nil, "ca_file", "holds no PEM certificate"},
		{"cache_dir is a file", config.ACME{CacheDir: fileInPlace}, nil, "cache_dir", "is not a directory"},
		{"EAB key unset", config.ACME{EABKeyID: "k", EABHMACKeyEnv: "EAB"}, nil, "eab_hmac_key_env", "EAB is unset or empty"},
		{"EAB key not base64url", config.ACME{EABKeyID: "k", EABHMACKeyEnv: "EAB"}, map[string]string{"EAB": secret}, "eab_hmac_key_env", "EAB is not a base64url key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Domains = []string{domain}
			if c.cfg.CacheDir == "" {
				c.cfg.CacheDir = t.TempDir()
			}
			_, err := acmecert.New(c.cfg, func(k string) string { return c.env[k] }, nil)
			var ke *acmecert.KeyError
			if !errors.As(err, &ke) || ke.Key != c.key || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want a KeyError at %s saying %q", err, c.key, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the secret is in the error: %v", err)
			}
			// Only what this machine lacks is "missing" to wsgate validate.
			if missing := c.name == "EAB key unset" || c.name == "missing ca_file"; config.IsMissing(err) != missing {
				t.Fatalf("IsMissing(%v) = %v, want %v", err, !missing, missing)
			}
		})
	}
}

// TestDefaultCacheDir checks the cache goes to wsgate/acme in the user's
// cache directory, and that building a manager writes nothing.
func TestDefaultCacheDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	t.Setenv("HOME", home)
	mgr := newManager(t, config.ACME{Domains: []string{domain}}, nil)
	userDir, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(userDir, home) {
		t.Fatalf("user cache directory %s is not under %s", userDir, home)
	}
	if want := filepath.Join(userDir, "wsgate", "acme"); mgr.CacheDir() != want {
		t.Fatalf("cache directory %s, want %s", mgr.CacheDir(), want)
	}
	if entries, err := os.ReadDir(home); err != nil || len(entries) != 0 {
		t.Fatalf("New wrote to %s: %v %v", home, entries, err)
	}
}
