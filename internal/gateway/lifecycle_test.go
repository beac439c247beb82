package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
)

// sendLarge writes msg as one text message in frames of at most 32 KiB, as
// the gateway's default max_frame_bytes requires.
func sendLarge(t testing.TB, c *websocket.Conn, msg []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(len(msg), 32<<10)
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return w.Close()
}

// largeMessage is message i of a test: about size bytes, recognisable by
// its prefix.
func largeMessage(i, size int) []byte {
	prefix := fmt.Sprintf("msg-%03d:", i)
	return []byte(prefix + strings.Repeat("x", size-len(prefix)))
}

// connectionGone reports whether the management API answers 410 for id: the
// gateway has seen the socket close.
func connectionGone(t testing.TB, g *gt.Gateway, id string) bool {
	status, _, _ := g.MgmtDo(t, "GET", "/@connections/"+strings.ReplaceAll(id, "=", "%3D"), nil, nil)
	return status == http.StatusGone
}

// TestDisconnectAfterEveryMessage: a client sends large messages to a slow
// http backend and goes away. Every message reaches the backend, the
// $disconnect event comes after the last of them has been answered, and
// until then the connection holds its place under max_connections.
func TestDisconnectAfterEveryMessage(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name string
		end  func(c *websocket.Conn)
		code int
	}{
		{"close handshake", func(c *websocket.Conn) { go func() { _ = c.Close(websocket.StatusNormalClosure, "bye") }() }, 1000},
		{"dropped socket", func(c *websocket.Conn) { _ = c.CloseNow() }, 1006},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := gt.NewBackend(t)
			hold := gt.NewGate()
			var answeredMu sync.Mutex
			answered := 0
			b.On("/default", func(e gt.Event) gt.Reply {
				if strings.HasPrefix(e.Body, "msg-000:") {
					hold.Wait()
				}
				time.Sleep(10 * time.Millisecond) // a slow backend
				answeredMu.Lock()
				answered++
				answeredMu.Unlock()
				return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200}}
			})
			// The close reply waits for the held message no longer than
			// close_drain_timeout.
			g := gt.Start(t, disconnectConfig(b, "{max_connections: 1, close_drain_timeout: 100ms}"))
			t.Cleanup(hold.Open)
			c := gt.Dial(t, g.URL, nil)
			id := b.ConnectionID(t, "/connect", 0)
			for i := range n {
				if err := sendLarge(t, c.Conn, largeMessage(i, 100<<10)); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			b.WaitEvent(t, "/default", nil)
			tc.end(c.Conn)
			gt.Eventually(t, func() bool { return connectionGone(t, g, id) }, "the gateway to see the socket close")

			// The backend still holds the first message: no $disconnect,
			// and the closed connection keeps the only slot.
			if evs := b.Events("/disconnect"); len(evs) != 0 {
				t.Fatalf("$disconnect sent while %d messages were still to be delivered", n-len(b.Events("/default")))
			}
			if conn, resp, err := gt.TryDial(g.URL, nil); err == nil {
				_ = conn.CloseNow()
				t.Fatal("a second client connected while the closed one, at max_connections 1, still had messages in flight")
			} else if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("second client: %v (response %v), want 503", err, resp)
			}

			hold.Open()
			b.WaitEvent(t, "/disconnect", nil)
			evs := b.Events("")
			var msgs []string
			for i, e := range evs {
				switch e.Path {
				case "/default":
					msgs = append(msgs, e.Body[:8])
				case "/disconnect":
					if i != len(evs)-1 {
						t.Fatalf("$disconnect is event %d of %d; %d events came after it", i+1, len(evs), len(evs)-1-i)
					}
					if int(e.RequestContext.DisconnectStatusCode) != tc.code {
						t.Fatalf("disconnectStatusCode %d, want %d", e.RequestContext.DisconnectStatusCode, tc.code)
					}
				}
			}
			if len(msgs) != n {
				t.Fatalf("the backend got %d messages before $disconnect, want %d: %v", len(msgs), n, msgs)
			}
			for i, m := range msgs {
				if m != fmt.Sprintf("msg-%03d:", i) {
					t.Fatalf("message #%d is %q", i, m)
				}
			}
			answeredMu.Lock()
			got := answered
			answeredMu.Unlock()
			if got != n {
				t.Fatalf("$disconnect sent when %d of %d messages had been answered", got, n)
			}
			// The slot is free once the $disconnect is under way.
			gt.Eventually(t, func() bool {
				conn, _, err := gt.TryDial(g.URL, nil)
				if err != nil {
					return false
				}
				_ = conn.CloseNow()
				return true
			}, "a new client to connect")
		})
	}
}

// budgetConfig routes $default to b with limits.
func budgetConfig(b *gt.Backend, limits string) string {
	return fmt.Sprintf(`
routes:
  $default: {integration: {type: http, url: %q}, route_response: true}
limits: %s
`, b.URLFor("/default"), limits)
}

