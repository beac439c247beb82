package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
	"github.com/wsgate/wsgate/internal/registry"
)

// ErrGone is returned for a connection that no longer exists anywhere in
// the cluster.
var ErrGone = errors.New("connection is gone")

// ErrSubscriptionLimit is returned by Subscribe for a connection that
// already holds Config.MaxSubscriptionsPerConnection subscriptions.
var ErrSubscriptionLimit = errors.New("the connection holds the most subscriptions allowed")

// ErrUnavailable wraps a failure of the engine: the operation needed the
// cluster and could not reach it within Config.Timeout.
var ErrUnavailable = errors.New("cluster engine unavailable")

// Defaults of Config.
const (
	DefaultHeartbeatInterval = time.Second
	DefaultNodeTimeout       = 5 * time.Second
	DefaultTimeout           = 2 * time.Second
)

// maxRequestBytes bounds one node-to-node request; bigger batches are split.
const maxRequestBytes = 512 << 10

// parallelism bounds the engine calls one operation makes at once.
const parallelism = 16

// Config configures a Node.
type Config struct {
	// NodeID names this process in the cluster. It must be unique among
	// the nodes sharing the engine; gateways draw a random one per start.
	NodeID string
	// HeartbeatInterval is how often the node heartbeats and checks the
	// others. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// NodeTimeout is how long another node's heartbeat may stand still
	// before that node is declared lost. Default DefaultNodeTimeout.
	NodeTimeout time.Duration
	// Timeout bounds every engine call an operation makes; beyond it the
	// operation fails with ErrUnavailable. Default DefaultTimeout.
	Timeout time.Duration
	// Lost is called for every connection of a lost node, to deliver its
	// $disconnect event. An error leaves the connection in the registry and
	// the call is repeated later (at least once delivery). Nil skips it.
	Lost func(ctx context.Context, rec registry.Record, reason string) error
	// Records returns the records of this node's connections; after an
	// engine outage the node registers them again. Nil means none.
	Records func() []registry.Record
	Logger  *slog.Logger

	// MaxSubscriptionsPerConnection caps the topics one connection may
	// subscribe to; the node that holds the connection counts them, so the
	// cap holds whichever node a call reaches. Zero means no cap.
	MaxSubscriptionsPerConnection int

	// Messages returns this node's totals, since it started, of data
	// messages received from clients and sent to them, which Nodes
	// reports. It is called on the goroutine of another node's request and
	// must be cheap. Nil reports zeros.
	Messages func() (received, sent uint64)
	// Standalone reports that the engine is this process's alone (a single
	// gateway's memory engine): there is no cluster, and Nodes
	// reports no heartbeat age.
	Standalone bool
	// Log is this node's record of recent authorizer decisions and
	// refused handshakes, which RecentLog merges with the other nodes';
	// nil keeps none.
	Log *inspect.Log
	// Tails are the message tails of this node's connections; the node
	// sweeps the lapsed ones with its heartbeat. Nil (or off) refuses
	// every tail with ErrTailsOff.
	Tails *inspect.Tails
}

