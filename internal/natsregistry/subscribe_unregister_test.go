package natsregistry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// gateProxy forwards client connections to a NATS server and, once armed,
// holds back the first client message that contains pattern until release
// is closed. held is closed when it does.
type gateProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	pattern []byte
	held    chan struct{}
	release chan struct{}
	conns   []net.Conn
}

func newGateProxy(t *testing.T, target string) *gateProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &gateProxy{ln: ln, target: strings.TrimPrefix(target, "nats://")}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(c, s); c.Close() })
			wg.Go(func() { p.up(c, s); s.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		if p.release != nil {
			select {
			case <-p.release:
			default:
				close(p.release)
			}
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *gateProxy) URL() string { return "nats://" + p.ln.Addr().String() }

// arm makes the proxy hold the next client message containing pattern.
func (p *gateProxy) arm(pattern string) (held, release chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pattern = []byte(pattern)
	p.held, p.release = make(chan struct{}), make(chan struct{})
	return p.held, p.release
}

// up copies client bytes to the server, holding back at pattern.
func (p *gateProxy) up(c, s net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			p.mu.Lock()
			pat, held, release := p.pattern, p.held, p.release
			i := -1
			if pat != nil {
				i = bytes.Index(chunk, pat)
				if i >= 0 {
					p.pattern = nil
				}
			}
			p.mu.Unlock()
			if i >= 0 {
				if _, err := s.Write(chunk[:i]); err != nil {
					return
				}
				close(held)
				<-release
				chunk = chunk[i:]
			}
			if _, err := s.Write(chunk); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestSubscribeRacingUnregisterLeavesNothing: a connection that is
// unregistered while its Subscribe is under way (a client that subscribes
// and disconnects at once) must leave no subscription behind: no topic
// membership counted by TopicCount, and no s.<id>.<topic> entry that no
// later call ever removes. The memory and Redis registries do this
// atomically; the NATS one must reach the same end state.
func TestSubscribeRacingUnregisterLeavesNothing(t *testing.T) {
	srv := servicetest.NATS(t)
	proxy := newGateProxy(t, srv.URL())
	prefix := freshPrefix()
	subscriber := newEngine(t, proxy.URL(), prefix)
	closer := newEngine(t, srv.URL(), prefix)
	ctx := ctxFor(t, 20*time.Second)
	if err := closer.Register(ctx, registry.Record{ConnectionID: "c1", NodeID: "n", PrincipalID: "p"}); err != nil {
		t.Fatal(err)
	}
	// Warm the subscriber up, so that its buckets are bound before the
	// proxy holds anything.
	if _, err := subscriber.Lookup(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	// Hold the subscriber's first write, the one after it has read the
	// record: the subscription's s.<id>.<topic> entry.
	held, release := proxy.arm("PUB $KV." + prefix + "_registry.s.")
	done := make(chan error, 1)
	go func() { done <- subscriber.Subscribe(ctx, "c1", "news") }()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("Subscribe returned %v without writing its subscription", err)
	case <-ctx.Done():
		t.Fatal("Subscribe never wrote its subscription")
	}
	if err := closer.Unregister(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil && !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Subscribe: %v", err)
	}

	if n, err := closer.TopicCount(ctx, "news"); err != nil || n != 0 {
		t.Errorf("TopicCount after the connection was unregistered = %d, %v; want 0", n, err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, prefix+"_registry")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for k := range keys.Keys() {
		left = append(left, k)
	}
	if len(left) != 0 {
		t.Errorf("registry entries left after the only connection was unregistered: %v", left)
	}
}

// cut drops every connection through the proxy, as a network failure does;
// clients reconnect through it.
func (p *gateProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestUnregisterRetriedAfterFailureDropsSubscriptions: an Unregister that
// removed the record and then failed (the connection to NATS dropped) is
// retried, as the cluster's Node retries deferred removals; the retry must
// still end the connection's subscriptions, or TopicCount counts it and
// its subscription entries stay forever.
func TestUnregisterRetriedAfterFailureDropsSubscriptions(t *testing.T) {
	srv := servicetest.NATS(t)
	proxy := newGateProxy(t, srv.URL())
	prefix := freshPrefix()
	flaky := newEngine(t, proxy.URL(), prefix)
	direct := newEngine(t, srv.URL(), prefix)
	ctx := ctxFor(t, 30*time.Second)
	if err := direct.Register(ctx, registry.Record{ConnectionID: "c1", NodeID: "n"}); err != nil {
		t.Fatal(err)
	}
	if err := direct.Subscribe(ctx, "c1", "news"); err != nil {
		t.Fatal(err)
	}
	if _, err := flaky.Lookup(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	// Let the record's removal through, then drop the connection at the
	// next write: the node index entry's removal.
	held, release := proxy.arm("PUB $KV." + prefix + "_registry.n.")
	done := make(chan error, 1)
	go func() {
		uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		done <- flaky.Unregister(uctx, "c1")
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("Unregister returned %v before removing its index entries", err)
	}
	proxy.cut()
	close(release)
	if err := <-done; err == nil {
		t.Fatal("Unregister succeeded although its connection dropped mid-way")
	}
	if _, err := direct.Lookup(ctx, "c1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("the record was to be removed before the failure: %v", err)
	}
	// The retry.
	if err := direct.Unregister(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if n, err := direct.TopicCount(ctx, "news"); err != nil || n != 0 {
		t.Errorf("TopicCount after the connection was unregistered = %d, %v; want 0", n, err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, prefix+"_registry")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		if strings.HasPrefix(k, "s.") || strings.HasPrefix(k, "t.") {
			t.Errorf("subscription entry %s left after the connection was unregistered", k)
		}
	}
}
