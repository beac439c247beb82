package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
)

// inspectNode starts a node on net whose message totals are received and
// sent.
func inspectNode(t *testing.T, net *cluster.MemoryNetwork, id string, received, sent uint64) (*cluster.Node, *hub.Hub) {
	t.Helper()
	h := hub.New()
	n := cluster.NewNode(cluster.Config{NodeID: id, HeartbeatInterval: 10 * time.Millisecond, NodeTimeout: time.Hour,
		Messages: func() (uint64, uint64) { return received, sent }}, net.Engine(), h)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n, h
}

// connect adds a connection to n's hub and the registry.
func connect(t *testing.T, n *cluster.Node, h *hub.Hub, node, id string) {
	t.Helper()
	h.Add(&fakeConn{id: id})
	if err := n.Register(context.Background(), record(id, node)); err != nil {
		t.Fatal(err)
	}
}

// walkTopics lists every topic q selects, page by page, asking the nodes
// in turn.
func walkTopics(t *testing.T, nodes []*cluster.Node, q cluster.TopicQuery) map[string]int {
	t.Helper()
	got := map[string]int{}
	last := ""
	for i := 0; ; i++ {
		page, more, err := nodes[i%len(nodes)].ListTopics(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if len(page) > q.Limit || more && len(page) != q.Limit {
			t.Fatalf("%+v: a page of %d, more %v", q, len(page), more)
		}
		for _, ts := range page {
			if ts.Topic <= last {
				t.Fatalf("%+v: %q after %q", q, ts.Topic, last)
			}
			last = ts.Topic
			got[ts.Topic] = ts.Subscribers
		}
		if !more {
			return got
		}
		q.After = last
	}
}

// TestListTopicsAcrossNodes subscribes connections of three nodes to
// topics at random and checks every walk of the listing, through any node,
// with any page size and prefix, against the subscriptions made.
func TestListTopicsAcrossNodes(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	ids := []string{"n1", "n2", "n3"}
	var nodes []*cluster.Node
	var hubs []*hub.Hub
	for i, id := range ids {
		n, h := inspectNode(t, net, id, uint64(10*i+1), uint64(10*i+2))
		nodes, hubs = append(nodes, n), append(hubs, h)
	}
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("orders/%d", i), fmt.Sprintf("chat/room-%02d", i))
	}
	names = append(names, "orders", "ordersx", "é/1", "a b", "Z")
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]int{}
	subs := make([]int, len(nodes))
	ctx := context.Background()
	for k, n := range nodes {
		for c := range 8 {
			id := fmt.Sprintf("%s-c%d", ids[k], c)
			connect(t, n, hubs[k], ids[k], id)
			for _, name := range names {
				if rng.IntN(4) == 0 {
					// Through another node, half the time.
					via := nodes[(k+rng.IntN(2))%len(nodes)]
					if err := via.Subscribe(ctx, id, name); err != nil {
						t.Fatal(err)
					}
					want[name]++
					subs[k]++
				}
			}
		}
	}
	check := func() {
		t.Helper()
		for _, prefix := range []string{"", "orders", "orders/", "chat/room-1", "é", "nothing"} {
			sel := map[string]int{}
			for name, c := range want {
				if strings.HasPrefix(name, prefix) {
					sel[name] = c
				}
			}
			for _, limit := range []int{1, 2, 7, 100, cluster.MaxTopicPage} {
				got := walkTopics(t, nodes, cluster.TopicQuery{Prefix: prefix, Limit: limit})
				if fmt.Sprint(got) != fmt.Sprint(sel) {
					t.Fatalf("prefix %q, pages of %d: %v, want %v", prefix, limit, got, sel)
				}
			}
		}
	}
	check()

	statuses, err := nodes[1].Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(statuses) != 3 {
		t.Fatalf("%d nodes, want 3: %+v", len(statuses), statuses)
	}
	for i, s := range statuses {
		if s.NodeID != ids[i] || s.Self != (i == 1) || !s.Reachable || s.Connections != 8 || s.Subscriptions != subs[i] ||
			s.MessagesReceived != uint64(10*i+1) || s.MessagesSent != uint64(10*i+2) || s.StartedAt.IsZero() {
			t.Fatalf("node %d: %+v, want 8 connections and %d subscriptions", i, s, subs[i])
		}
	}
	waitFor(t, "every node's heartbeat age known", func() bool {
		statuses, err := nodes[0].Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if s.HeartbeatAge < 0 || s.HeartbeatAge > time.Minute {
				return false
			}
		}
		return true
	})

	// Unsubscriptions and closed connections leave the listing.
	for k, n := range nodes {
		id := fmt.Sprintf("%s-c0", ids[k])
		for _, name := range names {
			err := n.Unsubscribe(ctx, id, name)
			if err != nil {
				t.Fatal(err)
			}
		}
		hubs[k].Remove(hubs[k].Get(fmt.Sprintf("%s-c1", ids[k])))
		n.Unregister(ctx, fmt.Sprintf("%s-c1", ids[k]))
	}
	want = map[string]int{}
	for k := range nodes {
		subs[k] = 0
	}
	// Recount from the registry, which the nodes kept in step.
	for _, name := range names {
		recs, err := net.TopicSubscribers(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			want[name]++
			subs[slices.Index(ids, r.NodeID)]++
		}
	}
	check()
	statuses, err = nodes[2].Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range statuses {
		if s.Connections != 7 || s.Subscriptions != subs[i] {
			t.Fatalf("node %d: %+v, want 7 connections and %d subscriptions", i, s, subs[i])
		}
	}
	if _, _, err := nodes[0].ListTopics(ctx, cluster.TopicQuery{Limit: cluster.MaxTopicPage + 1}); err == nil {
		t.Fatal("a page over MaxTopicPage was served")
	}
}

