//go:build linux

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// wss:// targets. The client side of a TLS connection is a crypto/tls
// client over a transport that reads the socket without blocking once the
// upgrade is done, so the idle workers service TLS connections in their
// sweep like plain ones (a read with nothing received returns errAgain, a
// temporary error after which crypto/tls carries on). wsbench dials
// loopback addresses only and does not verify the gateway's certificate.

// errAgain is a read of a non-blocking transport with nothing received.
var errAgain error = againError{}

type againError struct{}

func (againError) Error() string   { return "resource temporarily unavailable" }
func (againError) Timeout() bool   { return true }
func (againError) Temporary() bool { return true }
func (againError) Unwrap() error   { return syscall.EAGAIN }

// nbTransport is the socket under a client tls.Conn: blocking until
// nonBlocking is called, then reading with one non-blocking read(2).
type nbTransport struct {
	*net.TCPConn
	rc       syscall.RawConn
	nonBlock bool
}

func (t *nbTransport) nonBlocking() error {
	rc, err := t.SyscallConn()
	if err != nil {
		return err
	}
	t.rc, t.nonBlock = rc, true
	return nil
}

func (t *nbTransport) Read(p []byte) (int, error) {
	if !t.nonBlock {
		return t.TCPConn.Read(p)
	}
	var n int
	var rerr error
	err := t.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	})
	if err == nil {
		err = rerr
	}
	switch {
	case errors.Is(err, syscall.EAGAIN):
		return 0, errAgain
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// clientTLS is the TLS configuration of wsbench's connections: no
// certificate check (loopback only) and no session resumption, so that
// every connection measures a full handshake.
var clientTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}

// dialConn opens one WebSocket connection to t with d, over TLS for a
// wss:// target. For TLS the returned connection is a *tls.Conn whose
// transport is an *nbTransport, still blocking.
func dialConn(ctx context.Context, d *net.Dialer, t target) (net.Conn, []byte, error) {
	if !t.TLS {
		c, rest, err := dialWS(ctx, d, t)
		if err != nil {
			return nil, nil, err
		}
		return c, rest, nil
	}
	deadline := time.Now().Add(d.Timeout)
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, nil, err
	}
	cfg := clientTLS.Clone()
	cfg.MinVersion, cfg.MaxVersion = t.TLSVersion, t.TLSVersion
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	tc := tls.Client(&nbTransport{TCPConn: c.(*net.TCPConn)}, cfg)
	if err := tc.SetDeadline(deadline); err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	rest, err := handshake(tc, t, deadline)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return tc, rest, nil
}

// writeCertificate writes a self-signed ECDSA P-256 certificate for
// 127.0.0.1 and localhost, and its key, into dir, for the gateways wsbench
// starts with -tls.
func writeCertificate(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "wsbench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "wsbench-cert.pem"), filepath.Join(dir, "wsbench-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// tlsSection is the tls section of the configs wsbench writes.
func tlsSection(certFile, keyFile string) string {
	return fmt.Sprintf("tls:\n  cert_file: %q\n  key_file: %q\n", certFile, keyFile)
}
