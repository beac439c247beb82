package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/wsgate/wsgate/internal/servicetest"
)

func dialAMQP(t testing.TB, url string) *AMQPConn {
	t.Helper()
	c, err := DialAMQP(AMQPOptions{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitConnected waits until c has connected.
func waitConnected(t testing.TB, c *AMQPConn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := c.current()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not connected to RabbitMQ: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rabbit is a plain AMQP client of the test node, to set up queues and
// read what the integration published.
type rabbit struct {
	t    testing.TB
	conn *amqp.Connection
}

func newRabbit(t testing.TB, url string) *rabbit {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rabbit{t: t, conn: conn}
}

// do runs f on a channel of its own.
func (r *rabbit) do(f func(ch *amqp.Channel) error) error {
	ch, err := r.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	return f(ch)
}

// queue declares a durable queue, empty, bound to exchange with each of
// keys (none: only the default exchange's binding).
func (r *rabbit) queue(name, exchange string, keys ...string) {
	r.t.Helper()
	err := r.do(func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueuePurge(name, false); err != nil {
			return err
		}
		for _, k := range keys {
			if err := ch.QueueBind(name, k, exchange, false, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("queue %s: %v", name, err)
	}
}

func (r *rabbit) exchange(name, kind string) {
	r.t.Helper()
	if err := r.do(func(ch *amqp.Channel) error { return ch.ExchangeDeclare(name, kind, true, false, false, false, nil) }); err != nil {
		r.t.Fatalf("exchange %s: %v", name, err)
	}
}

func (r *rabbit) deleteExchange(name string) {
	r.t.Helper()
	if err := r.do(func(ch *amqp.Channel) error { return ch.ExchangeDelete(name, false, false) }); err != nil {
		r.t.Fatalf("delete exchange %s: %v", name, err)
	}
}

// exchangeExists reports whether a passive declaration finds name.
func (r *rabbit) exchangeExists(name string) bool {
	return r.do(func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(name, "", false, false, false, false, nil)
	}) == nil
}

// get takes every message in queue, acknowledging them.
func (r *rabbit) get(queue string) []amqp.Delivery {
	r.t.Helper()
	var out []amqp.Delivery
	err := r.do(func(ch *amqp.Channel) error {
		for {
			d, ok, err := ch.Get(queue, true)
			if err != nil || !ok {
				return err
			}
			out = append(out, d)
		}
	})
	if err != nil {
		r.t.Fatalf("get %s: %v", queue, err)
	}
	return out
}

// TestAMQP runs the amqp integration against one RabbitMQ node, shared by
// its subtests since a node takes seconds to start.
func TestAMQP(t *testing.T) {
	srv := servicetest.RabbitMQ(t)
	conn := dialAMQP(t, srv.URL())
	waitConnected(t, conn)
	r := newRabbit(t, srv.URL())
	ctx := context.Background()

	t.Run("both payloads", func(t *testing.T) {
		r.queue("wsgate.payloads", "")
		for _, mode := range []Payload{PayloadEvent, PayloadBody} {
			a := &AMQP{Conn: conn, RoutingKey: mustTemplate(t, "wsgate.payloads"), Payload: mode, Timeout: 5 * time.Second}
			ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"hi"}`, "alice")
			resp, err := a.Invoke(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			want := `{"status":"accepted","requestId":"` + ev.RequestContext.RequestID + `","exchange":"","routingKey":"wsgate.payloads"}`
			if resp.StatusCode != 200 || resp.Body != want || resp.Headers["Content-Type"] != "application/json" {
				t.Errorf("response %d %s %v, want %s", resp.StatusCode, resp.Body, resp.Headers, want)
			}
			got := r.get("wsgate.payloads")
			if len(got) != 1 {
				t.Fatalf("%d messages in the queue, want 1", len(got))
			}
			m := got[0]
			for k, want := range map[string]string{
				"wsgate-connection-id": "L0SM9cOFvHcCIhw=", "wsgate-route-key": "sendmessage", "wsgate-event-type": "MESSAGE",
				"wsgate-request-id": ev.RequestContext.RequestID, "wsgate-principal-id": "alice",
			} {
				if m.Headers[k] != want {
					t.Errorf("header %s = %v, want %q", k, m.Headers[k], want)
				}
			}
			if s, _ := m.Headers["wsgate-authorizer"].(string); !strings.Contains(s, `"tenant":"acme"`) {
				t.Errorf("header wsgate-authorizer = %v", m.Headers["wsgate-authorizer"])
			}
			if m.DeliveryMode != amqp.Persistent || m.MessageId != ev.RequestContext.RequestID || m.AppId != "wsgate" ||
				time.Since(m.Timestamp) > time.Hour || m.Exchange != "" || m.RoutingKey != "wsgate.payloads" {
				t.Errorf("properties: delivery mode %d, message id %q, app id %q, timestamp %v, exchange %q, routing key %q",
					m.DeliveryMode, m.MessageId, m.AppId, m.Timestamp, m.Exchange, m.RoutingKey)
			}
			if mode == PayloadBody {
				if string(m.Body) != ev.Body || m.ContentType != "" {
					t.Errorf("body payload: %q, content type %q", m.Body, m.ContentType)
				}
			} else {
				want, _ := json.Marshal(ev)
				if string(m.Body) != string(want) || m.ContentType != "application/json" {
					t.Errorf("event payload: %s, content type %q", m.Body, m.ContentType)
				}
			}
		}
		// Without an authorizer the principal and authorizer headers are
		// left out.
		a := &AMQP{Conn: conn, RoutingKey: mustTemplate(t, "wsgate.payloads"), Payload: PayloadBody}
		if _, err := a.Invoke(ctx, messageEvent("c", "x", "")); err != nil {
			t.Fatal(err)
		}
		m := r.get("wsgate.payloads")[0]
		if _, ok := m.Headers["wsgate-principal-id"]; ok || m.Headers["wsgate-authorizer"] != nil || m.Headers["wsgate-connection-id"] != "c" {
			t.Errorf("headers without an authorizer: %v", m.Headers)
		}
	})

	t.Run("routing key placeholders fan out", func(t *testing.T) {
		r.exchange("wsgate.rooms", "topic")
		r.queue("wsgate.lobby", "wsgate.rooms", "rooms.lobby")
		r.queue("wsgate.garden", "wsgate.rooms", "rooms.garden")
		a := &AMQP{Conn: conn, Exchange: "wsgate.rooms", RoutingKey: mustTemplate(t, "rooms.{body.room}"), Payload: PayloadBody, Timeout: 5 * time.Second}
		for _, room := range []string{"lobby", "garden", "lobby"} {
			body := `{"room":"` + room + `"}`
			resp, err := a.Invoke(ctx, messageEvent("c", body, ""))
			if err != nil {
				t.Fatal(err)
			}
			if ack := decodeAck(t, resp); ack["exchange"] != "wsgate.rooms" || ack["routingKey"] != "rooms."+room {
				t.Errorf("ack %s", resp.Body)
			}
		}
		lobby, garden := r.get("wsgate.lobby"), r.get("wsgate.garden")
		if len(lobby) != 2 || len(garden) != 1 || string(garden[0].Body) != `{"room":"garden"}` || string(lobby[1].Body) != `{"room":"lobby"}` {
			t.Errorf("lobby %d messages, garden %d", len(lobby), len(garden))
		}
		for _, body := range []string{`{"room":"lobby.x"}`, `{"room":""}`, `not json`} {
			_, err := a.Invoke(ctx, messageEvent("c", body, ""))
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "placeholder {body.room}") || strings.Contains(err.Error(), "lobby.x") {
				t.Errorf("%s: %v", body, err)
			}
		}
		if n := len(r.get("wsgate.lobby")); n != 0 {
			t.Errorf("%d messages published from unresolvable placeholders", n)
		}
	})

	t.Run("unroutable", func(t *testing.T) {
		r.exchange("wsgate.unbound", "direct")
		r.queue("wsgate.routable", "wsgate.unbound", "yes")
		for _, a := range []*AMQP{
			{Conn: conn, RoutingKey: mustTemplate(t, "wsgate.no-such-queue")},
			{Conn: conn, Exchange: "wsgate.unbound", RoutingKey: mustTemplate(t, "no")},
		} {
			_, err := a.Invoke(ctx, messageEvent("c", "x", ""))
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "returned the message as unroutable: 312 NO_ROUTE") {
				t.Errorf("unroutable to %q: %v", a.Exchange, err)
			}
		}
		// The channels stay usable.
		for range amqpChannels {
			a := &AMQP{Conn: conn, Exchange: "wsgate.unbound", RoutingKey: mustTemplate(t, "yes")}
			if _, err := a.Invoke(ctx, messageEvent("c", "x", "")); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(r.get("wsgate.routable")); n != amqpChannels {
			t.Errorf("%d messages routed, want %d", n, amqpChannels)
		}
	})

	t.Run("nack", func(t *testing.T) {
		// A full queue that rejects publications makes the broker nack.
		err := r.do(func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("wsgate.full", false, false, false, false, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		a := &AMQP{Conn: conn, RoutingKey: mustTemplate(t, "wsgate.full"), Timeout: 5 * time.Second}
		if _, err := a.Invoke(ctx, messageEvent("c", "first", "")); err != nil {
			t.Fatal(err)
		}
		_, err = a.Invoke(ctx, messageEvent("c", "second", ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "RabbitMQ refused the message (basic.nack)") {
			t.Errorf("publishing to a full queue: %v", err)
		}
	})

	t.Run("exchanges", func(t *testing.T) {
		r.deleteExchange("wsgate.declared")
		missing := &AMQP{Conn: conn, Exchange: "wsgate.declared", RoutingKey: mustTemplate(t, "k"), Timeout: 5 * time.Second}
		_, err := missing.Invoke(ctx, messageEvent("c", "x", ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), `exchange "wsgate.declared" does not exist (declare: true creates it)`) {
			t.Errorf("missing exchange: %v", err)
		}
		if r.exchangeExists("wsgate.declared") {
			t.Fatal("an exchange was declared without declare")
		}
		declared := &AMQP{Conn: conn, Exchange: "wsgate.declared", Declare: true, ExchangeType: "topic", RoutingKey: mustTemplate(t, "k.{principalId}"), Timeout: 5 * time.Second}
		_, err = declared.Invoke(ctx, messageEvent("c", "x", "alice"))
		if !r.exchangeExists("wsgate.declared") {
			t.Fatal("declare: true did not create the exchange")
		}
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "unroutable") {
			t.Errorf("declared, nothing bound: %v", err)
		}
		r.queue("wsgate.declared.q", "wsgate.declared", "k.*")
		if _, err := declared.Invoke(ctx, messageEvent("c", "x", "alice")); err != nil {
			t.Fatalf("declared and bound: %v", err)
		}
		if _, err := missing.Invoke(ctx, messageEvent("c", "x", "")); err == nil || !strings.Contains(err.Error(), "unroutable") {
			t.Errorf("the exchange exists now, key k unbound: %v", err)
		}

		// Deleted under a route that found it: the publication fails as
		// the broker closes the channel, and the next one finds it
		// missing.
		r.deleteExchange("wsgate.declared")
		_, err = missing.Invoke(ctx, messageEvent("c", "x", ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "404") {
			t.Errorf("publishing to a deleted exchange: %v", err)
		}
		_, err = missing.Invoke(ctx, messageEvent("c", "x", ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("after the deletion: %v", err)
		}
		// declare: true declares it again on the next check.
		if _, err := declared.Invoke(ctx, messageEvent("c", "x", "alice")); err == nil || !strings.Contains(err.Error(), "unroutable") {
			t.Errorf("declared again, its binding gone with it: %v", err)
		}
		if !r.exchangeExists("wsgate.declared") {
			t.Error("the exchange was not declared again")
		}

		// An exchange of another type.
		r.exchange("wsgate.fanout", "fanout")
		other := &AMQP{Conn: conn, Exchange: "wsgate.fanout", Declare: true, ExchangeType: "topic", RoutingKey: mustTemplate(t, "k")}
		_, err = other.Invoke(ctx, messageEvent("c", "x", ""))
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), `exchange "wsgate.fanout" exists with another type or other properties than a durable topic exchange`) {
			t.Errorf("declaring over a fanout exchange: %v", err)
		}
	})

	t.Run("concurrent publications", func(t *testing.T) {
		// Publishers on every channel at once, half of them unroutable:
		// each learns its own outcome, and exactly the routable ones are
		// in the queue.
		r.queue("wsgate.many", "")
		routable := &AMQP{Conn: conn, RoutingKey: mustTemplate(t, "wsgate.many"), Payload: PayloadBody, Timeout: 10 * time.Second}
		lost := &AMQP{Conn: conn, RoutingKey: mustTemplate(t, "wsgate.nowhere"), Payload: PayloadBody, Timeout: 10 * time.Second}
		const workers, each = 32, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					ev := messageEvent("c", fmt.Sprintf("%d-%d", w, i), "")
					ev.RequestContext.RequestID = ev.Body
					a := routable
					if i%2 == 1 {
						a = lost
					}
					_, err := a.Invoke(ctx, ev)
					switch {
					case a == routable && err != nil:
						errs <- fmt.Errorf("%s: %w", ev.Body, err)
					case a == lost && (err == nil || !strings.Contains(err.Error(), "unroutable")):
						errs <- fmt.Errorf("%s acknowledged though unroutable: %v", ev.Body, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got := r.get("wsgate.many")
		seen := map[string]bool{}
		for _, m := range got {
			seen[string(m.Body)] = true
		}
		if len(got) != workers*each/2 || len(seen) != len(got) {
			t.Errorf("%d messages (%d distinct) in the queue, want %d", len(got), len(seen), workers*each/2)
		}
	})

	t.Run("closed", func(t *testing.T) {
		c := dialAMQP(t, srv.URL())
		r.queue("wsgate.closed", "")
		a := &AMQP{Conn: c, RoutingKey: mustTemplate(t, "wsgate.closed"), Timeout: 5 * time.Second}
		waitConnected(t, c)
		if _, err := a.Invoke(ctx, messageEvent("c", "x", "")); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		_ = c.Close()
		if _, err := a.Invoke(ctx, messageEvent("c", "x", "")); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("after Close: %v", err)
		}
	})
}

// TestAMQPDownAtStart dials a port where nothing listens: dialling is not an
// error, and publishing fails at once, long before its timeout, saying why.
func TestAMQPDownAtStart(t *testing.T) {
	c := dialAMQP(t, "amqp://127.0.0.1:1/")
	a := &AMQP{Conn: c, RoutingKey: mustTemplate(t, "q"), Timeout: 29 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Invoke(ctx, messageEvent("c", "x", ""))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "not connected to RabbitMQ") {
		t.Errorf("while down: %v", err)
	}
	if _, err := DialAMQP(AMQPOptions{URL: "amqp://u:s3cret@h:5672/%zz"}, nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a malformed URL: %v", err)
	}
}

// BenchmarkAMQPPublish publishes from many goroutines at once, each waiting
// for its confirmation, as many clients' messages do.
func BenchmarkAMQPPublish(b *testing.B) {
	srv := servicetest.RabbitMQ(b)
	conn := dialAMQP(b, srv.URL())
	waitConnected(b, conn)
	newRabbit(b, srv.URL()).queue("wsgate.bench", "")
	a := &AMQP{Conn: conn, RoutingKey: mustTemplate(b, "wsgate.bench"), Payload: PayloadEvent, Timeout: 10 * time.Second}
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(clients)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ev := messageEvent("c", `{"action":"order","item":"tea"}`, "alice")
					ev.RequestContext.RequestID = strconv.FormatInt(n.Add(1), 10)
					if _, err := a.Invoke(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
