package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/registry"
)

// closingEngine runs afterSubscribe once the registry has taken a
// subscription, before Subscribe returns to the node: the moment a
// connection that closes concurrently is closest to leaving state behind.
type closingEngine struct {
	cluster.Engine
	afterSubscribe func()
}

func (e *closingEngine) Subscribe(ctx context.Context, id, topic string) error {
	err := e.Engine.Subscribe(ctx, id, topic)
	if f := e.afterSubscribe; err == nil && f != nil {
		e.afterSubscribe = nil
		f()
	}
	return err
}

// TestSubscribeRacingCloseLeavesNoLocalSubscription: a connection that
// closes (leaves the hub, is unregistered) while its subscription is being
// recorded must not stay in the node's local topic index, which would keep
// the closed connection's Conn reachable from publications, count it in the
// node's subscriptions and keep the node subscribed to the topic on the
// engine forever.
func TestSubscribeRacingCloseLeavesNoLocalSubscription(t *testing.T) {
	for _, known := range []bool{false, true} {
		name := "new topic"
		if known {
			name = "topic with other subscribers"
		}
		t.Run(name, func(t *testing.T) {
			net := cluster.NewMemoryNetwork()
			eng := &closingEngine{Engine: net.Engine()}
			h := hub.New()
			n := cluster.NewNode(cluster.Config{NodeID: "n1", HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour}, eng, h)
			if err := n.Start(); err != nil {
				t.Fatal(err)
			}
			defer n.Stop(context.Background())
			ctx := context.Background()
			want := 0
			if known {
				other := &fakeConn{id: "other"}
				h.Add(other)
				if err := n.Register(ctx, registry.Record{ConnectionID: "other", NodeID: "n1"}); err != nil {
					t.Fatal(err)
				}
				if err := n.Subscribe(ctx, "other", "news"); err != nil {
					t.Fatal(err)
				}
				want = 1
			}
			c := &fakeConn{id: "c"}
			h.Add(c)
			if err := n.Register(ctx, registry.Record{ConnectionID: "c", NodeID: "n1"}); err != nil {
				t.Fatal(err)
			}
			// The connection closes as the edge closes one: it leaves the
			// hub, then the node unregisters it.
			eng.afterSubscribe = func() {
				h.Remove(c)
				n.Unregister(ctx, "c")
			}
			err := n.Subscribe(ctx, "c", "news")
			if err != nil && !errors.Is(err, cluster.ErrGone) {
				t.Fatalf("Subscribe: %v", err)
			}
			if got, _ := net.TopicCount(ctx, "news"); got != want {
				t.Fatalf("registry counts %d subscribers, want %d", got, want)
			}
			topics, _, err := n.ListTopics(ctx, cluster.TopicQuery{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			local := 0
			for _, ts := range topics {
				if ts.Topic == "news" {
					local = ts.Subscribers
				}
			}
			if local != want {
				t.Errorf("the node's local index holds %d subscribers of news after the connection closed, want %d", local, want)
			}
			nodes, err := n.Nodes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range nodes {
				if s.Self && s.Subscriptions != want {
					t.Errorf("the node counts %d subscriptions, want %d", s.Subscriptions, want)
				}
			}
		})
	}
}
