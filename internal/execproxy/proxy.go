// Package execproxy is the loopback HTTP CONNECT proxy through which local
// Lambda functions reach wsgate's management API at the endpoint they would
// call on AWS, https://{api_id}.execute-api.{region}.amazonaws.com/{stage},
// with the AWS SDK unchanged.
//
// Local functions get HTTPS_PROXY pointing at the proxy and AWS_CA_BUNDLE
// naming a PEM bundle of the system's roots and a certificate authority the
// proxy generates in memory when it is made. A CONNECT to one of the
// gateway's own execute-api names on port 443 is answered by the proxy: it
// terminates TLS with a certificate for the name the client asks for
// (SNI), signed by that authority, and serves the requests with the
// management API's handler. A CONNECT to any other host is a plain TCP
// tunnel, so a function's calls to real services still work. Anything but
// CONNECT gets 405.
package execproxy

import (
	"bufio"
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
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Config configures a Proxy.
type Config struct {
	// Intercept reports whether a CONNECT target host (a lower-case name,
	// without the port) is the gateway's own execute-api endpoint, served
	// by Handler when the port is 443. See ExecuteAPIHosts.
	Intercept func(host string) bool
	// Handler serves the intercepted requests: the management API.
	Handler http.Handler
	// ReadTimeout, IdleTimeout and MaxHeaderBytes bound the intercepted
	// HTTP connections as the management listener's are; zero means none
	// and net/http's default.
	ReadTimeout    time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	// DialTimeout bounds the dial of a tunnel. Default 10s.
	DialTimeout time.Duration
	// SystemRoots reads the PEM certificates the bundle starts with; nil
	// means SystemRootsPEM.
	SystemRoots func() ([]byte, error)
	Logger      *slog.Logger
}

// headerTimeout bounds the wait for a client's CONNECT request.
const headerTimeout = 10 * time.Second

// Proxy is the CONNECT proxy. New makes its authority; Start listens on
// loopback and writes the CA bundle; Close stops it, closes every tunnel
// and intercepted connection, waits for its goroutines and removes the
// bundle.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte

	ln     net.Listener
	dir    string
	bundle string
	srv    *http.Server
	// intercepted hands the TLS connections to srv.
	intercepted *chanListener
	wg          sync.WaitGroup

	// leavesMu guards leaves, the certificates made so far by name.
	leavesMu sync.Mutex
	leaves   map[string]*tls.Certificate

	// connsMu guards conns, every client and upstream connection open,
	// and closed, which refuses new ones.
	connsMu sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
}

