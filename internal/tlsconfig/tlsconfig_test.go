package tlsconfig_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/tlsconfig"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

func TestNewReportsFileProblemsAtTheirKey(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	_, otherKey := ca.Server(t, "other").WriteFiles(t, dir, "other")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name          string
		cert, key, ca string
		want          string // substring of the error, after the position
		missing       bool
	}{
		{"missing certificate", missing, key, "", "wsgate.yaml:3: tls.cert_file: reading the certificate: open " + missing + ": no such file or directory", true},
		{"missing key", cert, missing, "", "wsgate.yaml:4: tls.key_file: reading the private key: open " + missing + ": no such file or directory", true},
		{"unreadable certificate", unreadable, key, "", "wsgate.yaml:3: tls.cert_file: reading the certificate: read " + unreadable + ": is a directory", false},
		{"certificate not PEM", garbage, key, "", "wsgate.yaml:3: tls.cert_file: " + garbage + " does not start with a PEM certificate", false},
		{"key not PEM", cert, garbage, "", "wsgate.yaml:4: tls.key_file: " + garbage + " holds no PEM private key", false},
		{"key of another certificate", cert, otherKey, "", "wsgate.yaml:4: tls.key_file: " + cert + " and " + otherKey + ": tls: private key does not match public key", false},
		{"key as certificate", key, key, "", "wsgate.yaml:3: tls.cert_file: " + key + " does not start with a PEM certificate", false},
		{"client CA missing", cert, key, missing, "wsgate.yaml:5: tls.client_ca_file: reading the client CAs: open " + missing + ": no such file or directory", true},
		{"client CA without certificates", cert, key, garbage, "wsgate.yaml:5: tls.client_ca_file: " + garbage + " holds no PEM certificate", false},
		{"certificate and client CA missing", missing, key, missing, "wsgate.yaml:3: tls.cert_file: reading the certificate: open " + missing + ": no such file or directory\n" +
			"wsgate.yaml:5: tls.client_ca_file: reading the client CAs: open " + missing + ": no such file or directory", true},
		{"valid", cert, key, caFile, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := fmt.Sprintf("stage: prod\ntls:\n  cert_file: %q\n  key_file: %q\n", tt.cert, tt.key)
			if tt.ca != "" {
				yaml += fmt.Sprintf("  client_ca_file: %q\n", tt.ca)
			}
			c, err := config.Parse("wsgate.yaml", []byte(yaml))
			if err != nil {
				t.Fatal(err)
			}
			l, err := tlsconfig.New(c, "tls", c.TLS, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !l.ClientAuth {
					t.Error("a listener with a client CA does not ask for client certificates")
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v\nwant    %s", err, tt.want)
			}
			if config.IsMissing(err) != tt.missing {
				t.Errorf("IsMissing = %v; want %v", !tt.missing, tt.missing)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Errorf("the error shows key material: %v", err)
			}
		})
	}
}

func TestServerConfigVersions(t *testing.T) {
	h := tlsconfig.NewHolder(tlsconfig.Settings{})
	cfg, err := h.Config().GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %s; want TLS 1.2", tls.VersionName(cfg.MinVersion))
	}
	for _, id := range cfg.CipherSuites {
		s := tls.CipherSuiteName(id)
		if !strings.Contains(s, "ECDHE") || !(strings.Contains(s, "GCM") || strings.Contains(s, "CHACHA20")) {
			t.Errorf("cipher suite %s is not ECDHE with an AEAD", s)
		}
	}
}

// TestHolderSwap: settings set on a Holder apply to the handshakes that
// start afterwards; a connection made before keeps working.
func TestHolderSwap(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	first, second := ca.Server(t, "127.0.0.1"), ca.Server(t, "127.0.0.1")
	settingsOf := func(l *tlstest.Leaf) tlsconfig.Settings {
		c := l.TLSCertificate(t)
		return tlsconfig.Settings{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }}
	}
	h := tlsconfig.NewHolder(settingsOf(first))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", h.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echo := func(c *tls.Conn, msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q, %v", buf, err)
		}
	}
	old := dial()
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("first handshake got serial %x", got)
	}
	h.Set(settingsOf(second))
	if got := dial().ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatalf("after Set a handshake got serial %x; want the new certificate's %x", got, second.Cert.SerialNumber)
	}
	echo(old, "still open")
}