func (c *Config) fill() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = DefaultNodeTimeout
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Node is this process's part of the cluster: it finds the node that holds
// a connection and asks it to act, keeps the local side of topic
// subscriptions, heartbeats, declares silent nodes lost and cleans up
// after them, and registers its connections again after an engine outage.
type Node struct {
	cfg Config
	eng Engine
	hub *hub.Hub
	log *slog.Logger

	// changeMu serializes topic subscription changes, which may wait for
	// the engine, so that the engine's subscription and the local index
	// agree.
	changeMu sync.Mutex
	// topicsMu guards the local topic index.
	topicsMu   sync.RWMutex
	topics     map[string]map[string]hub.Conn // topic → local subscribers by id
	connTopics map[string][]string            // connection id → its topics
	topicNames *btree.BTreeG[string]          // the keys of topics, in byte order, for ListTopics
	subCount   int                            // connection-topic pairs in topics

	owners ownerCache

	// openingMu guards opening: connections of this node whose handshake
	// has not completed, so that they are not in the hub yet, by id.
	openingMu sync.Mutex
	opening   map[string]hub.Conn

	ready       atomic.Bool
	notReadyWhy atomic.Pointer[string]

	cleaningMu sync.Mutex
	cleaning   map[string]bool

	// unregSlots bounds the Unregister calls in flight, so that a mass
	// disconnect does not starve the engine client's connections (and the
	// heartbeat) and time out.
	unregSlots chan struct{}
	// pendingMu guards pending: connections whose Unregister failed or
	// found no slot in time, retried with the heartbeat and at Stop.
	pendingMu sync.Mutex
	pending   map[string]struct{}

	// beatsMu guards beats: when, by this node's clock, each other node's
	// heartbeat last moved.
	beatsMu sync.Mutex
	beats   map[string]time.Time

	// reportMu guards report: what the heartbeat loop learned since the
	// maintenance loop last looked. wake tells the maintenance loop that
	// there is a report.
	reportMu sync.Mutex
	report   beatReport
	wake     chan struct{}
	// settleUntil is when, in Unix nanoseconds, this node's view of the
	// cluster is whole again after an interruption; see settling. It is
	// written under reportMu.
	settleUntil atomic.Int64

	// startedAt is when the node was made; lastBeat is when, in Unix nanoseconds,
	// this node's latest heartbeat succeeded (0 before the first).
	startedAt time.Time
	lastBeat  atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewNode returns a node on eng for the connections in h. Start makes it
// listen and heartbeat.
func NewNode(cfg Config, eng Engine, h *hub.Hub) *Node {
	cfg.fill()
	n := &Node{
		cfg:        cfg,
		eng:        eng,
		hub:        h,
		log:        cfg.Logger.With("component", "cluster", "nodeId", cfg.NodeID),
		topics:     make(map[string]map[string]hub.Conn),
		connTopics: make(map[string][]string),
		topicNames: btree.NewG(32, func(a, b string) bool { return a < b }),
		startedAt:  time.Now(),
		opening:    make(map[string]hub.Conn),
		cleaning:   make(map[string]bool),
		beats:      make(map[string]time.Time),
		unregSlots: make(chan struct{}, parallelism),
		pending:    make(map[string]struct{}),
		wake:       make(chan struct{}, 1),
	}
	why := "not started"
	n.notReadyWhy.Store(&why)
	return n
}

// Start listens for other nodes' requests and starts the heartbeat. The
// node becomes ready with its first successful heartbeat.
func (n *Node) Start() error {
	if err := n.eng.Listen(n.cfg.NodeID, n); err != nil {
		return fmt.Errorf("cluster: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	why := "waiting for the first heartbeat"
	n.notReadyWhy.Store(&why)
	// The first heartbeat is synchronous, so that a node whose engine is
	// up is ready when Start returns; one whose engine is down starts
	// anyway, not ready, within Timeout.
	m := &monitorState{peers: make(map[string]*peer), first: true}
	failing := n.heartbeat(ctx, false)
	select {
	case <-n.wake:
	default:
	}
	n.maintain(ctx, m)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.heartbeatLoop(ctx, failing)
	}()
	go func() {
		defer n.wg.Done()
		n.maintainLoop(ctx, m)
	}()
	return nil
}

// Stop ends the heartbeat and any cleanup of lost nodes, then, when all its
// connections have been unregistered, removes the node's heartbeat record
// so that the others do not wait for it to time out. Stop does not close
// the engine.
func (n *Node) Stop(ctx context.Context) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.wg.Wait()
	n.retryUnregister(ctx)
	fctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	// Connections still registered (their $disconnect did not finish
	// within the shutdown timeout, or the engine did not take their
	// removal) are left to the other nodes, which declare this one lost
	// once its heartbeat stops and clean them up.
	if left, err := n.eng.NodeConnections(fctx, n.cfg.NodeID); err != nil || len(left) > 0 {
		n.log.Warn("leaving this node's remaining connections for the cluster to clean up", "connections", len(left), "err", err)
	} else if err := n.eng.ForgetNode(fctx, n.cfg.NodeID); err != nil {
		n.log.Warn("could not remove this node's heartbeat", "err", err)
	}
	n.ready.Store(false)
	why := "stopped"
	n.notReadyWhy.Store(&why)
}

// Ready reports whether the node reaches its engine; when it does not, the
// reason says why.
func (n *Node) Ready() (bool, string) {
	if n.ready.Load() {
		return true, ""
	}
	return false, *n.notReadyWhy.Load()
}

func (n *Node) notReady(why string) {
	n.notReadyWhy.Store(&why)
	n.ready.Store(false)
}

// engineCtx bounds one engine call.
func (n *Node) engineCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, n.cfg.Timeout)
}

// unavailable wraps an engine error; ErrNotFound and ErrGone pass through.
func unavailable(err error) error {
	if err == nil || errors.Is(err, registry.ErrNotFound) || errors.Is(err, ErrGone) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// connCtx bounds the engine call that registers or unregisters one
// connection. A standalone node's memory engine answers these from its own
// maps without waiting on anything, so they get no deadline: a timer per
// connect and per close was a measurable share of a connect's CPU.
func (n *Node) connCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if n.cfg.Standalone {
		return ctx, func() {}
	}
	return n.engineCtx(ctx)
}

