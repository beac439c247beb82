// Package acmetest runs a real ACME CA in-process for tests: Let's Encrypt's
// pebble (its CA, validation authority and ACME front end), serving its
// directory over HTTPS on a free 127.0.0.1 port, with a DNS server of its own
// that resolves every name under a test zone to 127.0.0.1. The validation
// authority really checks each challenge, by connecting to the ports the
// test gives it.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

// IgnoreGoroutines are the goleak options that leave alone the goroutine
// pebble's validation authority runs for the life of the process (nothing
// stops it), for the TestMain of packages using Start.
var IgnoreGoroutines = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"),
}

// Zone is the DNS zone the CA's resolver answers: every name under it is
// 127.0.0.1, every other name does not exist.
const Zone = "wsgate.test"

// pebble's newOrder and newAccount endpoints.
const (
	newOrderPath   = "/order-plz"
	newAccountPath = "/sign-me-up"
)

// Server is a running ACME CA.
type Server struct {
	// URL is the ACME directory.
	URL string
	// CAFile is a PEM file holding the certificate the directory is served
	// with, for the client's trust (tls.acme.ca_file).
	CAFile string

	dnsAddr string
	logger  *log.Logger

	// mu guards the fields below it.
	mu       sync.Mutex
	handler  http.Handler
	ca       *ca.CAImpl
	orders   int
	accounts int
	requests int
	eab      map[string]string
	validity uint64
	down     bool
}

// Option configures a Server.
type Option func(*Server)

// RequireEAB makes the CA refuse accounts without an External Account
// Binding to the key id keyID, whose HMAC key is hmacKey (base64url).
func RequireEAB(keyID, hmacKey string) Option {
	return func(s *Server) { s.eab = map[string]string{keyID: hmacKey} }
}

// Validity makes the CA issue certificates valid for d (pebble's
// default is 90 days), so that tests can watch renewal happen.
func Validity(d time.Duration) Option {
	return func(s *Server) { s.validity = uint64(d / time.Second) }
}

// Start starts the directory's HTTPS listener and the DNS server; both stop
// with the test. The directory answers 503 until Validate says where
// challenges are checked.
//
// Start sets pebble's environment for the test: no random sleep before a
// validation, no deliberately rejected nonces, and PEBBLE_VA_ALWAYS_VALID off,
// so every challenge is really checked. Tests that use it cannot be parallel.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")

	s := &Server{logger: log.New(io.Discard, "", 0)}
	if testing.Verbose() {
		s.logger = log.New(testWriter{t}, "pebble ", 0)
	}
	for _, o := range opts {
		o(s)
	}
	s.dnsAddr = startDNS(t)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.URL = srv.URL + wfe.DirectoryPath

	s.CAFile = filepath.Join(t.TempDir(), "acme-directory-ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// Validate builds the CA: from now on it issues certificates, checking the
// http-01 challenge on httpPort and tls-alpn-01 on tlsPort of the domain's
// address (127.0.0.1 for names under Zone). It is called once.
func (s *Server) Validate(httpPort, tlsPort int) {
	store := db.NewMemoryStore()
	authority := ca.New(s.logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "The default profile", ValidityPeriod: s.validity},
	})
	validator := va.New(s.logger, httpPort, tlsPort, false, s.dnsAddr, store)
	for id, key := range s.eab {
		if err := store.AddExternalAccountKeyByID(id, key); err != nil {
			panic(err) // a test's own key; AddExternalAccountKeyByID refuses only malformed ones
		}
	}
	front := wfe.New(s.logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, len(s.eab) > 0, 0, 0)
	s.mu.Lock()
	s.handler = front.Handler()
	s.ca = authority
	s.mu.Unlock()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.handler
	s.requests++
	if r.Method == http.MethodPost {
		switch r.URL.Path {
		case newOrderPath:
			s.orders++
		case newAccountPath:
			s.accounts++
		}
	}
	down := s.down
	s.mu.Unlock()
	if down {
		http.Error(w, "the CA is down", http.StatusServiceUnavailable)
		return
	}
	if h == nil {
		http.Error(w, "the test has not started validation yet", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// Down makes the directory answer 503 to every request from now on, as a
// CA down for maintenance does.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
}

// Orders returns how many new-order requests the CA has received.
func (s *Server) Orders() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orders
}

// Accounts returns how many new-account requests the CA has received.
func (s *Server) Accounts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts
}

// Requests returns how many requests the directory has received. After an
// order, autocert deactivates the authorizations it left pending in a
// goroutine of its own: requests may still arrive once the certificate is
// served.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Roots returns the pool of the root the CA issues under, for clients
// checking the certificates it issued. Validate must have been called.
func (s *Server) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.Root())
	return pool
}

// Root returns the root certificate the CA issues under.
func (s *Server) Root() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ca.GetRootCert(0).Cert
}

// startDNS serves A records of 127.0.0.1 for every name under Zone on a
// free TCP port (pebble's resolver speaks DNS over TCP), and returns its
// address.
func startDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	suffix := dns.Fqdn(Zone)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, q := range req.Question {
			name := strings.ToLower(q.Name)
			if name != suffix && !strings.HasSuffix(name, "."+suffix) {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Handler: handler, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// testWriter sends pebble's log to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
