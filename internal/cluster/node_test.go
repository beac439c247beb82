package cluster_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/registry"
)

// flakyEngine fails its first failures Unregister calls, as an engine
// overwhelmed by a mass disconnect does.
type flakyEngine struct {
	cluster.Engine
	failures atomic.Int32
}

func (e *flakyEngine) Unregister(ctx context.Context, id string) error {
	if e.failures.Add(-1) >= 0 {
		return errors.New("engine busy")
	}
	return e.Engine.Unregister(ctx, id)
}

// TestUnregisterRetried: a removal the engine refuses is retried with the
// heartbeat until the record is gone.
func TestUnregisterRetried(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	eng := &flakyEngine{Engine: net.Engine()}
	eng.failures.Store(3)
	n := cluster.NewNode(cluster.Config{NodeID: "n1", HeartbeatInterval: 10 * time.Millisecond, NodeTimeout: time.Second}, eng, hub.New())
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := n.Register(ctx, registry.Record{ConnectionID: id, NodeID: "n1", PrincipalID: "p"}); err != nil {
			t.Fatal(err)
		}
		n.Unregister(ctx, id)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := net.UserConnections(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records left after failed removals were to be retried: %v", recs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if eng.failures.Load() >= 0 {
		t.Fatal("the engine refused no removal: the test did not exercise the retry")
	}
}

// TestStopRetriesUnregister: removals still pending when the node stops are
// retried before it decides whether to leave its records to the others.
func TestStopRetriesUnregister(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	eng := &flakyEngine{Engine: net.Engine()}
	n := cluster.NewNode(cluster.Config{NodeID: "n1", HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour}, eng, hub.New())
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Register(ctx, registry.Record{ConnectionID: "a", NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	eng.failures.Store(1)
	n.Unregister(ctx, "a")
	if _, err := net.Lookup(ctx, "a"); err != nil {
		t.Fatalf("the first removal was to fail: %v", err)
	}
	n.Stop(ctx)
	if _, err := net.Lookup(ctx, "a"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("record still there after Stop: %v", err)
	}
	nodes, _ := net.Engine().Nodes(ctx)
	if _, ok := nodes["n1"]; ok {
		t.Fatal("a node that stopped with nothing left did not remove its heartbeat")
	}
}

// handshaking is a connection completing its handshake: it records the
// close asked of it.
type handshaking struct {
	id     string
	closed chan int
}

func (c *handshaking) ID() string               { return c.id }
func (c *handshaking) Send([]byte) error        { return hub.ErrClosed }
func (c *handshaking) Info() hub.Info           { return hub.Info{} }
func (c *handshaking) Close(code int, _ string) { c.closed <- code }

// TestCloseReachesOpeningConnection: a connection registered while its
// handshake completes is not in the hub yet; Close reaches it from its own
// node and from another until its handshake is done.
func TestCloseReachesOpeningConnection(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	var nodes []*cluster.Node
	for _, id := range []string{"n1", "n2"} {
		n := cluster.NewNode(cluster.Config{NodeID: id, HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour}, net.Engine(), hub.New())
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
		nodes = append(nodes, n)
	}
	ctx := context.Background()
	c := &handshaking{id: "c", closed: make(chan int, 2)}
	done := nodes[0].Opening(c)
	if err := nodes[0].Register(ctx, registry.Record{ConnectionID: "c", NodeID: "n1", PrincipalID: "p"}); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if err := n.Close(ctx, "c", 4008, "limit"); err != nil {
			t.Fatalf("Close from node %d: %v", i+1, err)
		}
		if code := <-c.closed; code != 4008 {
			t.Fatalf("closed with %d", code)
		}
	}
	done()
	for i, n := range nodes {
		if err := n.Close(ctx, "c", 4008, "limit"); !errors.Is(err, cluster.ErrGone) {
			t.Fatalf("Close from node %d once the handshake is done and the hub does not hold it: %v, want ErrGone", i+1, err)
		}
	}
}
