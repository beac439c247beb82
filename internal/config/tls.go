package config

// TLS turns on TLS for a listener: the client listener (tls) or the
// management listener (management.tls). With CertFile and KeyFile set the
// listener serves TLS 1.2 and 1.3 only, as AWS does, and re-reads the pair
// when the files change. The zero value means plain TCP.
type TLS struct {
	// CertFile is a PEM file holding the certificate chain, leaf first.
	// Required with KeyFile. Default: none, no TLS.
	CertFile string `yaml:"cert_file"`

	// KeyFile is the PEM file holding the private key of CertFile's leaf.
	// Required with CertFile. Default: none.
	KeyFile string `yaml:"key_file"`

	// ClientCAFile is a PEM file of CA certificates that client
	// certificates must chain to (mutual TLS). The client's certificate
	// then appears in requestContext.identity.clientCert. Requires
	// CertFile. Default: none, clients are not asked for a certificate.
	ClientCAFile string `yaml:"client_ca_file"`

	// ClientAuth says whether a client certificate is required. Only with
	// ClientCAFile. Default ClientAuthRequire when ClientCAFile is set.
	ClientAuth ClientAuth `yaml:"client_auth"`

	// ACME obtains the certificate from an ACME CA (Let's Encrypt) instead
	// of CertFile and KeyFile. Client listener only. Default: none.
	ACME ACME `yaml:"acme"`
}

// ClientAuth is the client certificate policy of a listener with a client
// CA.
type ClientAuth string

// The values of ClientAuth.
const (
	// ClientAuthRequire fails the handshake of a client without a
	// certificate signed by the client CA.
	ClientAuthRequire ClientAuth = "require"
	// ClientAuthRequest asks for a certificate: a client without one
	// connects (and its events carry no clientCert), a client with one
	// that the client CA did not sign fails the handshake.
	ClientAuthRequest ClientAuth = "request"
)

// Enabled reports whether the listener serves TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.ACME.Configured() }

func (t *TLS) fillDefaults() {
	if t.ClientCAFile != "" {
		setDefault(&t.ClientAuth, ClientAuthRequire)
	}
	if t.ACME.Configured() {
		t.ACME.FillDefaults()
	}
}

// tls checks the TLS section at prefix ("tls" or "management.tls"). The
// files themselves are read, and their problems reported at these keys, when
// the gateway is built (see the tlsconfig package).
func (k *checker) tls(prefix string, t TLS) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		k.add(prefix+".cert_file", "needs %s.key_file, the certificate's private key", prefix)
	case t.CertFile == "" && t.KeyFile != "":
		k.add(prefix+".key_file", "needs %s.cert_file, the certificate of this key", prefix)
	}
	if t.ClientCAFile != "" && !t.Enabled() {
		k.add(prefix+".client_ca_file", "mutual TLS needs TLS: set %s.cert_file and %s.key_file, or %s.acme", prefix, prefix, prefix)
	}
	if t.ACME.Configured() || k.src.has(prefix+".acme") {
		switch {
		case prefix != "tls":
			k.add(prefix+".acme", "ACME serves the client listener only: the CA checks the domain on port 443 (or 80), not on the management port; give %s.cert_file and %s.key_file", prefix, prefix)
		case t.CertFile != "" || t.KeyFile != "":
			k.add(prefix+".acme", "cannot be set with %s.cert_file and key_file: the certificate comes from the files or from ACME; remove one", prefix)
		default:
			k.acme(prefix+".acme", t.ACME)
		}
	}
	switch t.ClientAuth {
	case "", ClientAuthRequire, ClientAuthRequest:
	default:
		k.add(prefix+".client_auth", "unknown value %q; one of require, request", t.ClientAuth)
	}
	if t.ClientAuth != "" && t.ClientCAFile == "" {
		k.add(prefix+".client_auth", "needs %s.client_ca_file, the CAs that sign client certificates", prefix)
	}
}
