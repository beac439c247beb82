package edge

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"hash"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Releasing crypto/tls buffers. A tls.Conn keeps, for its whole life, the
// buffers its handshake grew: the raw input buffer and the handshake
// message buffer each hold the ClientHello's size (1.5–2 KB with a
// post-quantum key share), and the reader of decrypted data keeps the raw
// buffer's last array alive. For an idle wss:// connection that is about
// 4 KB of a total near 10 KB. crypto/tls has no call that gives them back,
// so tlsMem finds the fields by name and type when the package loads and
// zeroes those that hold no unread bytes: crypto/tls allocates them again,
// as large as the next record needs, when it needs them. The client's
// parsed certificates (mutual TLS) go too, once Connect has copied what
// the events show.
//
// When a Go release renames or retypes a field, that field is left alone
// (tlsMem.ok reports it, and TestTLSReleasesHandshakeBuffers fails) rather
// than touched blindly: memory use goes back up, correctness does not
// change. Every call runs with the connection's mu held, or before the
// connection is shared, so no other goroutine uses the tls.Conn meanwhile.
var tlsMem = findTLSFields()

type tlsFields struct {
	rawInput, hand, input     uintptr // offsets in tls.Conn
	peerCerts, verifiedChains uintptr
	ok                        bool // every field was found with its type

	// The record protection of TLS 1.3 (see releaseCiphers).
	vers, cipherSuite uintptr // offsets in tls.Conn
	in, out           uintptr // offsets in tls.Conn of the two halfConns
	cipher, secret    uintptr // offsets in halfConn
	ciphersOK         bool    // every field was found with its type
}

func findTLSFields() tlsFields {
	t := reflect.TypeFor[tls.Conn]()
	var f tlsFields
	ok := true
	find := func(name string, want reflect.Type) uintptr {
		sf, found := t.FieldByName(name)
		if !found || sf.Type != want {
			ok = false
			return 0
		}
		return sf.Offset
	}
	f.rawInput = find("rawInput", reflect.TypeFor[bytes.Buffer]())
	f.hand = find("hand", reflect.TypeFor[bytes.Buffer]())
	f.input = find("input", reflect.TypeFor[bytes.Reader]())
	f.peerCerts = find("peerCertificates", reflect.TypeFor[[]*x509.Certificate]())
	f.verifiedChains = find("verifiedChains", reflect.TypeFor[[][]*x509.Certificate]())
	f.ok = ok

	ok = true
	f.vers = find("vers", reflect.TypeFor[uint16]())
	f.cipherSuite = find("cipherSuite", reflect.TypeFor[uint16]())
	in, found := t.FieldByName("in")
	out, found2 := t.FieldByName("out")
	if !found || !found2 || in.Type != out.Type || in.Type.Kind() != reflect.Struct || in.Type.Name() != "halfConn" {
		return f
	}
	f.in, f.out = in.Offset, out.Offset
	t = in.Type
	f.cipher = find("cipher", reflect.TypeFor[any]())
	f.secret = find("trafficSecret", reflect.TypeFor[[]byte]())
	f.ciphersOK = ok
	return f
}

// releaseBuffers gives back the buffers of tc that hold no unread bytes.
// It runs after the handshake and after every read of an open connection:
// the next record then costs an allocation of its size, which is small
// beside decrypting it, and an idle connection holds no buffer.
func releaseBuffers(tc *tls.Conn) {
	if !tlsMem.ok {
		return
	}
	for _, off := range []uintptr{tlsMem.rawInput, tlsMem.hand} {
		if b := (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(tc), off)); b.Len() == 0 && b.Cap() > 0 {
			*b = bytes.Buffer{}
		}
	}
	if r := (*bytes.Reader)(unsafe.Add(unsafe.Pointer(tc), tlsMem.input)); r.Len() == 0 {
		*r = bytes.Reader{}
	}
}

// releasePeerCertificates drops the client's parsed certificates, which
// nothing reads after Connect.
func releasePeerCertificates(tc *tls.Conn) {
	if !tlsMem.ok {
		return
	}
	*(*[]*x509.Certificate)(unsafe.Add(unsafe.Pointer(tc), tlsMem.peerCerts)) = nil
	*(*[][]*x509.Certificate)(unsafe.Add(unsafe.Pointer(tc), tlsMem.verifiedChains)) = nil
}

// Releasing the record protection of idle TLS 1.3 connections. With
// AES-GCM, each direction's cipher holds the expanded AES key schedules
// and the GHASH table: 896 bytes of heap each, 1.75 KiB per connection, the
// largest part of what an idle wss:// connection costs beyond a ws:// one.
// TLS 1.3 keeps each direction's traffic secret (for key updates), and the
// AES key is derived from it (RFC 8446, section 7.3), so an idle
// connection can let the ciphers go and derive them again when it next
// reads or writes: releaseCiphers empties the AES-GCM inside crypto/tls's
// nonce wrapper, which keeps the IV, and restoreCiphers puts a new one
// there, made with crypto/aes and crypto/cipher from the derived key. The
// sequence numbers stay in crypto/tls, and the wrapper turns them into the
// same nonces as before.
//
// It is done for TLS 1.3 with AES-GCM only. TLS 1.2 keeps no secret to
// derive the keys from; ChaCha20-Poly1305 holds only its 32-byte key.
// crypto/tls's GCM also checks that nonces only grow, as FIPS 140-3 asks
// of TLS; crypto/cipher's does not (the nonces still never repeat: they
// are the sequence numbers crypto/tls counts), so in FIPS 140-3 mode
// nothing is released.
// Every tls.Conn call of a connection whose ciphers may be released is
// preceded by restoreCiphers, with the connection's mu held.

