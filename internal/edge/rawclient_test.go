package edge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/wsproto"
)

// ioTimeout bounds every blocking read and write of a test client, so that a
// server that never answers fails the test instead of hanging it.
const ioTimeout = 10 * time.Second

// eventually polls cond every 5ms until it holds, failing the test after
// ioTimeout.
func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// disconnect is one Handler.Disconnect call.
type disconnect struct {
	code   int
	reason string
}

// message is one Handler.Message call.
type message struct {
	data   string
	binary bool
}

func (m message) String() string {
	if m.binary {
		return fmt.Sprintf("binary(%q)", m.data)
	}
	return fmt.Sprintf("text(%q)", m.data)
}

// recorder is an edge.Handler that records every call. Clients name
// themselves with an X-Test-Client header so that a test can find the
// *edge.Conn of each of its clients.
type recorder struct {
	// onConnect, when set, decides the outcome of Connect.
	onConnect func(c *edge.Conn, r *http.Request) (string, error)
	// onMessage, when set, runs after a message is recorded and before
	// Message returns.
	onMessage func(c *edge.Conn, data []byte, binary bool)

	mu          sync.Mutex
	byName      map[string]*edge.Conn
	accepted    []*edge.Conn
	msgs        map[*edge.Conn][]message
	discs       map[*edge.Conn][]disconnect
	inMessage   map[*edge.Conn]int
	concurrent  int // Message calls that overlapped another for the same connection
	unknownDisc int // Disconnect calls for connections whose Connect did not succeed
	lateCalls   int // Message calls begun after, or running during, the connection's Disconnect
}

var _ edge.Handler = (*recorder)(nil)

func newRecorder() *recorder {
	return &recorder{
		byName:    map[string]*edge.Conn{},
		msgs:      map[*edge.Conn][]message{},
		discs:     map[*edge.Conn][]disconnect{},
		inMessage: map[*edge.Conn]int{},
	}
}

func (r *recorder) Connect(_ context.Context, c *edge.Conn, req *http.Request) (string, error) {
	sub := ""
	if r.onConnect != nil {
		var err error
		if sub, err = r.onConnect(c, req); err != nil {
			return "", err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if name := req.Header.Get("X-Test-Client"); name != "" {
		r.byName[name] = c
	}
	r.accepted = append(r.accepted, c)
	return sub, nil
}

func (r *recorder) Message(_ context.Context, c *edge.Conn, data []byte, binary bool) {
	r.mu.Lock()
	r.inMessage[c]++
	if r.inMessage[c] > 1 {
		r.concurrent++
	}
	if len(r.discs[c]) > 0 {
		r.lateCalls++
	}
	r.msgs[c] = append(r.msgs[c], message{string(data), binary})
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inMessage[c]--
		r.mu.Unlock()
	}()
	if r.onMessage != nil {
		r.onMessage(c, data, binary)
	}
}

func (r *recorder) Disconnect(_ context.Context, c *edge.Conn, code int, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	known := false
	for _, a := range r.accepted {
		known = known || a == c
	}
	if !known {
		r.unknownDisc++
	}
	if r.inMessage[c] > 0 {
		r.lateCalls++
	}
	r.discs[c] = append(r.discs[c], disconnect{code, reason})
}

func (r *recorder) conn(name string) *edge.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byName[name]
}

func (r *recorder) messages(c *edge.Conn) []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]message(nil), r.msgs[c]...)
}

func (r *recorder) disconnects(c *edge.Conn) []disconnect {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]disconnect(nil), r.discs[c]...)
}

func (r *recorder) acceptedCount() int { return len(r.acceptedConns()) }

// acceptedConns returns the connections whose Connect succeeded, in order.
func (r *recorder) acceptedConns() []*edge.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*edge.Conn(nil), r.accepted...)
}

// waitDisconnect waits for the Disconnect call of c and returns it.
func (r *recorder) waitDisconnect(t testing.TB, c *edge.Conn) disconnect {
	t.Helper()
	eventually(t, func() bool { return len(r.disconnects(c)) > 0 }, "Disconnect of %s", c.ID())
	return r.disconnects(c)[0]
}

// waitMessages waits until c has delivered n messages and returns them.
func (r *recorder) waitMessages(t testing.TB, c *edge.Conn, n int) []message {
	t.Helper()
	have := 0
	eventually(t, func() bool { have = len(r.messages(c)); return have >= n }, "%d messages from %s", n, c.ID())
	if have > n {
		t.Fatalf("%d messages from %s, want %d", have, c.ID(), n)
	}
	return r.messages(c)
}

