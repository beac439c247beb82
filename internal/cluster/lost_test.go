package cluster_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/registry"
)

// The lost-node tests run with heartbeats every beatInterval and declare a
// node lost after lostAfter of silence.
const (
	beatInterval = 10 * time.Millisecond
	lostAfter    = 300 * time.Millisecond
)

var errDown = errors.New("engine down")

// gatedEngine is an engine the test can take down (every call the nodes'
// heartbeats make fails) and whose Register and ClaimNode calls it can
// hold until it releases them.
type gatedEngine struct {
	cluster.Engine
	down atomic.Bool

	holdRegister, holdClaim atomic.Pointer[chan struct{}]
	// registerHeld and claimHeld count the calls that waited on a hold.
	registerHeld, claimHeld atomic.Int32
	// nodesCalls counts the Nodes calls that reached the engine.
	nodesCalls atomic.Int64
}

// hold makes calls that pass through p wait until release is called.
func hold(p *atomic.Pointer[chan struct{}]) (release func()) {
	ch := make(chan struct{})
	p.Store(&ch)
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (e *gatedEngine) gate(ctx context.Context, p *atomic.Pointer[chan struct{}], held *atomic.Int32) error {
	if e.down.Load() {
		return errDown
	}
	if ch := p.Load(); ch != nil {
		select {
		case <-*ch:
		default:
			held.Add(1)
			select {
			case <-*ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (e *gatedEngine) Heartbeat(ctx context.Context, nodeID string) (cluster.Beat, error) {
	if e.down.Load() {
		return cluster.Beat{}, errDown
	}
	return e.Engine.Heartbeat(ctx, nodeID)
}

func (e *gatedEngine) Nodes(ctx context.Context) (map[string]uint64, error) {
	if e.down.Load() {
		return nil, errDown
	}
	e.nodesCalls.Add(1)
	return e.Engine.Nodes(ctx)
}

func (e *gatedEngine) Register(ctx context.Context, rec registry.Record) error {
	if err := e.gate(ctx, &e.holdRegister, &e.registerHeld); err != nil {
		return err
	}
	return e.Engine.Register(ctx, rec)
}

func (e *gatedEngine) ClaimNode(ctx context.Context, nodeID, claimer string, ttl time.Duration) (bool, error) {
	if err := e.gate(ctx, &e.holdClaim, &e.claimHeld); err != nil {
		return false, err
	}
	return e.Engine.ClaimNode(ctx, nodeID, claimer, ttl)
}

// lostLog records the connections whose $disconnect a node delivered
// because their node was declared lost.
type lostLog struct {
	mu  sync.Mutex
	ids []string
}

func (l *lostLog) deliver(_ context.Context, rec registry.Record, _ string) error {
	l.mu.Lock()
	l.ids = append(l.ids, rec.ConnectionID)
	l.mu.Unlock()
	return nil
}

func (l *lostLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// fakeConn is a local connection that records whether the node closed it.
type fakeConn struct {
	id     string
	closed atomic.Bool
}

func (c *fakeConn) ID() string               { return c.id }
func (c *fakeConn) Send([]byte) error        { return nil }
func (c *fakeConn) Close(code int, _ string) { c.closed.Store(true) }
func (c *fakeConn) Info() hub.Info           { return hub.Info{} }
func record(id, node string) registry.Record {
	return registry.Record{ConnectionID: id, NodeID: node, PrincipalID: "user-" + id}
}
func ready(n *cluster.Node) bool { ok, _ := n.Ready(); return ok }
func counter(t *testing.T, e cluster.Engine, node string) uint64 {
	t.Helper()
	nodes, err := e.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return nodes[node]
}

// startNode starts node id on eng, holding conns (registered at once) and
// delivering lost connections' $disconnect to lost.
func startNode(t *testing.T, id string, eng cluster.Engine, lost *lostLog, conns ...*fakeConn) *cluster.Node {
	t.Helper()
	return startNodeTimeout(t, id, eng, lost, lostAfter, conns...)
}

// startNodeTimeout is startNode with another node timeout.
func startNodeTimeout(t *testing.T, id string, eng cluster.Engine, lost *lostLog, nodeTimeout time.Duration, conns ...*fakeConn) *cluster.Node {
	t.Helper()
	h := hub.New()
	var recs []registry.Record
	for _, c := range conns {
		h.Add(c)
		recs = append(recs, record(c.id, id))
	}
	n := cluster.NewNode(cluster.Config{
		NodeID:            id,
		HeartbeatInterval: beatInterval,
		NodeTimeout:       nodeTimeout,
		Timeout:           5 * time.Second,
		Lost:              lost.deliver,
		Records:           func() []registry.Record { return recs },
	}, eng, h)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	for _, r := range recs {
		if err := n.Register(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// pulse heartbeats node on eng every beatInterval, as a live node does,
// until the returned stop is called.
func pulse(t *testing.T, eng cluster.Engine, node string) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(beatInterval)
		defer tick.Stop()
		for {
			if _, err := eng.Heartbeat(context.Background(), node); err != nil {
				t.Errorf("heartbeat of %s: %v", node, err)
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if t.Failed() {
			t.FailNow()
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restartEmpty takes the engine down under nodes a and b, restarts it
// empty and brings it back with b's Register calls held: it returns when a
// has recovered and b is registering its connections again, and release
// lets b's calls through.
func restartEmpty(t *testing.T, net *cluster.MemoryNetwork, a, b *cluster.Node, ea, eb *gatedEngine) (release func()) {
	t.Helper()
	ea.down.Store(true)
	eb.down.Store(true)
	waitFor(t, "both nodes to notice the outage", func() bool { return !ready(a) && !ready(b) })
	net.Restart()
	release = hold(&eb.holdRegister)
	ea.down.Store(false)
	eb.down.Store(false)
	waitFor(t, "A to recover and B to start registering again", func() bool { return ready(a) && eb.registerHeld.Load() > 0 })
	return release
}

// TestReregisteringNodeKeepsHeartbeating: after the engine restarted empty,
// a node that takes long to register its connections again (here: its
// Register calls hang) keeps heartbeating meanwhile, so the other nodes
// never declare it lost, and once it has registered them it is ready and
// its connections stayed open.
func TestReregisteringNodeKeepsHeartbeating(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	ea, eb := &gatedEngine{Engine: net.Engine()}, &gatedEngine{Engine: net.Engine()}
	var lost lostLog
	b1 := &fakeConn{id: "b1"}
	a := startNode(t, "A", ea, &lost)
	b := startNode(t, "B", eb, &lost, b1)

	release := restartEmpty(t, net, a, b, ea, eb)
	defer release()

	// A watches B for several node timeouts while B's registration hangs.
	since := time.Now()
	from := counter(t, net.Engine(), "B")
	waitFor(t, "several node timeouts with B registering", func() bool {
		if net.Lost("B") {
			t.Fatalf("B was declared lost while it was registering its connections again (its heartbeat stood at %d)", counter(t, net.Engine(), "B"))
		}
		return time.Since(since) > 3*lostAfter && counter(t, net.Engine(), "B") > from
	})
	if ok, why := b.Ready(); ok {
		t.Fatal("B is ready before its connections are registered again")
	} else {
		t.Logf("B while registering: not ready: %s", why)
	}

	release()
	waitFor(t, "B to register b1 again and become ready", func() bool {
		_, err := net.Lookup(context.Background(), "b1")
		return err == nil && ready(b)
	})
	if b1.closed.Load() || net.Lost("B") || len(lost.list()) > 0 {
		t.Fatalf("B's connection closed: %v, B declared lost: %v, $disconnect delivered for %v", b1.closed.Load(), net.Lost("B"), lost.list())
	}
}

// TestBusyNodeJudgesOnlyWhatItSaw: a node that is busy registering its
// connections again after an outage of its own does not watch the others
// meanwhile, and must not count that time as their silence. Here peer P's
// heartbeat keeps moving while C's registration hangs, then pauses for a
// moment just as C finishes: C must not declare P lost.
func TestBusyNodeJudgesOnlyWhatItSaw(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	ec := &gatedEngine{Engine: net.Engine()}
	var lost lostLog
	c := startNode(t, "C", ec, &lost, &fakeConn{id: "c1"})
	// P is a node driven by the test: its heartbeat moves when pulse beats it.
	pe := net.Engine()
	if err := pe.Register(context.Background(), record("p1", "P")); err != nil {
		t.Fatal(err)
	}
	stop := pulse(t, pe, "P")

	ec.down.Store(true)
	waitFor(t, "C to notice the outage", func() bool { return !ready(c) })
	release := hold(&ec.holdRegister)
	defer release()
	ec.down.Store(false)
	waitFor(t, "C to start registering c1 again", func() bool { return ec.registerHeld.Load() > 0 })
	since := time.Now()
	waitFor(t, "C to be busy for longer than the node timeout", func() bool { return time.Since(since) > 2*lostAfter })

	// P pauses while C finishes and looks at the nodes twice.
	stop()
	seen := ec.nodesCalls.Load()
	release()
	waitFor(t, "C to look at the nodes twice", func() bool { return ec.nodesCalls.Load() >= seen+2 })
	pulse(t, pe, "P")
	since = time.Now()
	waitFor(t, "several node timeouts with P beating", func() bool {
		if net.Lost("P") || len(lost.list()) > 0 {
			t.Fatalf("C declared P lost (P marked lost: %v, $disconnect delivered for %v)", net.Lost("P"), lost.list())
		}
		return time.Since(since) > 3*lostAfter && ready(c)
	})
}

// TestNodeBackBeforeClaimIsLeftAlone: a node judged lost whose heartbeat
// moves again before the survivor has claimed it (it was only stalled) is
// not cleaned up: no $disconnect for its connections, and it is not marked
// lost.
func TestNodeBackBeforeClaimIsLeftAlone(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	ec := &gatedEngine{Engine: net.Engine()}
	var lost lostLog
	startNode(t, "C", ec, &lost)
	pe := net.Engine()
	if err := pe.Register(context.Background(), record("p1", "P")); err != nil {
		t.Fatal(err)
	}
	release := hold(&ec.holdClaim)
	defer release()
	if _, err := pe.Heartbeat(context.Background(), "P"); err != nil {
		t.Fatal(err)
	}
	// P stays silent until C judges it lost and goes to claim it.
	waitFor(t, "C to judge P lost", func() bool { return ec.claimHeld.Load() > 0 })
	pulse(t, pe, "P")
	waitFor(t, "P's heartbeat to move", func() bool { return counter(t, net.Engine(), "P") > 1 })
	release()
	since := time.Now()
	waitFor(t, "several node timeouts with P beating", func() bool {
		if net.Lost("P") || len(lost.list()) > 0 {
			t.Fatalf("C cleaned up P although its heartbeat moved (P marked lost: %v, $disconnect delivered for %v)", net.Lost("P"), lost.list())
		}
		return time.Since(since) > 3*lostAfter
	})
	if _, err := net.Lookup(context.Background(), "p1"); err != nil {
		t.Fatalf("P's connection left the registry: %v", err)
	}
}

// TestUnregisteredAfterRestartIsUnavailable: after the engine restarted
// empty, a push to a connection whose node has not registered it again yet
// answers unavailable (503, try again), not gone (410, which tells callers
// to forget the connection); once its node has registered it, the push is
// delivered.
func TestUnregisteredAfterRestartIsUnavailable(t *testing.T) {
	// A node timeout far above the test's run time: the pushes below are
	// made while the nodes may still be registering their connections.
	const settle = time.Minute
	net := cluster.NewMemoryNetwork()
	ea, eb := &gatedEngine{Engine: net.Engine()}, &gatedEngine{Engine: net.Engine()}
	var lost lostLog
	a := startNodeTimeout(t, "A", ea, &lost, settle)
	b := startNodeTimeout(t, "B", eb, &lost, settle, &fakeConn{id: "b1"}, &fakeConn{id: "b2"})
	ctx := context.Background()
	if err := a.Send(ctx, "b1", []byte("before")); err != nil {
		t.Fatalf("push before the restart: %v", err)
	}
	if err := a.Send(ctx, "nobody", []byte("x")); !errors.Is(err, cluster.ErrGone) {
		t.Fatalf("push to an unknown connection before the restart = %v, want ErrGone", err)
	}

	release := restartEmpty(t, net, a, b, ea, eb)
	defer release()
	// A knows where b1 lives and reaches it.
	if err := a.Send(ctx, "b1", []byte("during")); err != nil {
		t.Fatalf("push to b1, whose node A knows, while B registers its connections again: %v", err)
	}
	// A has never looked b2 up, and the registry does not know it (nor a
	// connection that does not exist): either may be on its way back.
	for _, id := range []string{"b2", "nobody"} {
		if err := a.Send(ctx, id, []byte("during")); !errors.Is(err, cluster.ErrUnavailable) {
			t.Fatalf("push to %s while B registers its connections again = %v, want ErrUnavailable", id, err)
		}
	}
	release()
	waitFor(t, "B to register its connections again", func() bool { return ready(b) })
	if err := a.Send(ctx, "b2", []byte("after")); err != nil {
		t.Fatalf("push to b2 after B registered it again: %v", err)
	}
}
