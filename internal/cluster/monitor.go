package cluster

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// A node runs two loops. The heartbeat loop only heartbeats, every
// HeartbeatInterval, and reports what it learned; nothing else it does can
// hold it up, so that a live node's heartbeat keeps moving while the node
// registers its connections again after an engine outage, however long
// that takes. The maintenance loop, woken by each report, does the rest:
// it registers the connections again when the engine lost them or could
// not be reached, closes them when the node was declared lost, keeps the
// readiness, retries deferred removals and watches the other nodes.

// peer is what this node has seen of another node's heartbeat: its counter
// and when, by this node's clock, it first saw that counter. Judging by the
// local clock only, the nodes need no synchronized clocks.
type peer struct {
	counter uint64
	seen    time.Time
}

// beatReport is what the heartbeat loop learned since the maintenance loop
// last took the report.
type beatReport struct {
	// beats counts the heartbeats made.
	beats int
	// failure is the error of the latest heartbeat that failed, if any did.
	failure error
	// ok reports whether the latest heartbeat succeeded.
	ok bool
	// fresh and lost report that any of the successful heartbeats was
	// Fresh, or Lost.
	fresh, lost bool
}

// heartbeatLoop heartbeats every interval until ctx ends. failing says
// whether the heartbeat before the first failed.
func (n *Node) heartbeatLoop(ctx context.Context, failing bool) {
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		failing = n.heartbeat(ctx, failing)
		n.cfg.Tails.Sweep()
	}
}

// heartbeat makes one heartbeat, adds it to the report and wakes the
// maintenance loop. failing says whether the previous heartbeat failed; it
// returns whether this one did.
func (n *Node) heartbeat(ctx context.Context, failing bool) bool {
	bctx, cancel := n.engineCtx(ctx)
	b, err := n.eng.Heartbeat(bctx, n.cfg.NodeID)
	cancel()
	if err != nil && ctx.Err() != nil {
		return failing
	}
	n.reportMu.Lock()
	r := &n.report
	r.beats++
	r.ok = err == nil
	var ee *EngineError
	unusable := errors.As(err, &ee)
	if err != nil {
		r.failure = err
		// Not ready and settling from now on; only the maintenance loop
		// ends either, after it has taken this report.
		if unusable {
			n.notReady(ee.Reason)
		} else {
			n.notReady("cluster engine unreachable")
		}
		n.settleUntil.Store(math.MaxInt64)
	} else {
		r.fresh = r.fresh || b.Fresh
		r.lost = r.lost || b.Lost
		n.lastBeat.Store(time.Now().UnixNano())
	}
	n.reportMu.Unlock()
	switch {
	case err == nil || failing:
	case unusable:
		n.log.Error("cluster engine unusable; local connections stay up, calls that need the cluster answer 503", "err", err)
	default:
		n.log.Error("cluster engine unreachable; local connections stay up, calls that need the cluster answer 503", "err", err)
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return err != nil
}

// takeReport returns the report and starts a new one.
func (n *Node) takeReport() beatReport {
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	r := n.report
	n.report = beatReport{}
	return r
}

// setReady makes the node ready unless a heartbeat failed since the
// maintenance loop took the report.
func (n *Node) setReady() {
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	if n.report.failure == nil {
		n.ready.Store(true)
	}
}

// unsettle starts settling: this node's view of the others is interrupted.
func (n *Node) unsettle() {
	n.reportMu.Lock()
	n.settleUntil.Store(math.MaxInt64)
	n.reportMu.Unlock()
}

// watching ends an open-ended settling period NodeTimeout from now, when
// this node has just looked at the others again, unless a heartbeat failed
// since the maintenance loop took the report.
func (n *Node) watching(now time.Time) {
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	if n.report.failure == nil && n.settleUntil.Load() == math.MaxInt64 {
		n.settleUntil.Store(now.Add(n.cfg.NodeTimeout).UnixNano())
	}
}

// maintainLoop runs maintain after each heartbeat until ctx ends. It owns
// m.
func (n *Node) maintainLoop(ctx context.Context, m *monitorState) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		n.maintain(ctx, m)
	}
}

// readier is implemented by engines that can tell whether they are fully
// connected, including their subscriptions.
type readier interface {
	Ready(ctx context.Context) error
}

// monitorState is the maintenance loop's.
type monitorState struct {
	// peers is what this node has watched of the others since it last
	// reached the engine without interruption.
	peers map[string]*peer
	first bool
	// outage is set from a failed heartbeat until the node has registered
	// its connections again.
	outage      bool
	lostHandled bool
}

// forgetPeers starts watching the others afresh: what was seen before an
// interruption (this node could not reach the engine, or the engine lost
// its state) says nothing about how long they have been silent. The node
// settles until it has watched them for NodeTimeout again.
func (n *Node) forgetPeers(m *monitorState) {
	clear(m.peers)
	n.unsettle()
}

