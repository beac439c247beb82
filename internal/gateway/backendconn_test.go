package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// countingBackend is an http backend on a real listener that answers every
// event with a proxy response echoing its body, counts the TCP connections
// it accepted and records the HTTP major version of each request.
type countingBackend struct {
	srv    *httptest.Server
	opened atomic.Int64
	calls  atomic.Int64 // POSTs, the gateway's calls
	h1     atomic.Int64 // calls over HTTP/1.x
}

// newCountingBackend starts a backend; protocols nil is net/http's default
// (HTTP/1.1 only without TLS).
func newCountingBackend(t *testing.T, protocols *http.Protocols) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			// An HTTP/1 server reads an HTTP/2 client's connection
			// preface as a request "PRI *".
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		b.calls.Add(1)
		if r.ProtoMajor != 2 {
			b.h1.Add(1)
		}
		var ev struct {
			Body string `json:"body"`
		}
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &ev)
		out, _ := json.Marshal(map[string]any{"statusCode": 200, "body": ev.Body})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.opened.Add(1)
		}
	}
	if protocols != nil {
		b.srv.Config.Protocols = protocols
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

// echoRouteConfig routes $default to url with route_response, over HTTP/2
// when http2 is set.
func echoRouteConfig(url string, http2 bool) string {
	return fmt.Sprintf(`
stage: prod
routes:
  $default: {integration: {type: http, url: %q, http2: %t}, route_response: true}
`, url, http2)
}

// closedLoop dials clients connections to url and has each send msgs
// messages, one at a time, each waiting for its reply, all clients at
// once. It returns the first problem.
func closedLoop(url string, clients, msgs int) error {
	conns := make([]*websocket.Conn, 0, clients)
	defer func() {
		for _, c := range conns {
			_ = c.CloseNow()
		}
	}()
	for i := range clients {
		c, _, err := gt.TryDial(url, nil)
		if err != nil {
			return fmt.Errorf("client %d: dial: %w", i, err)
		}
		conns = append(conns, c)
	}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for j := range msgs {
				msg := fmt.Sprintf(`{"client":%d,"n":%d}`, i, j)
				if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					errs <- fmt.Errorf("client %d message %d: write: %w", i, j, err)
					return
				}
				_, got, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("client %d message %d: read: %w", i, j, err)
					return
				}
				if string(got) != msg {
					errs <- fmt.Errorf("client %d message %d: reply %q, want %q", i, j, got, msg)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return errors.Join(<-errs)
}

// TestHTTPBackendConnectionsReused: 200 clients each send messages in a
// closed loop through an http integration, in two rounds. The gateway never
// has more than 200 calls in flight to the backend, so it needs about 200
// connections, and once warm it reuses them: the second round, as many
// calls again, opens next to none. (More than 200 may open while cold, at
// most twice as many: a connection goes back to the idle pool just after
// its call returns, and a call starting in between dials.) A per-backend idle pool smaller than the
// concurrency, as 64 was, closes and reopens a connection for a large share
// of the calls: over a thousand for the first round alone.
func TestHTTPBackendConnectionsReused(t *testing.T) {
	const clients, msgs = 200, 20
	b := newCountingBackend(t, nil)
	g := gt.Start(t, echoRouteConfig(b.srv.URL+"/default", false))
	if err := closedLoop(g.URL, clients, msgs); err != nil {
		t.Fatal(err)
	}
	if got := b.calls.Load(); got != clients*msgs {
		t.Fatalf("backend answered %d calls, want %d", got, clients*msgs)
	}
	first := b.opened.Load()
	if first > 2*clients {
		t.Fatalf("backend accepted %d connections for %d calls from %d clients, want at most %d", first, clients*msgs, clients, 2*clients)
	}
	if err := closedLoop(g.URL, clients, msgs); err != nil {
		t.Fatal(err)
	}
	if more := b.opened.Load() - first; more > clients/10 {
		t.Fatalf("warm: %d more connections for %d more calls from %d clients (%d after the first round), want at most %d", more, clients*msgs, clients, first, clients/10)
	}
	t.Logf("%d connections for %d calls", b.opened.Load(), b.calls.Load())
}

// TestHTTP2Backend: with http2: true the gateway calls an h2c backend over
// HTTP/2 with prior knowledge, many calls sharing a connection.
func TestHTTP2Backend(t *testing.T) {
	const clients, msgs = 20, 25
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	b := newCountingBackend(t, &p)
	g := gt.Start(t, echoRouteConfig(b.srv.URL+"/default", true))
	if err := closedLoop(g.URL, clients, msgs); err != nil {
		t.Fatal(err)
	}
	if got := b.calls.Load(); got != clients*msgs {
		t.Fatalf("backend answered %d calls, want %d", got, clients*msgs)
	}
	if got := b.h1.Load(); got != 0 {
		t.Fatalf("%d of %d calls came over HTTP/1", got, clients*msgs)
	}
	// One connection carries up to the server's 250 concurrent streams;
	// concurrent first calls may each dial before one connection is up.
	if got := b.opened.Load(); got > clients {
		t.Fatalf("backend accepted %d connections for %d calls from %d clients, want at most %d", got, clients*msgs, clients, clients)
	}
	// Once a connection is up, one client's calls all share it.
	before := b.opened.Load()
	if err := closedLoop(g.URL, 1, msgs); err != nil {
		t.Fatal(err)
	}
	if got := b.opened.Load(); got != before {
		t.Fatalf("a warm HTTP/2 client opened %d more connections for %d sequential calls", got-before, msgs)
	}

	// Without http2, the same backend is called over HTTP/1.1.
	g1 := gt.Start(t, echoRouteConfig(b.srv.URL+"/default", false))
	if err := closedLoop(g1.URL, 1, 1); err != nil {
		t.Fatal(err)
	}
	if got := b.h1.Load(); got != 1 {
		t.Fatalf("without http2: %d calls over HTTP/1, want 1", got)
	}
}

// TestHTTP2BackendWithoutHTTP2: with http2: true, a backend that speaks
// only HTTP/1.1 fails every call: the client gets AWS's Internal server
// error frame, the socket stays open, and the failure is logged.
func TestHTTP2BackendWithoutHTTP2(t *testing.T) {
	b := newCountingBackend(t, nil)
	g := gt.Start(t, echoRouteConfig(b.srv.URL+"/default", true))
	c := gt.Dial(t, g.URL, nil)
	for range 2 {
		c.Send(`{"n":1}`)
		if got := c.NextText(); !strings.HasPrefix(got, `{"message": "Internal server error", "connectionId":"`) {
			t.Fatalf("frame %q, want the Internal server error frame", got)
		}
	}
	if got := b.calls.Load(); got != 0 {
		t.Fatalf("an HTTP/1-only backend answered %d calls", got)
	}
	gt.Eventually(t, func() bool { return strings.Contains(g.Logs.String(), "integration failed") }, "the failure to be logged")
}