// Register records a connection of this node.
func (n *Node) Register(ctx context.Context, rec registry.Record) error {
	ctx, cancel := n.connCtx(ctx)
	defer cancel()
	return unavailable(n.eng.Register(ctx, rec))
}

// Unregister removes a connection of this node from the registry and from
// the topics it subscribed to. When the engine does not take it within
// Timeout (it is unreachable, or a mass disconnect keeps every slot busy),
// the removal is retried with the following heartbeats and at Stop; Stop
// leaves what still fails to the other nodes.
func (n *Node) Unregister(ctx context.Context, id string) {
	n.topicsMu.RLock()
	_, subscribed := n.connTopics[id]
	n.topicsMu.RUnlock()
	if subscribed {
		n.dropLocalTopics(ctx, id)
	}
	ctx, cancel := n.connCtx(ctx)
	defer cancel()
	select {
	case n.unregSlots <- struct{}{}:
	case <-ctx.Done():
		n.deferUnregister(id, ctx.Err())
		return
	}
	err := n.eng.Unregister(ctx, id)
	<-n.unregSlots
	if err != nil {
		n.deferUnregister(id, err)
	}
}

func (n *Node) deferUnregister(id string, err error) {
	n.pendingMu.Lock()
	first := len(n.pending) == 0
	n.pending[id] = struct{}{}
	n.pendingMu.Unlock()
	if first {
		n.log.Warn("removing closed connections from the registry is delayed; retrying with the heartbeat", "err", err)
	}
}

// retryUnregister removes the connections whose Unregister was deferred.
// It reports how many are still pending.
func (n *Node) retryUnregister(ctx context.Context) int {
	n.pendingMu.Lock()
	ids := make([]string, 0, len(n.pending))
	for id := range n.pending {
		ids = append(ids, id)
	}
	n.pendingMu.Unlock()
	if len(ids) == 0 {
		return 0
	}
	n.each(len(ids), func(i int) {
		if ctx.Err() != nil {
			return
		}
		ectx, cancel := n.engineCtx(ctx)
		defer cancel()
		if n.eng.Unregister(ectx, ids[i]) == nil {
			n.pendingMu.Lock()
			delete(n.pending, ids[i])
			n.pendingMu.Unlock()
		}
	})
	n.pendingMu.Lock()
	left := len(n.pending)
	n.pendingMu.Unlock()
	if left == 0 {
		n.log.Info("delayed registry removals done", "connections", len(ids))
	}
	return left
}

// UserConnections returns the records of principal's connections, oldest
// first.
func (n *Node) UserConnections(ctx context.Context, principal string) ([]registry.Record, error) {
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	recs, err := n.eng.UserConnections(ctx, principal)
	return recs, unavailable(err)
}

// ReserveUserSlot takes one of principal's limit connection slots for
// connection id, cluster-wide, until ttl passes or ReleaseUserSlot; it
// reports false when the user has none free. See registry.Registry.
func (n *Node) ReserveUserSlot(ctx context.Context, principal, id string, limit int, ttl time.Duration) (bool, error) {
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	ok, err := n.eng.ReserveUserSlot(ctx, principal, id, limit, ttl)
	return ok, unavailable(err)
}

// ReleaseUserSlot gives back connection id's slot reservation.
func (n *Node) ReleaseUserSlot(ctx context.Context, principal, id string) error {
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	return unavailable(n.eng.ReleaseUserSlot(ctx, principal, id))
}

// Opening makes Close, called on this node or another, reach c: a
// connection of this node that is registered, or about to be, while its
// handshake completes and it is not yet in the hub. Call it before
// registering c; the returned function ends it, once c is in the hub or
// will never be. The connections that race for a user's slots need it: a
// newer one may close an older one before that one's handshake is done.
func (n *Node) Opening(c hub.Conn) (done func()) {
	id := c.ID()
	n.openingMu.Lock()
	n.opening[id] = c
	n.openingMu.Unlock()
	return func() {
		n.openingMu.Lock()
		if n.opening[id] == c {
			delete(n.opening, id)
		}
		n.openingMu.Unlock()
	}
}

// closable returns this node's connection id, in the hub or opening; nil
// when it has neither.
func (n *Node) closable(id string) hub.Conn {
	if c := n.hub.Get(id); c != nil {
		return c
	}
	n.openingMu.Lock()
	defer n.openingMu.Unlock()
	return n.opening[id]
}

// TopicCount returns how many connections subscribe to topic, cluster-wide.
func (n *Node) TopicCount(ctx context.Context, topic string) (int, error) {
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	c, err := n.eng.TopicCount(ctx, topic)
	return c, unavailable(err)
}

