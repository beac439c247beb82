package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// peer is what this node has seen of another node's heartbeat: its counter
// and when, by this node's clock, the counter last changed. Judging by the
// local clock only, the nodes need no synchronized clocks.
type peer struct {
	counter uint64
	changed time.Time
}

// monitor heartbeats every interval until ctx ends. It owns m.
func (n *Node) monitor(ctx context.Context, m *monitorState) {
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.beat(ctx, m)
	}
}

// readier is implemented by engines that can tell whether they are fully
// connected, including their subscriptions.
type readier interface {
	Ready(ctx context.Context) error
}

type monitorState struct {
	peers map[string]*peer
	// healthySince is when the engine last became reachable; a node judges
	// others only after it has watched them for a full NodeTimeout.
	healthySince time.Time
	first        bool
	// outage is set while the engine is unreachable; the node registers its
	// connections again when it comes back.
	outage      bool
	lostHandled bool
}

func (n *Node) beat(ctx context.Context, m *monitorState) {
	bctx, cancel := n.engineCtx(ctx)
	defer cancel()
	b, err := n.eng.Heartbeat(bctx, n.cfg.NodeID)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if !m.outage {
			n.log.Error("cluster engine unreachable; local connections stay up, calls that need the cluster answer 503", "err", err)
		}
		m.outage, m.healthySince = true, time.Time{}
		n.notReady("cluster engine unreachable")
		return
	}
	now := time.Now()
	if b.Lost && !m.lostHandled {
		// Another node saw this one silent for NodeTimeout and sent
		// $disconnect for its connections: those clients must reconnect.
		m.lostHandled = true
		n.log.Error("this node was declared lost by the cluster; closing its connections")
		n.closeAll()
		m.outage = false
	} else if m.outage || (b.Fresh && !m.first) {
		if err := n.reregister(ctx); err != nil {
			n.log.Warn("registering this node's connections again failed; retrying", "err", err)
			m.outage = true
			n.notReady("registering connections again after an engine outage")
			return
		}
		n.log.Info("cluster engine reachable again; connections registered again")
		m.outage = false
	}
	m.first = false
	if m.healthySince.IsZero() {
		m.healthySince = now
	}
	if r, ok := n.eng.(readier); ok {
		if err := r.Ready(bctx); err != nil {
			// Reachable, but not yet listening: another node's request
			// would find no one.
			n.notReady(err.Error())
			return
		}
	}
	n.ready.Store(true)
	n.retryUnregister(ctx)
	nodes, err := n.eng.Nodes(bctx)
	if err != nil {
		return
	}
	for id, counter := range nodes {
		if id == n.cfg.NodeID {
			continue
		}
		p := m.peers[id]
		if p == nil || p.counter != counter {
			m.peers[id] = &peer{counter: counter, changed: now}
			n.beatsMu.Lock()
			n.beats[id] = now
			n.beatsMu.Unlock()
			continue
		}
		if now.Sub(p.changed) >= n.cfg.NodeTimeout && now.Sub(m.healthySince) >= n.cfg.NodeTimeout {
			n.startCleanup(ctx, id)
		}
	}
	for id := range m.peers {
		if _, ok := nodes[id]; !ok {
			delete(m.peers, id)
			n.beatsMu.Lock()
			delete(n.beats, id)
			n.beatsMu.Unlock()
		}
	}
}

// closeAll closes every local connection as the process would on shutdown.
func (n *Node) closeAll() {
	for _, rec := range n.records() {
		if c := n.hub.Get(rec.ConnectionID); c != nil {
			c.Close(1001, "Going away")
		}
	}
}

func (n *Node) records() []registry.Record {
	if n.cfg.Records == nil {
		return nil
	}
	return n.cfg.Records()
}

