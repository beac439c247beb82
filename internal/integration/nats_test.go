package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/destination"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// messageEvent is a MESSAGE event of connection id with body, from an
// authorized connection when principal is not empty.
func messageEvent(id, body, principal string) *Event {
	ev := &Event{Body: body}
	rc := &ev.RequestContext
	rc.ConnectionID, rc.RouteKey, rc.EventType = id, "sendmessage", "MESSAGE"
	rc.RequestID = "req-" + id + "-" + fmt.Sprint(time.Now().UnixNano())
	rc.Stage, rc.APIID = "prod", "local"
	if principal != "" {
		rc.Authorizer = map[string]any{"principalId": principal, "tenant": "acme", "integrationLatency": int64(0)}
	}
	return ev
}

func mustTemplate(t testing.TB, s string) *destination.Template {
	t.Helper()
	tm, err := destination.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func dialNATS(t testing.TB, url string) *NATSConn {
	t.Helper()
	c, err := DialNATS(NATSOptions{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// subscriber is a plain NATS client that collects what arrives on subject.
func subscriber(t testing.TB, url, subject string) chan *nats.Msg {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ch := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe(subject, ch); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func receive(t testing.TB, ch chan *nats.Msg) *nats.Msg {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

func decodeAck(t testing.TB, resp *Response) map[string]any {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
		t.Fatalf("ack %q: %v", resp.Body, err)
	}
	return m
}

func TestNATSPublishesBothPayloads(t *testing.T) {
	srv := servicetest.NATS(t)
	conn := dialNATS(t, srv.URL())
	msgs := subscriber(t, srv.URL(), "chat.>")
	for _, mode := range []Payload{PayloadEvent, PayloadBody} {
		n := &NATS{Conn: conn, Subject: mustTemplate(t, "chat.{principalId}"), Payload: mode, Timeout: 5 * time.Second}
		ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"hi"}`, "alice")
		resp, err := n.Invoke(context.Background(), ev)
		if err != nil {
			t.Fatalf("payload %d: %v", mode, err)
		}
		ack := decodeAck(t, resp)
		if ack["status"] != "accepted" || ack["requestId"] != ev.RequestContext.RequestID || ack["subject"] != "chat.alice" || len(ack) != 3 {
			t.Errorf("payload %d: ack %s", mode, resp.Body)
		}
		m := receive(t, msgs)
		if m.Subject != "chat.alice" {
			t.Errorf("subject %q", m.Subject)
		}
		if mode == PayloadBody {
			if string(m.Data) != ev.Body {
				t.Errorf("body payload %q, want %q", m.Data, ev.Body)
			}
		} else {
			var got Event
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatalf("event payload %q: %v", m.Data, err)
			}
			want, _ := json.Marshal(ev)
			if string(m.Data) != string(want) {
				t.Errorf("event payload\n%s\nwant the http integration's\n%s", m.Data, want)
			}
		}
		for k, want := range map[string]string{
			"Wsgate-Connection-Id": "L0SM9cOFvHcCIhw=",
			"Wsgate-Route-Key":     "sendmessage",
			"Wsgate-Event-Type":    "MESSAGE",
			"Wsgate-Request-Id":    ev.RequestContext.RequestID,
			"Wsgate-Principal-Id":  "alice",
			"Nats-Msg-Id":          ev.RequestContext.RequestID,
		} {
			if got := m.Header.Get(k); got != want {
				t.Errorf("payload %d: header %s = %q, want %q", mode, k, got, want)
			}
		}
		var authz map[string]any
		if err := json.Unmarshal([]byte(m.Header.Get("Wsgate-Authorizer")), &authz); err != nil || authz["tenant"] != "acme" {
			t.Errorf("Wsgate-Authorizer %q", m.Header.Get("Wsgate-Authorizer"))
		}
	}
}

func TestNATSBinaryBody(t *testing.T) {
	srv := servicetest.NATS(t)
	conn := dialNATS(t, srv.URL())
	msgs := subscriber(t, srv.URL(), "bin")
	// No timeout and a context without a deadline: the flush still has one.
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "bin"), Payload: PayloadBody}
	ev := messageEvent("L0SM9cOFvHcCIhw=", "AP8=", "")
	ev.IsBase64Encoded = true
	if _, err := n.Invoke(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	m := receive(t, msgs)
	if string(m.Data) != "\x00\xff" {
		t.Errorf("binary payload %q", m.Data)
	}
	if m.Header.Get("Wsgate-Principal-Id") != "" || m.Header.Get("Wsgate-Authorizer") != "" {
		t.Errorf("identity of an anonymous connection carries a principal: %v", m.Header)
	}
}

func TestNATSPlaceholders(t *testing.T) {
	srv := servicetest.NATS(t)
	conn := dialNATS(t, srv.URL())
	msgs := subscriber(t, srv.URL(), "room.>")
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "room.{authorizer.tenant}.{body.room}"), Payload: PayloadBody, Timeout: 5 * time.Second}
	for _, room := range []string{"lobby", "kitchen", "lobby"} {
		if _, err := n.Invoke(context.Background(), messageEvent("c", `{"room":"`+room+`"}`, "bob")); err != nil {
			t.Fatal(err)
		}
		if m := receive(t, msgs); m.Subject != "room.acme."+room {
			t.Errorf("subject %q, want room.acme.%s", m.Subject, room)
		}
	}
	for _, bad := range []struct{ body, principal, want string }{
		{`{"room":"a.b"}`, "bob", `placeholder {body.room}: the value holds "."`},
		{`{"room":"*"}`, "bob", `placeholder {body.room}: the value holds "."`},
		{`{"room":"a b"}`, "bob", `placeholder {body.room}`},
		{`{"other":1}`, "bob", `placeholder {body.room}: no value`},
		{`{"room":"x"}`, "", `placeholder {authorizer.tenant}: no authorizer context`},
	} {
		_, err := n.Invoke(context.Background(), messageEvent("c", bad.body, bad.principal))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("body %s: err %v, want ErrFailed containing %q", bad.body, err, bad.want)
		}
	}
	select {
	case m := <-msgs:
		t.Errorf("a failed placeholder published to %q", m.Subject)
	default:
	}
}

func TestNATSJetStream(t *testing.T) {
	srv := servicetest.NATS(t)
	conn := dialNATS(t, srv.URL())
	ctx := context.Background()

	// Without a stream and without declare, the message is refused.
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "orders.{principalId}"), JetStream: true, Timeout: 5 * time.Second}
	if _, err := n.Invoke(ctx, messageEvent("c", `{}`, "alice")); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), `no stream captures subject "orders.alice"`) {
		t.Fatalf("publish without a stream: %v", err)
	}

	// declare creates it, capturing every subject the template expands to.
	n.DeclareStream = "ORDERS"
	var last uint64
	for i, p := range []string{"alice", "bob"} {
		resp, err := n.Invoke(ctx, messageEvent("c", fmt.Sprintf(`{"n":%d}`, i), p))
		if err != nil {
			t.Fatal(err)
		}
		ack := decodeAck(t, resp)
		seq := uint64(ack["sequence"].(float64))
		if ack["stream"] != "ORDERS" || seq <= last || ack["subject"] != "orders."+p {
			t.Errorf("ack %s", resp.Body)
		}
		last = seq
	}
	js, err := jetstream.New(conn.nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Subjects[0] != "orders.*" || info.State.Msgs != 2 {
		t.Errorf("stream subjects %v, %d messages", info.Config.Subjects, info.State.Msgs)
	}
	m, err := st.GetMsg(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Wsgate-Principal-Id") != "bob" || !strings.Contains(string(m.Data), `"eventType":"MESSAGE"`) {
		t.Errorf("stored message %v %s", m.Header, m.Data)
	}

	// An existing stream of that name is left as it is.
	other := &NATS{Conn: conn, Subject: mustTemplate(t, "orders.x"), JetStream: true, DeclareStream: "ORDERS", Timeout: 5 * time.Second}
	if _, err := other.Invoke(ctx, messageEvent("c", `{}`, "")); err != nil {
		t.Fatal(err)
	}
}

func TestNATSDownAtStart(t *testing.T) {
	srv := servicetest.NATS(t)
	url := srv.URL()
	srv.Stop()
	conn := dialNATS(t, url)
	for _, js := range []bool{false, true} {
		n := &NATS{Conn: conn, Subject: mustTemplate(t, "up"), JetStream: js, DeclareStream: "UP", Timeout: 20 * time.Second}
		if !js {
			n.DeclareStream = ""
		}
		done := make(chan error, 1)
		go func() {
			_, err := n.Invoke(context.Background(), messageEvent("c", "x", ""))
			done <- err
		}()
		// Fails at once, not at the 20s timeout: the test would time out
		// waiting for the ack otherwise.
		select {
		case err := <-done:
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "not connected to NATS") {
				t.Fatalf("jetstream %v while down: %v", js, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("jetstream %v: publishing while NATS is down waited", js)
		}
	}
	srv.Start()
	msgs := subscriber(t, srv.URL(), "up")
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "up"), Timeout: 5 * time.Second}
	eventually(t, func() bool {
		_, err := n.Invoke(context.Background(), messageEvent("c", "x", ""))
		return err == nil
	}, "publishing once NATS is up")
	receive(t, msgs)
}

// TestNATSOutage publishes to JetStream from several goroutines while the
// server stops and starts again: publications fail while it is down, work
// again once it is back, and every publication that was acknowledged is in
// the stream.
func TestNATSOutage(t *testing.T) {
	srv := servicetest.NATS(t)
	conn := dialNATS(t, srv.URL())
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "out.{connectionId}"), JetStream: true, DeclareStream: "OUT", Payload: PayloadBody, Timeout: 2 * time.Second}
	acked, failed := runPublishers(t, n, srv.Stop, srv.Start)
	if failed == 0 {
		t.Fatal("no publication failed while NATS was down")
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), "OUT")
	if err != nil {
		t.Fatal(err)
	}
	for body := range acked {
		var seq uint64
		fmt.Sscan(acked[body], &seq)
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil || string(m.Data) != body {
			t.Errorf("acknowledged %q (sequence %d) is not in the stream: %v", body, seq, err)
		}
	}
}

// runPublishers invokes in from four goroutines, each its own connection
// id: until a first success, then stop() once every goroutine has had
// a success, until each has seen a failure, then start(), until each has
// had a success again. It returns each acknowledged body with the id or
// sequence of its ack, and how many publications failed.
func runPublishers(t *testing.T, in Integration, stop, start func()) (map[string]string, int) {
	t.Helper()
	const workers = 4
	var (
		mu     sync.Mutex
		acked  = map[string]string{}
		failed int
	)
	phase := make(chan struct{}) // closed when the broker is stopped
	upAgain := make(chan struct{})
	var before, during, after sync.WaitGroup
	before.Add(workers)
	during.Add(workers)
	after.Add(workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", w)
			step := 0 // 0: want a success; 1: want a failure; 2: want a success
			for i := 0; ; i++ {
				body := fmt.Sprintf("%s-%d", id, i)
				resp, err := in.Invoke(context.Background(), messageEvent(id, body, ""))
				mu.Lock()
				if err == nil {
					var ack struct {
						Sequence uint64 `json:"sequence"`
						ID       string `json:"id"`
					}
					_ = json.Unmarshal([]byte(resp.Body), &ack)
					acked[body] = ack.ID
					if ack.Sequence != 0 {
						acked[body] = fmt.Sprint(ack.Sequence)
					}
				} else {
					failed++
				}
				mu.Unlock()
				switch {
				case step == 0 && err == nil:
					step = 1
					before.Done()
					<-phase
				case step == 1 && err != nil:
					step = 2
					during.Done()
					<-upAgain
				case step == 2 && err == nil:
					after.Done()
					return
				case err != nil:
					// Pacing, not synchronisation: failures come at once
					// while the broker is down.
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	before.Wait()
	stop()
	close(phase)
	during.Wait()
	start()
	close(upAgain)
	after.Wait()
	wg.Wait()
	return acked, failed
}

// eventually polls cond every 10ms until it holds, failing after 15s.
func eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy is a TCP proxy to a server that shows every chunk its clients
// send, as read, to observe; observe is called from one goroutine per
// client connection.
type proxy struct{ addr string }

func startProxy(t *testing.T, upstream string, observe func(chunk []byte)) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, c, u)
			connsMu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, u)
				_ = c.Close()
			}()
			go func() {
				defer wg.Done()
				defer u.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						observe(buf[:n])
						if _, werr := u.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return &proxy{addr: ln.Addr().String()}
}

// countPings starts a proxy to a NATS server that counts the PINGs its
// client sends; the NATS client makes one connection.
func countPings(t *testing.T, url string) (*proxy, *atomic.Int64) {
	t.Helper()
	var pings atomic.Int64
	// A PING may be split over two reads: keep the tail.
	const ping = "\r\nPING\r\n"
	var tail []byte
	p := startProxy(t, strings.TrimPrefix(url, "nats://"), func(chunk []byte) {
		data := append(tail, chunk...)
		pings.Add(int64(bytes.Count(data, []byte(ping))))
		tail = append([]byte(nil), data[max(0, len(data)-len(ping)+1):]...)
	})
	return p, &pings
}

// TestNATSCoreConfirmsInRounds publishes from many goroutines at once to
// core NATS: every publication is acknowledged and received, and the
// acknowledgements share round trips, so the gateway sends far fewer
// PINGs than it publishes messages.
func TestNATSCoreConfirmsInRounds(t *testing.T) {
	srv := servicetest.NATS(t)
	proxy, pings := countPings(t, srv.URL())
	conn := dialNATS(t, "nats://"+proxy.addr)
	const workers, each = 64, 40
	sub, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	msgs := make(chan *nats.Msg, workers*each)
	if _, err := sub.ChanSubscribe("rounds.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "rounds.{connectionId}"), Payload: PayloadBody, Timeout: 10 * time.Second}
	before := pings.Load()
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := n.Invoke(context.Background(), messageEvent(fmt.Sprint("c", w), fmt.Sprint(w, "-", i), "")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publication failed: %v", err)
	}
	sent := pings.Load() - before
	got := map[string]bool{}
	for len(got) < workers*each {
		got[string(receive(t, msgs).Data)] = true
	}
	if sent < 1 || sent > workers*each/2 {
		t.Errorf("%d PINGs for %d publications made 64 at a time, want at least 1 and at most half as many", sent, workers*each)
	}
	t.Logf("%d PINGs for %d publications", sent, workers*each)
}

// TestNATSCoreAfterClose checks that a core publication through a closed
// connection fails at once, and that Close may be called again.
func TestNATSCoreAfterClose(t *testing.T) {
	srv := servicetest.NATS(t)
	conn, err := DialNATS(NATSOptions{URL: srv.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &NATS{Conn: conn, Subject: mustTemplate(t, "closed"), Timeout: 20 * time.Second}
	if _, err := n.Invoke(context.Background(), messageEvent("c", "x", "")); err != nil {
		t.Fatalf("before Close: %v", err)
	}
	_ = conn.Close()
	_ = conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := n.Invoke(context.Background(), messageEvent("c", "x", ""))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrFailed) {
			t.Errorf("after Close: %v, want ErrFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publishing through a closed connection waited")
	}
}

// lockedBuffer is a log sink safe for the connection's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A NATS URL may carry a token as its user (nats://TOKEN@host:port), the
// form url_env allows; the token must not reach the log.
func TestNATSTokenInURLNotLogged(t *testing.T) {
	srv := servicetest.NATS(t)
	const token = "s3cr3tT0ken"
	url := strings.Replace(srv.URL(), "nats://", "nats://"+token+"@", 1)
	var logs lockedBuffer
	c, err := DialNATS(NATSOptions{URL: url}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, func() bool { return strings.Contains(logs.String(), "connected") }, "the connection logged")
	if strings.Contains(logs.String(), token) {
		t.Fatalf("the log holds the token: %s", logs.String())
	}
}