// maintain acts on the heartbeats reported since its last run.
func (n *Node) maintain(ctx context.Context, m *monitorState) {
	r := n.takeReport()
	if r.beats == 0 {
		return
	}
	if r.failure != nil {
		m.outage = true
		n.forgetPeers(m)
	}
	if !r.ok {
		return
	}
	// A Fresh heartbeat after the first: the engine holds no record of
	// this node's earlier ones, it lost its state.
	lostState := r.fresh && !m.first
	if lostState {
		n.forgetPeers(m)
	}
	if r.lost && !m.lostHandled {
		// Another node saw this one silent for NodeTimeout and sent
		// $disconnect for its connections: those clients must reconnect.
		m.lostHandled = true
		n.log.Error("this node was declared lost by the cluster; closing its connections")
		n.closeAll()
		m.outage = false
	} else if m.outage || lostState {
		// The heartbeat loop keeps beating meanwhile, however long this
		// takes.
		if err := n.reregister(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.log.Warn("registering this node's connections again failed; retrying", "err", err)
			m.outage = true
			n.notReady("registering connections again after an engine outage")
			return
		}
		n.log.Info("cluster engine reachable again; connections registered again")
		m.outage = false
	}
	m.first = false
	bctx, cancel := n.engineCtx(ctx)
	defer cancel()
	if r, ok := n.eng.(readier); ok {
		if err := r.Ready(bctx); err != nil {
			// Reachable, but not yet listening (another node's request
			// would find no one), or unusable.
			var ee *EngineError
			if errors.As(err, &ee) {
				n.notReady(ee.Reason)
			} else {
				n.notReady(err.Error())
			}
			return
		}
	}
	n.setReady()
	n.retryUnregister(ctx)
	n.watch(ctx, m)
}

// watch looks at the other nodes' heartbeats and cleans up after each one
// whose counter this node has seen stand still for NodeTimeout. A counter
// is taken to have changed when the Nodes call that saw it returned, and
// to stand still as of when the next call began, so that the time this
// node spent elsewhere, or waiting for the engine, never counts as the
// others' silence.
func (n *Node) watch(ctx context.Context, m *monitorState) {
	bctx, cancel := n.engineCtx(ctx)
	defer cancel()
	asked := time.Now()
	nodes, err := n.eng.Nodes(bctx)
	now := time.Now()
	if err != nil {
		n.forgetPeers(m)
		return
	}
	n.watching(now)
	for id, counter := range nodes {
		if id == n.cfg.NodeID {
			continue
		}
		p := m.peers[id]
		if p == nil || p.counter != counter {
			m.peers[id] = &peer{counter: counter, seen: now}
			n.beatsMu.Lock()
			n.beats[id] = now
			n.beatsMu.Unlock()
			continue
		}
		if asked.Sub(p.seen) >= n.cfg.NodeTimeout {
			n.startCleanup(ctx, id, counter)
		}
	}
	for id := range m.peers {
		if _, ok := nodes[id]; !ok {
			delete(m.peers, id)
		}
	}
	n.beatsMu.Lock()
	for id := range n.beats {
		if _, ok := nodes[id]; !ok {
			delete(n.beats, id)
		}
	}
	n.beatsMu.Unlock()
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

// startCleanup cleans up after lost node id, whose heartbeat stood at
// counter, in the background unless that is already under way.
func (n *Node) startCleanup(ctx context.Context, id string, counter uint64) {
	n.cleaningMu.Lock()
	defer n.cleaningMu.Unlock()
	if n.cleaning[id] {
		return
	}
	n.cleaning[id] = true
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.cleanup(ctx, id, counter)
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
//
// A node whose heartbeat has moved from counter by the time the claim is
// taken, or whose heartbeat record is gone (it stopped, or the engine lost
// its state), is left alone: it was stalled, not lost.
func (n *Node) cleanup(ctx context.Context, id string, counter uint64) {
	cctx, cancel := n.engineCtx(ctx)
	ok, err := n.eng.ClaimNode(cctx, id, n.cfg.NodeID, n.claimTTL())
	cancel()
	if err != nil || !ok {
		return
	}
	cctx, cancel = n.engineCtx(ctx)
	nodes, err := n.eng.Nodes(cctx)
	cancel()
	if err != nil {
		n.log.Warn("could not check a lost node's heartbeat again; retrying once the claim expires", "lostNodeId", id, "err", err)
		return
	}
	if now, ok := nodes[id]; !ok || now != counter {
		n.log.Info("a node taken for lost heartbeats again; leaving it alone", "lostNodeId", id)
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