// reregister registers every local connection and its topic subscriptions
// again, after the engine lost them or could not be reached.
func (n *Node) reregister(ctx context.Context) error {
	recs := n.records()
	errs := make([]error, len(recs))
	n.each(len(recs), func(i int) {
		ectx, cancel := n.engineCtx(ctx)
		defer cancel()
		errs[i] = n.eng.Register(ectx, recs[i])
	})
	n.topicsMu.RLock()
	subs := make(map[string][]string, len(n.connTopics))
	for id, ts := range n.connTopics {
		subs[id] = append([]string(nil), ts...)
	}
	topics := make([]string, 0, len(n.topics))
	for t := range n.topics {
		topics = append(topics, t)
	}
	n.topicsMu.RUnlock()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for id, ts := range subs {
		for _, t := range ts {
			ectx, cancel := n.engineCtx(ctx)
			err := n.eng.Subscribe(ectx, id, t)
			cancel()
			if err != nil && err != registry.ErrNotFound {
				return err
			}
		}
	}
	for _, t := range topics {
		ectx, cancel := n.engineCtx(ctx)
		err := n.eng.SubscribeTopic(ectx, t)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// startCleanup cleans up after lost node id in the background unless that
// is already under way.
func (n *Node) startCleanup(ctx context.Context, id string) {
	n.cleaningMu.Lock()
	defer n.cleaningMu.Unlock()
	if n.cleaning[id] {
		return
	}
	n.cleaning[id] = true
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.cleanup(ctx, id)
		n.cleaningMu.Lock()
		delete(n.cleaning, id)
		n.cleaningMu.Unlock()
	}()
}

// claimTTL is how long a node holds the cleanup of a lost node before
// another may take it over; a cleanup that has not finished by then is
// taken over, and its remaining connections get their $disconnect from
// the next claimer.
func (n *Node) claimTTL() time.Duration { return 4 * n.cfg.NodeTimeout }

// cleanup takes the claim on lost node id, delivers a $disconnect for each
// of its connections and unregisters each one whose event was delivered.
// Only when every one is done is the node forgotten; otherwise its frozen
// heartbeat makes the survivors try again once the claim expires.
func (n *Node) cleanup(ctx context.Context, id string) {
	cctx, cancel := n.engineCtx(ctx)
	ok, err := n.eng.ClaimNode(cctx, id, n.cfg.NodeID, n.claimTTL())
	cancel()
	if err != nil || !ok {
		return
	}
	cctx, cancel = n.engineCtx(ctx)
	recs, err := n.eng.NodeConnections(cctx, id)
	cancel()
	if err != nil {
		n.log.Warn("could not list a lost node's connections; retrying", "lostNodeId", id, "err", err)
		return
	}
	n.log.Warn("node lost: delivering $disconnect for its connections", "lostNodeId", id, "connections", len(recs))
	reason := "node " + id + " lost"
	var failedMu sync.Mutex
	failed := 0
	n.each(len(recs), func(i int) {
		rec := recs[i]
		if ctx.Err() != nil {
			return
		}
		if n.cfg.Lost != nil {
			if err := n.cfg.Lost(ctx, rec, reason); err != nil {
				failedMu.Lock()
				failed++
				failedMu.Unlock()
				return
			}
		}
		n.owners.drop(rec.ConnectionID)
		uctx, cancel := n.engineCtx(ctx)
		defer cancel()
		if err := n.eng.Unregister(uctx, rec.ConnectionID); err != nil {
			failedMu.Lock()
			failed++
			failedMu.Unlock()
		}
	})
	if failed > 0 || ctx.Err() != nil {
		n.log.Warn("some of a lost node's connections are not cleaned up yet; retrying once the claim expires", "lostNodeId", id, "remaining", failed, "retryAfter", n.claimTTL())
		return
	}
	fctx, cancel := n.engineCtx(ctx)
	defer cancel()
	if err := n.eng.ForgetNode(fctx, id); err != nil {
		n.log.Warn("could not forget a lost node", "lostNodeId", id, "err", err)
		return
	}
	n.log.Info("lost node cleaned up", "lostNodeId", id, "connections", len(recs))
}
