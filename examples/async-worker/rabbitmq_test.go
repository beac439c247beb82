package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// amqpGateway starts a gateway whose routes publish to exchange, which
// they declare (a durable topic exchange): $default and $disconnect the AWS
// event with the routing key work.{routeKey}, raw the message alone with
// the routing key raw.
func amqpGateway(t *testing.T, url, exchange string) *gt.Gateway {
	t.Helper()
	return gt.Start(t, fmt.Sprintf(`
routes:
  $default:
    integration: {type: amqp, url: %[1]q, exchange: %[2]s, declare: true, routing_key: "work.{routeKey}"}
    route_response: true
  raw:
    integration: {type: amqp, url: %[1]q, exchange: %[2]s, declare: true, routing_key: raw, payload: body}
    route_response: true
  $disconnect:
    integration: {type: amqp, url: %[1]q, exchange: %[2]s, declare: true, routing_key: "work.{routeKey}"}
`, url, exchange)+sigv4Management)
}

// amqpChannel opens a channel on the server at url for the test.
func amqpChannel(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// queueReady returns how many messages wait in queue, not counting those
// delivered and not yet acknowledged.
func queueReady(t *testing.T, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s: %v", queue, err)
	}
	return q.Messages
}

// TestAMQPWorker runs the whole pattern on RabbitMQ, one node shared by
// its subtests since a node takes seconds to start: amqp routes publish to
// an exchange, workers started with -declare bind their queues to it, and
// their replies reach the client's socket.
func TestAMQPWorker(t *testing.T) {
	srv := servicetest.RabbitMQ(t)
	// The workers log in with the password in their URL, which their log
	// must not show.
	workerURL := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", srv.Port)

	// A client who left before the worker started (acknowledged, the
	// worker goes on), a client answered for both payloads — the body one
	// named by the wsgate-connection-id header — the $disconnect event
	// skipped, a message that is not an event rejected, nothing left in
	// the queues.
	t.Run("payloads", func(t *testing.T) {
		g := amqpGateway(t, srv.URL(), "wsgate.work")
		ch := amqpChannel(t, srv.URL())
		eventArgs := []string{"-broker", "amqp", "-url", workerURL, "-queue", "events", "-declare",
			"-exchange", "wsgate.work", "-routing-key", "work.#", "-endpoint", g.MgmtURL, "-name", "event-worker", "-log-level", "debug"}
		bodyArgs := []string{"-broker", "amqp", "-url", workerURL, "-queue", "bodies", "-declare",
			"-exchange", "wsgate.work", "-routing-key", "raw", "-payload", "body", "-endpoint", g.MgmtURL, "-name", "body-worker"}

		// The queues must be bound before the first message: the gateway
		// publishes mandatory, and refuses a message no queue takes.
		for _, args := range [][]string{eventArgs, bodyArgs} {
			w := startWorker(t, testCredentials, args...)
			w.waitLog("consuming")
			w.stop()
		}

		left := gt.Dial(t, g.URL, nil)
		left.Send(`{"job":"for nobody"}`)
		ackFrame(t, left)
		_ = left.Close(1000, "bye")
		// The gateway publishes $disconnect once the connection is gone.
		gt.Eventually(t, func() bool { return queueReady(t, ch, "events") == 2 }, "the message and the $disconnect event in events")

		c := gt.Dial(t, g.URL, nil)
		const body = `{"job":"make it loud"}`
		c.Send(body)
		req := ackFrame(t, c)
		const raw = `{"action":"raw","text":"payload body"}`
		c.Send(raw)
		rawReq := ackFrame(t, c)
		if err := ch.PublishWithContext(context.Background(), "wsgate.work", "work.junk", true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("not an event")}); err != nil {
			t.Fatal(err)
		}

		w := startWorker(t, testCredentials, eventArgs...)
		wantResult(t, c, req, body, "event-worker")
		w.waitLog("the client has left")
		w.waitLog("eventType=DISCONNECT")
		w.waitLog("message rejected")
		// Stopping closes the channel, which would put back a message not
		// acknowledged.
		w.stop()
		if n := queueReady(t, ch, "events"); n != 0 {
			t.Fatalf("%d messages back in events after the worker stopped, want 0: not acknowledged", n)
		}

		bw := startWorker(t, testCredentials, bodyArgs...)
		wantResult(t, c, rawReq, raw, "body-worker")
		bw.stop()
		if n := queueReady(t, ch, "bodies"); n != 0 {
			t.Fatalf("%d messages back in bodies after the worker stopped, want 0", n)
		}
		if strings.Contains(w.logs.String()+bw.logs.String(), "guest:guest") {
			t.Error("the broker's password reached the worker's log")
		}
	})

	// The node killed under a running worker and the gateway, and started
	// again: both reconnect by themselves and a message sent afterwards is
	// answered.
	t.Run("broker restart", func(t *testing.T) {
		g := amqpGateway(t, srv.URL(), "wsgate.restart")
		c := gt.Dial(t, g.URL, nil)
		w := startWorker(t, testCredentials, "-broker", "amqp", "-url", workerURL, "-queue", "restart", "-declare",
			"-exchange", "wsgate.restart", "-routing-key", "work.#", "-endpoint", g.MgmtURL, "-name", "amqp-worker")
		w.waitLog("consuming")
		sendUntilAnswered(t, c, "before", "amqp-worker")

		srv.Stop()
		w.waitLog("amqp failed; trying again every second")
		srv.Start()
		gt.Eventually(t, func() bool { return strings.Count(w.logs.String(), "msg=consuming") == 2 }, "the worker consuming again")
		gt.Eventually(t, func() bool { return strings.Count(g.Logs.String(), "amqp integration connected") >= 2 }, "the gateway connected again")
		sendUntilAnswered(t, c, "after", "amqp-worker")
	})
}