// owner returns the node that holds connection id.
func (n *Node) owner(ctx context.Context, id string) (string, error) {
	if node, ok := n.owners.get(id); ok {
		return node, nil
	}
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	rec, err := n.eng.Lookup(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return "", n.gone()
	}
	if err != nil {
		return "", unavailable(err)
	}
	if rec.NodeID != n.cfg.NodeID {
		n.owners.put(id, rec.NodeID)
	}
	return rec.NodeID, nil
}

// request sends req to node and returns the answer. A node that does not
// listen is gone, and so are its connections, unless its heartbeat still
// moves (or this node is settling and cannot tell): then it is only
// between subscriptions (reconnecting to the engine), and the call is
// unavailable rather than a false 410.
func (n *Node) request(ctx context.Context, node string, req []byte) ([]byte, error) {
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	resp, err := n.eng.Request(ctx, node, req)
	if errors.Is(err, ErrNoNode) {
		if n.heartbeating(node) || n.settling() {
			return nil, errNotListening
		}
		return nil, ErrGone
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return resp, nil
}

// errNotListening is a request to a node that does not listen while its
// heartbeat still moves, as far as this node has seen.
var errNotListening = fmt.Errorf("%w: the connection's node is heartbeating but not listening", ErrUnavailable)

// recheck looks connection id up again after its node did not listen: if
// the record has gone meanwhile (the node was declared lost and cleaned up
// by another node before this one noticed), the connection is gone.
func (n *Node) recheck(ctx context.Context, id string, err error) error {
	if err != errNotListening {
		return err
	}
	n.owners.drop(id)
	ctx, cancel := n.engineCtx(ctx)
	defer cancel()
	if _, lerr := n.eng.Lookup(ctx, id); errors.Is(lerr, registry.ErrNotFound) {
		return n.gone()
	}
	return err
}

// errSettling is a connection the registry does not know while this node
// is settling: its node may not have registered it again yet.
var errSettling = fmt.Errorf("%w: the cluster is registering its connections again after an engine outage", ErrUnavailable)

// settling reports whether this node's view of the cluster may be
// incomplete: from a failed heartbeat (it could not reach the engine) or
// a sign that the engine lost its state, until it has watched the others
// for NodeTimeout again. Meanwhile the other nodes may not have reached
// the engine yet, nor registered their connections again: a live node does
// both within NodeTimeout, or is declared lost. So while settling, a
// connection the registry does not know, or whose node does not listen, is
// unavailable rather than gone.
func (n *Node) settling() bool {
	return time.Now().UnixNano() < n.settleUntil.Load()
}

// gone is the error for a connection the registry does not know.
func (n *Node) gone() error {
	if n.settling() {
		return errSettling
	}
	return ErrGone
}

// heartbeating reports whether node's heartbeat moved within NodeTimeout.
func (n *Node) heartbeating(node string) bool {
	n.beatsMu.Lock()
	t, ok := n.beats[node]
	n.beatsMu.Unlock()
	return ok && time.Since(t) < n.cfg.NodeTimeout
}

func statusErr(s status) error {
	switch s {
	case statusOK:
		return nil
	case statusGone:
		return ErrGone
	case statusLimit:
		return ErrSubscriptionLimit
	default:
		return fmt.Errorf("%w: the connection's node could not reach the engine", ErrUnavailable)
	}
}

// Message is one message for one connection.
type Message struct {
	ConnectionID string
	Data         []byte
}

// Send delivers data to connection id, wherever it is.
func (n *Node) Send(ctx context.Context, id string, data []byte) error {
	return n.SendMany(ctx, []Message{{id, data}})[0]
}

// SendMany delivers each message to its connection and returns one error
// per message: nil, ErrGone or ErrUnavailable. Messages for one node travel
// in one request.
func (n *Node) SendMany(ctx context.Context, msgs []Message) []error {
	errs := make([]error, len(msgs))
	byNode := make(map[string][]int)
	var remote []int
	for i, m := range msgs {
		if c := n.hub.Get(m.ConnectionID); c != nil {
			if c.Send(m.Data) != nil {
				errs[i] = ErrGone
			}
			continue
		}
		remote = append(remote, i)
	}
	if len(remote) == 0 {
		return errs
	}
	nodes := make([]string, len(msgs))
	// Owners already known need no lookup; the others are looked up in
	// parallel.
	var unknown []int
	for _, i := range remote {
		if node, ok := n.owners.get(msgs[i].ConnectionID); ok {
			nodes[i] = node
		} else {
			unknown = append(unknown, i)
		}
	}
	n.each(len(unknown), func(k int) {
		i := unknown[k]
		node, err := n.owner(ctx, msgs[i].ConnectionID)
		if err == nil && node == n.cfg.NodeID {
			// The registry places it here, but it is not in the hub: it is
			// closing.
			err = ErrGone
		}
		errs[i], nodes[i] = err, node
	})
	for _, i := range remote {
		if errs[i] == nil {
			byNode[nodes[i]] = append(byNode[nodes[i]], i)
		}
	}
	// A node's requests go one after the other, so that messages for one
	// connection arrive in the order given; the nodes are asked in
	// parallel.
	perNode := make([][]sendJob, 0, len(byNode))
	for node, idx := range byNode {
		var jobs []sendJob
		for start := 0; start < len(idx); {
			size, end := 0, start
			for end < len(idx) && (end == start || size+len(msgs[idx[end]].Data) < maxRequestBytes) {
				size += len(msgs[idx[end]].Data) + len(msgs[idx[end]].ConnectionID) + 8
				end++
			}
			jobs = append(jobs, sendJob{node, idx[start:end]})
			start = end
		}
		perNode = append(perNode, jobs)
	}
	n.each(len(perNode), func(k int) {
		for _, j := range perNode[k] {
			n.sendRequest(ctx, j, msgs, errs)
		}
	})
	return errs
}

type sendJob struct {
	node string
	idx  []int
}

// sendRequest sends the messages of j in one request to its node and records
// their outcomes in errs.
func (n *Node) sendRequest(ctx context.Context, j sendJob, msgs []Message, errs []error) {
	req := []byte{byte(opSend)}
	req = appendInt(req, len(j.idx))
	for _, i := range j.idx {
		req = appendString(req, msgs[i].ConnectionID)
		req = appendBytes(req, msgs[i].Data)
	}
	resp, err := n.request(ctx, j.node, req)
	if err == nil && len(resp) != len(j.idx) {
		err = fmt.Errorf("%w: %v", ErrUnavailable, errMalformed)
	}
	for k, i := range j.idx {
		if err == nil {
			errs[i] = statusErr(status(resp[k]))
		} else {
			errs[i] = n.recheck(ctx, msgs[i].ConnectionID, err)
		}
		if errs[i] == ErrGone {
			n.owners.drop(msgs[i].ConnectionID)
		}
	}
}

// each runs f(0..count-1) with bounded parallelism and waits.
func (n *Node) each(count int, f func(int)) {
	if count == 1 {
		f(0)
		return
	}
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}(i)
	}
	wg.Wait()
}