// check verifies, once the server has shut down, the Handler contract:
// exactly one Disconnect for every accepted connection, none for others,
// never two Message calls at once for one connection, and Disconnect the
// last call for its connection.
func (r *recorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.accepted {
		if n := len(r.discs[c]); n != 1 {
			t.Errorf("connection %s: %d Disconnect calls %v, want 1", c.ID(), n, r.discs[c])
		}
	}
	if r.unknownDisc > 0 {
		t.Errorf("%d Disconnect calls for connections whose Connect did not succeed", r.unknownDisc)
	}
	if r.concurrent > 0 {
		t.Errorf("%d Message calls overlapped another call for the same connection", r.concurrent)
	}
	if r.lateCalls > 0 {
		t.Errorf("%d Message calls began after or ran during their connection's Disconnect", r.lateCalls)
	}
}

// logBuffer collects server logs, shown when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is an edge.Server listening on 127.0.0.1 with a recorder.
type testServer struct {
	*edge.Server
	rec  *recorder
	hub  *hub.Hub
	addr string
	path string
	// logs holds what the server logged.
	logs *logBuffer
	// clientTLS, when set, makes the clients speak TLS with it, over the
	// socket wrapped by wrap when that is set.
	clientTLS *tls.Config
	wrap      func(net.Conn) net.Conn
}

// startServer starts an edge.Server for cfg. Its shutdown, and the check of
// the recorder, run in t.Cleanup.
func startServer(t *testing.T, cfg edge.Config, rec *recorder) *testServer {
	t.Helper()
	if rec == nil {
		rec = newRecorder()
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := hub.New()
	srv := edge.New(cfg, rec, h, logger)
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		rec.check(t)
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	path := cfg.Path
	if path == "" {
		path = "/"
	}
	return &testServer{Server: srv, rec: rec, hub: h, addr: ln.Addr().String(), path: path, logs: logs}
}

// testKey is the Sec-WebSocket-Key of RFC 6455 section 1.3, whose accept
// value the RFC gives.
const (
	testKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	testAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

var clientSeq atomic.Int64

// upgradeRequest returns a valid opening handshake for path from a client
// called name, with extra header lines ("Name: value").
func upgradeRequest(addr, path, name string, headers ...string) string {
	return "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"User-Agent: edge-test\r\n" +
		"X-Test-Client: " + name + "\r\n" +
		strings.Join(append(headers, ""), "\r\n") +
		"\r\n"
}

// client is a WebSocket client written against the raw socket: it sends
// exactly the bytes a test gives it and reports exactly the frames the
// server sends.
type client struct {
	t    testing.TB
	name string
	nc   net.Conn
	br   *bufio.Reader
	conn *edge.Conn // the server's side of this client
}

// dial connects to s, performs the upgrade and sends extra, if any, in the
// same write as the upgrade request.
func (s *testServer) dial(t testing.TB, extra ...byte) *client {
	t.Helper()
	c, resp := s.tryDial(t, extra...)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != testAccept {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, testAccept)
	}
	if c.conn = s.rec.conn(c.name); c.conn == nil {
		t.Fatalf("Connect was not called for %s", c.name)
	}
	return c
}

// tryDial sends an upgrade request and returns the client and the
// response, whatever its status.
func (s *testServer) tryDial(t testing.TB, extra ...byte) (*client, *http.Response) {
	t.Helper()
	return s.tryDialWith(t, nil, extra...)
}

// tryDialWith is tryDial with extra header lines in the request.
func (s *testServer) tryDialWith(t testing.TB, headers []string, extra ...byte) (*client, *http.Response) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if s.wrap != nil {
		nc = s.wrap(nc)
	}
	if s.clientTLS != nil {
		nc = tls.Client(nc, s.clientTLS)
	}
	c := &client{t: t, name: fmt.Sprintf("client-%d", clientSeq.Add(1)), nc: nc, br: bufio.NewReader(nc)}
	c.write(append([]byte(upgradeRequest(s.addr, s.path, c.name, headers...)), extra...))
	_ = nc.SetReadDeadline(time.Now().Add(ioTimeout))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	_ = resp.Body.Close()
	return c, resp
}

// rawHTTP sends req on a new connection and returns the response, with
// its body read into body.
func rawHTTP(t testing.TB, addr, req string) (resp *http.Response, body string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	_ = resp.Body.Close()
	return resp, string(b)
}

// maskKey masks every frame the test clients send.
var maskKey = [4]byte{0x5a, 0xc3, 0x0f, 0x96}

