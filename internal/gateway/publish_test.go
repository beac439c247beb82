package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// frame is a reply decoded: an ack of a publishing integration or an error
// frame.
type frame struct {
	Status       string `json:"status"`
	RequestID    string `json:"requestId"`
	Subject      string `json:"subject"`
	Stream       string `json:"stream"`
	Sequence     uint64 `json:"sequence"`
	ID           string `json:"id"`
	Channel      string `json:"channel"`
	Receivers    *int64 `json:"receivers"`
	Message      string `json:"message"`
	ConnectionID string `json:"connectionId"`
}

func nextFrame(t *testing.T, c *gt.Client) (frame, string) {
	t.Helper()
	raw := c.NextText()
	var f frame
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return f, raw
}

func natsClient(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func tenantToken(t *testing.T, sub, tenant string) string {
	return mint(t, jwt.MapClaims{"sub": sub, "tenant": tenant, "exp": time.Now().Add(time.Hour).Unix()})
}

// streamMsgs returns the messages stored in stream, by sequence.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) map[uint64]*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("stream %s sequence %d: %v", stream, seq, err)
		}
		out[seq] = m
	}
	return out
}

// TestNATSIntegration runs every kind of nats route over real sockets:
// $connect and $disconnect published, a JetStream route fanning out by
// tenant and user with the ack frame, a core NATS route with the body
// alone and the identity in headers, and a placeholder that cannot be
// resolved answered with AWS's error frame while the socket stays open.
func TestNATSIntegration(t *testing.T) {
	srv := servicetest.NATS(t)
	nc, js := natsClient(t, srv.URL())
	audit := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("audit.>", audit); err != nil {
		t.Fatal(err)
	}
	disconnects := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("disconnects", disconnects); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [tenant]}