// New generates the certificate authority, in memory, and prepares the
// proxy without listening.
func New(cfg Config) (*Proxy, error) {
	if cfg.Intercept == nil || cfg.Handler == nil {
		return nil, errors.New("execproxy: Intercept and Handler are required")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.SystemRoots == nil {
		cfg.SystemRoots = SystemRootsPEM
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("execproxy: CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "wsgate local execute-api CA", Organization: []string{"wsgate"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("execproxy: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("execproxy: CA certificate: %w", err)
	}
	p := &Proxy{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "execproxy"),
		caCert: ca,
		caKey:  key,
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		leaves: map[string]*tls.Certificate{},
		conns:  map[net.Conn]struct{}{},
	}
	p.intercepted = newChanListener()
	p.srv = &http.Server{
		Handler:           cfg.Handler,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	return p, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// CACertPEM returns the authority's certificate, PEM-encoded.
func (p *Proxy) CACertPEM() []byte { return p.caPEM }

// Start writes the CA bundle (the system roots and the authority) to a
// private temporary directory and starts serving on 127.0.0.1.
func (p *Proxy) Start() error {
	roots, err := p.cfg.SystemRoots()
	if err != nil {
		return fmt.Errorf("execproxy: system roots: %w", err)
	}
	if len(roots) == 0 {
		p.log.Warn("no system root certificates found; functions' TLS calls through the proxy trust only wsgate's authority")
	}
	dir, err := os.MkdirTemp("", "wsgate-ca-")
	if err != nil {
		return fmt.Errorf("execproxy: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("execproxy: %w", err)
	}
	bundle := filepath.Join(dir, "ca-bundle.pem")
	data := append(append(append([]byte{}, roots...), '\n'), p.caPEM...)
	if err := os.WriteFile(bundle, data, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("execproxy: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("execproxy: %w", err)
	}
	p.ln, p.dir, p.bundle = ln, dir, bundle
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(p.intercepted)
	}()
	go func() {
		defer p.wg.Done()
		p.accept()
	}()
	p.log.Info("execute-api proxy listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the proxy's address once started.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// CABundle returns the path of the PEM bundle once started.
func (p *Proxy) CABundle() string { return p.bundle }

// Environ returns the environment variables that send a local function's
// HTTPS calls through the proxy and make it trust the authority:
// HTTPS_PROXY (and https_proxy), NO_PROXY (and no_proxy) holding the
// loopback names and what wsgate's own NO_PROXY or no_proxy holds, and
// AWS_CA_BUNDLE, which both AWS SDKs for Go read.
func (p *Proxy) Environ() []string {
	noProxy := "localhost,127.0.0.1,::1"
	if inherited := cmpOr(os.Getenv("NO_PROXY"), os.Getenv("no_proxy")); inherited != "" {
		noProxy += "," + inherited
	}
	u := "http://" + p.Addr()
	return []string{
		"HTTPS_PROXY=" + u, "https_proxy=" + u,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy,
		"AWS_CA_BUNDLE=" + p.bundle,
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Close stops the proxy: no new connection, every open one closed, the
// goroutines waited for and the bundle removed. It is idempotent.
func (p *Proxy) Close() error {
	p.connsMu.Lock()
	if p.closed {
		p.connsMu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.connsMu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
	}
	_ = p.srv.Close()
	_ = p.intercepted.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
	if p.dir != "" {
		return os.RemoveAll(p.dir)
	}
	return nil
}

// track records c as open; it reports false, having closed c, once the
// proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.connsMu.Lock()
	defer p.connsMu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.connsMu.Lock()
	delete(p.conns, c)
	p.connsMu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.log.Error("accept", "err", err)
			return
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// serve reads one request from c and answers it: a CONNECT is intercepted
// or tunnelled; anything else gets 405 and the connection is closed.
func (p *Proxy) serve(c net.Conn) {
	handedOff := false
	defer func() {
		if !handedOff {
			p.untrack(c)
			_ = c.Close()
		}
	}()
	_ = c.SetDeadline(time.Now().Add(headerTimeout))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		writeStatus(c, http.StatusBadRequest, "malformed proxy request\n")
		return
	}
	if req.Method != http.MethodConnect {
		p.log.Debug("refused a request that is not CONNECT", "method", req.Method)
		writeStatus(c, http.StatusMethodNotAllowed, "wsgate's execute-api proxy accepts only CONNECT (HTTPS_PROXY); use the management listener for plain HTTP\n")
		return
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil || host == "" || port == "" {
		writeStatus(c, http.StatusBadRequest, "CONNECT needs host:port\n")
		return
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	_ = c.SetDeadline(time.Time{})
	conn := c
	if br.Buffered() > 0 {
		conn = &bufferedConn{Conn: c, r: br}
	}
	if port == "443" && p.cfg.Intercept(host) {
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
		p.log.Debug("CONNECT served by the management API", "host", host)
		tc := tls.Server(&trackedConn{Conn: conn, p: p, raw: c}, p.tlsConfig(host))
		if p.intercepted.put(tc) {
			handedOff = true
		}
		return
	}
	p.tunnel(conn, req.Host)
}

// tunnel dials target and copies bytes both ways until either side ends or
// the proxy closes.
func (p *Proxy) tunnel(c net.Conn, target string) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DialTimeout)
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		p.log.Debug("CONNECT tunnel dial failed", "target", target, "err", err)
		writeStatus(c, http.StatusBadGateway, "cannot reach "+target+"\n")
		return
	}
	if !p.track(up) {
		return
	}
	defer func() {
		p.untrack(up)
		_ = up.Close()
	}()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	p.log.Debug("CONNECT tunnelled", "target", target)
	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		_, _ = io.Copy(up, c)
		closeWrite(up)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

func writeStatus(c net.Conn, status int, body string) {
	_ = c.SetWriteDeadline(time.Now().Add(headerTimeout))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n",
		status, http.StatusText(status), len(body))
	if status == http.StatusMethodNotAllowed {
		_, _ = io.WriteString(c, "Allow: CONNECT\r\n")
	}
	_, _ = io.WriteString(c, "\r\n"+body)
}

// tlsConfig serves a certificate for the name the client asks for, when
// it is one of the gateway's, and for the CONNECT host otherwise.
func (p *Proxy) tlsConfig(connectHost string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
			if name == "" || !p.cfg.Intercept(name) {
				name = connectHost
			}
			return p.leaf(name)
		},
	}
}

// leaf returns the certificate for name, signed by the authority, making
// it on first use.
func (p *Proxy) leaf(name string) (*tls.Certificate, error) {
	p.leavesMu.Lock()
	defer p.leavesMu.Unlock()
	if c, ok := p.leaves[name]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     p.caCert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der, p.caCert.Raw}, PrivateKey: key}
	p.leaves[name] = c
	return c, nil
}

// ExecuteAPIHosts returns an Intercept function for the gateway whose API
// id is apiID: it matches {apiID}.execute-api.{region}.amazonaws.com for
// any region and, when domainName is set, domainName itself (without a
// port).
func ExecuteAPIHosts(apiID, domainName string) func(host string) bool {
	prefix := strings.ToLower(apiID) + ".execute-api."
	if h, _, err := net.SplitHostPort(domainName); err == nil {
		domainName = h
	}
	domainName = strings.ToLower(strings.TrimSuffix(domainName, "."))
	return func(host string) bool {
		if domainName != "" && host == domainName {
			return true
		}
		rest, ok := strings.CutPrefix(host, prefix)
		if !ok {
			return false
		}
		region, ok := strings.CutSuffix(rest, ".amazonaws.com")
		return ok && region != "" && !strings.ContainsFunc(region, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-'
		})
	}
}

// certFiles are where Linux distributions keep the system's root
// certificates, as crypto/x509 looks for them.
var certFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian/Ubuntu/Gentoo etc.
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora/RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // OpenSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS/RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine Linux, macOS
}

// SystemRootsPEM reads the root certificates Go would trust: the file
// SSL_CERT_FILE names, or the first of the standard bundle files that
// exists. It returns nothing, without error, when there is none.
func SystemRootsPEM() ([]byte, error) {
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		return os.ReadFile(f)
	}
	for _, f := range certFiles {
		if b, err := os.ReadFile(f); err == nil {
			return b, nil
		}
	}
	return nil, nil
}

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// trackedConn is an intercepted connection; closing it closes raw and
// forgets it.
type trackedConn struct {
	net.Conn
	p    *Proxy
	raw  net.Conn
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.p.untrack(c.raw) })
	return err
}

// chanListener is a net.Listener whose connections are put in by the
// proxy.
type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closeO sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// put hands c to Accept; it reports false, having closed c, once the
// listener is closed.
func (l *chanListener) put(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		_ = c.Close()
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeO.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
}
