package tlsconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPollInterval is how often CertFiles.Run looks at the files.
const DefaultPollInterval = 2 * time.Second

// FileError is a problem with the certificate (Key false) or key file.
type FileError struct {
	File string
	Key  bool
	Err  error
}

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// CertFiles serves a certificate and key read from PEM files, and re-reads
// them when they change. Its methods are safe for concurrent use.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	// reloadMu serializes reloads and guards the fields below.
	reloadMu sync.Mutex
	stamp    fileStamp
	sum      [sha256.Size]byte
	// failed is the stamp of the files when they last failed to load,
	// nil when the last read loaded: the same files are not read (and
	// their problem not logged) again until they change.
	failed *fileStamp
}

// fileStamp is what a poll compares to learn whether the files may have
// changed without reading them.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// LoadCertFiles reads the pair. Its errors are *FileError values naming the
// file at fault; they never hold key material.
func LoadCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	stamp, _ := f.statFiles()
	cert, sum, err := f.read()
	if err != nil {
		return nil, err
	}
	f.cur.Store(cert)
	f.stamp, f.sum = stamp, sum
	return f, nil
}

// GetCertificate returns the current certificate; it is a
// tls.Config.GetCertificate.
func (f *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Certificate returns the current certificate.
func (f *CertFiles) Certificate() *tls.Certificate { return f.cur.Load() }

// Run polls the files every interval (DefaultPollInterval when 0) until ctx
// is done, reloading the pair when they change.
func (f *CertFiles) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = f.Reload(false)
		}
	}
}

// Reload re-reads the pair if the files' sizes or modification times
// changed since the last load, or always when force is set. A pair whose
// content is new and loads replaces the served one and Reload reports true;
// a pair that does not load is logged and the served one kept, and is not
// read again until the files change.
func (f *CertFiles) Reload(force bool) (bool, error) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	stamp, statErr := f.statFiles()
	if !force {
		if statErr == nil && stamp == f.stamp {
			return false, nil
		}
		if f.failed != nil && *f.failed == stamp {
			return false, nil
		}
	}
	cert, sum, err := f.read()
	if err != nil {
		// A rotation that writes the two files one after the other is
		// seen half done; the writing of the second file changes the
		// stamp, so the next poll after it tries again.
		f.failed = &stamp
		f.log.Warn("TLS certificate not reloaded; still serving the previous one", "certFile", f.certFile, "keyFile", f.keyFile, "err", err)
		return false, err
	}
	f.failed = nil
	f.stamp = stamp
	if sum == f.sum {
		return false, nil
	}
	f.sum = sum
	f.cur.Store(cert)
	f.log.Info("TLS certificate reloaded", "certFile", f.certFile, "subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return true, nil
}

func (f *CertFiles) statFiles() (fileStamp, error) {
	c, err := os.Stat(f.certFile)
	if err != nil {
		return fileStamp{}, err
	}
	k, err := os.Stat(f.keyFile)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// read loads the pair and returns it with a hash of both files.
func (f *CertFiles) read() (*tls.Certificate, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, sum, &FileError{File: f.certFile, Err: fmt.Errorf("reading the certificate: %w", err)}
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, sum, &FileError{File: f.keyFile, Key: true, Err: fmt.Errorf("reading the private key: %w", err)}
	}
	if p, _ := pem.Decode(certPEM); p == nil || p.Type != "CERTIFICATE" {
		return nil, sum, &FileError{File: f.certFile, Err: fmt.Errorf("%s does not start with a PEM certificate", f.certFile)}
	}
	if !hasPrivateKey(keyPEM) {
		return nil, sum, &FileError{File: f.keyFile, Key: true, Err: fmt.Errorf("%s holds no PEM private key", f.keyFile)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair's messages name what is wrong (a key that does not
		// match the certificate, a malformed key) and never the key.
		return nil, sum, &FileError{File: f.keyFile, Key: true, Err: fmt.Errorf("%s and %s: %w", f.certFile, f.keyFile, err)}
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, sum, &FileError{File: f.certFile, Err: fmt.Errorf("%s: %w", f.certFile, err)}
		}
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write(keyPEM)
	copy(sum[:], h.Sum(nil))
	return &cert, sum, nil
}

// hasPrivateKey reports whether data holds a PEM private key block, as
// tls.X509KeyPair looks for one: it may follow other blocks, such as the
// "EC PARAMETERS" that `openssl ecparam -genkey` writes before the key.
func hasPrivateKey(data []byte) bool {
	for {
		var p *pem.Block
		p, data = pem.Decode(data)
		if p == nil {
			return false
		}
		if p.Type == "PRIVATE KEY" || bytes.HasSuffix([]byte(p.Type), []byte(" PRIVATE KEY")) {
			return true
		}
	}
}
