package registry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/registry/registrytest"
)

func TestMemoryContract(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) registry.Registry { return registry.NewMemory() })
}

// TestMemoryListLargeIndex lists a node, a topic and a principal with more
// connections than Memory sorts, which it finds by walking every id in order.
func TestMemoryListLargeIndex(t *testing.T) {
	m := registry.NewMemory()
	ctx := context.Background()
	const n = 5000
	for i := range n {
		id := fmt.Sprintf("c%05d", i)
		if err := m.Register(ctx, registry.Record{ConnectionID: id, NodeID: []string{"a", "b", "b"}[i%3], PrincipalID: []string{"", "u", "u"}[i%3]}); err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			if err := m.Subscribe(ctx, id, "t"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []registry.ListQuery{{NodeID: "b"}, {Topic: "t"}, {PrincipalID: "u"}, {NodeID: "a", Topic: "t"}, {}} {
		want := n * 2 / 3
		switch {
		case q.NodeID == "a":
			want = 0
		case q == registry.ListQuery{}:
			want = n
		}
		q.Limit = 700
		seen := make(map[string]bool)
		for pages := 0; ; pages++ {
			page, next, err := m.ListConnections(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range page {
				if seen[l.ConnectionID] {
					t.Fatalf("%+v: %s listed twice", q, l.ConnectionID)
				}
				seen[l.ConnectionID] = true
			}
			if next == "" {
				break
			}
			if pages > n {
				t.Fatalf("%+v: the pages do not end", q)
			}
			q.Cursor = next
		}
		if len(seen) != want {
			t.Fatalf("%+v: listed %d, want %d", q, len(seen), want)
		}
	}
}

// BenchmarkMemoryListConnections lists a page of 100 from 100,000
// connections, at the start and near the end: a page costs the same
// wherever its cursor is.
func BenchmarkMemoryListConnections(b *testing.B) {
	m := registry.NewMemory()
	ctx := context.Background()
	for i := range 100000 {
		if err := m.Register(ctx, registry.Record{ConnectionID: fmt.Sprintf("c%06d", i), NodeID: []string{"a", "b"}[i%2]}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		q    registry.ListQuery
	}{
		{"first", registry.ListQuery{Limit: 100}},
		{"late", registry.ListQuery{Limit: 100, Cursor: registry.IDCursor("c099000")}},
		{"node/late", registry.ListQuery{Limit: 100, NodeID: "b", Cursor: registry.IDCursor("c099000")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, _, err := m.ListConnections(ctx, bc.q)
				if err != nil || len(page) != 100 {
					b.Fatalf("%d, %v", len(page), err)
				}
			}
		})
	}
}
