package cluster

import "context"

// Restart makes the network behave like an engine that restarted without
// persistence: every connection record, user index entry and topic
// membership, every heartbeat counter, lost marker and claim is gone. The
// engines stay connected, as clients reconnect to a restarted server.
func (n *MemoryNetwork) Restart() {
	n.mu.Lock()
	nodes := make(map[string]bool)
	for id := range n.listeners {
		nodes[id] = true
	}
	for id := range n.beats {
		nodes[id] = true
	}
	n.beats = make(map[string]uint64)
	n.lost = make(map[string]bool)
	n.claims = make(map[string]claim)
	n.mu.Unlock()
	ctx := context.Background()
	for id := range nodes {
		recs, _ := n.Memory.NodeConnections(ctx, id)
		for _, r := range recs {
			_ = n.Memory.Unregister(ctx, r.ConnectionID)
		}
	}
}

// Lost reports whether a node declared nodeID lost.
func (n *MemoryNetwork) Lost(nodeID string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lost[nodeID]
}
