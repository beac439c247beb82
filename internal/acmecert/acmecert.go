// Package acmecert obtains and renews TLS certificates from an ACME CA (Let's
// Encrypt, or a private CA) for the domains of tls.acme, with
// golang.org/x/crypto/acme/autocert.
//
// A Manager hands certificates to a TLS listener through GetCertificate. The
// CA checks that wsgate answers for a domain with the tls-alpn-01 challenge,
// answered by GetCertificate on that same listener (its NextProtos must
// include ALPNProto), and, when tls.acme.http_listen is set, with http-01,
// answered by HTTPHandler on port 80 when tls-alpn-01 fails.
// Certificates and the account key are kept in a cache directory, so a
// restart orders nothing while the cached certificate is valid; autocert
// renews each one 30 days before it expires.
package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/wsgate/wsgate/internal/config"
)

// ALPNProto is the ALPN protocol of the tls-alpn-01 challenge. A listener
// served by a Manager lists it in its tls.Config.NextProtos.
const ALPNProto = acme.ALPNProto

// requestTimeout bounds each request to the ACME directory, so a CA that
// accepts connections and never answers fails a handshake instead of holding
// it for autocert's five-minute bound.
const requestTimeout = 30 * time.Second

// logEvery is how often a failure to obtain a domain's certificate is logged
// again while handshakes keep failing for it (autocert itself retries an
// order at most once a minute, failing the handshakes in between at once).
const logEvery = time.Minute

// maxRetries and maxRetryWait bound how long a request the CA answers with
// an error acme.Client retries (5xx, 429, a bad nonce): at most maxRetries
// times, after 1, 2 and 4 seconds or the CA's Retry-After when that is no
// longer than maxRetryWait. A longer Retry-After (a rate limit, hours
// away) fails the request at once. acme.Client's default retries until
// autocert's five-minute bound, holding every handshake for the domain.
const (
	maxRetries   = 3
	maxRetryWait = 5 * time.Second
)

// retryBackoff is the acme.Client's RetryBackoff: see maxRetries.
func retryBackoff(n int, _ *http.Request, res *http.Response) time.Duration {
	if n > maxRetries {
		return 0
	}
	if res == nil {
		return time.Duration(1<<(n-1)) * time.Second
	}
	if v := res.Header.Get("Retry-After"); v != "" {
		var d time.Duration
		if secs, err := strconv.Atoi(v); err == nil {
			d = time.Duration(secs) * time.Second
		} else if at, err := http.ParseTime(v); err == nil {
			d = time.Until(at)
		}
		if d > maxRetryWait {
			return 0
		}
		if d > 0 {
			return d
		}
	}
	return time.Duration(1<<(n-1)) * time.Second
}

// Manager obtains, caches and renews certificates for a fixed list of
// domains. Its methods are safe for concurrent use.
type Manager struct {
	m         *autocert.Manager
	http01    http.Handler
	transport *http.Transport
	domains   []string
	logger    *slog.Logger
	now       func() time.Time
	cacheDir  string

	// failMu guards failLogged: per domain, when a failure to obtain or
	// renew its certificate was last logged.
	failMu     sync.Mutex
	failLogged map[string]time.Time
}

// Env looks up an environment variable; os.Getenv in production.
type Env func(string) string

