package registrytest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// slotTTL is the lifetime of the reservations the contract makes when it
// does not wait for them to expire: far longer than any test.
const slotTTL = time.Hour

// runSlots checks ReserveUserSlot and ReleaseUserSlot against registries
// made by newRegistry.
func runSlots(t *testing.T, newRegistry func(t *testing.T) registry.Registry) {
	t.Run("UserSlots", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		reserve := reserver(t, r, slotTTL)
		const p = "alice.*>:{x} ü"
		if !reserve(p, "a", 2) || !reserve(p, "b", 2) {
			t.Fatal("two reservations under a limit of 2 were refused")
		}
		if reserve(p, "c", 2) {
			t.Fatal("a third reservation under a limit of 2 was taken")
		}
		if !reserve(p, "a", 2) {
			t.Fatal("renewing a reservation was refused: it must not count itself")
		}
		if !reserve("bob", "c", 1) {
			t.Fatal("another user's reservation was refused")
		}
		if err := r.ReleaseUserSlot(ctx, p, "a"); err != nil {
			t.Fatalf("ReleaseUserSlot: %v", err)
		}
		if err := r.ReleaseUserSlot(ctx, p, "a"); err != nil {
			t.Fatalf("releasing twice: %v", err)
		}
		if err := r.ReleaseUserSlot(ctx, "nobody", "z"); err != nil {
			t.Fatalf("releasing an unknown reservation: %v", err)
		}
		if !reserve(p, "c", 2) {
			t.Fatal("a released slot was not free")
		}
		// A registered connection counts once, whether it still holds its
		// reservation or not.
		if err := r.Register(ctx, registry.Record{ConnectionID: "b", NodeID: "n", PrincipalID: p}); err != nil {
			t.Fatal(err)
		}
		if reserve(p, "d", 2) {
			t.Fatal("a reservation beside a registered connection and another reservation was taken")
		}
		if err := r.ReleaseUserSlot(ctx, p, "c"); err != nil {
			t.Fatal(err)
		}
		if !reserve(p, "d", 2) {
			t.Fatal("a registered connection that still holds its reservation counted twice")
		}
		if err := r.ReleaseUserSlot(ctx, p, "b"); err != nil {
			t.Fatal(err)
		}
		if reserve(p, "e", 2) {
			t.Fatal("a registered connection stopped counting when its reservation was released")
		}
		// Connections registered without a reservation count too, and
		// stop counting when they are unregistered.
		if err := r.Register(ctx, registry.Record{ConnectionID: "f", NodeID: "n", PrincipalID: "carol"}); err != nil {
			t.Fatal(err)
		}
		if reserve("carol", "g", 1) {
			t.Fatal("a reservation beside a registered connection was taken under a limit of 1")
		}
		if !reserve("carol", "g", 2) {
			t.Fatal("a reservation under a higher limit was refused")
		}
		if err := r.Unregister(ctx, "f"); err != nil {
			t.Fatal(err)
		}
		if err := r.ReleaseUserSlot(ctx, "carol", "g"); err != nil {
			t.Fatal(err)
		}
		if !reserve("carol", "h", 1) {
			t.Fatal("an unregistered connection still counts")
		}
		// A refused reservation leaves none behind, even one the
		// connection held: renewing over the limit gives the slot up.
		if !reserve("dave", "i", 1) {
			t.Fatal("first reservation refused")
		}
		if err := r.Register(ctx, registry.Record{ConnectionID: "j", NodeID: "n", PrincipalID: "dave"}); err != nil {
			t.Fatal(err)
		}
		if reserve("dave", "i", 1) {
			t.Fatal("renewing beside a registered connection under a limit of 1 was taken")
		}
		if err := r.Unregister(ctx, "j"); err != nil {
			t.Fatal(err)
		}
		if !reserve("dave", "k", 1) {
			t.Fatal("a refused renewal kept its reservation")
		}
	})
	t.Run("UserSlotBadInput", func(t *testing.T) {
		r := newRegistry(t)
		ctx := context.Background()
		if _, err := r.ReserveUserSlot(ctx, "", "a", 1, slotTTL); !errors.Is(err, registry.ErrNoPrincipal) {
			t.Fatalf("empty principal: %v, want ErrNoPrincipal", err)
		}
		for _, limit := range []int{0, -1} {
			if _, err := r.ReserveUserSlot(ctx, "alice", "a", limit, slotTTL); !errors.Is(err, registry.ErrBadLimit) {
				t.Fatalf("limit %d: %v, want ErrBadLimit", limit, err)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if ok, err := r.ReserveUserSlot(cctx, "alice", "a", 1, slotTTL); err == nil || ok {
			t.Fatalf("ReserveUserSlot with a canceled context = %v, %v", ok, err)
		}
	})
	t.Run("UserSlotExpiry", func(t *testing.T) {
		// The reservation of a handshake whose node died is never
		// released: it must end by itself.
		r := newRegistry(t)
		ctx := context.Background()
		if !reserver(t, r, time.Second)("alice", "dead", 1) {
			t.Fatal("reservation refused")
		}
		reserve := reserver(t, r, slotTTL)
		if reserve("alice", "a", 1) {
			t.Fatal("a reservation was taken beside one that has not expired")
		}
		deadline := time.Now().Add(30 * time.Second)
		for !reserve("alice", "a", 1) {
			if time.Now().After(deadline) {
				t.Fatal("a reservation never released did not expire")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := r.ReleaseUserSlot(ctx, "alice", "a"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("UserSlotsConcurrent", func(t *testing.T) {
		r := newRegistry(t)
		ConcurrentSlots(t, []registry.Registry{r})
	})
}

// ConcurrentSlots races handshakes of one user through the registries,
// clients of one engine (several nodes, or one), and checks that together
// they never take more slots than the limit: first reservations alone, then
// handshakes that register and release while others reserve.
func ConcurrentSlots(t *testing.T, clients []registry.Registry) {
	t.Helper()
	ctx := context.Background()
	const racers, limit = 20, 3
	run := func(user string, handshake func(r registry.Registry, id string) error) int {
		var won atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			r := clients[i%len(clients)]
			id := fmt.Sprintf("%s-%d", user, i)
			wg.Go(func() {
				<-start
				ok, err := r.ReserveUserSlot(ctx, user, id, limit, slotTTL)
				if err != nil {
					t.Errorf("ReserveUserSlot: %v", err)
					return
				}
				if !ok {
					return
				}
				won.Add(1)
				if handshake != nil {
					if err := handshake(r, id); err != nil {
						t.Errorf("handshake: %v", err)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		return int(won.Load())
	}
	if n := run("alice", nil); n != limit {
		t.Fatalf("%d racing reservations under a limit of %d: %d taken", racers, limit, n)
	}
	// Nothing is ever unregistered here, so however registration and
	// release interleave with the others' reservations, exactly limit
	// handshakes may get through.
	n := run("bob", func(r registry.Registry, id string) error {
		if err := r.Register(ctx, registry.Record{ConnectionID: id, NodeID: "n", PrincipalID: "bob"}); err != nil {
			return err
		}
		return r.ReleaseUserSlot(ctx, "bob", id)
	})
	if n != limit {
		t.Fatalf("%d racing handshakes that register and release under a limit of %d: %d got through", racers, limit, n)
	}
	recs, err := clients[0].UserConnections(ctx, "bob")
	if err != nil || len(recs) != limit {
		t.Fatalf("bob has %d connections (%v), want %d", len(recs), err, limit)
	}
}

// reserver returns a function that reserves with ttl and fails t on an
// error.
func reserver(t *testing.T, r registry.Registry, ttl time.Duration) func(principal, id string, limit int) bool {
	return func(principal, id string, limit int) bool {
		t.Helper()
		ok, err := r.ReserveUserSlot(context.Background(), principal, id, limit, ttl)
		if err != nil {
			t.Fatalf("ReserveUserSlot(%q, %q, %d): %v", principal, id, limit, err)
		}
		return ok
	}
}
