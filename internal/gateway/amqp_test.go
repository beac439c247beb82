package gateway_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// rabbitClient is a plain AMQP client of the test node.
type rabbitClient struct {
	t   *testing.T
	url string
}

// do runs f on a channel of a connection of its own, so that it works
// across restarts of the node.
func (r rabbitClient) do(f func(ch *amqp.Channel) error) {
	r.t.Helper()
	conn, err := amqp.Dial(r.url)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := f(ch); err != nil {
		r.t.Fatal(err)
	}
}

// queue declares a durable queue bound to exchange with key.
func (r rabbitClient) queue(name, exchange, key string) {
	r.t.Helper()
	r.do(func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			return err
		}
		if exchange == "" {
			return nil
		}
		return ch.QueueBind(name, key, exchange, false, nil)
	})
}

// take removes and returns every message in queue.
func (r rabbitClient) take(queue string) []amqp.Delivery {
	r.t.Helper()
	var out []amqp.Delivery
	r.do(func(ch *amqp.Channel) error {
		for {
			d, ok, err := ch.Get(queue, true)
			if err != nil || !ok {
				return err
			}
			out = append(out, d)
		}
	})
	return out
}

// TestAMQPIntegration runs amqp routes over real sockets against a
// RabbitMQ node: $connect and $disconnect published, a route fanning out by
// tenant and message with the ack frame, an unroutable message and an
// unresolvable placeholder answered with AWS's error frame, and then the
// node killed under the gateway and started again.
func TestAMQPIntegration(t *testing.T) {
	srv := servicetest.RabbitMQ(t)
	r := rabbitClient{t: t, url: srv.URL()}
	r.do(func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare("wsgate.events", "topic", true, false, false, false, nil)
	})
	r.queue("connects", "wsgate.events", "connect.*")
	r.queue("orders", "wsgate.events", "orders.#")
	r.queue("disconnects", "", "")

	g := gt.Start(t, fmt.Sprintf(`
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [tenant]}
routes:
  $connect: {integration: {type: amqp, url: %[1]q, exchange: wsgate.events, declare: true, routing_key: "connect.{principalId}", timeout: 5s}}
  $disconnect: {integration: {type: amqp, url: %[1]q, routing_key: disconnects, payload: body}}
  order:
    integration: {type: amqp, url: %[1]q, exchange: wsgate.events, routing_key: "orders.{authorizer.tenant}.{body.kind}"}
    route_response: true
  notify:
    integration: {type: amqp, url: %[1]q, routing_key: nobody-listens, payload: body}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, srv.URL()))

	// The gateway connects in the background; until then $connect fails.
	gt.Eventually(t, func() bool { return dialStatus(g.URL+"?access_token="+tenantToken(t, "probe", "none"), nil) == 101 }, "a handshake once connected")
	alice := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "alice", "acme"), nil)

	// $connect succeeded only once its event was confirmed.
	var aliceID string
	for _, m := range r.take("connects") {
		var ev struct {
			RequestContext struct{ EventType, ConnectionID, RequestID string }
		}
		if err := json.Unmarshal(m.Body, &ev); err != nil || ev.RequestContext.EventType != "CONNECT" || m.Headers["wsgate-connection-id"] != ev.RequestContext.ConnectionID ||
			m.MessageId != ev.RequestContext.RequestID || m.ContentType != "application/json" || m.DeliveryMode != amqp.Persistent {
			t.Errorf("$connect message %s %v: %v", m.Body, m.Headers, err)
		}
		if m.RoutingKey == "connect.alice" {
			aliceID = ev.RequestContext.ConnectionID
		}
	}
	if aliceID == "" {
		t.Fatal("no $connect message for alice")
	}

	// Fanned out by tenant and message, acknowledged once confirmed, the
	// AWS event stored.
	for _, kind := range []string{"tea", "cake"} {
		body := `{"action":"order","kind":"` + kind + `"}`
		alice.Send(body)
		f, raw := nextFrame(t, alice)
		want := `{"status":"accepted","requestId":"` + f.RequestID + `","exchange":"wsgate.events","routingKey":"orders.acme.` + kind + `"}`
		if raw != want || f.RequestID == "" {
			t.Fatalf("ack %s, want %s", raw, want)
		}
		got := r.take("orders")
		if len(got) != 1 {
			t.Fatalf("%d messages in orders", len(got))
		}
		m := got[0]
		var ev struct {
			Body           string
			RequestContext struct {
				ConnectionID, RequestID, RouteKey string
				Authorizer                        map[string]any
			}
		}
		if err := json.Unmarshal(m.Body, &ev); err != nil {
			t.Fatal(err)
		}
		rc := ev.RequestContext
		if ev.Body != body || rc.ConnectionID != aliceID || rc.RequestID != f.RequestID || rc.RouteKey != "order" || rc.Authorizer["principalId"] != "alice" ||
			m.MessageId != f.RequestID || m.Headers["wsgate-principal-id"] != "alice" || m.RoutingKey != "orders.acme."+kind {
			t.Errorf("stored %s: %s %v", m.RoutingKey, m.Body, m.Headers)
		}
	}

	// Unroutable, and a placeholder that cannot be resolved: AWS's error
	// frame, nothing acknowledged, the socket open.
	for _, body := range []string{`{"action":"notify"}`, `{"action":"order"}`, `{"action":"order","kind":"a.b"}`} {
		alice.Send(body)
		f, raw := nextFrame(t, alice)
		if f.Message != "Internal server error" || f.ConnectionID != aliceID || f.RequestID == "" {
			t.Fatalf("reply to %s: %s", body, raw)
		}
	}
	logs := g.Logs.String()
	if !strings.Contains(logs, "unroutable") || !strings.Contains(logs, "placeholder {body.kind}") {
		t.Errorf("the failures are not logged:\n%s", logs)
	}
	if strings.Contains(logs, "a.b") {
		t.Errorf("the log repeats the client's value:\n%s", logs)
	}
	if n := len(r.take("orders")); n != 0 {
		t.Errorf("%d messages published by failed routes", n)
	}
	alice.Send("still open")
	if got := alice.NextText(); got != "still open" {
		t.Fatalf("echo %q", got)
	}

	// $disconnect with payload body: an empty message and the identity.
	_ = alice.Close(1000, "bye")
	gt.Eventually(t, func() bool {
		for _, m := range r.take("disconnects") {
			if m.Headers["wsgate-connection-id"] == aliceID {
				if m.Headers["wsgate-event-type"] != "DISCONNECT" || len(m.Body) != 0 || m.ContentType != "" {
					t.Errorf("$disconnect message %q %v", m.Body, m.Headers)
				}
				return true
			}
		}
		return false
	}, "alice's $disconnect message")

	// The node killed under the gateway: error frames, the other routes
	// serving, and publishing again once it is back; every message the
	// client was told was accepted is in the queue.
	bob := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "bob", "globex"), nil)
	acked := map[string]string{} // request id → body
	send := func(i int) frame {
		t.Helper()
		body := fmt.Sprintf(`{"action":"order","kind":"k%d"}`, i)
		bob.Send(body)
		f, raw := nextFrame(t, bob)
		switch {
		case f.Status == "accepted":
			acked[f.RequestID] = body
		case f.Message != "Internal server error":
			t.Fatalf("reply %s", raw)
		}
		return f
	}
	i := 0
	for ; i < 5; i++ {
		if f := send(i); f.Status != "accepted" {
			t.Fatalf("message %d before the outage not accepted: %+v", i, f)
		}
	}
	srv.Stop()
	gt.Eventually(t, func() bool {
		i++
		return send(i).Message != "" && strings.Contains(g.Logs.String(), "not connected to RabbitMQ")
	}, "publications failing at once while RabbitMQ is down")
	bob.Send("echo during the outage")
	if got := bob.NextText(); got != "echo during the outage" {
		t.Fatalf("echo %q", got)
	}
	srv.Start()
	// The gateway tries again within amqp's longest backoff, 5s; a busy
	// machine needs longer than Eventually's 10s to reconnect.
	for deadline := time.Now().Add(30 * time.Second); ; {
		i++
		if send(i).Status == "accepted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no message accepted within 30s of RabbitMQ's restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 5 {
		i++
		if f := send(i); f.Status != "accepted" {
			t.Fatalf("message %d after the outage not accepted: %+v", i, f)
		}
	}
	stored := map[string]string{}
	for _, m := range r.take("orders") {
		var ev struct {
			Body           string
			RequestContext struct{ RequestID string }
		}
		if err := json.Unmarshal(m.Body, &ev); err != nil {
			t.Fatal(err)
		}
		stored[ev.RequestContext.RequestID] = ev.Body
	}
	for id, body := range acked {
		if stored[id] != body {
			t.Errorf("acknowledged %s (request %s) is not in the queue", body, id)
		}
	}
	if len(acked) < 11 || len(stored) < len(acked) {
		t.Errorf("%d messages acknowledged, %d stored", len(acked), len(stored))
	}
}

// TestAMQPDownAtStart starts gateways whose RabbitMQ cannot be reached: they
// start, their other routes serve, an amqp route answers AWS's error frame
// and a $connect that publishes refuses the handshake with 502.
func TestAMQPDownAtStart(t *testing.T) {
	const url = "amqp://127.0.0.1:1/"
	g := gt.Start(t, `
routes:
  order:
    integration: {type: amqp, url: "`+url+`", routing_key: orders, timeout: 2s}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`)
	withConnect := gt.Start(t, `
routes:
  $connect: {integration: {type: amqp, url: "`+url+`", routing_key: connects}}
`)
	c := gt.Dial(t, g.URL, nil)
	c.Send("hello")
	if got := c.NextText(); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	c.Send(`{"action":"order"}`)
	if f, raw := nextFrame(t, c); f.Message != "Internal server error" {
		t.Fatalf("order while RabbitMQ is down: %s", raw)
	}
	if status := dialStatus(withConnect.URL, nil); status != 502 {
		t.Fatalf("handshake with $connect on a RabbitMQ that is down: %d, want 502", status)
	}
}

// TestAMQPConfigProblems: url_env is read at start, a missing one reported
// at its line as missing, and a URL read from it that is not one is
// reported without repeating it.
func TestAMQPConfigProblems(t *testing.T) {
	cfg, err := config.Parse("wsgate.yaml", []byte(`routes:
  order:
    integration:
      type: amqp
      url_env: WSGATE_TEST_UNSET_AMQP_URL
      routing_key: orders
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(string) string { return "" }})
	want := "wsgate.yaml:5: routes.order.integration.url_env: environment variable WSGATE_TEST_UNSET_AMQP_URL is unset or empty"
	if err == nil || !strings.Contains(err.Error(), want) || !config.IsMissing(err) {
		t.Fatalf("an unset url_env: %v, want %s, missing", err, want)
	}

	env := map[string]string{"AMQP_URL": "amqp://u:s3cret-pass@127.0.0.1:1/%zz"}
	cfg, err = config.Parse("wsgate.yaml", []byte(`routes:
  order: {integration: {type: amqp, url_env: AMQP_URL, routing_key: orders}}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(k string) string { return env[k] }})
	if err == nil || !strings.Contains(err.Error(), "wsgate.yaml:2: routes.order.integration.url_env: ") {
		t.Fatalf("a malformed URL in AMQP_URL: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows a secret: %v", err)
	}

	// A URL with credentials from the environment is what url_env is
	// for: the gateway builds, and nothing is logged with the password.
	env["AMQP_URL"] = "amqp://u:s3cret-pass@127.0.0.1:1/"
	logs := &gt.LogBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gt.Eventually(t, func() bool { return strings.Contains(logs.String(), "amqp integration cannot connect") }, "a failed connection logged")
	g.Close()
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the log shows the password:\n%s", logs)
	}
}
