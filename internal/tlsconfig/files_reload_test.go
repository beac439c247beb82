package tlsconfig_test

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/tlsconfig"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// writeFile writes data over path through a rename, as certificate
// managers do, with a modification time of at seconds from now (the
// clock file systems stamp files with ticks every few milliseconds: two
// writes in a row could carry the same time).
func writeFile(t *testing.T, path string, data []byte, at int) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	mod := time.Now().Add(time.Duration(at) * time.Second)
	if err := os.Chtimes(path+".tmp", mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// docs/tls.md: a pair that does not load is logged and "tried again at the
// next change". Polls that find the files as they were do not read them
// again, nor log the same warning every poll interval; the change that
// completes the rotation is picked up.
func TestCertFilesBadPairTriedAgainAtTheNextChange(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	first := ca.Server(t, "127.0.0.1")
	certFile, keyFile := first.WriteFiles(t, dir, "server")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	f, err := tlsconfig.LoadCertFiles(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}

	// Half a rotation: the new key, the old certificate.
	next := ca.Server(t, "127.0.0.1")
	writeFile(t, keyFile, next.KeyPEM, 10)
	if changed, err := f.Reload(false); changed || err == nil {
		t.Fatalf("Reload of a mismatched pair: changed %v, err %v", changed, err)
	}
	for range 5 {
		if changed, err := f.Reload(false); changed || err != nil {
			t.Fatalf("Reload of unchanged files: changed %v, err %v; want false, nil", changed, err)
		}
	}
	if n := strings.Count(logs.String(), "TLS certificate not reloaded"); n != 1 {
		t.Fatalf("%d warnings for one bad pair left in place, want 1:\n%s", n, logs.String())
	}
	if !f.Certificate().Leaf.Equal(first.Cert) {
		t.Fatal("the served certificate changed to a pair that did not load")
	}

	// The rest of the rotation.
	writeFile(t, certFile, next.CertPEM, 20)
	if changed, err := f.Reload(false); !changed || err != nil {
		t.Fatalf("Reload after the rotation completed: changed %v, err %v", changed, err)
	}
	if !f.Certificate().Leaf.Equal(next.Cert) {
		t.Fatal("the new pair is not served")
	}
}
