package cluster_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/registry"
)

// recorder is an open connection that records what it is sent.
type recorder struct {
	id  string
	mu  sync.Mutex
	got []string
}

func (c *recorder) ID() string { return c.id }
func (c *recorder) Send(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, string(b[:8]))
	return nil
}
func (c *recorder) Info() hub.Info    { return hub.Info{} }
func (c *recorder) Close(int, string) {}

// TestSendManyKeepsOrderForOneRemoteConnection: messages for one connection
// on another node arrive in the order given, even when they are more than
// one node-to-node request carries (POST /@batch: "Items are delivered in
// order").
func TestSendManyKeepsOrderForOneRemoteConnection(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	h2 := hub.New()
	var nodes []*cluster.Node
	for i, id := range []string{"n1", "n2"} {
		h := hub.New()
		if i == 1 {
			h = h2
		}
		n := cluster.NewNode(cluster.Config{NodeID: id, HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour}, net.Engine(), h)
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		defer n.Stop(context.Background())
		nodes = append(nodes, n)
	}
	ctx := context.Background()
	c := &recorder{id: "c"}
	h2.Add(c)
	if err := nodes[1].Register(ctx, registry.Record{ConnectionID: "c", NodeID: "n2"}); err != nil {
		t.Fatal(err)
	}
	const count = 64
	msgs := make([]cluster.Message, count)
	for i := range msgs {
		data := make([]byte, 128<<10)
		copy(data, []byte(strconv.Itoa(100000000 + i)[1:]))
		msgs[i] = cluster.Message{ConnectionID: "c", Data: data}
	}
	for i, err := range nodes[0].SendMany(ctx, msgs) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) != count {
		t.Fatalf("%d messages arrived, want %d", len(c.got), count)
	}
	for i, got := range c.got {
		if want := strconv.Itoa(100000000 + i)[1:]; got != want {
			t.Fatalf("message %d is %s, want %s: %v", i, got, want, c.got)
		}
	}
}