// KeyError is a problem with the value of one tls.acme key, such as a
// ca_file that cannot be read. It never holds a secret.
type KeyError struct {
	// Key is the key under tls.acme, e.g. "ca_file".
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// New builds the Manager tls.acme describes. cfg's defaults need not be
// filled. getenv reads eab_hmac_key_env (nil: os.Getenv). New reads the CA
// bundle, but contacts no CA and writes nothing: the first
// handshake for a domain places the order. Its errors are
// *KeyError values naming the key at fault.
func New(cfg config.ACME, getenv Env, logger *slog.Logger) (*Manager, error) {
	cfg.FillDefaults()
	if getenv == nil {
		getenv = os.Getenv
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cacheDir := cfg.CacheDir
	if cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, &KeyError{"cache_dir", fmt.Errorf("no default (%v); set it to a directory wsgate may write", err)}
		}
		cacheDir = filepath.Join(dir, "wsgate", "acme")
	}
	// autocert creates the directory, readable by its owner only, when it
	// first stores something: validating a configuration creates nothing.
	if fi, err := os.Stat(cacheDir); err == nil && !fi.IsDir() {
		return nil, &KeyError{"cache_dir", fmt.Errorf("%s is not a directory", cacheDir)}
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pool, err := caPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client := &acme.Client{
		DirectoryURL: cfg.DirectoryURL,
		HTTPClient:   &http.Client{Transport: transport, Timeout: requestTimeout},
		UserAgent:    "wsgate",
		RetryBackoff: retryBackoff,
	}

	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      &tolerantCache{DirCache: autocert.DirCache(cacheDir), logger: logger.With("component", "acme")},
		HostPolicy: autocert.HostWhitelist(cfg.Domains...),
		Client:     client,
		Email:      cfg.Email,
	}
	if cfg.EABKeyID != "" {
		key, err := eabKey(cfg.EABHMACKeyEnv, getenv)
		if err != nil {
			return nil, err
		}
		m.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: cfg.EABKeyID, Key: key}
	}
	mgr := &Manager{
		m:          m,
		transport:  transport,
		domains:    append([]string(nil), cfg.Domains...),
		logger:     logger.With("component", "acme"),
		now:        time.Now,
		failLogged: map[string]time.Time{},
		cacheDir:   cacheDir,
	}
	if cfg.HTTPListen != "" {
		// autocert offers http-01 only once its handler exists.
		mgr.http01 = hostWithoutPort(m.HTTPHandler(nil))
	}
	return mgr, nil
}

// accountKeyName is the cache key autocert keeps the ACME account key under.
const accountKeyName = "acme_account+key"

// tolerantCache is the certificate cache: a DirCache whose write failures
// are logged and, except for the account key's, not returned. autocert
// serves a first certificate it could not cache, but discards a renewed
// one, ordering it again every half hour until the certificate served
// expires; with this cache a renewal that cannot be stored is served
// anyway. The account key must be stored, or each restart would register a
// new account.
type tolerantCache struct {
	autocert.DirCache
	logger *slog.Logger
}

func (c *tolerantCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.DirCache.Put(ctx, key, data)
	if err == nil {
		return nil
	}
	// The error names the file, never its contents.
	c.logger.Warn("cannot write to the ACME cache directory; a restart orders this again", "key", key, "error", err)
	if key == accountKeyName {
		return err
	}
	return nil
}

// hostWithoutPort passes requests to h with the port cut from their Host:
// autocert checks the Host against the domain list as it is, and a CA
// reaching the listener on another port than 80 (a test CA, a port
// forwarded to it) sends one.
func hostWithoutPort(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r = r.Clone(r.Context())
			r.Host = host
		}
		h.ServeHTTP(w, r)
	})
}

// caPool returns the system's roots plus the certificates of the PEM file.
func caPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, &KeyError{"ca_file", err}
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &KeyError{"ca_file", fmt.Errorf("%s holds no PEM certificate", file)}
	}
	return pool, nil
}

// unsetEnv is an environment variable that is unset or empty: missing on
// this machine, which wsgate validate reports apart from mistakes.
type unsetEnv string

func (e unsetEnv) Error() string { return "environment variable " + string(e) + " is unset or empty" }
func (e unsetEnv) Unwrap() error { return config.ErrMissing }

// eabKey decodes the HMAC key of the variable env. The key is never part of
// an error.
func eabKey(env string, getenv Env) ([]byte, error) {
	v := strings.TrimSpace(getenv(env))
	if v == "" {
		return nil, &KeyError{"eab_hmac_key_env", unsetEnv(env)}
	}
	key, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(key) == 0 {
		return nil, &KeyError{"eab_hmac_key_env", fmt.Errorf("environment variable %s is not a base64url key as the CA gives it", env)}
	}
	return key, nil
}

