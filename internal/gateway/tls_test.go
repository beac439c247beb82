package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/browsertest"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/tlsconfig/tlstest"
)

// tlsSetup is a CA and a server certificate for 127.0.0.1 in PEM files.
type tlsSetup struct {
	ca                *tlstest.CA
	leaf              *tlstest.Leaf
	dir               string
	certFile, keyFile string
}

func newTLSSetup(t *testing.T) *tlsSetup {
	t.Helper()
	ca := tlstest.NewCA(t, "wsgate test CA")
	dir := t.TempDir()
	leaf := ca.Server(t, "127.0.0.1")
	cert, key := leaf.WriteFiles(t, dir, "server")
	return &tlsSetup{ca: ca, leaf: leaf, dir: dir, certFile: cert, keyFile: key}
}

// dialOptions trusts the setup's CA, with TLS versions limited to v (0:
// any), and presents the client certificate cert when given, whichever CAs
// the server names (Go's client leaves out a certificate the server's CAs
// did not sign).
func (s *tlsSetup) dialOptions(v uint16, cert ...tls.Certificate) *websocket.DialOptions {
	cfg := &tls.Config{RootCAs: s.ca.Pool(), MinVersion: v, MaxVersion: v}
	if len(cert) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert[0], nil }
	}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}}
}

func TestTLSEcho(t *testing.T) {
	s := newTLSSetup(t)
	g := gt.Start(t, fmt.Sprintf("stage: prod\ntls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile))
	if !strings.HasPrefix(g.URL, "wss://") {
		t.Fatalf("client URL %q; want wss://", g.URL)
	}
	if !strings.Contains(g.Logs.String(), "clients="+g.URL) {
		t.Errorf("the listening log line does not show %s:\n%s", g.URL, g.Logs.String())
	}
	for _, v := range []struct {
		name string
		v    uint16
	}{{"TLS 1.3", tls.VersionTLS13}, {"TLS 1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			c := gt.Dial(t, g.URL, s.dialOptions(v.v))
			for i := range 3 {
				msg := fmt.Sprintf(`{"action":"echo","n":%d}`, i)
				c.Send(msg)
				if got := c.NextText(); got != msg {
					t.Fatalf("echo = %q; want %q", got, msg)
				}
			}
			// A message across TLS records (16 KiB each) both ways, in
			// one frame of max_frame_bytes.
			big := strings.Repeat("x", 32<<10)
			c.Send(big)
			if got := c.NextText(); got != big {
				t.Fatalf("large echo: %d bytes back; want %d", len(got), len(big))
			}
			if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
				t.Fatalf("close handshake: %v", err)
			}
		})
	}
}

func TestTLSRefusesOldVersions(t *testing.T) {
	s := newTLSSetup(t)
	g := gt.Start(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile))
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		conn, err := tls.Dial("tcp", g.Addr(), &tls.Config{RootCAs: s.ca.Pool(), MinVersion: v, MaxVersion: v})
		if err == nil {
			conn.Close()
			t.Fatalf("a %s handshake succeeded", tls.VersionName(v))
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("%s handshake: %v; want a protocol version alert", tls.VersionName(v), err)
		}
	}
	// The refusals did not stop the listener.
	c := gt.Dial(t, g.URL, s.dialOptions(0))
	c.Send("still here")
	if got := c.NextText(); got != "still here" {
		t.Fatalf("echo = %q", got)
	}
}

// waitCtx is a bound for the few calls of a test that wait on the network.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTLSManagement(t *testing.T) {
	s := newTLSSetup(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q}
management:
  tls: {cert_file: %q, key_file: %q}