// clientFrame returns one masked client frame.
func clientFrame(op wsproto.Opcode, fin bool, payload []byte) []byte {
	return wsproto.AppendClientFrame(nil, op, fin, payload, maskKey)
}

// closePayload returns the payload of a close frame with code and reason.
func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if err := c.writeErr(b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

func (c *client) writeErr(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := c.nc.Write(b)
	return err
}

// send writes one masked frame.
func (c *client) send(op wsproto.Opcode, fin bool, payload []byte) {
	c.t.Helper()
	c.write(clientFrame(op, fin, payload))
}

func (c *client) sendText(s string) {
	c.t.Helper()
	c.send(wsproto.OpText, true, []byte(s))
}

// frame is one frame as the server sent it.
type frame struct {
	fin     bool
	rsv     byte
	op      wsproto.Opcode
	masked  bool
	payload []byte
}

// closeCode returns the code of a close frame: 1005 when its payload is
// empty, as RFC 6455 section 7.1.5 defines.
func (f frame) closeCode() int {
	if len(f.payload) < 2 {
		return wsproto.CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

func (f frame) closeReason() string {
	if len(f.payload) < 2 {
		return ""
	}
	return string(f.payload[2:])
}

func (f frame) String() string {
	p := string(f.payload)
	if len(p) > 40 {
		p = fmt.Sprintf("%.40q... (%d bytes)", p, len(p))
	} else {
		p = fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("%v fin=%v %s", f.op, f.fin, p)
}

// readFrame reads one server frame from r.
func readFrame(r io.Reader) (frame, error) {
	var h [14]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, op: wsproto.Opcode(h[0] & 0x0f), masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return frame{}, err
		}
	}
	if n > 16<<20 {
		return frame{}, fmt.Errorf("frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return frame{}, err
	}
	for i := range f.payload {
		f.payload[i] ^= key[i&3]
	}
	return f, nil
}

// nextErr reads the next server frame and checks that it is a frame a
// server may send: unmasked, no reserved bits, control frames whole and at
// most 125 bytes.
func (c *client) nextErr() (frame, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := readFrame(c.br)
	if err != nil {
		return f, err
	}
	switch {
	case f.masked:
		return f, fmt.Errorf("server sent a masked frame: %v", f)
	case f.rsv != 0:
		return f, fmt.Errorf("server sent reserved bits: %v", f)
	case f.op.IsControl() && (!f.fin || len(f.payload) > wsproto.MaxControlPayload):
		return f, fmt.Errorf("server sent an invalid control frame: %v", f)
	}
	return f, nil
}

func (c *client) next() frame {
	c.t.Helper()
	f, err := c.nextErr()
	if err != nil {
		c.t.Fatalf("%s: read frame: %v", c.name, err)
	}
	return f
}

// expectClose reads frames, skipping pings, until the server's close frame,
// requires its code and returns its reason. Any data frame is an error.
func (c *client) expectClose(code int) string {
	c.t.Helper()
	for {
		f := c.next()
		switch f.op {
		case wsproto.OpPing, wsproto.OpPong:
			continue
		case wsproto.OpClose:
			if got := f.closeCode(); got != code {
				c.t.Fatalf("%s: server closed with %d %q, want %d", c.name, got, f.closeReason(), code)
			}
			return f.closeReason()
		}
		c.t.Fatalf("%s: got %v, want a close frame", c.name, f)
	}
}

// expectText reads the next frame and requires a whole text message.
func (c *client) expectText(want string) {
	c.t.Helper()
	f := c.next()
	if f.op != wsproto.OpText || !f.fin || string(f.payload) != want {
		c.t.Fatalf("%s: got %v, want text %q", c.name, f, want)
	}
}

// expectEOF requires the server to close the TCP connection with nothing
// more sent.
func (c *client) expectEOF() {
	c.t.Helper()
	f, err := c.nextErr()
	if err == nil {
		c.t.Fatalf("%s: got %v, want the connection closed", c.name, f)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("%s: read ended with %v, want EOF", c.name, err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(ne.Err.Error(), "reset")
}

// finishClose answers the server's close frame and waits for the server to
// close the TCP connection, which RFC 6455 section 7.1.1 leaves to the
// server.
func (c *client) finishClose(code int) {
	c.t.Helper()
	c.send(wsproto.OpClose, true, closePayload(code, ""))
	c.expectEOF()
}

// hangUp answers the server's close frame and closes the TCP connection
// itself, as a client does after a protocol error when the server no longer
// reads its frames.
func (c *client) hangUp(code int) {
	_ = c.writeErr(clientFrame(wsproto.OpClose, true, closePayload(code, "")))
	_ = c.nc.Close()
}