routes:
  $connect: {integration: {type: nats, url: %[1]q, subject: "connects.{principalId}", jetstream: true, declare: true, stream: CONNECTS}}
  $disconnect: {integration: {type: nats, url: %[1]q, subject: disconnects, payload: body}}
  order:
    integration: {type: nats, url: %[1]q, subject: "orders.{authorizer.tenant}.{principalId}", jetstream: true, declare: true, stream: ORDERS, timeout: 5s}
    route_response: true
  audit:
    integration: {type: nats, url: %[1]q, subject: "audit.{body.room}", payload: body}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, srv.URL()))

	alice := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "alice", "acme"), nil)
	bob := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "bob", "globex"), nil)

	// $connect succeeded only once its event was stored.
	connects := streamMsgs(t, js, "CONNECTS")
	ids := map[string]string{}
	for _, m := range connects {
		p := m.Header.Get("Wsgate-Principal-Id")
		ids[p] = m.Header.Get("Wsgate-Connection-Id")
		var ev struct {
			RequestContext struct{ EventType, ConnectionID string }
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.RequestContext.EventType != "CONNECT" || ev.RequestContext.ConnectionID != ids[p] || m.Subject != "connects."+p {
			t.Errorf("$connect message on %s: %s", m.Subject, m.Data)
		}
	}
	if len(connects) != 2 || ids["alice"] == "" || ids["bob"] == "" {
		t.Fatalf("$connect messages: %v", ids)
	}

	// JetStream: fanned out by tenant and user, acknowledged with the
	// sequence, the AWS event stored.
	for _, c := range []struct {
		client *gt.Client
		who    string
		want   string
	}{{alice, "alice", "orders.acme.alice"}, {bob, "bob", "orders.globex.bob"}} {
		body := fmt.Sprintf(`{"action":"order","item":"tea for %s"}`, c.who)
		c.client.Send(body)
		f, raw := nextFrame(t, c.client)
		var keys map[string]any
		_ = json.Unmarshal([]byte(raw), &keys)
		if f.Status != "accepted" || f.Subject != c.want || f.Stream != "ORDERS" || f.Sequence == 0 || f.RequestID == "" || len(keys) != 5 {
			t.Fatalf("ack %s", raw)
		}
		m := streamMsgs(t, js, "ORDERS")[f.Sequence]
		var ev struct {
			Body           string
			RequestContext struct {
				ConnectionID, RequestID, RouteKey string
				Authorizer                        map[string]any
			}
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		rc := ev.RequestContext
		if m.Subject != c.want || ev.Body != body || rc.ConnectionID != ids[c.who] || rc.RequestID != f.RequestID || rc.RouteKey != "order" || rc.Authorizer["principalId"] != c.who {
			t.Errorf("stored %s: %s", m.Subject, m.Data)
		}
		if m.Header.Get("Nats-Msg-Id") != f.RequestID {
			t.Errorf("Nats-Msg-Id %q, requestId %q", m.Header.Get("Nats-Msg-Id"), f.RequestID)
		}
	}

	// Core NATS, the body alone, the identity in headers.
	alice.Send(`{"action":"audit","room":"lobby"}`)
	f, raw := nextFrame(t, alice)
	if f.Status != "accepted" || f.Subject != "audit.lobby" || f.Stream != "" {
		t.Fatalf("ack %s", raw)
	}
	select {
	case m := <-audit:
		if string(m.Data) != `{"action":"audit","room":"lobby"}` || m.Header.Get("Wsgate-Connection-Id") != ids["alice"] ||
			m.Header.Get("Wsgate-Principal-Id") != "alice" || m.Header.Get("Wsgate-Request-Id") != f.RequestID ||
			!strings.Contains(m.Header.Get("Wsgate-Authorizer"), `"tenant":"acme"`) {
			t.Errorf("audit message %s %v", m.Data, m.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no audit message")
	}

	// A placeholder that cannot be resolved, or resolves to a value a
	// subject cannot hold: AWS's error frame, nothing published.
	for _, body := range []string{`{"action":"audit"}`, `{"action":"audit","room":"a.b"}`} {
		bob.Send(body)
		f, raw = nextFrame(t, bob)
		if f.Message != "Internal server error" || f.ConnectionID != ids["bob"] || f.RequestID == "" {
			t.Fatalf("reply to %s: %s", body, raw)
		}
		if !strings.Contains(g.Logs.String(), "placeholder {body.room}") {
			t.Errorf("the failure is not logged:\n%s", g.Logs.String())
		}
		if strings.Contains(g.Logs.String(), "a.b") {
			t.Errorf("the log repeats the client's value:\n%s", g.Logs.String())
		}
	}
	bob.Send("still open")
	if got := bob.NextText(); got != "still open" {
		t.Fatalf("echo %q", got)
	}
	select {
	case m := <-audit:
		t.Errorf("published to %s", m.Subject)
	default:
	}

	// $disconnect, with payload body: an empty message and the identity.
	_ = alice.Close(1000, "bye")
	select {
	case m := <-disconnects:
		if m.Header.Get("Wsgate-Event-Type") != "DISCONNECT" || m.Header.Get("Wsgate-Connection-Id") != ids["alice"] || len(m.Data) != 0 {
			t.Errorf("$disconnect message %q %v", m.Data, m.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no $disconnect message")
	}
}

// outage sends the messages body(0), body(1), … to c until the broker has
// been stopped and, after an Internal server error frame, started again and
// a message has been acknowledged. stop is called after the first ack with
// what was acknowledged so far; between the failure and the restart the
// $default echo route must answer. It returns the body of every message
// acknowledged, by the ack's sequence (JetStream) or entry id (Redis).
func outage(t *testing.T, c *gt.Client, body func(int) string, stop func(acked map[string]string), start func()) map[string]string {
	t.Helper()
	acked := map[string]string{}
	phase := 0 // 0: until an ack; 1: stopped, until a failure; 2: restarted, until an ack
	for i := 0; phase < 3; i++ {
		if i > 100000 {
			t.Fatal("the outage never ended")
		}
		msg := body(i)
		c.Send(msg)
		f, raw := nextFrame(t, c)
		switch {
		case f.Status == "accepted":
			acked[fmt.Sprint(f.Sequence)+f.ID] = msg
			if phase == 0 {
				stop(acked)
				phase = 1
			} else if phase == 2 {
				phase = 3
			}
		case f.Message == "Internal server error":
			if phase == 0 {
				t.Fatalf("failed before the outage: %s", raw)
			}
			if phase == 1 {
				// Other routes keep serving while the broker is down.
				c.Send("echo during the outage")
				if got := c.NextText(); got != "echo during the outage" {
					t.Fatalf("echo %q", got)
				}
				start()
				phase = 2
			}
		default:
			t.Fatalf("reply %s", raw)
		}
	}
	return acked
}

// TestNATSOutage stops the NATS server under a JetStream route: the client
// gets Internal server error frames, the gateway and its other routes keep
// serving, publishing works again once NATS is back, and every message the
// client was told was accepted is in the stream.
func TestNATSOutage(t *testing.T) {
	srv := servicetest.NATS(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  order:
    integration: {type: nats, url: %q, subject: "orders.{connectionId}", jetstream: true, declare: true, stream: ORDERS, timeout: 2s, payload: body}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, srv.URL()))
	c := gt.Dial(t, g.URL, nil)
	acked := outage(t, c, func(i int) string { return fmt.Sprintf(`{"action":"order","n":%d}`, i) },
		func(map[string]string) { srv.Stop() }, srv.Start)
	_, js := natsClient(t, srv.URL())
	stored := streamMsgs(t, js, "ORDERS")
	for seq, body := range acked {
		var n uint64
		fmt.Sscan(seq, &n)
		if m := stored[n]; m == nil || string(m.Data) != body {
			t.Errorf("acknowledged %s (sequence %s) is not in the stream", body, seq)
		}
	}
	if len(acked) < 2 {
		t.Errorf("acknowledged %d messages", len(acked))
	}
}

// TestRedisIntegration runs a stream route and a channel route over real
// sockets, then stops Redis under them.
func TestRedisIntegration(t *testing.T) {
	srv := servicetest.Redis(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [tenant]}
routes:
  history:
    integration: {type: redis, url: %[1]q, stream: "chat:{authorizer.tenant}:{body.room}", maxlen: 1000, payload: body, timeout: 2s}
    route_response: true
  typing:
    integration: {type: redis, url: %[1]q, channel: "typing:{principalId}"}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, srv.URL()))
	sub := rc.Subscribe(ctx, "typing:alice")
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	c := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "alice", "acme"), nil)

	for _, room := range []string{"lobby", "garden"} {
		body := `{"action":"history","room":"` + room + `","text":"hi"}`
		c.Send(body)
		f, raw := nextFrame(t, c)
		if f.Status != "accepted" || f.Stream != "chat:acme:"+room || f.ID == "" {
			t.Fatalf("ack %s", raw)
		}
		entries, err := rc.XRange(ctx, f.Stream, f.ID, f.ID).Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("XRANGE: %v %v", entries, err)
		}
		v := entries[0].Values
		if v["body"] != body || v["principalId"] != "alice" || v["routeKey"] != "history" || v["requestId"] != f.RequestID || v["connectionId"] == "" || v["eventType"] != "MESSAGE" {
			t.Errorf("entry %v", v)
		}
	}

	c.Send(`{"action":"typing"}`)
	f, raw := nextFrame(t, c)
	if f.Status != "accepted" || f.Channel != "typing:alice" || f.Receivers == nil || *f.Receivers != 1 {
		t.Fatalf("ack %s", raw)
	}
	select {
	case m := <-sub.Channel():
		if !strings.Contains(m.Payload, `"routeKey":"typing"`) || !strings.Contains(m.Payload, `"eventType":"MESSAGE"`) {
			t.Errorf("channel message %s", m.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no channel message")
	}

	// The test server keeps nothing across a restart: what the client was
	// told before the outage is checked before it, the rest at the end.
	inStream := func(acked map[string]string) {
		t.Helper()
		for id, body := range acked {
			entries, err := rc.XRange(ctx, "chat:acme:out", id, id).Result()
			if err != nil || len(entries) != 1 || entries[0].Values["body"] != body {
				t.Errorf("acknowledged %s (entry %s) is not in the stream: %v %v", body, id, entries, err)
			}
		}
	}
	checked := map[string]bool{}
	acked := outage(t, c, func(i int) string { return fmt.Sprintf(`{"action":"history","room":"out","n":%d}`, i) },
		func(acked map[string]string) {
			inStream(acked)
			for id := range acked {
				checked[id] = true
			}
			srv.Stop()
		}, srv.Start)
	for id := range checked {
		delete(acked, id)
	}
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged after the restart")
	}
	inStream(acked)
}

