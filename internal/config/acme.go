package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// LetsEncryptURL is the default tls.acme.directory_url: Let's Encrypt's
// production directory.
const LetsEncryptURL = "https://acme-v02.api.letsencrypt.org/directory"

// ACME obtains and renews the client listener's certificate from an ACME CA
// (Let's Encrypt by default) for the listed domains. Using it accepts the
// CA's terms of service.
type ACME struct {
	// Domains are the names certificates are obtained for; a client's
	// server name (SNI) outside this list gets no certificate. Required.
	Domains []string `yaml:"domains"`
	// Email is the account's contact address for expiry and problem notices
	// from the CA. Optional.
	Email string `yaml:"email"`
	// DirectoryURL is the CA's ACME directory. Default LetsEncryptURL.
	DirectoryURL string `yaml:"directory_url"`
	// CacheDir holds the account key and the certificates, so a restart
	// orders nothing new. Default: wsgate/acme in the user's cache
	// directory ($XDG_CACHE_HOME or ~/.cache on Linux).
	CacheDir string `yaml:"cache_dir"`
	// CAFile is a PEM bundle trusted, besides the system's roots, for the
	// directory's HTTPS certificate: a private ACME CA's root.
	CAFile string `yaml:"ca_file"`
	// HTTPListen, when set, is the address of a plain HTTP listener (":80")
	// answering the http-01 challenge and redirecting every other request
	// to https. The tls-alpn-01 challenge, answered on the TLS listener
	// itself, is always tried first; http-01 serves when the CA cannot reach
	// the TLS listener on port 443. Default: off.
	HTTPListen string `yaml:"http_listen"`
	// EABKeyID and EABHMACKeyEnv are the External Account Binding some CAs
	// require (ZeroSSL, Google Trust Services): the key id and the
	// environment variable holding the base64url HMAC key. Both or neither.
	EABKeyID      string `yaml:"eab_key_id"`
	EABHMACKeyEnv string `yaml:"eab_hmac_key_env"`
}

// Configured reports whether any key of a is set.
func (a ACME) Configured() bool {
	return len(a.Domains) > 0 || a.Email != "" || a.DirectoryURL != "" || a.CacheDir != "" ||
		a.CAFile != "" || a.HTTPListen != "" || a.EABKeyID != "" || a.EABHMACKeyEnv != ""
}

// FillDefaults sets a's defaults. The cache directory's default depends on
// the machine and is resolved where the certificates are obtained.
func (a *ACME) FillDefaults() {
	setDefault(&a.DirectoryURL, LetsEncryptURL)
}

// acme checks a at path, e.g. "tls.acme".
func (k *checker) acme(path string, a ACME) {
	a.FillDefaults()
	if len(a.Domains) == 0 {
		k.add(path+".domains", "required: the names to obtain certificates for, e.g. [ws.example.com]")
	}
	seen := map[string]bool{}
	for i, d := range a.Domains {
		p := fmt.Sprintf("%s.domains[%d]", path, i)
		if msg := domainProblem(d); msg != "" {
			k.add(p, "%q %s", d, msg)
			continue
		}
		if seen[strings.ToLower(d)] {
			k.add(p, "%q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n,")) {
		k.add(path+".email", "%q is not an email address", a.Email)
	}
	if u, err := url.Parse(a.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		k.add(path+".directory_url", "must be an https:// URL without credentials, e.g. %s", LetsEncryptURL)
	}
	if a.HTTPListen != "" {
		k.address(path+".http_listen", a.HTTPListen)
	}
	switch {
	case (a.EABKeyID == "") != (a.EABHMACKeyEnv == ""):
		k.add(path+".eab_key_id", "eab_key_id and eab_hmac_key_env go together: the CA gives both")
	case a.EABHMACKeyEnv != "":
		k.envName(path+".eab_hmac_key_env", a.EABHMACKeyEnv)
	}
}

// domainProblem says what makes d unusable as an ACME domain, or "".
func domainProblem(d string) string {
	switch {
	case d == "":
		return "is empty"
	case strings.HasPrefix(d, "*"):
		return "is a wildcard, which needs the dns-01 challenge; list each name"
	case net.ParseIP(d) != nil:
		return "is an IP address; ACME certificates here are for domain names"
	case strings.ContainsAny(d, ":/"):
		return "must be a bare domain name, without scheme, port or path"
	case !strings.Contains(strings.Trim(d, "."), "."):
		return "must have at least two labels (example.com); a CA does not issue for a single label"
	case strings.HasSuffix(d, "."):
		return "must not end with a dot"
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "is not a valid domain name"
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return "is not a valid domain name (letters, digits, - and .; internationalized names in their xn-- form)"
			}
		}
	}
	if len(d) > 253 {
		return "is longer than 253 characters"
	}
	return ""
}
