package execproxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fakeRoots = "-----BEGIN CERTIFICATE-----\nZmFrZSByb290\n-----END CERTIFICATE-----\n"

// start runs a proxy whose management API is handler and returns it; the
// test's cleanup closes it.
func start(t *testing.T, handler http.Handler) *Proxy {
	t.Helper()
	p, err := New(Config{
		Intercept:   ExecuteAPIHosts("abc123", "ws.example.test"),
		Handler:     handler,
		SystemRoots: func() ([]byte, error) { return []byte(fakeRoots), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// client is an HTTP client that goes through p and trusts its authority
// only, as a function given p.Environ() does.
func client(t *testing.T, p *Proxy) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.CACertPEM()) {
		t.Fatal("CA certificate does not parse")
	}
	proxyURL, _ := url.Parse("http://" + p.Addr())
	tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestInterceptedHostsAreServedByTheHandler(t *testing.T) {
	p := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s tls=%v", r.Method, r.Host, r.URL.Path, r.TLS != nil)
	}))
	c := client(t, p)
	for _, host := range []string{
		"abc123.execute-api.us-east-1.amazonaws.com",
		"abc123.execute-api.eu-west-3.amazonaws.com",
		"ws.example.test",
	} {
		resp, err := c.Post("https://"+host+"/prod/@connections/Q1w2", "application/octet-stream", strings.NewReader("hi"))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if want := "POST " + host + " /prod/@connections/Q1w2 tls=true"; string(body) != want {
			t.Errorf("%s: handler saw %q, want %q", host, body, want)
		}
	}
}

func TestExecuteAPIHosts(t *testing.T) {
	match := ExecuteAPIHosts("AbC123", "ws.example.test:443")
	for host, want := range map[string]bool{
		"abc123.execute-api.us-east-1.amazonaws.com":      true,
		"abc123.execute-api.ap-southeast-2.amazonaws.com": true,
		"ws.example.test": true,
		"other1.execute-api.us-east-1.amazonaws.com":      false,
		"abc123.execute-api..amazonaws.com":               false,
		"abc123.execute-api.a.b.amazonaws.com":            false,
		"abc123.execute-api.us-east-1.amazonaws.com.evil": false,
		"sqs.us-east-1.amazonaws.com":                     false,
		"example.test":                                    false,
	} {
		if got := match(host); got != want {
			t.Errorf("%s: %v, want %v", host, got, want)
		}
	}
}

// TestTunnel checks that a CONNECT to a host that is not the gateway's is
// a plain TCP tunnel, and that Close ends it.
func TestTunnel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	p := start(t, http.NotFoundHandler())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", ln.Addr())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	fmt.Fprint(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("through the tunnel: %q, %v", line, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after Close")
	}
	<-served
}

func TestTunnelDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p := start(t, http.NotFoundHandler())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("CONNECT to a closed port: %v %v, want 502", resp, err)
	}
}

// TestNotConnect checks that a request that is not CONNECT, or is not
// HTTP, is refused with a 4xx.
func TestNotConnect(t *testing.T) {
	p := start(t, http.NotFoundHandler())
	resp, err := http.Get("http://" + p.Addr() + "/prod/@connections/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "CONNECT" || !strings.Contains(string(body), "only CONNECT") {
		t.Fatalf("GET: %d %v %q, want 405 naming CONNECT", resp.StatusCode, resp.Header, body)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "\x16\x03\x01 not http\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage: %v %v, want 400", resp, err)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprint(c2, "CONNECT nohost HTTP/1.1\r\nHost: nohost\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c2), &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("CONNECT without a port: %v %v, want 400", resp, err)
	}
}

// TestEnvironAndBundle checks the variables a function gets, the bundle's
// contents and permissions, and that Close removes it.
func TestEnvironAndBundle(t *testing.T) {
	t.Setenv("NO_PROXY", "internal.example")
	p := start(t, http.NotFoundHandler())
	env := map[string]string{}
	for _, kv := range p.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if want := "http://" + p.Addr(); env["HTTPS_PROXY"] != want || env["https_proxy"] != want {
		t.Errorf("HTTPS_PROXY = %q, https_proxy = %q, want %q", env["HTTPS_PROXY"], env["https_proxy"], want)
	}
	if want := "localhost,127.0.0.1,::1,internal.example"; env["NO_PROXY"] != want || env["no_proxy"] != want {
		t.Errorf("NO_PROXY = %q, want %q", env["NO_PROXY"], want)
	}
	if env["AWS_CA_BUNDLE"] != p.CABundle() {
		t.Errorf("AWS_CA_BUNDLE = %q, want %q", env["AWS_CA_BUNDLE"], p.CABundle())
	}
	data, err := os.ReadFile(p.CABundle())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), fakeRoots) || !strings.HasSuffix(string(data), string(p.CACertPEM())) {
		t.Errorf("bundle is not the system roots then the authority:\n%s", data)
	}
	dir, err := os.Stat(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	if dir.Mode().Perm() != 0o700 {
		t.Errorf("bundle directory mode %v, want 0700", dir.Mode().Perm())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
		t.Errorf("bundle directory still there after Close: %v", err)
	}
}
