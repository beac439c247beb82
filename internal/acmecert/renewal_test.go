package acmecert_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/acmecert/acmetest"
	"github.com/wsgate/wsgate/internal/config"
)

// TestRenewalFailureLogged obtains a short-lived certificate, takes the CA
// down so that autocert's renewal fails, and checks that the gateway says
// so at warning level before and after the certificate expires, rather
// than serving it until it has expired and beyond with nothing in the log.
func TestRenewalFailureLogged(t *testing.T) {
	const validity = 10 * time.Second
	ca := acmetest.Start(t, acmetest.Validity(validity))
	logs := &logBuffer{}
	mgr := newManager(t, config.ACME{
		Domains: []string{domain}, DirectoryURL: ca.URL, CAFile: ca.CAFile,
		CacheDir: filepath.Join(t.TempDir(), "acme"),
	}, logs)
	srv := serveTLS(t, mgr)
	ca.Validate(closedPort(t), srv.port)

	cs, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	notAfter := cs.PeerCertificates[0].NotAfter
	ca.Down()

	// autocert renews a third of the validity before expiry; with the CA
	// down it fails. Wait until the certificate has expired.
	time.Sleep(time.Until(notAfter) + time.Second)
	// The client does not check the chain: what the server serves is the
	// question, and the log.
	cs, err = handshake(t, srv.port, domain, &tls.Config{InsecureSkipVerify: true})
	if err == nil && time.Now().After(cs.PeerCertificates[0].NotAfter) {
		t.Logf("served a certificate that expired at %v", cs.PeerCertificates[0].NotAfter)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "domain="+domain) {
		t.Fatalf("renewal failed and the certificate expired, but nothing was logged at warning level:\n%s", out)
	}
}

// TestRenewalWithUnwritableCache takes the cache directory away (a full or
// read-only disk) before autocert renews a short-lived certificate, and
// checks that the renewed certificate is served anyway, as a first
// certificate is when it cannot be cached, and that the cache failure is
// logged. autocert's renewal discards a certificate it cannot cache, and
// orders another one every half hour or so until the old one expires.
func TestRenewalWithUnwritableCache(t *testing.T) {
	const validity = 10 * time.Second
	ca := acmetest.Start(t, acmetest.Validity(validity))
	logs := &logBuffer{}
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "acme")
	mgr := newManager(t, config.ACME{
		Domains: []string{domain}, DirectoryURL: ca.URL, CAFile: ca.CAFile, CacheDir: cacheDir,
	}, logs)
	srv := serveTLS(t, mgr)
	ca.Validate(closedPort(t), srv.port)

	cs, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	first := cs.PeerCertificates[0]
	// The cache directory becomes a file: nothing can be written there.
	if err := os.Rename(cacheDir, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cacheDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for time.Now().Before(first.NotAfter) {
		time.Sleep(200 * time.Millisecond)
		cs, err := handshake(t, srv.port, domain, &tls.Config{RootCAs: ca.Roots()})
		if err == nil && cs.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
			if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "cache") {
				t.Fatalf("the cache failure is not logged:\n%s", out)
			}
			return
		}
	}
	t.Fatalf("the certificate expired without the renewed one served (%d orders placed):\n%s", ca.Orders(), logs.String())
}
