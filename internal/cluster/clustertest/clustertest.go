// Package clustertest is the contract every cluster.Engine must meet for
// node-to-node messages, heartbeats and the user slots that nodes share;
// the rest of the registry part of an engine is checked by package
// registrytest. Each backend's tests call Run with a
// constructor for two engines, two nodes' clients of one fresh engine.
package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/registry/registrytest"
)

// wait bounds how long the contract waits for something the engine
// delivers asynchronously. It is a deadline for a failure, not a speed
// requirement.
const wait = 10 * time.Second

// recorder is a Handler that answers requests with "re:" + the request and
// records publications.
type recorder struct {
	mu    sync.Mutex
	pubs  []pub
	ch    chan pub
	block chan struct{} // when non-nil, requests wait for it to close
}

type pub struct {
	topic string
	msg   string
}

func newRecorder() *recorder { return &recorder{ch: make(chan pub, 1024)} }

func (r *recorder) HandleRequest(req []byte) []byte {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	return append([]byte("re:"), req...)
}

func (r *recorder) HandlePublish(topic string, msg []byte) {
	p := pub{topic, string(msg)}
	r.mu.Lock()
	r.pubs = append(r.pubs, p)
	r.mu.Unlock()
	select {
	case r.ch <- p:
	default:
	}
}

// next waits for the next publication.
func (r *recorder) next(t *testing.T) pub {
	t.Helper()
	select {
	case p := <-r.ch:
		return p
	case <-time.After(wait):
		t.Fatal("no publication arrived")
		return pub{}
	}
}

func (r *recorder) received(topic, msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pubs {
		if p.topic == topic && p.msg == msg {
			return true
		}
	}
	return false
}

