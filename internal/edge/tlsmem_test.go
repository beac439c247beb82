package edge

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"unsafe"

	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// TestTLSReleasesHandshakeBuffers checks that this Go's crypto/tls still
// has the fields releaseBuffers and releasePeerCertificates empty, that it empties them, and that
// the connection works on after it.
func TestTLSReleasesHandshakeBuffers(t *testing.T) {
	if !tlsMem.ok {
		t.Fatalf("crypto/tls.Conn no longer has the fields releaseBuffers knows: %+v", tlsMem)
	}
	ca := tlstest.NewCA(t, "test CA")
	server := ca.Server(t, "127.0.0.1")
	client := ca.Client(t, "alice")
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			cn, sn := net.Pipe()
			defer cn.Close()
			defer sn.Close()
			sc := tls.Server(sn, &tls.Config{Certificates: []tls.Certificate{server.TLSCertificate(t)}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert})
			cc := tls.Client(cn, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v,
				Certificates: []tls.Certificate{client.TLSCertificate(t)}})
			errc := make(chan error, 1)
			go func() { errc <- cc.Handshake() }()
			if err := sc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			raw := (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(sc), tlsMem.rawInput))
			hand := (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(sc), tlsMem.hand))
			if raw.Cap() == 0 && hand.Cap() == 0 {
				t.Fatal("the handshake left no buffers: the test shows nothing")
			}
			if len(sc.ConnectionState().PeerCertificates) == 0 {
				t.Fatal("no client certificate after the handshake")
			}
			releaseBuffers(sc)
			releasePeerCertificates(sc)
			if raw.Cap() != 0 || hand.Cap() != 0 {
				t.Fatalf("after release: rawInput cap %d, hand cap %d; want 0", raw.Cap(), hand.Cap())
			}
			if n := len(sc.ConnectionState().PeerCertificates); n != 0 {
				t.Fatalf("%d peer certificates kept", n)
			}
			// Both directions still work.
			go func() { _, err := cc.Write([]byte("ping")); errc <- err }()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("server read %q, %v", buf, err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			go func() { _, err := sc.Write([]byte("pong")); errc <- err }()
			if _, err := io.ReadFull(cc, buf); err != nil || string(buf) != "pong" {
				t.Fatalf("client read %q, %v", buf, err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}