// TestBrokersDownAtStart starts gateways whose NATS and Redis servers are
// down: they start, their other routes serve, the publishing routes answer
// AWS's error frame and a $connect that publishes refuses the handshake
// with 502, until the servers come up, when all of it works without a
// restart.
func TestBrokersDownAtStart(t *testing.T) {
	ns := servicetest.NATS(t)
	rs := servicetest.Redis(t)
	ns.Stop()
	rs.Stop()
	g := gt.Start(t, fmt.Sprintf(`
routes:
  order:
    integration: {type: nats, url: %q, subject: orders, jetstream: true, declare: true, stream: ORDERS, timeout: 2s}
    route_response: true
  history:
    integration: {type: redis, url: %q, stream: history, timeout: 2s}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, ns.URL(), rs.URL()))
	withConnect := gt.Start(t, fmt.Sprintf(`
routes:
  $connect: {integration: {type: nats, url: %q, subject: connects, jetstream: true, declare: true, stream: CONNECTS, timeout: 2s}}
`, ns.URL()))

	c := gt.Dial(t, g.URL, nil)
	c.Send("hello")
	if got := c.NextText(); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	for _, route := range []string{"order", "history"} {
		c.Send(`{"action":"` + route + `"}`)
		if f, raw := nextFrame(t, c); f.Message != "Internal server error" {
			t.Fatalf("%s while its broker is down: %s", route, raw)
		}
	}
	if status := dialStatus(withConnect.URL, nil); status != 502 {
		t.Fatalf("handshake with $connect on a NATS that is down: %d, want 502", status)
	}

	ns.Start()
	rs.Start()
	for _, route := range []string{"order", "history"} {
		gt.Eventually(t, func() bool {
			c.Send(`{"action":"` + route + `"}`)
			f, _ := nextFrame(t, c)
			return f.Status == "accepted"
		}, "%s accepted once its broker is up", route)
	}
	// Each gateway has its own connection, which comes back by itself.
	gt.Eventually(t, func() bool { return dialStatus(withConnect.URL, nil) == 101 }, "a handshake once NATS is up")
	_, js := natsClient(t, ns.URL())
	if n := len(streamMsgs(t, js, "CONNECTS")); n != 1 {
		t.Errorf("CONNECTS holds %d messages, want the one $connect that succeeded", n)
	}
}

// TestPublishingConfigProblems: the secrets a nats or redis route names are
// read at start; a missing one is reported at its line as missing (validate
// lists it apart) and its value never appears in an error.
func TestPublishingConfigProblems(t *testing.T) {
	cfg, err := config.Parse("wsgate.yaml", []byte(`routes:
  order:
    integration:
      type: nats
      url_env: WSGATE_TEST_UNSET_NATS_URL
      subject: orders
  history:
    integration:
      type: redis
      url: redis://127.0.0.1:1/0
      password_env: WSGATE_TEST_UNSET_REDIS_PASSWORD
      stream: history
  audit:
    integration:
      type: nats
      url: nats://127.0.0.1:1
      subject: audit
      credentials_file: /nonexistent/wsgate-test.creds
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(string) string { return "" }})
	if err == nil {
		t.Fatal("gateway.New accepted missing secrets")
	}
	for _, want := range []string{
		"wsgate.yaml:5: routes.order.integration.url_env: environment variable WSGATE_TEST_UNSET_NATS_URL is unset or empty",
		"wsgate.yaml:11: routes.history.integration.password_env: environment variable WSGATE_TEST_UNSET_REDIS_PASSWORD is unset or empty",
		"wsgate.yaml:18: routes.audit.integration.credentials_file: reading the credentials: open /nonexistent/wsgate-test.creds: no such file or directory",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if !config.IsMissing(err) {
		t.Errorf("config.IsMissing(%v) = false; validate would count these as problems", err)
	}

	// A URL from the environment that is not one is reported without
	// repeating it: it may hold credentials.
	env := map[string]string{"NATS_URL": "nats://u:s3cret-pass@127.0.0.1:1%zz"}
	cfg, err = config.Parse("wsgate.yaml", []byte(`routes:
  order: {integration: {type: nats, url_env: NATS_URL, subject: orders}}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(k string) string { return env[k] }})
	if err == nil || !strings.Contains(err.Error(), "wsgate.yaml:2: routes.order.integration.url_env: ") {
		t.Fatalf("a malformed URL in NATS_URL: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows a secret: %v", err)
	}
}
