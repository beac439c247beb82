// Package gatewaytest runs a real gateway in-process for tests, with a
// recording HTTP backend and WebSocket client helpers. Everything listens on
// 127.0.0.1 port 0 and is stopped by t.Cleanup.
package gatewaytest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
)

// Gateway is a running in-process gateway.
type Gateway struct {
	*gateway.Gateway
	Config *config.Config
	// URL is the client endpoint, ws://127.0.0.1:PORT/{stage} (wss://
	// with TLS).
	URL string
	// MgmtURL is the management API root, http://127.0.0.1:PORT (https://
	// with TLS).
	MgmtURL string
	// MgmtClient makes MgmtDo's calls; nil means http.DefaultClient.
	MgmtClient *http.Client
	Logs       *LogBuffer

	// next is the configuration text Reload reads, set by SetYAML.
	nextMu sync.Mutex
	next   string
}

// SetYAML sets the configuration text the gateway's next Reload reads. As
// at Start, its listen addresses are forced to 127.0.0.1:0, which is what
// the running gateway has.
func (g *Gateway) SetYAML(yamlText string) {
	g.nextMu.Lock()
	defer g.nextMu.Unlock()
	g.next = yamlText
}

func (g *Gateway) load() (*config.Config, error) {
	g.nextMu.Lock()
	text := g.next
	g.nextMu.Unlock()
	cfg, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		return nil, err
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Management.Listen = "127.0.0.1:0"
	return cfg, nil
}

// Start parses yamlText (listen addresses are forced to 127.0.0.1:0), starts
// the gateway and registers its shutdown with t.Cleanup.
func Start(t testing.TB, yamlText string) *Gateway {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return StartConfig(t, cfg)
}

// StartConfig starts a gateway for cfg on 127.0.0.1 port 0.
func StartConfig(t testing.TB, cfg *config.Config) *Gateway {
	t.Helper()
	return StartNode(t, cfg, nil)
}

// StartNode starts a gateway for cfg on 127.0.0.1 port 0 as a node on eng
// (nil: the engine cfg names).
func StartNode(t testing.TB, cfg *config.Config, eng cluster.Engine) *Gateway {
	t.Helper()
	return start(t, cfg, eng, nil)
}

// StartNodeWith is StartNode with edit applied to the gateway's options
// before it is built: a test's clock (Options.Now), for one.
func StartNodeWith(t testing.TB, cfg *config.Config, eng cluster.Engine, edit func(*gateway.Options)) *Gateway {
	t.Helper()
	return startWith(t, cfg, eng, nil, edit)
}

// StartConfigEnv starts a gateway for cfg on 127.0.0.1 port 0 as
// StartConfig does, with the variables of env added to the environment it
// sees (and winning over those of the same name). The process environment
// is left alone.
func StartConfigEnv(t testing.TB, cfg *config.Config, env map[string]string) *Gateway {
	t.Helper()
	return start(t, cfg, nil, env)
}

func start(t testing.TB, cfg *config.Config, eng cluster.Engine, env map[string]string) *Gateway {
	t.Helper()
	return startWith(t, cfg, eng, env, nil)
}

