package cluster_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
)

// tappableConn is a fakeConn that can be tailed.
type tappableConn struct {
	fakeConn
	tap atomic.Pointer[hub.Tap]
}

func (c *tappableConn) SetTap(t hub.Tap) {
	if t == nil {
		c.tap.Store(nil)
		return
	}
	c.tap.Store(&t)
}

// TestStartTailRacesClose: a connection that closes while a tail is being
// started on it, after StartTail found it in the hub and before the tail
// is in place, runs its close path (it leaves the hub, then drops its
// tail) before the tail exists. The tail must not outlive it: a leftover
// tail holds one of the node's inspect.MaxTails and the closed connection
// until it lapses, a minute later.
func TestStartTailRacesClose(t *testing.T) {
	for _, remote := range []bool{false, true} {
		name := "local"
		if remote {
			name = "through another node"
		}
		t.Run(name, func(t *testing.T) {
			net := cluster.NewMemoryNetwork()
			// closeNow, when set, runs the connection's close path the next
			// time the holder's tails read their clock, which Tails.Start
			// does before it records the tail.
			var closeNow atomic.Pointer[func()]
			clock := func() time.Time {
				if f := closeNow.Swap(nil); f != nil {
					(*f)()
				}
				return time.Now()
			}
			tails := inspect.NewTails(clock)
			tails.SetEnabled(true)
			h := hub.New()
			holder := cluster.NewNode(cluster.Config{NodeID: "holder", HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour,
				Log: inspect.NewLog("holder"), Tails: tails}, net.Engine(), h)
			if err := holder.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { holder.Stop(context.Background()) })
			asker := holder
			if remote {
				otherTails := inspect.NewTails(nil)
				otherTails.SetEnabled(true)
				asker = cluster.NewNode(cluster.Config{NodeID: "asker", HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour,
					Log: inspect.NewLog("asker"), Tails: otherTails}, net.Engine(), hub.New())
				if err := asker.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { asker.Stop(context.Background()) })
			}

			c := &tappableConn{fakeConn: fakeConn{id: "conn-1"}}
			h.Add(c)
			if err := holder.Register(context.Background(), record(c.id, "holder")); err != nil {
				t.Fatal(err)
			}
			// The gateway's close path: the edge removes the connection from
			// the hub, then its Disconnect drops the tail and unregisters it.
			closing := func() {
				h.Remove(c)
				tails.Drop(c.id)
				holder.Unregister(context.Background(), c.id)
			}
			closeNow.Store(&closing)
			err := asker.StartTail(context.Background(), c.id)
			if closeNow.Load() != nil {
				t.Fatal("the connection did not close while its tail was started")
			}
			if open := tails.Open(); open != 0 || c.tap.Load() != nil {
				t.Fatalf("after the connection closed, %d tails are open (tap set: %v); StartTail returned %v",
					open, c.tap.Load() != nil, err)
			}
			if !errors.Is(err, cluster.ErrGone) {
				t.Fatalf("StartTail: %v, want ErrGone", err)
			}
		})
	}
}
