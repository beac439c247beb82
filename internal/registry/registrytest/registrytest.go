// Package registrytest is the contract every registry.Registry must meet.
// Each backend's tests call Run with a constructor for a fresh, empty
// registry; a backend that passes needs no special cases in its callers.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// Run runs the contract against registries made by newRegistry. Each subtest
// gets its own registry.
func Run(t *testing.T, newRegistry func(t *testing.T) registry.Registry) {
	t.Run("RegisterLookup", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		want := registry.Record{
			ConnectionID: "R1kmxc2VNjMCFIA=",
			NodeID:       "node-a",
			PrincipalID:  "user-1",
			ConnectedAt:  time.UnixMilli(1705751697419).UTC(),
			SourceIP:     "203.0.113.7",
			UserAgent:    "test/1.0",
			DomainName:   "ws.example.com",
			Authorizer: map[string]any{
				"principalId":        "user-1",
				"integrationLatency": float64(12),
				"admin":              true,
				"scope":              "orders:read orders:write",
			},
		}
		if err := r.Register(ctx, want); err != nil {
			t.Fatalf("Register: %v", err)
		}
		got, err := r.Lookup(ctx, want.ConnectionID)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if !got.ConnectedAt.Equal(want.ConnectedAt) {
			t.Fatalf("ConnectedAt = %v, want %v", got.ConnectedAt, want.ConnectedAt)
		}
		got.ConnectedAt = want.ConnectedAt
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Lookup = %+v, want %+v", got, want)
		}
	})
	t.Run("LookupUnknown", func(t *testing.T) {
		r := newRegistry(t)
		_, err := r.Lookup(context.Background(), "nope")
		if !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Lookup(unknown) error = %v, want ErrNotFound", err)
		}
	})
	t.Run("Unregister", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		if err := r.Register(ctx, registry.Record{ConnectionID: "a", NodeID: "n"}); err != nil {
			t.Fatal(err)
		}
		if err := r.Unregister(ctx, "a"); err != nil {
			t.Fatalf("Unregister: %v", err)
		}
		if _, err := r.Lookup(ctx, "a"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Lookup after Unregister = %v, want ErrNotFound", err)
		}
		if err := r.Unregister(ctx, "a"); err != nil {
			t.Fatalf("second Unregister: %v", err)
		}
	})
	t.Run("ReplaceRecord", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		_ = r.Register(ctx, registry.Record{ConnectionID: "a", NodeID: "n1"})
		_ = r.Register(ctx, registry.Record{ConnectionID: "a", NodeID: "n2"})
		got, err := r.Lookup(ctx, "a")
		if err != nil || got.NodeID != "n2" {
			t.Fatalf("Lookup = %+v, %v; want NodeID n2", got, err)
		}
	})
	t.Run("UserIndex", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		for i, id := range []string{"c1", "c2", "c3"} {
			rec := registry.Record{ConnectionID: id, NodeID: "n", PrincipalID: "alice", ConnectedAt: time.Unix(int64(i), 0)}
			if err := r.Register(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		_ = r.Register(ctx, registry.Record{ConnectionID: "b1", NodeID: "n", PrincipalID: "bob"})
		_ = r.Register(ctx, registry.Record{ConnectionID: "anon", NodeID: "n"})
		got := ids(t)(r.UserConnections(ctx, "alice"))
		if fmt.Sprint(got) != "[c1 c2 c3]" {
			t.Fatalf("alice's connections %v, want [c1 c2 c3] oldest first", got)
		}
		_ = r.Unregister(ctx, "c2")
		if got := ids(t)(r.UserConnections(ctx, "alice")); fmt.Sprint(got) != "[c1 c3]" {
			t.Fatalf("after unregistering c2: %v", got)
		}
		if got := ids(t)(r.UserConnections(ctx, "nobody")); len(got) != 0 {
			t.Fatalf("unknown user: %v", got)
		}
		// Re-registering with another principal moves the connection.
		_ = r.Register(ctx, registry.Record{ConnectionID: "c1", NodeID: "n", PrincipalID: "bob"})
		if got := ids(t)(r.UserConnections(ctx, "alice")); fmt.Sprint(got) != "[c3]" {
			t.Fatalf("alice after c1 moved: %v", got)
		}
		if got := ids(t)(r.UserConnections(ctx, "bob")); len(got) != 2 {
			t.Fatalf("bob after c1 moved: %v", got)
		}
	})
	t.Run("Topics", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		for _, id := range []string{"a", "b", "c"} {
			_ = r.Register(ctx, registry.Record{ConnectionID: id, NodeID: "n"})
		}
		for _, id := range []string{"a", "b", "b"} {
			if err := r.Subscribe(ctx, id, "orders/42"); err != nil {
				t.Fatal(err)
			}
		}
		_ = r.Subscribe(ctx, "c", "orders/43")
		if err := r.Subscribe(ctx, "ghost", "orders/42"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Subscribe(unknown) = %v, want ErrNotFound", err)
		}
		if n, err := r.TopicCount(ctx, "orders/42"); err != nil || n != 2 {
			t.Fatalf("TopicCount = %d, %v; want 2", n, err)
		}
		got := ids(t)(r.TopicSubscribers(ctx, "orders/42"))
		slices.Sort(got)
		if fmt.Sprint(got) != "[a b]" {
			t.Fatalf("subscribers %v", got)
		}
		_ = r.Unsubscribe(ctx, "a", "orders/42")
		_ = r.Unsubscribe(ctx, "a", "orders/42")
		if n, _ := r.TopicCount(ctx, "orders/42"); n != 1 {
			t.Fatalf("after unsubscribe: %d", n)
		}
		// Subscriptions end with the connection.
		_ = r.Unregister(ctx, "b")
		_ = r.Unregister(ctx, "c")
		for _, topic := range []string{"orders/42", "orders/43"} {
			if n, _ := r.TopicCount(ctx, topic); n != 0 {
				t.Fatalf("%s still has %d subscribers after they disconnected", topic, n)
			}
		}
		// A reused id does not inherit old subscriptions.
		_ = r.Register(ctx, registry.Record{ConnectionID: "b", NodeID: "n"})
		if n, _ := r.TopicCount(ctx, "orders/42"); n != 0 {
			t.Fatalf("a new connection with an old id is subscribed")
		}
	})
	t.Run("NodeConnections", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		for _, rec := range []registry.Record{
			{ConnectionID: "a1", NodeID: "node-a", PrincipalID: "alice"},
			{ConnectionID: "a2", NodeID: "node-a"},
			{ConnectionID: "b1", NodeID: "node-b", PrincipalID: "alice"},
		} {
			if err := r.Register(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		got := ids(t)(r.NodeConnections(ctx, "node-a"))
		slices.Sort(got)
		if fmt.Sprint(got) != "[a1 a2]" {
			t.Fatalf("node-a holds %v, want [a1 a2]", got)
		}
		_ = r.Unregister(ctx, "a1")
		// Re-registering on another node moves the connection.
		_ = r.Register(ctx, registry.Record{ConnectionID: "a2", NodeID: "node-b"})
		if got := ids(t)(r.NodeConnections(ctx, "node-a")); len(got) != 0 {
			t.Fatalf("node-a still holds %v", got)
		}
		got = ids(t)(r.NodeConnections(ctx, "node-b"))
		slices.Sort(got)
		if fmt.Sprint(got) != "[a2 b1]" {
			t.Fatalf("node-b holds %v, want [a2 b1]", got)
		}
		if got := ids(t)(r.NodeConnections(ctx, "node-z")); len(got) != 0 {
			t.Fatalf("unknown node holds %v", got)
		}
	})
	t.Run("OddNames", func(t *testing.T) {
		// Principals, topics and ids are opaque strings: separators,
		// wildcards, spaces and non-ASCII characters of the engine's own
		// key syntax must not leak into it.
		r := newRegistry(t)
		ctx := context.Background()
		odd := []string{"a.b", "a:b", "a*", "a>", "a b", "ü/ñ", "{x}", "a/b/c", "%2F", "a\\b"}
		for i, name := range odd {
			id := fmt.Sprintf("%s#%d", name, i)
			if err := r.Register(ctx, registry.Record{ConnectionID: id, NodeID: "node." + name, PrincipalID: name}); err != nil {
				t.Fatalf("Register(%q): %v", id, err)
			}
			if err := r.Subscribe(ctx, id, name); err != nil {
				t.Fatalf("Subscribe(%q, %q): %v", id, name, err)
			}
		}
		for i, name := range odd {
			id := fmt.Sprintf("%s#%d", name, i)
			if got := ids(t)(r.UserConnections(ctx, name)); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
				t.Errorf("UserConnections(%q) = %q, want [%q]", name, got, id)
			}
			if got := ids(t)(r.TopicSubscribers(ctx, name)); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
				t.Errorf("TopicSubscribers(%q) = %q, want [%q]", name, got, id)
			}
			if n, err := r.TopicCount(ctx, name); err != nil || n != 1 {
				t.Errorf("TopicCount(%q) = %d, %v; want 1", name, n, err)
			}
			if got := ids(t)(r.NodeConnections(ctx, "node."+name)); fmt.Sprint(got) != fmt.Sprint([]string{id}) {
				t.Errorf("NodeConnections(%q) = %q, want [%q]", "node."+name, got, id)
			}
			if rec, err := r.Lookup(ctx, id); err != nil || rec.PrincipalID != name {
				t.Errorf("Lookup(%q) = %+v, %v", id, rec, err)
			}
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		r := newRegistry(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.Register(ctx, registry.Record{ConnectionID: "a"}); err == nil {
			t.Fatal("Register with a canceled context succeeded")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					id := fmt.Sprintf("%d-%d", w, i)
					if err := r.Register(ctx, registry.Record{ConnectionID: id, NodeID: "n"}); err != nil {
						t.Error(err)
						return
					}
					if _, err := r.Lookup(ctx, id); err != nil {
						t.Error(err)
						return
					}
					if err := r.Unregister(ctx, id); err != nil {
						t.Error(err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	})
	runSlots(t, newRegistry)
	runList(t, newRegistry)
}

// ids returns a function that takes a registry answer and returns the
// connection ids in it, failing t on an error.
func ids(t *testing.T) func([]registry.Record, error) []string {
	return func(recs []registry.Record, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, 0, len(recs))
		for _, r := range recs {
			out = append(out, r.ConnectionID)
		}
		return out
	}
}