// SendToUser delivers data to every connection of principal and returns
// how many took it; none is ErrGone.
func (n *Node) SendToUser(ctx context.Context, principal string, data []byte) (int, error) {
	recs, err := n.UserConnections(ctx, principal)
	if err != nil {
		return 0, err
	}
	msgs := make([]Message, len(recs))
	for i, r := range recs {
		msgs[i] = Message{r.ConnectionID, data}
	}
	delivered := 0
	var firstErr error
	for _, err := range n.SendMany(ctx, msgs) {
		switch {
		case err == nil:
			delivered++
		case errors.Is(err, ErrUnavailable) && firstErr == nil:
			firstErr = err
		}
	}
	if delivered == 0 {
		if firstErr != nil {
			return 0, firstErr
		}
		return 0, ErrGone
	}
	return delivered, nil
}

// ConnInfo is a connection's id with its times and identity.
type ConnInfo struct {
	ID string
	hub.Info
}

// Info returns what GetConnection reports about connection id, from the
// node that holds it.
func (n *Node) Info(ctx context.Context, id string) (hub.Info, error) {
	infos, errs := n.infos(ctx, []string{id})
	return infos[0], errs[0]
}

// UserInfo lists principal's live connections, oldest first.
func (n *Node) UserInfo(ctx context.Context, principal string) ([]ConnInfo, error) {
	recs, err := n.UserConnections(ctx, principal)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ConnectionID
	}
	infos, errs := n.infos(ctx, ids)
	out := make([]ConnInfo, 0, len(ids))
	for i, id := range ids {
		switch {
		case errs[i] == nil:
			out = append(out, ConnInfo{id, infos[i]})
		case !errors.Is(errs[i], ErrGone):
			return nil, errs[i]
		}
	}
	return out, nil
}

func (n *Node) infos(ctx context.Context, ids []string) ([]hub.Info, []error) {
	return n.infosAt(ctx, ids, nil)
}

