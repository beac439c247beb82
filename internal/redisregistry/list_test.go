package redisregistry_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wsgate/wsgate/internal/redisregistry"
	"github.com/wsgate/wsgate/internal/registry"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestListWalkBudget lists with bounds so low that every listing walks the
// index of every id and is cut short by the walk's budget: the pages,
// some of them empty, still list each connection once.
func TestListWalkBudget(t *testing.T) {
	defer redisregistry.SetListBounds(10, 40)()
	e := newEngine(t, servicetest.Redis(t).URL(), freshPrefix())
	ctx := context.Background()
	const n = 300
	for i := range n {
		id := fmt.Sprintf("c%03d", i)
		rec := registry.Record{ConnectionID: id, NodeID: []string{"a", "b"}[i%2], PrincipalID: []string{"p", "q", "r"}[i%3]}
		if err := e.Register(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := e.Subscribe(ctx, id, "rare"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		q    registry.ListQuery
		want int
	}{
		{registry.ListQuery{Limit: 1000}, n},
		{registry.ListQuery{Limit: 7}, n},
		{registry.ListQuery{Topic: "rare", Limit: 5}, 43},
		{registry.ListQuery{NodeID: "b", Limit: 1000}, n / 2},
		{registry.ListQuery{NodeID: "b", Topic: "rare", Limit: 1000}, 21},
		{registry.ListQuery{PrincipalID: "p", Limit: 1000}, n / 3},
		{registry.ListQuery{PrincipalID: "p", Topic: "rare", Limit: 3}, 15},
	} {
		seen := make(map[string]bool)
		q, pages, short := tc.q, 0, false
		for {
			page, next, err := e.ListConnections(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, l := range page {
				if seen[l.ConnectionID] {
					t.Fatalf("%+v: %s listed twice", tc.q, l.ConnectionID)
				}
				seen[l.ConnectionID] = true
			}
			if next == "" {
				break
			}
			short = short || len(page) < q.Limit
			if pages > n {
				t.Fatalf("%+v: the pages do not end", tc.q)
			}
			q.Cursor = next
		}
		if len(seen) != tc.want {
			t.Fatalf("%+v: listed %d, want %d", tc.q, len(seen), tc.want)
		}
		if !short && tc.q.Limit > 40 {
			t.Fatalf("%+v: no page was cut short by the walk's budget", tc.q)
		}
	}
}
