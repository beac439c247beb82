package registrytest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// runList checks ListConnections against registries made by newRegistry.
func runList(t *testing.T, newRegistry func(t *testing.T) registry.Registry) {
	t.Run("ListConnections", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		// 23 connections: principals cycle through alice, bob and none,
		// nodes through node-a and node-b; every third subscribes to
		// "orders/1", every fourth to "a.b*>" as well.
		want := make(map[string]registry.Listed)
		for i := range 23 {
			rec := registry.Record{
				ConnectionID: fmt.Sprintf("c%02d=", i),
				NodeID:       []string{"node-a", "node.b"}[i%2],
				PrincipalID:  []string{"alice", "bob", ""}[i%3],
				ConnectedAt:  time.UnixMilli(1705751697419 + int64(i)).UTC(),
				SourceIP:     "203.0.113.7",
				UserAgent:    "test/1.0",
				Authorizer:   map[string]any{"principalId": "p", "n": float64(i)},
			}
			if err := r.Register(ctx, rec); err != nil {
				t.Fatal(err)
			}
			l := registry.Listed{Record: rec}
			for _, topic := range []string{"orders/1", "a.b*>"} {
				if (topic == "orders/1" && i%3 == 0) || (topic == "a.b*>" && i%4 == 0) {
					if err := r.Subscribe(ctx, rec.ConnectionID, topic); err != nil {
						t.Fatal(err)
					}
					l.Topics = append(l.Topics, topic)
				}
			}
			want[rec.ConnectionID] = l
		}
		// Every page size lists every connection once, with its record
		// and topics.
		for _, limit := range []int{1, 4, 23, 100} {
			got := listAll(t, r, registry.ListQuery{Limit: limit})
			if len(got) != len(want) {
				t.Fatalf("limit %d: listed %d connections, want %d", limit, len(got), len(want))
			}
			for id, l := range got {
				w, ok := want[id]
				if !ok {
					t.Fatalf("limit %d: listed unknown connection %q", limit, id)
				}
				if !l.ConnectedAt.Equal(w.ConnectedAt) {
					t.Fatalf("%s: ConnectedAt %v, want %v", id, l.ConnectedAt, w.ConnectedAt)
				}
				l.ConnectedAt = w.ConnectedAt
				slices.Sort(l.Topics)
				wt := slices.Sorted(slices.Values(w.Topics))
				if fmt.Sprint(l.Record) != fmt.Sprint(w.Record) || fmt.Sprint(l.Topics) != fmt.Sprint(wt) {
					t.Fatalf("%s listed as %+v, want %+v with topics %v", id, l, w, wt)
				}
			}
		}
		// Filters, alone and together.
		for _, q := range []registry.ListQuery{
			{PrincipalID: "alice"},
			{PrincipalID: "nobody"},
			{NodeID: "node.b"},
			{Topic: "orders/1"},
			{Topic: "a.b*>"},
			{Topic: "none"},
			{PrincipalID: "bob", NodeID: "node-a"},
			{PrincipalID: "alice", Topic: "a.b*>"},
			{NodeID: "node-a", Topic: "orders/1"},
		} {
			var wantIDs []string
			for id, l := range want {
				if (q.PrincipalID == "" || l.PrincipalID == q.PrincipalID) &&
					(q.NodeID == "" || l.NodeID == q.NodeID) &&
					(q.Topic == "" || slices.Contains(l.Topics, q.Topic)) {
					wantIDs = append(wantIDs, id)
				}
			}
			slices.Sort(wantIDs)
			for _, limit := range []int{2, 1000} {
				q.Limit = limit
				got := slices.Sorted(maps.Keys(listAll(t, r, q)))
				if fmt.Sprint(got) != fmt.Sprint(wantIDs) {
					t.Fatalf("%+v listed %v, want %v", q, got, wantIDs)
				}
			}
		}
		// A cursor survives the removal of the connection it follows, and
		// an unsubscribed connection leaves its topic's listing.
		page, next := listPage(t, r, registry.ListQuery{Limit: 5})
		if next == "" || len(page) == 0 {
			t.Fatalf("first page of 5: %d connections, next %q", len(page), next)
		}
		seen := make(map[string]bool)
		for _, l := range page {
			seen[l.ConnectionID] = true
		}
		last := page[len(page)-1].ConnectionID
		if err := r.Unregister(ctx, last); err != nil {
			t.Fatal(err)
		}
		rest := listAll(t, r, registry.ListQuery{Limit: 5, Cursor: next})
		for id := range rest {
			if seen[id] {
				t.Fatalf("%q listed again after the cursor", id)
			}
			seen[id] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("listed %d connections across the removal, want %d", len(seen), len(want))
		}
		if err := r.Unsubscribe(ctx, "c00=", "orders/1"); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, r, registry.ListQuery{Topic: "orders/1", Limit: 10}); got["c00="].ConnectionID != "" {
			t.Fatal("an unsubscribed connection is listed under its old topic")
		}
	})
	t.Run("ListConnectionsEmpty", func(t *testing.T) {
		r := newRegistry(t)
		page, next, err := r.ListConnections(context.Background(), registry.ListQuery{Limit: 10})
		if err != nil || len(page) != 0 || next != "" {
			t.Fatalf("empty registry listed %v, next %q, %v", page, next, err)
		}
	})
	t.Run("ListConnectionsBadInput", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		if err := r.Register(ctx, registry.Record{ConnectionID: "a", NodeID: "n"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"garbage", "id:", "seq:x", "\x00"} {
			if _, _, err := r.ListConnections(ctx, registry.ListQuery{Limit: 1, Cursor: c}); !errors.Is(err, registry.ErrBadCursor) {
				t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
			}
		}
		for _, limit := range []int{0, -1} {
			if _, _, err := r.ListConnections(ctx, registry.ListQuery{Limit: limit}); !errors.Is(err, registry.ErrBadLimit) {
				t.Errorf("limit %d: %v, want ErrBadLimit", limit, err)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := r.ListConnections(cctx, registry.ListQuery{Limit: 1}); err == nil {
			t.Error("ListConnections with a canceled context succeeded")
		}
	})
}

// listPage returns one page, failing t on an error or an oversized page.
func listPage(t *testing.T, r registry.Registry, q registry.ListQuery) ([]registry.Listed, string) {
	t.Helper()
	page, next, err := r.ListConnections(context.Background(), q)
	if err != nil {
		t.Fatalf("ListConnections(%+v): %v", q, err)
	}
	if len(page) > q.Limit {
		t.Fatalf("ListConnections(%+v): %d connections over the limit", q, len(page))
	}
	return page, next
}

// listAll pages through q's listing from q.Cursor to the end and returns
// the connections by id, failing t when one is listed twice or the pages
// do not end.
func listAll(t *testing.T, r registry.Registry, q registry.ListQuery) map[string]registry.Listed {
	t.Helper()
	out := make(map[string]registry.Listed)
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("ListConnections(%+v) has not ended after %d pages", q, pages)
		}
		page, next := listPage(t, r, q)
		for _, l := range page {
			if _, dup := out[l.ConnectionID]; dup {
				t.Fatalf("ListConnections(%+v) listed %q twice", q, l.ConnectionID)
			}
			out[l.ConnectionID] = l
		}
		if next == "" {
			return out
		}
		if next == q.Cursor {
			t.Fatalf("ListConnections(%+v) returned its own cursor", q)
		}
		q.Cursor = next
	}
}
