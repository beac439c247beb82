package redisregistry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/cluster/clustertest"
	"github.com/wsgate/wsgate/internal/redisregistry"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/registry/registrytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// freshPrefix returns a key prefix no other test uses, so that tests can
// share one server.
func freshPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

func newEngine(t testing.TB, url, prefix string) *redisregistry.Engine {
	t.Helper()
	e, err := redisregistry.New(redisregistry.Config{URL: url, Prefix: prefix}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestRegistryContract(t *testing.T) {
	srv := servicetest.Redis(t)
	registrytest.Run(t, func(t *testing.T) registry.Registry {
		return newEngine(t, srv.URL(), freshPrefix())
	})
}

func TestEngineContract(t *testing.T) {
	srv := servicetest.Redis(t)
	clustertest.Run(t, func(t *testing.T) (a, b cluster.Engine) {
		prefix := freshPrefix()
		return newEngine(t, srv.URL(), prefix), newEngine(t, srv.URL(), prefix)
	})
}

// echo answers requests with "re:" + the request and passes publications
// to a channel.
type echo struct{ pubs chan string }

func newEcho() *echo { return &echo{pubs: make(chan string, 1024)} }

func (h *echo) HandleRequest(req []byte) []byte { return append([]byte("re:"), req...) }

func (h *echo) HandlePublish(topic string, msg []byte) {
	select {
	case h.pubs <- topic + "=" + string(msg):
	default:
	}
}

func TestBeforeListen(t *testing.T) {
	srv := servicetest.Redis(t)
	e := newEngine(t, srv.URL(), freshPrefix())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.Request(ctx, "node-b", []byte("x")); err == nil {
		t.Fatal("Request before Listen succeeded")
	}
	if err := e.SubscribeTopic(ctx, "x"); err == nil {
		t.Fatal("SubscribeTopic before Listen succeeded")
	}
	if err := e.Listen("node-a", newEcho()); err != nil {
		t.Fatal(err)
	}
	if err := e.Listen("node-a", newEcho()); err == nil {
		t.Fatal("second Listen succeeded")
	}
	if err := e.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Listen("node-c", newEcho()); err == nil {
		t.Fatal("Listen after Close succeeded")
	}
	if err := e.Register(ctx, registry.Record{ConnectionID: "a", NodeID: "n"}); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Register after Close = %v, want ErrClosed", err)
	}
}

// bounded runs call with a context that ends after d and fails t if call
// succeeds, or if it is still running well after its context ended.
func bounded(t *testing.T, name string, d time.Duration, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	// The grace covers one ioTimeout of the client plus scheduling; a
	// call that takes longer ignores its context.
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("%s with Redis down succeeded", name)
		}
	case <-time.After(d + 5*time.Second):
		t.Errorf("%s with Redis down still running after its context ended", name)
		<-done
	}
}

