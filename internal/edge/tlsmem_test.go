package edge

import (
	"bytes"
	"crypto/cipher"
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

// handshakePipe returns the server and client ends of a TLS connection of
// version v over net.Pipe, its handshake done.
func handshakePipe(t testing.TB, v uint16) (*tls.Conn, *tls.Conn) {
	t.Helper()
	ca := tlstest.NewCA(t, "test CA")
	server := ca.Server(t, "127.0.0.1")
	cn, sn := net.Pipe()
	t.Cleanup(func() { cn.Close(); sn.Close() })
	sc := tls.Server(sn, &tls.Config{Certificates: []tls.Certificate{server.TLSCertificate(t)}})
	cc := tls.Client(cn, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v})
	errc := make(chan error, 1)
	go func() { errc <- cc.Handshake() }()
	if err := sc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return sc, cc
}

// exchange sends a message each way between a and b and checks that it
// arrives.
func exchange(t *testing.T, a, b *tls.Conn, msg string) {
	t.Helper()
	for _, p := range [][2]*tls.Conn{{a, b}, {b, a}} {
		errc := make(chan error, 1)
		go func() { _, err := p[0].Write([]byte(msg)); errc <- err }()
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(p[1], buf); err != nil || string(buf) != msg {
			t.Fatalf("read %q, %v; want %q", buf, err, msg)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestTLSReleasesCiphers: the AES-GCM states of a TLS 1.3 connection are
// let go and derived again from the traffic secrets, equal to crypto/tls's
// own: the same key seals the same bytes, and records flow both ways
// across several release and restore rounds.
func TestTLSReleasesCiphers(t *testing.T) {
	if !tlsMem.ciphersOK {
		t.Fatalf("crypto/tls.Conn no longer has the fields releaseCiphers knows: %+v", tlsMem)
	}
	sc, cc := handshakePipe(t, tls.VersionTLS13)
	if s := sc.ConnectionState().CipherSuite; s != tls.TLS_AES_128_GCM_SHA256 {
		t.Skipf("negotiated %s (no AES hardware?): nothing to release", tls.CipherSuiteName(s))
	}
	exchange(t, sc, cc, "before")
	var orig [2]cipher.AEAD
	for i, off := range []uintptr{tlsMem.in, tlsMem.out} {
		hc := unsafe.Add(unsafe.Pointer(sc), off)
		a := innerAEAD(*(*any)(unsafe.Add(hc, tlsMem.cipher)))
		if a == nil || *a == nil {
			t.Fatalf("direction %d: no AES-GCM inside crypto/tls's cipher", i)
		}
		orig[i] = *a
	}
	if ciphersReleased(sc) {
		t.Fatal("released before releaseCiphers")
	}
	if !releaseCiphers(sc) || !ciphersReleased(sc) {
		t.Fatal("releaseCiphers released nothing")
	}
	if releaseCiphers(sc) {
		t.Fatal("a second releaseCiphers released something")
	}
	if err := restoreCiphers(sc); err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 12)
	plain := []byte("the same record")
	for i, off := range []uintptr{tlsMem.in, tlsMem.out} {
		hc := unsafe.Add(unsafe.Pointer(sc), off)
		got := *innerAEAD(*(*any)(unsafe.Add(hc, tlsMem.cipher)))
		if got == nil || got == orig[i] {
			t.Fatalf("direction %d: not derived again", i)
		}
		if a, b := orig[i].Seal(nil, nonce, plain, nil), got.Seal(nil, nonce, plain, nil); !bytes.Equal(a, b) {
			t.Fatalf("direction %d: derived key differs from crypto/tls's", i)
		}
	}
	for _, msg := range []string{"one", "two", "three"} {
		exchange(t, sc, cc, msg)
		releaseCiphers(sc)
		if err := restoreCiphers(sc); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTLS12KeepsCiphers: TLS 1.2 keeps no traffic secret to derive keys
// from, so its ciphers stay.
func TestTLS12KeepsCiphers(t *testing.T) {
	sc, cc := handshakePipe(t, tls.VersionTLS12)
	if releaseCiphers(sc) || ciphersReleased(sc) {
		t.Fatal("TLS 1.2 ciphers released")
	}
	if err := restoreCiphers(sc); err != nil {
		t.Fatal(err)
	}
	exchange(t, sc, cc, "still works")
}

// BenchmarkTLSRestoreCiphers is the cost an idle TLS 1.3 connection pays
// for its next record: both directions' AES-GCM derived again.
func BenchmarkTLSRestoreCiphers(b *testing.B) {
	sc, _ := handshakePipe(b, tls.VersionTLS13)
	if _, _, ok := gcmKeys(sc); !ok {
		b.Skip("no AES-GCM negotiated")
	}
	b.ReportAllocs()
	for b.Loop() {
		releaseCiphers(sc)
		if err := restoreCiphers(sc); err != nil {
			b.Fatal(err)
		}
	}
}
