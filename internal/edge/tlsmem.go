package edge

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"reflect"
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