// pair sets up two listening nodes.
func pair(t *testing.T, newEngines func(t *testing.T) (a, b cluster.Engine), nodeA, nodeB string) (a, b cluster.Engine, ra, rb *recorder) {
	t.Helper()
	a, b = newEngines(t)
	ra, rb = newRecorder(), newRecorder()
	if err := a.Listen(nodeA, ra); err != nil {
		t.Fatalf("Listen(%q): %v", nodeA, err)
	}
	if err := b.Listen(nodeB, rb); err != nil {
		t.Fatalf("Listen(%q): %v", nodeB, err)
	}
	return a, b, ra, rb
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// Run runs the contract. newEngines returns two engines of one fresh,
// empty engine instance; Run closes them, and the constructor cleans up
// the instance with t.Cleanup.
func Run(t *testing.T, newEngines func(t *testing.T) (a, b cluster.Engine)) {
	t.Run("Request", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		got, err := b.Request(ctxT(t), "node-a", []byte("ping"))
		if err != nil || string(got) != "re:ping" {
			t.Fatalf("b→a Request = %q, %v; want re:ping", got, err)
		}
		got, err = a.Request(ctxT(t), "node-b", []byte("pong"))
		if err != nil || string(got) != "re:pong" {
			t.Fatalf("a→b Request = %q, %v; want re:pong", got, err)
		}
	})
	t.Run("RequestNoNode", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		if _, err := a.Request(ctxT(t), "node-z", []byte("x")); !errors.Is(err, cluster.ErrNoNode) {
			t.Fatalf("Request to an unknown node = %v, want ErrNoNode", err)
		}
	})
	t.Run("RequestDeadline", func(t *testing.T) {
		a, b, ra, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		release := make(chan struct{})
		ra.mu.Lock()
		ra.block = release
		ra.mu.Unlock()
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := b.Request(ctx, "node-a", []byte("slow"))
		if err == nil {
			t.Fatal("Request to a handler that never answers succeeded")
		}
		if ctx.Err() == nil {
			t.Fatalf("Request returned %v before its context ended", err)
		}
	})
	t.Run("ConcurrentRequests", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				req := fmt.Sprintf("req-%d", i)
				got, err := b.Request(ctxT(t), "node-a", []byte(req))
				if err != nil || string(got) != "re:"+req {
					t.Errorf("Request %q = %q, %v", req, got, err)
				}
			}(i)
		}
		wg.Wait()
	})
	t.Run("LargeRequest", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		req := make([]byte, 512<<10)
		for i := range req {
			req[i] = byte(i * 7)
		}
		got, err := b.Request(ctxT(t), "node-a", req)
		if err != nil || !bytes.Equal(got, append([]byte("re:"), req...)) {
			t.Fatalf("512 KiB request: %d bytes back, %v", len(got), err)
		}
	})
	t.Run("OddNodeIDs", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "R1kmxc2VNjMCFIA=", "a.b*c>d e/ü:{x}")
		defer a.Close()
		defer b.Close()
		if got, err := a.Request(ctxT(t), "a.b*c>d e/ü:{x}", []byte("1")); err != nil || string(got) != "re:1" {
			t.Fatalf("Request = %q, %v", got, err)
		}
		if got, err := b.Request(ctxT(t), "R1kmxc2VNjMCFIA=", []byte("2")); err != nil || string(got) != "re:2" {
			t.Fatalf("Request = %q, %v", got, err)
		}
		if _, err := b.Request(ctxT(t), "a.b*", []byte("3")); !errors.Is(err, cluster.ErrNoNode) {
			t.Fatalf("a node id that is a prefix pattern of another reached it: %v", err)
		}
	})
	t.Run("Publish", func(t *testing.T) {
		a, b, ra, rb := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		ctx := ctxT(t)
		if err := b.SubscribeTopic(ctx, "orders/42"); err != nil {
			t.Fatal(err)
		}
		if err := b.SubscribeTopic(ctx, "orders/42"); err != nil {
			t.Fatalf("second SubscribeTopic: %v", err)
		}
		if err := a.SubscribeTopic(ctx, "fence"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100; i++ {
			if err := a.Publish(ctx, "orders/42", fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 100; i++ {
			if p := rb.next(t); p != (pub{"orders/42", fmt.Sprintf("m%d", i)}) {
				t.Fatalf("publication %d = %+v, want m%d on orders/42, in order", i, p, i)
			}
		}
		if err := b.Publish(ctx, "fence", []byte("f1")); err != nil {
			t.Fatal(err)
		}
		if p := ra.next(t); p != (pub{"fence", "f1"}) {
			t.Fatalf("a got %+v, want the fence", p)
		}
		if ra.received("orders/42", "m0") {
			t.Fatal("a node not subscribed to orders/42 received its publication")
		}
		// A publication nobody subscribes to is not an error.
		if err := a.Publish(ctx, "nobody", []byte("x")); err != nil {
			t.Fatalf("Publish without subscribers: %v", err)
		}
		if err := b.UnsubscribeTopic(ctx, "orders/42"); err != nil {
			t.Fatal(err)
		}
		if err := b.SubscribeTopic(ctx, "fence"); err != nil {
			t.Fatal(err)
		}
		_ = a.Publish(ctx, "orders/42", []byte("after"))
		_ = a.Publish(ctx, "fence", []byte("f2"))
		if p := rb.next(t); p != (pub{"fence", "f2"}) {
			t.Fatalf("b got %+v after unsubscribing, want only the fence", p)
		}
	})
	t.Run("OddTopics", func(t *testing.T) {
		a, b, _, rb := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		ctx := ctxT(t)
		topics := []string{"a.b", "a*", "a>", "a b", "ü/ñ", "orders/*", "*", ">", "x:y{z}"}
		for _, topic := range topics {
			if err := b.SubscribeTopic(ctx, topic); err != nil {
				t.Fatalf("SubscribeTopic(%q): %v", topic, err)
			}
		}
		for _, topic := range topics {
			if err := a.Publish(ctx, topic, []byte(topic)); err != nil {
				t.Fatalf("Publish(%q): %v", topic, err)
			}
			if p := rb.next(t); p != (pub{topic, topic}) {
				t.Fatalf("published on %q, got %+v: topic names must not act as patterns", topic, p)
			}
		}
	})
	t.Run("Heartbeats", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		ctx := ctxT(t)
		beat, err := a.Heartbeat(ctx, "node-a")
		if err != nil || !beat.Fresh || beat.Lost {
			t.Fatalf("first Heartbeat = %+v, %v; want Fresh", beat, err)
		}
		beat2, err := a.Heartbeat(ctx, "node-a")
		if err != nil || beat2.Fresh || beat2.Lost || beat2.Counter <= beat.Counter {
			t.Fatalf("second Heartbeat = %+v after %+v, %v; want a higher counter, not Fresh", beat2, beat, err)
		}
		if _, err := b.Heartbeat(ctx, "node-b"); err != nil {
			t.Fatal(err)
		}
		nodes, err := b.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if nodes["node-a"] != beat2.Counter || len(nodes) != 2 {
			t.Fatalf("Nodes = %v, want node-a at %d and node-b", nodes, beat2.Counter)
		}
		if err := b.ForgetNode(ctx, "node-a"); err != nil {
			t.Fatal(err)
		}
		nodes, _ = b.Nodes(ctx)
		if _, ok := nodes["node-a"]; ok {
			t.Fatalf("Nodes after ForgetNode = %v", nodes)
		}
		beat3, err := a.Heartbeat(ctx, "node-a")
		if err != nil || !beat3.Lost || !beat3.Fresh {
			t.Fatalf("Heartbeat of a forgotten node = %+v, %v; want Lost and Fresh", beat3, err)
		}
	})
	t.Run("ClaimNode", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer a.Close()
		defer b.Close()
		ctx := ctxT(t)
		if ok, err := a.ClaimNode(ctx, "node-x", "node-a", time.Minute); err != nil || !ok {
			t.Fatalf("first claim = %v, %v", ok, err)
		}
		if ok, err := b.ClaimNode(ctx, "node-x", "node-b", time.Minute); err != nil || ok {
			t.Fatalf("second claim while the first holds = %v, %v", ok, err)
		}
		if ok, err := a.ClaimNode(ctx, "node-y", "node-a", 200*time.Millisecond); err != nil || !ok {
			t.Fatalf("short claim = %v, %v", ok, err)
		}
		deadline := time.Now().Add(wait)
		for {
			ok, err := b.ClaimNode(ctx, "node-y", "node-b", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a claim did not expire")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("UserSlotsAcrossNodes", func(t *testing.T) {
		// Two nodes' handshakes of one user share the user's slots.
		a, b := newEngines(t)
		defer a.Close()
		defer b.Close()
		registrytest.ConcurrentSlots(t, []registry.Registry{a, b})
	})
	t.Run("Close", func(t *testing.T) {
		a, b, _, _ := pair(t, newEngines, "node-a", "node-b")
		defer b.Close()
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		deadline := time.Now().Add(wait)
		for {
			_, err := b.Request(ctxT(t), "node-a", []byte("x"))
			if errors.Is(err, cluster.ErrNoNode) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Request to a closed node = %v, want ErrNoNode", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := a.Request(ctxT(t), "node-b", []byte("x")); err == nil {
			t.Fatal("Request on a closed engine succeeded")
		}
		if err := a.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
