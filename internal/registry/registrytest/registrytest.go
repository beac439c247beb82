// Package registrytest is the contract every registry.Registry must meet.
// Each backend's tests call Run with a constructor for a fresh, empty
// registry; a backend that passes needs no special cases in its callers.
package registrytest

import (
	"context"
	"errors"
	"fmt"
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
		if got != want {
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
}