`, s.certFile, s.keyFile, s.certFile, s.keyFile)))
	if !strings.HasPrefix(g.MgmtURL, "https://") {
		t.Fatalf("management URL %q; want https://", g.MgmtURL)
	}
	g.MgmtClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool()}}}
	c := gt.Dial(t, g.URL, s.dialOptions(0))
	id := b.ConnectionID(t, "/connect", 0)
	if ev := b.Events("/connect")[0]; ev.Headers["X-Forwarded-Proto"] != "https" {
		t.Errorf("$connect X-Forwarded-Proto = %q; want https", ev.Headers["X-Forwarded-Proto"])
	}
	status, _, body := g.MgmtDo(t, "POST", "/@connections/"+strings.ReplaceAll(id, "=", "%3D"), strings.NewReader("over https"), nil)
	if status != http.StatusOK {
		t.Fatalf("POST over https: %d %s", status, body)
	}
	if got := c.NextText(); got != "over https" {
		t.Fatalf("pushed message = %q", got)
	}
	// Plain HTTP to the TLS listener is refused.
	resp, err := http.Get("http://" + g.ManagementAddr() + "/@connections")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS management listener: %d; want 400", resp.StatusCode)
		}
	}
}

// servedCertificate returns the certificate a new handshake with addr gets.
func servedCertificate(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func TestTLSCertificateRotation(t *testing.T) {
	s := newTLSSetup(t)
	g := gt.Start(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile))
	pool := s.ca.Pool()
	first := servedCertificate(t, g.Addr(), pool)
	open := gt.Dial(t, g.URL, s.dialOptions(0))
	open.Send("before")
	if got := open.NextText(); got != "before" {
		t.Fatalf("echo = %q", got)
	}

	next := s.ca.Server(t, "127.0.0.1")
	next.Replace(t, s.certFile, s.keyFile)
	gt.Eventually(t, func() bool {
		return servedCertificate(t, g.Addr(), pool).SerialNumber.Cmp(next.Cert.SerialNumber) == 0
	}, "new handshakes get the rotated certificate")
	if first.SerialNumber.Cmp(next.Cert.SerialNumber) == 0 {
		t.Fatal("the rotated certificate is the first one")
	}
	// The connection opened before the rotation is untouched.
	open.Send("after")
	if got := open.NextText(); got != "after" {
		t.Fatalf("echo on the open connection = %q", got)
	}

	// A certificate whose key is not beside it: logged, the old pair kept.
	broken := s.ca.Server(t, "127.0.0.1")
	if err := os.WriteFile(s.certFile, broken.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool {
		return strings.Contains(g.Logs.String(), "TLS certificate not reloaded; still serving the previous one")
	}, "the broken pair is logged")
	if got := servedCertificate(t, g.Addr(), pool); got.SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		t.Fatalf("after a broken rotation the served certificate is serial %x; want the previous %x", got.SerialNumber, next.Cert.SerialNumber)
	}
	if strings.Contains(g.Logs.String(), "PRIVATE KEY") {
		t.Fatal("the log shows key material")
	}
	// Its key arrives: the pair loads.
	broken.Replace(t, s.certFile, s.keyFile)
	gt.Eventually(t, func() bool {
		return servedCertificate(t, g.Addr(), pool).SerialNumber.Cmp(broken.Cert.SerialNumber) == 0
	}, "the completed pair is served")
}

// clientCertOf is what identity.clientCert must hold for c, built apart
// from the gateway's code: AWS's OpenSSL-style dates, RFC 2253 names and
// colon-separated serial bytes.
func clientCertOf(c *x509.Certificate) map[string]any {
	date := func(t time.Time) string {
		t = t.UTC()
		return fmt.Sprintf("%s %2d %02d:%02d:%02d %d GMT", t.Month().String()[:3], t.Day(), t.Hour(), t.Minute(), t.Second(), t.Year())
	}
	var serial []string
	for _, b := range c.SerialNumber.Bytes() {
		serial = append(serial, fmt.Sprintf("%02x", b))
	}
	return map[string]any{
		"clientCertPem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
		"subjectDN":     "CN=" + c.Subject.CommonName + ",O=wsgate tests,C=US",
		"issuerDN":      "CN=" + c.Issuer.CommonName + ",O=wsgate tests",
		"serialNumber":  strings.Join(serial, ":"),
		"validity":      map[string]any{"notBefore": date(c.NotBefore), "notAfter": date(c.NotAfter)},
	}
}

// identityOf returns requestContext.identity of a raw event.
func identityOf(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var ev struct {
		RequestContext struct {
			Identity map[string]any `json:"identity"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.RequestContext.Identity
}

