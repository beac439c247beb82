// Package tlsconfig builds the server TLS of a listener from its config.TLS
// section: TLS 1.2 and 1.3 only, AEAD cipher suites, the certificate pair
// re-read when its files change, and the client CA of mutual TLS.
//
// A listener serves the *tls.Config of a Holder, which takes each handshake's
// settings from the Holder's current value: Set swaps them for new
// handshakes without touching open connections. The certificate comes from
// a GetCertificate function, so a source other than files (ACME) replaces
// CertFiles without changing the listener.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/acmecert"
	"github.com/wsgate/wsgate/internal/config"
)

// cipherSuites are the TLS 1.2 suites served: ECDHE key exchange with an
// AEAD, as AWS's TLS_1_2 security policy. TLS 1.3 suites are not
// configurable and all qualify.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Settings are what a listener's handshakes use.
type Settings struct {
	// GetCertificate returns the certificate for a handshake. Required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// NextProtos are the ALPN protocols offered, in order of preference.
	NextProtos []string
	// ClientCAs and ClientAuth configure mutual TLS; a nil ClientCAs
	// asks for no client certificate.
	ClientCAs  *x509.CertPool
	ClientAuth tls.ClientAuthType
}

// ServerConfig returns the tls.Config of s: TLS 1.2 and 1.3 only, the
// suites of cipherSuites.
func ServerConfig(s Settings) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   cipherSuites,
		GetCertificate: s.GetCertificate,
		NextProtos:     s.NextProtos,
		ClientCAs:      s.ClientCAs,
		ClientAuth:     s.ClientAuth,
	}
}

// Holder holds a listener's current TLS settings. Its methods are safe for
// concurrent use.
type Holder struct {
	cur atomic.Pointer[tls.Config]
}

// NewHolder returns a Holder serving s.
func NewHolder(s Settings) *Holder {
	h := &Holder{}
	h.Set(s)
	return h
}

// Set makes s the settings of the handshakes that start from now on.
func (h *Holder) Set(s Settings) { h.cur.Store(ServerConfig(s)) }

// Config returns the tls.Config a listener serves: every handshake takes
// the Holder's settings current when its ClientHello arrives.
func (h *Holder) Config() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: cipherSuites,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return h.cur.Load(), nil
		},
	}
}

// Listener is the TLS of one listener built from its configuration.
type Listener struct {
	*Holder
	// Files is the certificate pair the listener serves and watches; nil
	// with ACME.
	Files *CertFiles
	// ACME obtains the listener's certificates; nil without.
	ACME *acmecert.Manager
	// ClientAuth is set when the listener asks clients for certificates.
	ClientAuth bool
	// settings are what New or NewACME built the Holder with.
	settings Settings
}

// Settings returns the settings New or NewACME built from the
// configuration. A
// configuration reload builds a new Listener and hands its Settings to the
// running listener's Holder.Set, so that new handshakes use them and open
// connections are left alone.
func (l *Listener) Settings() Settings { return l.settings }

// New builds the TLS of the listener configured at path ("tls" or
// "management.tls") of c. It reads the certificate pair and the client CA
// file; a problem with them is an error located at the key that names the
// file; every problem is reported. nextProtos are the listener's ALPN
// protocols.
func New(c *config.Config, path string, t config.TLS, log *slog.Logger, nextProtos ...string) (*Listener, error) {
	var errs []error
	files, err := LoadCertFiles(t.CertFile, t.KeyFile, log)
	if err != nil {
		errs = append(errs, locate(c, path, err))
	}
	pool, err := clientCAs(c, path, t)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	l := newListener(t, pool, Settings{GetCertificate: files.GetCertificate, NextProtos: nextProtos})
	l.Files = files
	return l, nil
}

// NewACME builds the TLS of the listener configured at path of c whose
// certificates come from ACME (t.ACME): the tls-alpn-01 challenge is
// answered on the listener itself, so its ALPN protocols are nextProtos and
// acmecert.ALPNProto. getenv reads the External Account Binding key. Every
// problem is reported, located at the key at fault.
func NewACME(c *config.Config, path string, t config.TLS, getenv func(string) string, log *slog.Logger, nextProtos ...string) (*Listener, error) {
	var errs []error
	mgr, err := acmecert.New(t.ACME, getenv, log)
	if err != nil {
		var ke *acmecert.KeyError
		if errors.As(err, &ke) {
			errs = append(errs, c.Errorf(path+".acme."+ke.Key, "%w", ke.Err))
		} else {
			errs = append(errs, c.Errorf(path+".acme", "%w", err))
		}
	}
	pool, err := clientCAs(c, path, t)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		if mgr != nil {
			mgr.Close()
		}
		return nil, errors.Join(errs...)
	}
	protos := append(slices.Clip(nextProtos), acmecert.ALPNProto)
	l := newListener(t, pool, Settings{GetCertificate: mgr.GetCertificate, NextProtos: protos})
	l.ACME = mgr
	return l, nil
}

// clientCAs reads t's client CA file; nil without one.
func clientCAs(c *config.Config, path string, t config.TLS) (*x509.CertPool, error) {
	if t.ClientCAFile == "" {
		return nil, nil
	}
	pool, err := loadCAs(t.ClientCAFile)
	if err != nil {
		return nil, c.Errorf(path+".client_ca_file", "%w", err)
	}
	return pool, nil
}

// newListener serves s, with mutual TLS when pool holds client CAs.
func newListener(t config.TLS, pool *x509.CertPool, s Settings) *Listener {
	if pool != nil {
		s.ClientCAs = pool
		s.ClientAuth = tls.RequireAndVerifyClientCert
		if t.ClientAuth == config.ClientAuthRequest {
			s.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return &Listener{Holder: NewHolder(s), ClientAuth: s.ClientCAs != nil, settings: s}
}

// locate positions a CertFiles load error at the key naming the file.
func locate(c *config.Config, path string, err error) error {
	var fe *FileError
	if errors.As(err, &fe) {
		key := path + ".cert_file"
		if fe.Key {
			key = path + ".key_file"
		}
		return c.Errorf(key, "%w", err)
	}
	return c.Errorf(path, "%w", err)
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the client CAs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
