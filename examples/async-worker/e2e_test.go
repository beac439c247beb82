package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// natsGateway starts a gateway whose $default and $disconnect routes
// publish the AWS event to the JetStream stream WORK, declared by the
// gateway, and a JetStream client of the same server.
func natsGateway(t *testing.T) (*gt.Gateway, *servicetest.NATSServer, jetstream.JetStream) {
	t.Helper()
	srv := servicetest.NATS(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  # A publication the server loses while it restarts is answered with the
  # Internal server error frame after timeout, and the tests send again.
  $default:
    integration: {type: nats, url: %[1]q, subject: "work.{routeKey}", jetstream: true, declare: true, stream: WORK, timeout: 3s}
    route_response: true
  $disconnect:
    integration: {type: nats, url: %[1]q, subject: "work.{routeKey}", jetstream: true, declare: true, stream: WORK}
`, srv.URL())+sigv4Management)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return g, srv, js
}

// natsStreamMsgs returns how many messages the stream holds, 0 while it
// does not exist.
func natsStreamMsgs(js jetstream.JetStream, stream string) uint64 {
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// natsSettled reports whether the durable consumer has acknowledged every
// message of its stream.
func natsSettled(js jetstream.JetStream, stream, durable string) bool {
	c, err := js.Consumer(context.Background(), stream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(context.Background())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
}

// TestNATSWorker runs the whole pattern on JetStream: a client whose
// message was stored but who left before the worker started (GoneException:
// acknowledged, the worker goes on), a client answered, the $disconnect
// event skipped, and a worker stopped and started again resuming the
// durable consumer. The worker reads its credentials from the process
// environment, as the command does.
func TestNATSWorker(t *testing.T) {
	g, srv, js := natsGateway(t)

	left := gt.Dial(t, g.URL, nil)
	left.Send(`{"job":"for nobody"}`)
	ackFrame(t, left)
	_ = left.Close(1000, "bye")
	// The gateway publishes $disconnect once the connection is gone.
	gt.Eventually(t, func() bool { return natsStreamMsgs(js, "WORK") == 2 }, "the message and the $disconnect event in WORK")

	c := gt.Dial(t, g.URL, nil)
	const body = `{"job":"make it loud"}`
	c.Send(body)
	req := ackFrame(t, c)

	for k, v := range testCredentials {
		t.Setenv(k, v)
	}
	args := []string{"-broker", "nats", "-url", srv.URL(), "-stream", "WORK",
		"-endpoint", g.MgmtURL, "-name", "nats-worker", "-log-level", "debug"}
	w := startWorker(t, nil, args...)
	wantResult(t, c, req, body, "nats-worker")
	w.waitLog("the client has left")
	w.waitLog("eventType=DISCONNECT")
	gt.Eventually(t, func() bool { return natsSettled(js, "WORK", "async-worker") }, "every message acknowledged once")
	w.stop()

	// Stored while no worker runs, answered by the next one.
	c.Send("second")
	req = ackFrame(t, c)
	startWorker(t, nil, args...)
	wantResult(t, c, req, "second", "nats-worker")
	gt.Eventually(t, func() bool { return natsSettled(js, "WORK", "async-worker") }, "every message acknowledged once")
	if strings.Contains(w.logs.String(), gt.TestSigV4Secret) {
		t.Error("the secret access key reached the worker's log")
	}
}

// TestNATSWorkerRedelivers checks that a post that fails for another reason
// than the client leaving (here the gateway refuses the signature) leaves
// the message unacknowledged, and another worker answers it.
func TestNATSWorkerRedelivers(t *testing.T) {
	g, srv, js := natsGateway(t)
	c := gt.Dial(t, g.URL, nil)
	c.Send("retry me")
	req := ackFrame(t, c)

	args := []string{"-broker", "nats", "-url", srv.URL(), "-stream", "WORK", "-endpoint", g.MgmtURL, "-retry", "100ms"}
	wrong := map[string]string{"AWS_ACCESS_KEY_ID": gt.TestSigV4KeyID, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
	refused := startWorker(t, wrong, append(args, "-name", "refused")...)
	refused.waitLog("ForbiddenException")
	refused.waitLog("posting the reply failed")
	refused.stop()
	if strings.Contains(refused.logs.String(), "not-the-secret") {
		t.Error("the secret access key reached the worker's log")
	}

	startWorker(t, testCredentials, append(args, "-name", "second")...)
	wantResult(t, c, req, "retry me", "second")
	gt.Eventually(t, func() bool {
		cons, err := js.Consumer(context.Background(), "WORK", "async-worker")
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, "the message acknowledged")
}

// redisGateway starts a gateway whose routes add to the Redis stream work:
// $default and $disconnect the AWS event, raw the message alone with the
// identity in fields.
func redisGateway(t *testing.T) (*gt.Gateway, *redis.Client, string) {
	t.Helper()
	srv := servicetest.Redis(t)
	g := gt.Start(t, fmt.Sprintf(`
routes:
  $default: {integration: {type: redis, url: %[1]q, stream: work}, route_response: true}
  raw: {integration: {type: redis, url: %[1]q, stream: work, payload: body}, route_response: true}
  $disconnect: {integration: {type: redis, url: %[1]q, stream: work}}
`, srv.URL())+sigv4Management)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return g, rdb, srv.URL()
}

// redisPending returns how many entries of work the group holds
// unacknowledged, -1 on error.
func redisPending(rdb *redis.Client, group string) int64 {
	p, err := rdb.XPending(context.Background(), "work", group).Result()
	if err != nil {
		return -1
	}
	return p.Count
}

// TestRedisWorker runs the whole pattern on a Redis stream with a consumer
// group: a client who left before the worker started (acknowledged, the
// worker goes on), a client answered for both payloads, the $disconnect
// event skipped, nothing left pending.
func TestRedisWorker(t *testing.T) {
	g, rdb, url := redisGateway(t)

	left := gt.Dial(t, g.URL, nil)
	left.Send(`{"job":"for nobody"}`)
	ackFrame(t, left)
	_ = left.Close(1000, "bye")
	gt.Eventually(t, func() bool { return rdb.XLen(context.Background(), "work").Val() == 2 }, "the message and the $disconnect event in work")

	c := gt.Dial(t, g.URL, nil)
	const raw = `{"action":"raw","text":"payload body"}`
	c.Send(raw)
	rawReq := ackFrame(t, c)
	c.Send("payload event")
	eventReq := ackFrame(t, c)

	w := startWorker(t, testCredentials, "-broker", "redis", "-url", url, "-stream", "work",
		"-endpoint", g.MgmtURL, "-name", "redis-worker", "-consumer", "w1", "-log-level", "debug")
	wantResult(t, c, rawReq, raw, "redis-worker")
	wantResult(t, c, eventReq, "payload event", "redis-worker")
	w.waitLog("the client has left")
	w.waitLog("eventType=DISCONNECT")
	gt.Eventually(t, func() bool { return redisPending(rdb, "async-worker") == 0 }, "every entry acknowledged")

	// New entries while the worker runs: its reply may overtake the
	// gateway's acknowledgement frame.
	c.Send("third")
	var frames [2]string
	frames[0], frames[1] = c.NextText(), c.NextText()
	if strings.Contains(frames[0], `"action":"result"`) {
		frames[0], frames[1] = frames[1], frames[0]
	}
	var ack struct{ Status, RequestID string }
	if err := json.Unmarshal([]byte(frames[0]), &ack); err != nil || ack.Status != "accepted" {
		t.Fatalf("frames %q, want an acknowledgement and a result", frames)
	}
	want := string(work(delivery{requestID: ack.RequestID, body: []byte("third")}, "redis-worker"))
	if frames[1] != want {
		t.Fatalf("result %s, want %s", frames[1], want)
	}
	if strings.Contains(w.logs.String(), gt.TestSigV4Secret) {
		t.Error("the secret access key reached the worker's log")
	}
}

// TestRedisWorkerClaims checks that an entry whose post failed stays
// pending, and that another consumer of the group takes it over from a
// worker that stopped, and answers it.
func TestRedisWorkerClaims(t *testing.T) {
	g, rdb, url := redisGateway(t)
	c := gt.Dial(t, g.URL, nil)
	c.Send("claim me")
	req := ackFrame(t, c)

	args := []string{"-broker", "redis", "-url", url, "-stream", "work", "-endpoint", g.MgmtURL, "-retry", "100ms", "-claim-idle", "300ms"}
	wrong := map[string]string{"AWS_ACCESS_KEY_ID": gt.TestSigV4KeyID, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
	refused := startWorker(t, wrong, append(args, "-consumer", "refused", "-name", "refused")...)
	refused.waitLog("ForbiddenException")
	refused.waitLog("posting the reply failed")
	refused.stop()
	if n := redisPending(rdb, "async-worker"); n != 1 {
		t.Fatalf("%d entries pending after the failed post, want 1", n)
	}

	w := startWorker(t, testCredentials, append(args, "-consumer", "second", "-name", "second")...)
	wantResult(t, c, req, "claim me", "second")
	w.waitLog("claimed entries another consumer held")
	gt.Eventually(t, func() bool { return redisPending(rdb, "async-worker") == 0 }, "the entry acknowledged")
}

// sendUntilAnswered sends body to c until the gateway acknowledges it (a
// broker that is coming back answers with Internal server error frames
// meanwhile), and waits for the worker's result for that request. Results
// of earlier attempts, which the broker may have stored although the
// gateway reported them failed, are skipped.
func sendUntilAnswered(t *testing.T, c *gt.Client, body, worker string) {
	t.Helper()
	var acked string
	results := map[string]string{}
	for attempt := 0; ; attempt++ {
		if attempt > 200 {
			t.Fatal("the broker never acknowledged the message")
		}
		c.Send(body)
		for acked == "" {
			raw := c.NextText()
			var f struct{ Status, RequestID, Message, Action string }
			if err := json.Unmarshal([]byte(raw), &f); err != nil {
				t.Fatalf("frame %q: %v", raw, err)
			}
			switch {
			case f.Action == "result":
				results[f.RequestID] = raw
				continue
			case f.Status == "accepted":
				acked = f.RequestID
			case f.Message == "Internal server error":
			default:
				t.Fatalf("frame %s", raw)
			}
			break
		}
		if acked != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := string(work(delivery{requestID: acked, body: []byte(body)}, worker))
	for results[acked] == "" {
		raw := c.NextText()
		var f struct{ RequestID, Action string }
		if err := json.Unmarshal([]byte(raw), &f); err != nil || f.Action != "result" {
			t.Fatalf("frame %q, want a result", raw)
		}
		results[f.RequestID] = raw
	}
	if results[acked] != want {
		t.Fatalf("result %s, want %s", results[acked], want)
	}
}

// TestWorkerBrokerRestart stops each broker under a running worker and
// starts it again: the worker answers a message published after the
// restart. NATS keeps its JetStream state; Redis comes back empty, so the
// worker creates its group again, as it does its NATS consumer when the
// stream is deleted.
func TestWorkerBrokerRestart(t *testing.T) {
	t.Run("nats", func(t *testing.T) {
		g, srv, js := natsGateway(t)
		c := gt.Dial(t, g.URL, nil)
		w := startWorker(t, testCredentials, "-broker", "nats", "-url", srv.URL(), "-stream", "WORK",
			"-endpoint", g.MgmtURL, "-name", "nats-worker")
		sendUntilAnswered(t, c, "before", "nats-worker")
		srv.Stop()
		w.waitLog("disconnected")
		srv.Start()
		sendUntilAnswered(t, c, "after", "nats-worker")

		// The stream deleted, its consumer with it: the gateway declares
		// the stream again, the worker creates its consumer again.
		if err := js.DeleteStream(context.Background(), "WORK"); err != nil {
			t.Fatal(err)
		}
		sendUntilAnswered(t, c, "after the stream was deleted", "nats-worker")
		w.waitLog("consuming stopped; starting again")
	})
	t.Run("redis", func(t *testing.T) {
		srv := servicetest.Redis(t)
		g := gt.Start(t, fmt.Sprintf(`
routes:
  $default: {integration: {type: redis, url: %q, stream: work}, route_response: true}
`, srv.URL())+sigv4Management)
		c := gt.Dial(t, g.URL, nil)
		w := startWorker(t, testCredentials, "-broker", "redis", "-url", srv.URL(), "-stream", "work",
			"-endpoint", g.MgmtURL, "-name", "redis-worker")
		sendUntilAnswered(t, c, "before", "redis-worker")
		srv.Stop()
		w.waitLog("redis failed")
		srv.Start()
		sendUntilAnswered(t, c, "after", "redis-worker")
		w.waitLog("redis is back")
	})
}

// TestWorkerStopsDuringDelay stops a worker while it holds a message in its
// -delay: the message goes back to the broker at once (NATS Nak; Redis
// leaves it pending for the consumer that starts again under the same
// name), and the next worker answers it. A reply the gateway refuses for
// its size is acknowledged and not tried again.
func TestWorkerStopsDuringDelay(t *testing.T) {
	t.Run("nats", func(t *testing.T) {
		g, srv, js := natsGateway(t)
		c := gt.Dial(t, g.URL, nil)
		c.Send("slow")
		req := ackFrame(t, c)
		args := []string{"-broker", "nats", "-url", srv.URL(), "-stream", "WORK", "-endpoint", g.MgmtURL}
		slow := startWorker(t, testCredentials, append(args, "-delay", "1h", "-name", "slow", "-log-level", "debug")...)
		slow.waitLog("msg=working")
		slow.stop()
		slow.waitLog("stopping before the reply was posted")

		w := startWorker(t, testCredentials, append(args, "-name", "quick")...)
		wantResult(t, c, req, "slow", "quick")

		// Published by hand: an event whose reply is over the gateway's
		// 131072 bytes.
		w.waitLog("reply posted")
		id := strings.TrimSpace(strings.SplitN(strings.SplitN(w.logs.String(), `connectionId="`, 2)[1], `"`, 2)[0])
		big := fmt.Sprintf(`{"requestContext":{"eventType":"MESSAGE","connectionId":%q,"requestId":"big"},"body":%q}`, id, strings.Repeat("a", 70000))
		if _, err := js.Publish(context.Background(), "work.$default", []byte(big)); err != nil {
			t.Fatal(err)
		}
		w.waitLog("the gateway refuses this reply")
		gt.Eventually(t, func() bool { return natsSettled(js, "WORK", "async-worker") }, "every message acknowledged")
		sendUntilAnswered(t, c, "after", "quick")
	})
	t.Run("redis", func(t *testing.T) {
		g, rdb, url := redisGateway(t)
		c := gt.Dial(t, g.URL, nil)
		c.Send("slow")
		req := ackFrame(t, c)
		args := []string{"-broker", "redis", "-url", url, "-stream", "work", "-endpoint", g.MgmtURL, "-consumer", "w1"}
		slow := startWorker(t, testCredentials, append(args, "-delay", "1h", "-name", "slow", "-log-level", "debug")...)
		slow.waitLog("msg=working")
		slow.stop()
		if n := redisPending(rdb, "async-worker"); n != 1 {
			t.Fatalf("%d entries pending after the worker stopped in its delay, want 1", n)
		}
		slow.waitLog("stopping before the reply was posted")

		startWorker(t, testCredentials, append(args, "-name", "quick")...)
		wantResult(t, c, req, "slow", "quick")
		gt.Eventually(t, func() bool { return redisPending(rdb, "async-worker") == 0 }, "the entry acknowledged")
	})
}