// xorNonce describes crypto/tls's nonce wrapper, whose type is known only
// once a connection has one.
type xorNonce struct {
	typ  reflect.Type // *crypto/tls.xorNonceAEAD
	aead uintptr      // offset of its cipher.AEAD
}

var xorNonceLayout atomic.Pointer[xorNonce]

// innerAEAD returns where the AES-GCM of the cipher c sits, or nil when c
// is not crypto/tls's nonce wrapper as this file knows it.
func innerAEAD(c any) *cipher.AEAD {
	t := reflect.TypeOf(c)
	l := xorNonceLayout.Load()
	if l == nil || l.typ != t {
		if t == nil || t.Kind() != reflect.Pointer || t.Elem().Name() != "xorNonceAEAD" || t.Elem().PkgPath() != "crypto/tls" {
			return nil
		}
		f, ok := t.Elem().FieldByName("aead")
		if !ok || f.Type != reflect.TypeFor[cipher.AEAD]() {
			return nil
		}
		l = &xorNonce{typ: t, aead: f.Offset}
		xorNonceLayout.Store(l)
	}
	return (*cipher.AEAD)(unsafe.Add(reflect.ValueOf(c).UnsafePointer(), l.aead))
}

// gcmKeys returns the hash and key length of tc's cipher suite when tc's
// ciphers may be released: TLS 1.3 with AES-GCM.
func gcmKeys(tc *tls.Conn) (func() hash.Hash, int, bool) {
	if !tlsMem.ciphersOK || fips140.Enabled() {
		return nil, 0, false
	}
	p := unsafe.Pointer(tc)
	if *(*uint16)(unsafe.Add(p, tlsMem.vers)) != tls.VersionTLS13 {
		return nil, 0, false
	}
	switch *(*uint16)(unsafe.Add(p, tlsMem.cipherSuite)) {
	case tls.TLS_AES_128_GCM_SHA256:
		return sha256.New, 16, true
	case tls.TLS_AES_256_GCM_SHA384:
		return sha512.New384, 32, true
	}
	return nil, 0, false
}

// releaseCiphers lets the AES-GCM states of both directions of tc go. It
// reports whether it released anything.
func releaseCiphers(tc *tls.Conn) bool {
	if _, _, ok := gcmKeys(tc); !ok {
		return false
	}
	released := false
	for _, off := range []uintptr{tlsMem.in, tlsMem.out} {
		hc := unsafe.Add(unsafe.Pointer(tc), off)
		if a := innerAEAD(*(*any)(unsafe.Add(hc, tlsMem.cipher))); a != nil && *a != nil {
			*a = nil
			released = true
		}
	}
	return released
}

// restoreCiphers derives again the AES-GCM states releaseCiphers let go.
func restoreCiphers(tc *tls.Conn) error {
	h, keyLen, ok := gcmKeys(tc)
	if !ok {
		return nil
	}
	for _, off := range []uintptr{tlsMem.in, tlsMem.out} {
		hc := unsafe.Add(unsafe.Pointer(tc), off)
		a := innerAEAD(*(*any)(unsafe.Add(hc, tlsMem.cipher)))
		if a == nil || *a != nil {
			continue
		}
		g, err := trafficGCM(h, *(*[]byte)(unsafe.Add(hc, tlsMem.secret)), keyLen)
		if err != nil {
			return err
		}
		*a = g
	}
	return nil
}

// trafficGCM returns the AES-GCM keyed with the write key of a TLS 1.3
// traffic secret: HKDF-Expand-Label(secret, "key", "", keyLen).
func trafficGCM(h func() hash.Hash, secret []byte, keyLen int) (cipher.AEAD, error) {
	const label = "tls13 key"
	info := make([]byte, 0, 4+len(label))
	info = append(info, byte(keyLen>>8), byte(keyLen), byte(len(label)))
	info = append(info, label...)
	info = append(info, 0) // empty context
	key, err := hkdf.Expand(h, secret, string(info), keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ciphersReleased reports whether both directions of tc have let their
// AES-GCM go.
func ciphersReleased(tc *tls.Conn) bool {
	if _, _, ok := gcmKeys(tc); !ok {
		return false
	}
	for _, off := range []uintptr{tlsMem.in, tlsMem.out} {
		hc := unsafe.Add(unsafe.Pointer(tc), off)
		if a := innerAEAD(*(*any)(unsafe.Add(hc, tlsMem.cipher))); a == nil || *a != nil {
			return false
		}
	}
	return true
}
