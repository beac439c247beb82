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

// mute answers every request with nothing, as a node that cannot read
// its own state.
type mute struct{}

func (mute) HandleRequest([]byte) []byte  { return nil }
func (mute) HandlePublish(string, []byte) {}

// TestListConnectionsNodes: a node lists the connections of a node that
// cannot tell their lastActiveAt without it, and leaves out a record of
// its own that its hub does not hold (the connection is gone).
func TestListConnectionsNodes(t *testing.T) {
	net := cluster.NewMemoryNetwork()
	n := cluster.NewNode(cluster.Config{NodeID: "n1", HeartbeatInterval: time.Hour, NodeTimeout: 3 * time.Hour}, net.Engine(), hub.New())
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	other := net.Engine()
	if err := other.Listen("n2", mute{}); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	for _, rec := range []registry.Record{
		{ConnectionID: "gone", NodeID: "n1", PrincipalID: "p"},
		{ConnectionID: "far", NodeID: "n2", PrincipalID: "p"},
	} {
		if err := net.Register(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	page, next, err := n.ListConnections(ctx, registry.ListQuery{PrincipalID: "p", Limit: 10})
	if err != nil || next != "" {
		t.Fatalf("ListConnections: %v, next %q", err, next)
	}
	if len(page) != 1 || page[0].ConnectionID != "far" || page[0].NodeID != "n2" || !page[0].LastActiveAt.IsZero() {
		t.Fatalf("listed %+v, want only far, without lastActiveAt", page)
	}
	if _, _, err := n.ListConnections(ctx, registry.ListQuery{Limit: 10, Cursor: "bad"}); !errors.Is(err, registry.ErrBadCursor) {
		t.Fatalf("bad cursor: %v, want ErrBadCursor", err)
	}
	if _, _, err := n.ListConnections(ctx, registry.ListQuery{}); !errors.Is(err, registry.ErrBadLimit) {
		t.Fatalf("no limit: %v, want ErrBadLimit", err)
	}
}