func TestMutualTLS(t *testing.T) {
	s := newTLSSetup(t)
	clientCA := tlstest.NewCA(t, "client CA")
	caFile := clientCA.WriteFile(t, s.dir, "client-ca.pem")
	stranger := tlstest.NewCA(t, "another CA").Client(t, "mallory").TLSCertificate(t)
	alice := clientCA.Client(t, "alice")

	for _, auth := range []string{"require", "request"} {
		t.Run(auth, func(t *testing.T) {
			b := gt.NewBackend(t)
			g := gt.Start(t, backendConfig(b, fmt.Sprintf("tls: {cert_file: %q, key_file: %q, client_ca_file: %q, client_auth: %s}\n",
				s.certFile, s.keyFile, caFile, auth)))
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				// A certificate from another CA fails the handshake.
				if c, _, err := gt.TryDial(g.URL, s.dialOptions(v, stranger)); err == nil {
					c.CloseNow()
					t.Fatalf("%s: a certificate from another CA connected", tls.VersionName(v))
				}
				// Without a certificate: refused when required.
				c, _, err := gt.TryDial(g.URL, s.dialOptions(v))
				if auth == "require" && err == nil {
					c.CloseNow()
					t.Fatalf("%s: a client without a certificate connected", tls.VersionName(v))
				}
				if auth == "request" {
					if err != nil {
						t.Fatalf("%s: a client without a certificate: %v", tls.VersionName(v), err)
					}
					ev := b.WaitEvent(t, "/connect", nil)
					if id := identityOf(t, ev.Raw); id["clientCert"] != nil {
						t.Errorf("identity of a client without a certificate: %v", id)
					}
					c.CloseNow()
				}
			}
			if n := len(b.Events("/connect")); auth == "require" && n != 0 {
				t.Fatalf("%d $connect events for refused handshakes", n)
			}

			c := gt.Dial(t, g.URL, s.dialOptions(0, alice.TLSCertificate(t)))
			want := clientCertOf(alice.Cert)
			ev := b.WaitEvent(t, "/connect", func(e gt.Event) bool { return identityOf(t, e.Raw)["clientCert"] != nil })
			if got := identityOf(t, ev.Raw)["clientCert"]; !reflect.DeepEqual(got, want) {
				t.Errorf("$connect identity.clientCert =\n%v\nwant\n%v", got, want)
			}
			c.Send(`{"action":"sendmessage"}`)
			ev = b.WaitEvent(t, "/send", nil)
			if got := identityOf(t, ev.Raw)["clientCert"]; !reflect.DeepEqual(got, want) {
				t.Errorf("message identity.clientCert =\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// TestBrowserTLS connects headless Chromium over wss://, trusting the
// gateway's test certificate by its public key, and checks that another
// certificate is refused.
func TestBrowserTLS(t *testing.T) {
	s := newTLSSetup(t)
	b := browsertest.Start(t, chromedp.Flag("ignore-certificate-errors-spki-list", s.leaf.SPKIHash()))
	page := startPageServer(t, "127.0.0.1")
	g := gt.Start(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile))
	other := newTLSSetup(t)
	untrusted := gt.Start(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", other.certFile, other.keyFile))
	big := strings.Repeat("wss ", 7500) // 30,000 bytes: two TLS records each way
	res := runSteps(t, b, page.URL,
		step{"small", exchangeJS(g.URL, nil, "héllo over wss")},
		step{"large", exchangeJS(g.URL, nil, big)},
		step{"untrusted", exchangeJS(untrusted.URL, nil, "x")})
	res.requireEcho(t, "small", "héllo over wss")
	res.requireEcho(t, "large", big)
	res.requireRefused(t, "untrusted")
}

// TestMutualTLSRequestAuthorizer: the request authorizer's event carries
// the client certificate in requestContext.identity.clientCert, as AWS's
// Lambda authorizer input does for a mutual TLS domain.
func TestMutualTLSRequestAuthorizer(t *testing.T) {
	s := newTLSSetup(t)
	caFile := s.ca.WriteFile(t, s.dir, "client-ca.pem")
	device := s.ca.Client(t, "device-7")
	events := make(chan []byte, 4)
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		events <- body
		_, _ = io.WriteString(w, `{"principalId":"device-7","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"}]}}`)
	}))
	defer authz.Close()
	g := gt.Start(t, fmt.Sprintf(`
tls: {cert_file: %q, key_file: %q, client_ca_file: %q}
authorizer:
  type: request
  identity_sources: [route.request.querystring.k]
  request: {url: %q}
`, s.certFile, s.keyFile, caFile, authz.URL))
	c := gt.Dial(t, g.URL+"?k=1", s.dialOptions(0, device.TLSCertificate(t)))
	var body []byte
	select {
	case body = <-events:
	case <-waitCtx(t).Done():
		t.Fatal("the authorizer was not called")
	}
	if got, want := identityOf(t, body)["clientCert"], clientCertOf(device.Cert); !reflect.DeepEqual(got, want) {
		t.Errorf("authorizer identity.clientCert =\n%v\nwant\n%v", got, want)
	}
	c.Send("hi")
	if got := c.NextText(); got != "hi" {
		t.Fatalf("echo = %q", got)
	}
}

// TestTLSBehindProxyProtocol: a PROXY protocol header, then TLS: the
// source address is the header's, the scheme https, and messages flow
// both ways once the socket has moved to the event loop.
func TestTLSBehindProxyProtocol(t *testing.T) {
	s := newTLSSetup(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, fmt.Sprintf("trusted_proxies: [127.0.0.1]\nproxy_protocol: true\ntls: {cert_file: %q, key_file: %q}\n", s.certFile, s.keyFile)))
	opts := s.dialOptions(0)
	tr := opts.HTTPClient.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(c, "PROXY TCP4 203.0.113.9 192.0.2.1 4711 443\r\n"); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c := gt.Dial(t, g.URL, opts)
	ev := b.WaitEvent(t, "/connect", nil)
	if got := ev.RequestContext.Identity.SourceIP; got != "203.0.113.9" {
		t.Errorf("identity.sourceIp %q; want the PROXY header's 203.0.113.9", got)
	}
	if got := ev.Headers["X-Forwarded-Proto"]; got != "https" {
		t.Errorf("X-Forwarded-Proto %q; want https", got)
	}
	big := strings.Repeat("p", 20000)
	for _, msg := range []string{`{"action":"echo","n":1}`, big} {
		c.Send(msg)
	}
	if got := c.NextText(); got != `{"action":"echo","n":1}` {
		t.Fatalf("echo = %.60q", got)
	}
	if got := c.NextText(); got != big {
		t.Fatalf("$default reply = %.60q", got)
	}
}

// TestTLSManagementWithTheAWSSDK: the unmodified AWS SDK management client,
// its HTTP client trusting the test CA, posts and reads a connection over
// https:// with SigV4.
func TestTLSManagementWithTheAWSSDK(t *testing.T) {
	s := newTLSSetup(t)
	b := gt.NewBackend(t)
	g := gt.Start(t, backendConfig(b, fmt.Sprintf(`
tls: {cert_file: %[1]q, key_file: %[2]q}
management:
  tls: {cert_file: %[1]q, key_file: %[2]q}
  auth:
    sigv4: {access_key_id: %[3]s, secret_access_key_env: WSGATE_TEST_SIGV4_SECRET}
`, s.certFile, s.keyFile, gt.TestSigV4KeyID)))
	client := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "", func(o *apigatewaymanagementapi.Options) {
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.Pool()}}}
	})
	if !strings.HasPrefix(g.MgmtURL, "https://") {
		t.Fatalf("management URL %q", g.MgmtURL)
	}
	c := gt.Dial(t, g.URL, s.dialOptions(0))
	id := b.ConnectionID(t, "/connect", 0)
	ctx := sdkCtx(t)
	if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("from the SDK")}); err != nil {
		t.Fatalf("PostToConnection over https: %v", err)
	}
	if got := c.NextText(); got != "from the SDK" {
		t.Fatalf("client received %q", got)
	}
	out, err := client.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil || out.Identity == nil || aws.ToString(out.Identity.SourceIp) != "127.0.0.1" {
		t.Fatalf("GetConnection over https: %+v, %v", out, err)
	}
	// A client that does not trust the CA fails the handshake.
	plain := sdkClient(g, gt.TestSigV4KeyID, gt.TestSigV4Secret, "")
	if _, err := plain.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GetConnection without the CA: %v; want a certificate error", err)
	}
}