// GetCertificate is the tls.Config.GetCertificate of the listener: it
// answers tls-alpn-01 challenges, returns the cached certificate of a listed
// domain, and otherwise orders one, blocking the handshake until the CA has
// issued it (or failed). A server name that is not listed gets an error and
// no order.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := m.m.GetCertificate(hello)
	if err != nil {
		m.logFailure(hello, err)
		return cert, err
	}
	if cert != nil && cert.Leaf != nil && !isChallenge(hello) {
		m.checkRenewed(serverName(hello), cert.Leaf)
	}
	return cert, nil
}

func serverName(hello *tls.ClientHelloInfo) string {
	return strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
}

// logFailure logs why a handshake got no certificate: at warning level for
// a listed domain, at most once per logEvery for each; at debug level for
// any other server name, which scanners send by the thousand.
func (m *Manager) logFailure(hello *tls.ClientHelloInfo, err error) {
	name := serverName(hello)
	if !m.listed(name) || isChallenge(hello) {
		m.logger.Debug("no certificate for server name", "serverName", name, "error", err)
		return
	}
	if m.due(name) {
		m.logger.Warn("cannot obtain a certificate; handshakes for this domain fail until it is obtained",
			"domain", name, "error", err)
	}
}

// checkRenewed warns, at most once per logEvery for each domain, when the
// certificate served for name should have been renewed long ago: autocert
// renews a third of the validity (at most 30 days) before expiry and
// retries every half hour or so, silently, and keeps serving the old
// certificate meanwhile, expired or not. Half of that window left means
// renewal has been failing for a while.
func (m *Manager) checkRenewed(name string, leaf *x509.Certificate) {
	now := m.now()
	window := min(leaf.NotAfter.Sub(leaf.NotBefore)/3, 30*24*time.Hour)
	if leaf.NotAfter.Sub(now) > window/2 || !m.due(name) {
		return
	}
	if now.After(leaf.NotAfter) {
		m.logger.Warn("certificate expired and not renewed; clients refuse it until the CA issues a new one",
			"domain", name, "notAfter", leaf.NotAfter)
		return
	}
	m.logger.Warn("certificate not renewed yet; renewal keeps failing",
		"domain", name, "notAfter", leaf.NotAfter)
}

// due reports whether a warning about name is due, and if so records it.
func (m *Manager) due(name string) bool {
	now := m.now()
	m.failMu.Lock()
	defer m.failMu.Unlock()
	last, seen := m.failLogged[name]
	if seen && now.Sub(last) < logEvery {
		return false
	}
	m.failLogged[name] = now
	return true
}

func (m *Manager) listed(name string) bool {
	for _, d := range m.domains {
		if strings.EqualFold(d, name) {
			return true
		}
	}
	return false
}

func isChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto
}

// CacheDir returns the directory the account key and certificates are kept
// in: tls.acme.cache_dir or its default.
func (m *Manager) CacheDir() string { return m.cacheDir }

// TLSConfig returns a server configuration for a listener served by m: TLS
// 1.2 and 1.3, HTTP/1.1 (WebSocket upgrades) and the tls-alpn-01 protocol.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: m.GetCertificate,
		NextProtos:     []string{"http/1.1", ALPNProto},
	}
}

// HTTPHandler returns the handler of the http-01 listener: it answers the
// CA's requests under /.well-known/acme-challenge/ and redirects every other
// GET and HEAD to https (400 for other methods). It returns nil unless
// tls.acme.http_listen is set. Orders try tls-alpn-01 first and, when the
// CA cannot complete it, http-01 in a new order.
func (m *Manager) HTTPHandler() http.Handler {
	return m.http01
}

// Close drops the idle connections to the CA. Renewal timers of the
// certificates obtained stay armed: autocert offers no way to stop them, and
// each is a timer, not a goroutine, until it fires.
func (m *Manager) Close() {
	m.transport.CloseIdleConnections()
}