// infosAt is infos for connections whose nodes, where nodes has them
// (non-empty), are known: those are not looked up.
func (n *Node) infosAt(ctx context.Context, ids, known []string) ([]hub.Info, []error) {
	infos := make([]hub.Info, len(ids))
	errs := make([]error, len(ids))
	nodes := make([]string, len(ids))
	var remote []int
	for i, id := range ids {
		if c := n.hub.Get(id); c != nil {
			infos[i] = c.Info()
			continue
		}
		remote = append(remote, i)
	}
	n.each(len(remote), func(k int) {
		i := remote[k]
		var node string
		var err error
		if known != nil && known[i] != "" {
			node = known[i]
		} else {
			node, err = n.owner(ctx, ids[i])
		}
		if err == nil && node == n.cfg.NodeID {
			err = ErrGone
		}
		nodes[i], errs[i] = node, err
	})
	byNode := make(map[string][]int)
	for _, i := range remote {
		if errs[i] == nil {
			byNode[nodes[i]] = append(byNode[nodes[i]], i)
		}
	}
	var jobs []sendJob
	for node, idx := range byNode {
		jobs = append(jobs, sendJob{node, idx})
	}
	n.each(len(jobs), func(k int) {
		j := jobs[k]
		req := appendInt([]byte{byte(opInfo)}, len(j.idx))
		for _, i := range j.idx {
			req = appendString(req, ids[i])
		}
		resp, err := n.request(ctx, j.node, req)
		r := reader{b: resp}
		for _, i := range j.idx {
			if err != nil {
				errs[i] = n.recheck(ctx, ids[i], err)
				continue
			}
			st := status(r.byte())
			in := r.info()
			if r.err != nil {
				errs[i] = fmt.Errorf("%w: %v", ErrUnavailable, r.err)
				continue
			}
			infos[i], errs[i] = in, statusErr(st)
		}
	})
	return infos, errs
}

// Listed is a connection as ListConnections returns it.
type Listed struct {
	registry.Listed
	// LastActiveAt is when the connection last sent or received a
	// message, from the node that holds it; zero when that node could not
	// be asked.
	LastActiveAt time.Time
}

// ListConnections returns a page of the cluster's connections that match
// q and the cursor of the next page ("" after the last), as
// registry.Registry.ListConnections does, with each connection's
// LastActiveAt from its node: one request per node on the page. A
// connection that its node no longer holds is left out. A bad cursor or
// limit is registry.ErrBadCursor or registry.ErrBadLimit.
func (n *Node) ListConnections(ctx context.Context, q registry.ListQuery) ([]Listed, string, error) {
	ectx, cancel := n.engineCtx(ctx)
	page, next, err := n.eng.ListConnections(ectx, q)
	cancel()
	if errors.Is(err, registry.ErrBadCursor) || errors.Is(err, registry.ErrBadLimit) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", unavailable(err)
	}
	ids := make([]string, len(page))
	nodes := make([]string, len(page))
	for i, l := range page {
		ids[i], nodes[i] = l.ConnectionID, l.NodeID
	}
	infos, errs := n.infosAt(ctx, ids, nodes)
	out := make([]Listed, 0, len(page))
	for i, l := range page {
		if errors.Is(errs[i], ErrGone) {
			continue
		}
		c := Listed{Listed: l}
		if errs[i] == nil {
			c.LastActiveAt = infos[i].LastActiveAt
		}
		out = append(out, c)
	}
	return out, next, nil
}

// Close closes connection id with code and reason on its node, also while
// its handshake completes (see Opening).
func (n *Node) Close(ctx context.Context, id string, code int, reason string) error {
	if c := n.closable(id); c != nil {
		c.Close(code, reason)
		return nil
	}
	node, err := n.owner(ctx, id)
	if err != nil {
		return err
	}
	if node == n.cfg.NodeID {
		return ErrGone
	}
	req := appendString([]byte{byte(opClose)}, id)
	req = appendInt(req, code)
	req = appendString(req, reason)
	return n.oneStatus(ctx, node, req, id)
}

func (n *Node) oneStatus(ctx context.Context, node string, req []byte, id string) error {
	resp, err := n.request(ctx, node, req)
	err = n.recheck(ctx, id, err)
	if err == nil && len(resp) != 1 {
		err = fmt.Errorf("%w: %v", ErrUnavailable, errMalformed)
	}
	if err == nil {
		err = statusErr(status(resp[0]))
	}
	if err == ErrGone {
		n.owners.drop(id)
	}
	return err
}

// Subscribe adds connection id to topic on the node that holds it.
func (n *Node) Subscribe(ctx context.Context, id, topic string) error {
	return n.changeTopic(ctx, opSubscribe, id, topic)
}

// Unsubscribe removes connection id from topic on the node that holds it.
func (n *Node) Unsubscribe(ctx context.Context, id, topic string) error {
	return n.changeTopic(ctx, opUnsubscribe, id, topic)
}

