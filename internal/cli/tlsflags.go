package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
)

// tlsFlags are the TLS options of the commands that reach the gateway:
// the CA to trust instead of the system's, and a client certificate for
// mutual TLS.
type tlsFlags struct {
	caFile, certFile, keyFile string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.caFile, "cacert", "", "PEM `file` of the CA certificates to trust for wss:// and https:// instead of the system's")
	fs.StringVar(&f.certFile, "cert", "", "PEM `file` of a client certificate to present (mutual TLS); with -key")
	fs.StringVar(&f.keyFile, "key", "", "PEM `file` of the client certificate's private key")
}

// client returns the HTTP client to dial with: http.DefaultClient when no
// TLS option is set.
func (f *tlsFlags) client() (*http.Client, error) {
	if f.caFile == "" && f.certFile == "" && f.keyFile == "" {
		return http.DefaultClient, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile != "" {
		data, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("-cacert: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("-cacert: %s holds no PEM certificate", f.caFile)
		}
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return nil, usageError{errors.New("-cert and -key go together")}
	}
	if f.certFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-cert, -key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}, nil
}
