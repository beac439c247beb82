package registry_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

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

// TestMemoryUserIndexUnderChurn registers connections of two users,
// removes and re-registers them in random order, and after every step
// compares each user's connections (oldest first), its listing and its
// slot count with a plain model of what is registered.
func TestMemoryUserIndexUnderChurn(t *testing.T) {
	m := registry.NewMemory()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"u", "v"}
	var model []registry.Record // registered, oldest first
	next := 0
	register := func() {
		rec := registry.Record{ConnectionID: fmt.Sprintf("c%05d", next), NodeID: "n", PrincipalID: users[rng.IntN(2)]}
		next++
		if err := m.Register(ctx, rec); err != nil {
			t.Fatal(err)
		}
		model = append(model, rec)
	}
	check := func(step int) {
		t.Helper()
		for _, u := range users {
			var want []string
			for _, r := range model {
				if r.PrincipalID == u {
					want = append(want, r.ConnectionID)
				}
			}
			recs, err := m.UserConnections(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, 0, len(recs))
			for _, r := range recs {
				got = append(got, r.ConnectionID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: %s's connections %v, want %v", step, u, got, want)
			}
			listed, _, err := m.ListConnections(ctx, registry.ListQuery{PrincipalID: u, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != len(want) {
				t.Fatalf("step %d: %s has %d listed, want %d", step, u, len(listed), len(want))
			}
			// One more than registered fits; as many does not.
			ok, err := m.ReserveUserSlot(ctx, u, "new", len(want)+1, time.Minute)
			if err != nil || !ok {
				t.Fatalf("step %d: slot under a limit of %d with %d registered: %v %v", step, len(want)+1, len(want), ok, err)
			}
			if err := m.ReleaseUserSlot(ctx, u, "new"); err != nil {
				t.Fatal(err)
			}
			if len(want) > 0 {
				if ok, _ := m.ReserveUserSlot(ctx, u, "new", len(want), time.Minute); ok {
					t.Fatalf("step %d: slot granted at a limit of %d with %d registered", step, len(want), len(want))
				}
			}
		}
	}
	for range 200 {
		register()
	}
	check(0)
	for step := 1; step <= 600; step++ {
		switch {
		case len(model) > 0 && rng.IntN(3) > 0:
			i := rng.IntN(len(model))
			if err := m.Unregister(ctx, model[i].ConnectionID); err != nil {
				t.Fatal(err)
			}
			model = slices.Delete(model, i, i+1)
		default:
			register()
		}
		check(step)
	}
	for len(model) > 0 {
		if err := m.Unregister(ctx, model[0].ConnectionID); err != nil {
			t.Fatal(err)
		}
		model = model[1:]
	}
	check(-1)
}

// BenchmarkMemoryUnregisterOneUser: one user's 50,000 connections all
// close, newest first (the order that shifted the most ids before).
func BenchmarkMemoryUnregisterOneUser(b *testing.B) {
	ctx := context.Background()
	const n = 50000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%06d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m := registry.NewMemory()
		for _, id := range ids {
			_ = m.Register(ctx, registry.Record{ConnectionID: id, NodeID: "n", PrincipalID: "u"})
		}
		b.StartTimer()
		for i := n - 1; i >= 0; i-- {
			_ = m.Unregister(ctx, ids[i])
		}
	}
}