func (n *Node) changeTopic(ctx context.Context, o op, id, topic string) error {
	if c := n.hub.Get(id); c != nil {
		if o == opSubscribe {
			return n.subscribeLocal(ctx, c, topic)
		}
		return n.unsubscribeLocal(ctx, id, topic)
	}
	node, err := n.owner(ctx, id)
	if err != nil {
		return err
	}
	if node == n.cfg.NodeID {
		return ErrGone
	}
	req := appendString([]byte{byte(o)}, id)
	req = appendString(req, topic)
	return n.oneStatus(ctx, node, req, id)
}

// subscribeLocal records the subscription in the registry and in the local
// index, and subscribes the node to the topic when it is the first local
// subscriber. A new subscription beyond MaxSubscriptionsPerConnection is
// ErrSubscriptionLimit.
func (n *Node) subscribeLocal(ctx context.Context, c hub.Conn, topic string) error {
	id := c.ID()
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	if limit := n.cfg.MaxSubscriptionsPerConnection; limit > 0 {
		n.topicsMu.RLock()
		_, held := n.topics[topic][id]
		count := len(n.connTopics[id])
		n.topicsMu.RUnlock()
		if !held && count >= limit {
			return ErrSubscriptionLimit
		}
	}
	ectx, cancel := n.engineCtx(ctx)
	defer cancel()
	if err := n.eng.Subscribe(ectx, id, topic); err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			// A local connection: it is closing, or not registered
			// again yet after an engine outage.
			return n.gone()
		}
		return unavailable(err)
	}
	n.topicsMu.RLock()
	subs, known := n.topics[topic]
	_, dup := subs[id]
	n.topicsMu.RUnlock()
	if dup {
		return nil
	}
	if !known {
		if err := n.eng.SubscribeTopic(ectx, topic); err != nil {
			_ = n.eng.Unsubscribe(ectx, id, topic)
			return unavailable(err)
		}
	}
	n.topicsMu.Lock()
	if n.topics[topic] == nil {
		n.topics[topic] = make(map[string]hub.Conn)
		n.topicNames.ReplaceOrInsert(topic)
	}
	if _, dup := n.topics[topic][id]; !dup {
		n.subCount++
		n.connTopics[id] = append(n.connTopics[id], topic)
	}
	n.topics[topic][id] = c
	n.topicsMu.Unlock()
	// A connection that closed meanwhile may have been unregistered before
	// the entry above existed, so that Unregister did not drop it: the
	// connection leaves the hub before it is unregistered, so one that is
	// still in the hub now will find the entry when it is.
	if n.hub.Get(id) != c {
		if n.removeLocal(id, topic) {
			if err := n.eng.UnsubscribeTopic(ectx, topic); err != nil {
				n.log.Warn("could not unsubscribe the node from a topic", "topic", topic, "err", err)
			}
		}
		_ = n.eng.Unsubscribe(ectx, id, topic)
		return n.gone()
	}
	return nil
}

func (n *Node) unsubscribeLocal(ctx context.Context, id, topic string) error {
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	ectx, cancel := n.engineCtx(ctx)
	defer cancel()
	if err := n.eng.Unsubscribe(ectx, id, topic); err != nil {
		return unavailable(err)
	}
	if n.removeLocal(id, topic) {
		if err := n.eng.UnsubscribeTopic(ectx, topic); err != nil {
			n.log.Warn("could not unsubscribe the node from a topic", "topic", topic, "err", err)
		}
	}
	return nil
}

// removeLocal drops id from topic's local subscribers and reports whether
// the topic has none left.
func (n *Node) removeLocal(id, topic string) (last bool) {
	n.topicsMu.Lock()
	defer n.topicsMu.Unlock()
	subs, ok := n.topics[topic]
	if !ok {
		return false
	}
	if _, held := subs[id]; !held {
		return false
	}
	delete(subs, id)
	n.subCount--
	ts := n.connTopics[id]
	for i, t := range ts {
		if t == topic {
			ts = append(ts[:i], ts[i+1:]...)
			break
		}
	}
	if len(ts) == 0 {
		delete(n.connTopics, id)
	} else {
		n.connTopics[id] = ts
	}
	if len(subs) == 0 {
		delete(n.topics, topic)
		n.topicNames.Delete(topic)
		return true
	}
	return false
}

// dropLocalTopics removes a closed connection from the local index and
// unsubscribes the node from topics left without local subscribers. The
// registry's side goes with Unregister.
func (n *Node) dropLocalTopics(ctx context.Context, id string) {
	n.changeMu.Lock()
	defer n.changeMu.Unlock()
	n.topicsMu.RLock()
	topics := append([]string(nil), n.connTopics[id]...)
	n.topicsMu.RUnlock()
	for _, t := range topics {
		if n.removeLocal(id, t) {
			ectx, cancel := n.engineCtx(ctx)
			if err := n.eng.UnsubscribeTopic(ectx, t); err != nil {
				n.log.Warn("could not unsubscribe the node from a topic", "topic", t, "err", err)
			}
			cancel()
		}
	}
}