// eventually calls f until it returns nil, failing t with its last error
// after a generous deadline.
func eventually(t *testing.T, name string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not recover after Redis came back: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOutage(t *testing.T) {
	srv := servicetest.Redis(t)
	prefix := freshPrefix()
	a, b := newEngine(t, srv.URL(), prefix), newEngine(t, srv.URL(), prefix)
	ha, hb := newEcho(), newEcho()
	if err := a.Listen("node-a", ha); err != nil {
		t.Fatal(err)
	}
	if err := b.Listen("node-b", hb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.SubscribeTopic(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Request(ctx, "node-b", []byte("before")); err != nil || string(got) != "re:before" {
		t.Fatalf("Request before the outage = %q, %v", got, err)
	}

	srv.Stop()
	const d = 500 * time.Millisecond
	bounded(t, "Register", d, func(ctx context.Context) error {
		return a.Register(ctx, registry.Record{ConnectionID: "c", NodeID: "node-a"})
	})
	bounded(t, "Lookup", d, func(ctx context.Context) error { _, err := a.Lookup(ctx, "c"); return err })
	bounded(t, "UserConnections", d, func(ctx context.Context) error { _, err := a.UserConnections(ctx, "u"); return err })
	bounded(t, "Request", d, func(ctx context.Context) error { _, err := a.Request(ctx, "node-b", []byte("x")); return err })
	bounded(t, "Publish", d, func(ctx context.Context) error { return a.Publish(ctx, "news", []byte("lost")) })
	bounded(t, "Heartbeat", d, func(ctx context.Context) error { _, err := a.Heartbeat(ctx, "node-a"); return err })
	bounded(t, "Ready", d, func(ctx context.Context) error { return a.Ready(ctx) })
	// The receive loops keep retrying meanwhile; give them a few rounds.
	time.Sleep(1500 * time.Millisecond)

	srv.Start()
	eventually(t, "Heartbeat", func(ctx context.Context) error {
		beat, err := a.Heartbeat(ctx, "node-a")
		if err == nil && !beat.Fresh {
			t.Errorf("first Heartbeat after a restart that lost the state = %+v, want Fresh", beat)
		}
		return err
	})
	eventually(t, "Request", func(ctx context.Context) error {
		got, err := a.Request(ctx, "node-b", []byte("after"))
		if err == nil && string(got) != "re:after" {
			return fmt.Errorf("answer %q", got)
		}
		return err
	})
	eventually(t, "Request back", func(ctx context.Context) error {
		_, err := b.Request(ctx, "node-a", []byte("after"))
		return err
	})
	// The topic was subscribed before the outage only.
	eventually(t, "a topic subscription", func(ctx context.Context) error {
		if err := a.Publish(ctx, "news", []byte("after")); err != nil {
			return err
		}
		select {
		case p := <-hb.pubs:
			if p != "news=after" {
				return fmt.Errorf("got %q", p)
			}
			return nil
		case <-time.After(200 * time.Millisecond):
			return errors.New("no publication arrived")
		}
	})
	// The registry works again too.
	eventually(t, "Register", func(ctx context.Context) error {
		return a.Register(ctx, registry.Record{ConnectionID: "c", NodeID: "node-a"})
	})
}

// TestStartWithoutRedis checks that an engine made and listening while
// Redis is down starts working when it comes up.
func TestStartWithoutRedis(t *testing.T) {
	srv := servicetest.Redis(t)
	srv.Stop()
	prefix := freshPrefix()
	a, b := newEngine(t, srv.URL(), prefix), newEngine(t, srv.URL(), prefix)
	if err := a.Listen("node-a", newEcho()); err != nil {
		t.Fatalf("Listen with Redis down: %v", err)
	}
	hb := newEcho()
	if err := b.Listen("node-b", hb); err != nil {
		t.Fatalf("Listen with Redis down: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := a.Ready(ctx); err == nil {
		t.Fatal("Ready with Redis down")
	}
	srv.Start()
	eventually(t, "Ready", func(ctx context.Context) error { return a.Ready(ctx) })
	eventually(t, "Request", func(ctx context.Context) error {
		_, err := a.Request(ctx, "node-b", []byte("x"))
		return err
	})
	eventually(t, "SubscribeTopic", func(ctx context.Context) error { return b.SubscribeTopic(ctx, "t") })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := a.Publish(ctx2, "t", []byte("m")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-hb.pubs:
		if p != "t=m" {
			t.Fatalf("got %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publication did not arrive")
	}
}

// syncBuffer is a bytes.Buffer for a slog handler that several goroutines
// write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPasswordNeverShown(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, cfg := range []redisregistry.Config{
		{URL: "redis://user:" + pw + "%zz@127.0.0.1:6380/0"},
		{URL: "redis://user:" + pw + "@127.0.0.1:bad/0"},
		{URL: "redis://user:" + pw + "@127.0.0.1:6380/notadb"},
		{URL: "http://user:" + pw + "@127.0.0.1:6380/0"},
		{URL: "redis://:" + pw + "@/0"},
		{URL: "redis://127.0.0.1:6380/x" + pw, Password: pw},
		{URL: "redis:// user:" + pw + "@127.0.0.1/0"},
		{URL: "redis://user:" + pw + "@127.0.0.1:6380/0?dial_timeout=" + pw},
	} {
		_, err := redisregistry.New(cfg, logger)
		if err == nil {
			t.Errorf("New(%q) succeeded", cfg.URL)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("New's error shows the password: %v", err)
		}
	}
	// A valid URL to a Redis that is not there: the engine is made, and
	// its logs and errors do not show the password either.
	srv := servicetest.Redis(t)
	srv.Stop()
	url := strings.Replace(srv.URL(), "redis://", "redis://user:"+pw+"@", 1)
	e, err := redisregistry.New(redisregistry.Config{URL: url}, logger)
	if err != nil {
		t.Fatalf("New with Redis down: %v", err)
	}
	defer e.Close()
	if err := e.Listen("node-a", newEcho()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := e.Ready(ctx); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("Ready = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if logs.String() == "" {
		t.Fatal("nothing logged; the check below would prove nothing")
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("the log shows the password:\n%s", logs.String())
	}
}

func BenchmarkRequest(b *testing.B) {
	srv := servicetest.Redis(b)
	prefix := freshPrefix()
	e1, e2 := newEngine(b, srv.URL(), prefix), newEngine(b, srv.URL(), prefix)
	if err := e1.Listen("node-1", newEcho()); err != nil {
		b.Fatal(err)
	}
	if err := e2.Listen("node-2", newEcho()); err != nil {
		b.Fatal(err)
	}
	req := bytes.Repeat([]byte("x"), 256)
	ctx := context.Background()
	b.SetParallelism(32)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e1.Request(ctx, "node-2", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestMiBRequest sends the largest request the gateway forwards, with every
// byte value, both ways.
func TestMiBRequest(t *testing.T) {
	srv := servicetest.Redis(t)
	prefix := freshPrefix()
	a, b := newEngine(t, srv.URL(), prefix), newEngine(t, srv.URL(), prefix)
	if err := a.Listen("node-a", newEcho()); err != nil {
		t.Fatal(err)
	}
	if err := b.Listen("node-b", newEcho()); err != nil {
		t.Fatal(err)
	}
	req := make([]byte, 1<<20)
	_, _ = rand.Read(req)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := a.Request(ctx, "node-b", req)
	if err != nil || !bytes.Equal(got, append([]byte("re:"), req...)) {
		t.Fatalf("1 MiB request: %d bytes back, %v", len(got), err)
	}
}

// TestHeartbeatReconnectsAtOnce: however many calls failed while Redis was
// down, the first heartbeat after Redis is back reaches it, and the engine
// is ready again after it. Nodes heartbeat every heartbeat_interval and
// are declared lost after node_timeout of silence, so an engine that only
// retried its connection now and then (the Redis client probes once a
// second once enough dials have failed) would leave a live node silent for
// longer than a short node_timeout after every outage.
func TestHeartbeatReconnectsAtOnce(t *testing.T) {
	srv := servicetest.Redis(t)
	e := newEngine(t, srv.URL(), freshPrefix())
	if err := e.Listen("node-a", newEcho()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Heartbeat(ctx, "node-a"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	// Far more failed calls than the client has pooled connections.
	start := time.Now()
	for i := range 100 {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := e.Lookup(cctx, "c"); err == nil {
			t.Fatalf("Lookup %d with Redis down succeeded", i)
		}
		if _, err := e.Heartbeat(cctx, "node-a"); err == nil {
			t.Fatalf("Heartbeat %d with Redis down succeeded", i)
		}
		cancel()
	}
	t.Logf("failing calls took %v", time.Since(start))

	srv.Start()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Heartbeat(ctx, "node-a"); err != nil {
		t.Fatalf("first Heartbeat once Redis is back: %v", err)
	}
	if _, err := e.Lookup(ctx, "c"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Lookup after the first Heartbeat = %v, want ErrNotFound", err)
	}
	eventually(t, "Ready", e.Ready)
}

// TestRecoversWithoutHeartbeats: an engine that nobody heartbeats on (its
// calls fail at once while Redis is down) still finds Redis again once it
// is back.
func TestRecoversWithoutHeartbeats(t *testing.T) {
	srv := servicetest.Redis(t)
	e := newEngine(t, srv.URL(), freshPrefix())
	srv.Stop()
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := e.Lookup(ctx, "c"); err == nil {
			t.Fatalf("Lookup %d with Redis down succeeded", i)
		}
		cancel()
	}
	srv.Start()
	eventually(t, "Lookup", func(ctx context.Context) error {
		if _, err := e.Lookup(ctx, "c"); !errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("Lookup = %v, want ErrNotFound", err)
		}
		return nil
	})
}
