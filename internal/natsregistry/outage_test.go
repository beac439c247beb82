package natsregistry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/natsregistry"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// recovery bounds how long the tests wait for an engine to notice an
// outage or its end. It is a deadline for a failure, not a speed
// requirement.
const recovery = 30 * time.Second

// eventually polls cond until it returns nil or recovery passes.
func eventually(t *testing.T, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(recovery)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failsWithinContext runs op with a short context and checks that it
// fails, and returns no later than shortly after its context ends.
func failsWithinContext(t *testing.T, name string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("%s succeeded while NATS is down", name)
		}
	case <-ctx.Done():
		// The context has ended; the call must return now.
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s succeeded while NATS is down", name)
			}
		case <-time.After(recovery):
			t.Fatalf("%s did not return after its context ended", name)
		}
	}
}

func notReady(e *natsregistry.Engine) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if e.Ready(ctx) == nil {
			return errors.New("ready")
		}
		return nil
	}
}

func TestOutage(t *testing.T) {
	srv := servicetest.NATS(t)
	p := freshPrefix()
	a, b := newEngine(t, srv.URL(), p), newEngine(t, srv.URL(), p)
	ra, rb := newRecorder(), newRecorder()
	if err := a.Listen("node-a", ra); err != nil {
		t.Fatal(err)
	}
	if err := b.Listen("node-b", rb); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, recovery)
	rec := registry.Record{ConnectionID: "c1", NodeID: "node-a", PrincipalID: "alice", ConnectedAt: time.Unix(1, 0).UTC()}
	if err := a.Register(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, "c1", "news"); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeTopic(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	before, err := a.Heartbeat(ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	eventually(t, "a notices the outage", notReady(a))
	eventually(t, "b notices the outage", notReady(b))
	for name, op := range map[string]func(ctx context.Context) error{
		"Register": func(ctx context.Context) error {
			return a.Register(ctx, registry.Record{ConnectionID: "c2", NodeID: "node-a"})
		},
		"Unregister":      func(ctx context.Context) error { return a.Unregister(ctx, "c1") },
		"Lookup":          func(ctx context.Context) error { _, err := a.Lookup(ctx, "c1"); return err },
		"UserConnections": func(ctx context.Context) error { _, err := a.UserConnections(ctx, "alice"); return err },
		"Subscribe":       func(ctx context.Context) error { return a.Subscribe(ctx, "c1", "other") },
		"Unsubscribe":     func(ctx context.Context) error { return a.Unsubscribe(ctx, "c1", "news") },
		"TopicCount":      func(ctx context.Context) error { _, err := a.TopicCount(ctx, "news"); return err },
		"NodeConnections": func(ctx context.Context) error { _, err := a.NodeConnections(ctx, "node-a"); return err },
		"Request":         func(ctx context.Context) error { _, err := b.Request(ctx, "node-a", []byte("x")); return err },
		"Publish":         func(ctx context.Context) error { return a.Publish(ctx, "news", []byte("lost")) },
		"SubscribeTopic":  func(ctx context.Context) error { return a.SubscribeTopic(ctx, "other") },
		"Heartbeat":       func(ctx context.Context) error { _, err := a.Heartbeat(ctx, "node-a"); return err },
		"Nodes":           func(ctx context.Context) error { _, err := a.Nodes(ctx); return err },
		"ClaimNode": func(ctx context.Context) error {
			_, err := a.ClaimNode(ctx, "node-z", "node-a", time.Minute)
			return err
		},
		"ForgetNode": func(ctx context.Context) error { return a.ForgetNode(ctx, "node-z") },
	} {
		failsWithinContext(t, name, op)
	}

	srv.Start()
	eventually(t, "a recovers", a.Ready)
	eventually(t, "b recovers", b.Ready)

	// The store directory survived, and so did the registry and the
	// heartbeat counter.
	got, err := b.Lookup(ctx, "c1")
	if err != nil || got.NodeID != "node-a" || got.PrincipalID != "alice" {
		t.Fatalf("Lookup after the outage = %+v, %v", got, err)
	}
	if n, err := b.TopicCount(ctx, "news"); err != nil || n != 1 {
		t.Fatalf("TopicCount after the outage = %d, %v", n, err)
	}
	after, err := a.Heartbeat(ctx, "node-a")
	if err != nil {
		t.Fatalf("Heartbeat after the outage: %v", err)
	}
	if after.Fresh || after.Counter <= before.Counter {
		t.Fatalf("Heartbeat after the outage = %+v, before %+v: the counter did not survive", after, before)
	}
	eventually(t, "b→a request", func(ctx context.Context) error {
		resp, err := b.Request(ctx, "node-a", []byte("back"))
		if err == nil && string(resp) != "re:back" {
			t.Fatalf("answer %q", resp)
		}
		return err
	})
	// b subscribed to news before the outage and not since.
	eventually(t, "publication on a topic subscribed before the outage", func(ctx context.Context) error {
		if err := a.Publish(ctx, "news", []byte("again")); err != nil {
			return err
		}
		for {
			select {
			case p := <-rb.pubs:
				if p == "news=again" {
					return nil
				}
			case <-time.After(200 * time.Millisecond):
				return errors.New("not received")
			}
		}
	})
}

// TestStartWithoutNATS starts the engine while NATS is down, as a gateway
// may: New and Listen succeed, the engine is not ready, and it works once
// NATS is up.
func TestStartWithoutNATS(t *testing.T) {
	srv := servicetest.NATS(t)
	srv.Stop()
	p := freshPrefix()
	a, b := newEngine(t, srv.URL(), p), newEngine(t, srv.URL(), p)
	if err := a.Listen("node-a", newRecorder()); err != nil {
		t.Fatalf("Listen without NATS: %v", err)
	}
	ctx := ctxFor(t, time.Second)
	if err := a.Ready(ctx); err == nil {
		t.Fatal("Ready without NATS succeeded")
	}
	failsWithinContext(t, "Register", func(ctx context.Context) error {
		return a.Register(ctx, registry.Record{ConnectionID: "c1", NodeID: "node-a"})
	})
	srv.Start()
	eventually(t, "a becomes ready", a.Ready)
	eventually(t, "Register", func(ctx context.Context) error {
		return a.Register(ctx, registry.Record{ConnectionID: "c1", NodeID: "node-a"})
	})
	eventually(t, "b→a request", func(ctx context.Context) error {
		_, err := b.Request(ctx, "node-a", []byte("x"))
		return err
	})
	rctx := ctxFor(t, recovery)
	if beat, err := b.Heartbeat(rctx, "node-b"); err != nil || !beat.Fresh {
		t.Fatalf("first Heartbeat = %+v, %v", beat, err)
	}
	if _, err := b.Request(rctx, "node-z", nil); !errors.Is(err, cluster.ErrNoNode) {
		t.Fatalf("Request to an unknown node = %v, want ErrNoNode", err)
	}
}

// TestHeartbeatFailsWhenConnectionDrops: a heartbeat in flight when the
// connection to NATS drops fails then, not at its context's deadline (its
// request will never be answered): a heartbeat that hung until then would
// keep its node silent, and the node would be declared lost. Several
// goroutines heartbeat back to back with contexts that outlast the test's
// patience, so that some heartbeat is in flight when the server stops.
func TestHeartbeatFailsWhenConnectionDrops(t *testing.T) {
	srv := servicetest.NATS(t)
	e := newEngine(t, srv.URL(), freshPrefix())
	if _, err := e.Heartbeat(ctxFor(t, recovery), "node-a"); err != nil {
		t.Fatal(err)
	}
	const beaters = 8
	failed := make(chan error, beaters)
	for range beaters {
		go func() {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*recovery)
				_, err := e.Heartbeat(ctx, "node-a")
				cancel()
				if err != nil {
					failed <- err
					return
				}
			}
		}()
	}
	srv.Stop()
	deadline := time.After(recovery)
	for i := range beaters {
		select {
		case err := <-failed:
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("heartbeat failed with %v", err)
			}
		case <-deadline:
			t.Fatalf("%d of %d heartbeats still running %v after NATS stopped", beaters-i, beaters, recovery)
		}
	}
	// The heartbeats may have failed as the server shut JetStream down,
	// before the client saw the connection drop; closing the engine
	// before it has would leave nats.go draining a dead connection for a
	// while after Close.
	eventually(t, "the engine notices the outage", notReady(e))
}