func startWith(t testing.TB, cfg *config.Config, eng cluster.Engine, env map[string]string, edit func(*gateway.Options)) *Gateway {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.Management.Listen = "127.0.0.1:0"
	logs := &LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return testEnv[k]
	}
	gw := &Gateway{Config: cfg, Logs: logs}
	opts := gateway.Options{Logger: logger, Getenv: getenv, Engine: eng, Load: gw.load, CertPollInterval: 10 * time.Millisecond}
	if edit != nil {
		edit(&opts)
	}
	g, err := gateway.New(cfg, opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("gateway.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	gw.Gateway = g
	gw.URL, gw.MgmtURL = g.ClientURL(), g.ManagementURL()
	return gw
}

// testEnv is the environment gateways started here see.
var testEnv = map[string]string{
	"WSGATE_TEST_TOKEN":      "test-token-123, second-token",
	"WSGATE_TEST_JWT_SECRET": TestJWTSecret,

	"WSGATE_TEST_SIGV4_SECRET": TestSigV4Secret,
}

// TestSigV4KeyID and TestSigV4Secret are the access key that signs
// management requests when a config sets management.auth.sigv4 with
// access_key_id: AKIAWSGATETESTKEY1 and secret_access_key_env:
// WSGATE_TEST_SIGV4_SECRET.
const (
	TestSigV4KeyID  = "AKIAWSGATETESTKEY1"
	TestSigV4Secret = "wsgateTestSigV4Secret/0123456789+abcdefghij"
)

// TestJWTSecret is the HMAC secret of a jwt authorizer configured with
// secret_env: WSGATE_TEST_JWT_SECRET.
const TestJWTSecret = "wsgate-test-jwt-secret-0123456789abcdef"

// TestToken is a management bearer token valid when a config names
// bearer_tokens_env: WSGATE_TEST_TOKEN.
const TestToken = "test-token-123"

// LogBuffer is an io.Writer that collects output written from any goroutine
// while a test reads it.
type LogBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Eventually polls cond every 5ms until it holds, failing the test with msg
// after 10 seconds.
func Eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Gate holds backend calls until the test opens it. A test registers Open
// with t.Cleanup after starting the gateway, so that it runs first and a
// failed test does not leave the gateway's shutdown waiting for the backend.
type Gate struct {
	once sync.Once
	ch   chan struct{}
}

// NewGate returns a closed gate.
func NewGate() *Gate { return &Gate{ch: make(chan struct{})} }

// Wait blocks until the gate is open.
func (g *Gate) Wait() { <-g.ch }

// Open lets every waiting and later call through. It is idempotent.
func (g *Gate) Open() { g.once.Do(func() { close(g.ch) }) }

// Event is one AWS event the backend received, decoded and raw.
type Event struct {
	Path string
	events.APIGatewayWebsocketProxyRequest
	Raw []byte
}

// Reply is how the Backend answers one event.
type Reply struct {
	// Status is the HTTP status of the backend's response (default 200).
	Status int
	// Body is the raw response body. When empty and Proxy is set, Proxy is
	// marshalled instead.
	Body  string
	Proxy *events.APIGatewayProxyResponse
	// Delay holds the response back.
	Delay time.Duration
}

// Backend is a real HTTP server that records every event POSTed to it and
// answers with the Reply registered for the path (default: a proxy response
// with statusCode 200 and the event body echoed back).
type Backend struct {
	*httptest.Server
	mu      sync.Mutex
	events  []Event
	replies map[string]func(Event) Reply
}

// NewBackend starts a Backend closed by t.Cleanup.
func NewBackend(t testing.TB) *Backend {
	b := &Backend{replies: map[string]func(Event) Reply{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

// URL returns the backend URL for path.
func (b *Backend) URLFor(path string) string { return b.Server.URL + path }

// On sets how path answers.
func (b *Backend) On(path string, f func(Event) Reply) {
	b.mu.Lock()
	b.replies[path] = f
	b.mu.Unlock()
}

func (b *Backend) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	ev := Event{Path: r.URL.Path, Raw: raw}
	if err := json.Unmarshal(raw, &ev.APIGatewayWebsocketProxyRequest); err != nil {
		http.Error(w, "bad event: "+err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.events = append(b.events, ev)
	f := b.replies[r.URL.Path]
	b.mu.Unlock()
	reply := Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: ev.Body}}
	if f != nil {
		reply = f(ev)
	}
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	body := []byte(reply.Body)
	if reply.Body == "" && reply.Proxy != nil {
		body, _ = json.Marshal(reply.Proxy)
	}
	status := reply.Status
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Events returns the events received on path so far ("" for all paths).
func (b *Backend) Events(path string) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Event
	for _, e := range b.events {
		if path == "" || e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent waits for an event on path for which match returns true (nil
// matches any) and returns it.
func (b *Backend) WaitEvent(t testing.TB, path string, match func(Event) bool) Event {
	t.Helper()
	var found Event
	Eventually(t, func() bool {
		for _, e := range b.Events(path) {
			if match == nil || match(e) {
				found = e
				return true
			}
		}
		return false
	}, "event on %s", path)
	return found
}

// Client is a WebSocket client connected to a gateway.
type Client struct {
	*websocket.Conn
	t  testing.TB
	ID string // filled by callers that learn it
}

// Dial connects to url and fails the test if the handshake fails.
func Dial(t testing.TB, url string, opts *websocket.DialOptions) *Client {
	t.Helper()
	c, resp, err := TryDial(url, opts)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", url, err, status)
	}
	cl := &Client{Conn: c, t: t}
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl
}

// TryDial connects to url and returns the handshake response on failure.
func TryDial(url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	return c, resp, nil
}

// Send writes a text message.
func (c *Client) Send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Next reads the next message, failing the test after 10 seconds.
func (c *Client) Next() (websocket.MessageType, []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return typ, data
}

// NextText reads the next message and requires it to be text.
func (c *Client) NextText() string {
	c.t.Helper()
	typ, data := c.Next()
	if typ != websocket.MessageText {
		c.t.Fatalf("got a %v message, want text", typ)
	}
	return string(data)
}

// ExpectClose reads until the connection ends and requires the close code.
func (c *Client) ExpectClose(code int) websocket.CloseError {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close code %d", err, code)
		}
		if int(ce.Code) != code {
			c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Reason, code)
		}
		return ce
	}
}

// MgmtDo calls the management API and returns status, headers and body.
func (g *Gateway) MgmtDo(t testing.TB, method, path string, body io.Reader, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.MgmtURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := g.MgmtClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// ConnectionID finds the id of the only connection the backend saw connect
// after skip earlier $connect events on path.
func (b *Backend) ConnectionID(t testing.TB, path string, n int) string {
	t.Helper()
	var id string
	Eventually(t, func() bool {
		evs := b.Events(path)
		if len(evs) <= n {
			return false
		}
		id = evs[n].RequestContext.ConnectionID
		return true
	}, "$connect event #%d on %s", n, path)
	return id
}