// stuck answers no request until release is closed.
type stuck struct{ release chan struct{} }

func (s stuck) HandleRequest([]byte) []byte  { <-s.release; return nil }
func (s stuck) HandlePublish(string, []byte) {}

// TestInspectUnreachableNodes: a node that heartbeat but does not answer
// (it hangs, answers nonsense, or no longer listens) is listed unreachable,
// and fails a topic listing, which would be wrong without it.
func TestInspectUnreachableNodes(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	for _, tc := range []struct {
		name    string
		handler cluster.Handler
		close   bool
	}{
		{"hangs", stuck{release}, false},
		{"answers nonsense", mute{}, false},
		{"stopped listening", mute{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := cluster.NewMemoryNetwork()
			n, h := inspectNode(t, net, "n1", 0, 0)
			connect(t, n, h, "n1", "c1")
			ctx := context.Background()
			if err := n.Subscribe(ctx, "c1", "news"); err != nil {
				t.Fatal(err)
			}
			ghost := net.Engine()
			if err := ghost.Listen("n2", tc.handler); err != nil {
				t.Fatal(err)
			}
			if _, err := ghost.Heartbeat(ctx, "n2"); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				_ = ghost.Close()
			} else {
				defer ghost.Close()
			}
			statuses, err := n.Nodes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(statuses) != 2 || !statuses[0].Reachable || statuses[0].Subscriptions != 1 ||
				statuses[1].NodeID != "n2" || statuses[1].Reachable || statuses[1].NodeStats != (cluster.NodeStats{}) {
				t.Fatalf("%+v, want n1 reachable and n2 not", statuses)
			}
			_, _, err = n.ListTopics(ctx, cluster.TopicQuery{Limit: 10})
			var ue *cluster.UnreachableError
			if !errors.As(err, &ue) || ue.NodeID != "n2" || !errors.Is(err, cluster.ErrUnavailable) {
				t.Fatalf("ListTopics: %v, want n2 unreachable", err)
			}
		})
	}
}
