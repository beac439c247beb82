package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/tlsconfig"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// `openssl ecparam -name prime256v1 -genkey` writes a SEC 1 key file that
// starts with an "EC PARAMETERS" block before the "EC PRIVATE KEY" one.
// crypto/tls reads such a file (X509KeyPair skips the blocks that are not a
// key), and docs/tls.md lists SEC 1 keys as accepted: the pair must load.
func TestLoadCertFilesAcceptsSEC1KeyAfterECParameters(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	leaf := ca.Server(t, "127.0.0.1")
	dir := t.TempDir()
	certFile, _ := leaf.WriteFiles(t, dir, "server")

	sec1, err := x509.MarshalECPrivateKey(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	oid, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}) // prime256v1
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: oid}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	keyFile := filepath.Join(dir, "openssl-ecparam-key.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("crypto/tls refuses the pair too, the test is wrong: %v", err)
	}

	f, err := tlsconfig.LoadCertFiles(certFile, keyFile, nil)
	if err != nil {
		t.Fatalf("LoadCertFiles: %v", err)
	}
	if got := f.Certificate(); got == nil || got.Leaf == nil || !got.Leaf.Equal(leaf.Cert) {
		t.Fatalf("served certificate is not the leaf")
	}
}