// TestBudgetHoldsOtherClients: with the in-flight budget full of one
// client's message to a slow backend, a second client's message reaches the
// backend only after the first has been answered.
func TestBudgetHoldsOtherClients(t *testing.T) {
	b := gt.NewBackend(t)
	hold := gt.NewGate()
	var answeredMu sync.Mutex
	firstAnswered := false
	b.On("/default", func(e gt.Event) gt.Reply {
		if e.Body == "first" {
			hold.Wait()
			answeredMu.Lock()
			firstAnswered = true
			answeredMu.Unlock()
		}
		return gt.Reply{Proxy: &events.APIGatewayProxyResponse{StatusCode: 200, Body: "re: " + e.Body}}
	})
	g := gt.Start(t, budgetConfig(b, "{inflight_budget_messages: 1}"))
	t.Cleanup(hold.Open)
	first, second := gt.Dial(t, g.URL, nil), gt.Dial(t, g.URL, nil)
	first.Send("first")
	b.WaitEvent(t, "/default", nil)
	second.Send("second")
	secondArrived := func() bool { return len(b.Events("/default")) > 1 }
	gt.Eventually(t, func() bool { return g.EdgeStats().PausedReaders > 0 || secondArrived() },
		"the gateway to pause reading or deliver the second message")
	if secondArrived() {
		t.Fatal("the second client's message reached the backend while the first held the whole budget")
	}
	hold.Open()
	if got := first.NextText(); got != "re: first" {
		t.Fatalf("first client got %q", got)
	}
	if got := second.NextText(); got != "re: second" {
		t.Fatalf("second client got %q", got)
	}
	ev := b.WaitEvent(t, "/default", func(e gt.Event) bool { return e.Body == "second" })
	answeredMu.Lock()
	defer answeredMu.Unlock()
	if !firstAnswered {
		t.Fatalf("the second message (%s) arrived before the first was answered", ev.RequestContext.RequestID)
	}
}

// TestShutdownWhileReadsPaused: a gateway whose in-flight budget is full,
// with a backend that never answers, still shuts down within its deadline.
func TestShutdownWhileReadsPaused(t *testing.T) {
	b := gt.NewBackend(t)
	hold := gt.NewGate()
	b.On("/default", func(gt.Event) gt.Reply { hold.Wait(); return gt.Reply{} })
	cfg, err := config.Parse("test.yaml", []byte(budgetConfig(b, "{inflight_budget_messages: 1}")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Management.Listen = "127.0.0.1:0", "127.0.0.1:0"
	logs := &gt.LogBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hold.Open)
	url := "ws://" + g.Addr() + "/"
	first, second := gt.Dial(t, url, nil), gt.Dial(t, url, nil)
	first.Send("held")
	b.WaitEvent(t, "/default", nil)
	second.Send("waits")
	gt.Eventually(t, func() bool { return g.EdgeStats().PausedReaders > 0 }, "reading to pause")

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(ctx) }()
	select {
	case err := <-done:
		// The held message's integration was canceled at the deadline.
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown: %v, want the deadline's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Shutdown did not return with reading paused\n%s", logs)
	}
	for _, c := range []*gt.Client{first, second} {
		c.ExpectClose(1001)
	}
	if n := len(b.Events("/default")); n != 1 {
		t.Fatalf("the backend got %d messages, want only the one accepted before shutdown", n)
	}
}

// TestMemoryFlatUnderHostileClients: clients that each send 64 large
// messages to a slow route and close, round after round, leave the gateway
// holding no more than its in-flight budget allows: the live heap, measured
// after a collection at the end of each round, stays under a bound derived
// from the budget instead of growing with the rounds.
func TestMemoryFlatUnderHostileClients(t *testing.T) {
	const (
		rounds    = 6
		clients   = 6
		perClient = 64
		size      = 64 << 10
		budget    = 2 << 20
	)
	// A slow route that keeps nothing (gatewaytest's Backend records every
	// event, which would be the test's own leak).
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Millisecond)
		_, _ = io.WriteString(w, `{"statusCode": 200}`)
	}))
	t.Cleanup(slow.Close)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $default: {integration: {type: http, url: %q}}
limits: {inflight_budget_bytes: %d}
`, slow.URL, budget))
	msg := largeMessage(0, size)
	baseline := liveHeap()
	// What the gateway may hold: the budget, passed by at most one read
	// per event-loop thread, with every message counted three times over
	// (the queued copy, the event built from it, the request carrying it),
	// and the backend's copy of the messages it is answering.
	bound := baseline + uint64(3*(budget+runtime.NumCPU()*(64<<10+size))+clients*2*size+8<<20)
	var peak uint64
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				c, _, err := gt.TryDial(g.URL, nil)
				if err != nil {
					errs <- err
					return
				}
				defer c.CloseNow()
				for range perClient {
					if err := sendLarge(t, c, msg); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		heap := liveHeap()
		peak = max(peak, heap)
		t.Logf("round %d: live heap %d KiB (baseline %d KiB, bound %d KiB), %d messages in flight",
			round, heap>>10, baseline>>10, bound>>10, g.EdgeStats().InflightMessages)
		if heap > bound {
			t.Fatalf("round %d: live heap %d KiB over the bound of %d KiB", round, heap>>10, bound>>10)
		}
	}
	gt.Eventually(t, func() bool { return g.EdgeStats().Connections == 0 }, "the hostile clients' messages to be delivered")
}

// liveHeap returns the bytes of heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // the second collection frees what sync.Pool victims held
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