// localSubscribers returns topic's subscribers on this node.
func (n *Node) localSubscribers(topic string) []hub.Conn {
	n.topicsMu.RLock()
	defer n.topicsMu.RUnlock()
	subs := n.topics[topic]
	if len(subs) == 0 {
		return nil
	}
	out := make([]hub.Conn, 0, len(subs))
	for _, c := range subs {
		out = append(out, c)
	}
	return out
}

// Publish delivers data to topic's subscribers on this node and publishes
// it to the nodes that have others. It returns how many subscribers it
// reached here plus how many the registry counts elsewhere.
func (n *Node) Publish(ctx context.Context, topic string, data []byte) (int, error) {
	local := n.localSubscribers(topic)
	ectx, cancel := n.engineCtx(ctx)
	defer cancel()
	total, err := n.eng.TopicCount(ectx, topic)
	if err != nil {
		return 0, unavailable(err)
	}
	if total > len(local) {
		if err := n.eng.Publish(ectx, topic, encodePublication(n.cfg.NodeID, data)); err != nil {
			return 0, unavailable(err)
		}
	}
	delivered := hub.Broadcast(local, data)
	return delivered + max(total-len(local), 0), nil
}

// HandlePublish implements Handler: a publication from another node goes
// to this node's subscribers.
func (n *Node) HandlePublish(topic string, msg []byte) {
	origin, data, err := decodePublication(msg)
	if err != nil {
		n.log.Warn("dropped a malformed publication", "topic", topic)
		return
	}
	if origin == n.cfg.NodeID {
		return
	}
	hub.Broadcast(n.localSubscribers(topic), data)
}

// HandleRequest implements Handler: it performs another node's request on
// this node's connections.
func (n *Node) HandleRequest(req []byte) []byte {
	r := reader{b: req}
	switch op(r.byte()) {
	case opSend:
		count := int(r.uvarint())
		if r.err != nil || count > len(r.b) {
			break
		}
		out := make([]byte, 0, count)
		for i := 0; i < count; i++ {
			id, data := r.string(), r.bytes()
			if r.err != nil {
				return []byte{byte(statusFail)}
			}
			st := statusGone
			if c := n.hub.Get(id); c != nil && c.Send(data) == nil {
				st = statusOK
			}
			out = append(out, byte(st))
		}
		return out
	case opInfo:
		count := int(r.uvarint())
		if r.err != nil || count > len(r.b) {
			break
		}
		var out []byte
		for i := 0; i < count; i++ {
			id := r.string()
			if r.err != nil {
				return []byte{byte(statusFail)}
			}
			if c := n.hub.Get(id); c != nil {
				out = appendInfo(append(out, byte(statusOK)), c.Info())
			} else {
				out = appendInfo(append(out, byte(statusGone)), hub.Info{})
			}
		}
		return out
	case opClose:
		id, code, reason := r.string(), int(r.uvarint()), r.string()
		if r.err != nil {
			break
		}
		c := n.closable(id)
		if c == nil {
			return []byte{byte(statusGone)}
		}
		c.Close(code, reason)
		return []byte{byte(statusOK)}
	case opStats:
		if len(r.b) != 0 {
			break
		}
		return appendStats([]byte{byte(statusOK)}, n.localStats())
	case opTopics:
		prefix, after, limit := r.string(), r.string(), r.uvarint()
		if r.err != nil || limit < 1 || limit > MaxTopicPage+1 {
			break
		}
		return appendTopicPage([]byte{byte(statusOK)}, n.localTopics(prefix, after, int(limit)))
	case opSubscribe, opUnsubscribe:
		o := op(req[0])
		id, topic := r.string(), r.string()
		if r.err != nil {
			break
		}
		c := n.hub.Get(id)
		if c == nil {
			return []byte{byte(statusGone)}
		}
		var err error
		if o == opSubscribe {
			err = n.subscribeLocal(context.Background(), c, topic)
		} else {
			err = n.unsubscribeLocal(context.Background(), id, topic)
		}
		switch {
		case err == nil:
			return []byte{byte(statusOK)}
		case errors.Is(err, ErrGone):
			return []byte{byte(statusGone)}
		case errors.Is(err, ErrSubscriptionLimit):
			return []byte{byte(statusLimit)}
		default:
			return []byte{byte(statusFail)}
		}
	case opLog, opTailStart, opTailRead, opTailStop:
		if resp, ok := n.handleInspect(op(req[0]), &r); ok {
			return resp
		}
	}
	n.log.Warn("dropped a malformed request from another node")
	return []byte{byte(statusFail)}
}
