package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// InspectTimeout bounds the wait for each other node's answer in Nodes and
// ListTopics: a node that has not answered by then is unreachable.
const InspectTimeout = time.Second

// MaxTopicPage is the most topics one ListTopics call returns.
const MaxTopicPage = 1000

// NodeStats is what a node reports about itself.
type NodeStats struct {
	// Connections counts the node's live connections, and Subscriptions
	// its connection-topic pairs.
	Connections, Subscriptions int
	// MessagesReceived and MessagesSent are the totals Config.Messages
	// reports.
	MessagesReceived, MessagesSent uint64
	// StartedAt is when the node started.
	StartedAt time.Time
}

// NodeStatus is one node of the cluster as Nodes reports it.
type NodeStatus struct {
	NodeID string
	// Self marks the node that answers.
	Self bool
	// Reachable reports that the node answered within InspectTimeout;
	// NodeStats is zero when it did not.
	Reachable bool
	// HeartbeatAge is how long ago, by the answering node's clock, the
	// node's heartbeat was last seen to advance; for Self, how long ago
	// its own last heartbeat succeeded. Negative when unknown: the node has
	// not been watched yet, or the node is Standalone.
	HeartbeatAge time.Duration
	NodeStats
}

// UnreachableError is a node that did not answer within InspectTimeout,
// without whose answer a cluster-wide result would be wrong. It wraps
// ErrUnavailable.
type UnreachableError struct {
	NodeID string
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("node %s did not answer within %v", e.NodeID, InspectTimeout)
}

func (e *UnreachableError) Unwrap() error { return ErrUnavailable }

// localStats is what this node reports about itself.
func (n *Node) localStats() NodeStats {
	n.topicsMu.RLock()
	subs := n.subCount
	n.topicsMu.RUnlock()
	st := NodeStats{Connections: n.hub.Len(), Subscriptions: subs, StartedAt: n.startedAt}
	if n.cfg.Messages != nil {
		st.MessagesReceived, st.MessagesSent = n.cfg.Messages()
	}
	return st
}

// members returns the ids of the cluster's nodes in byte order: this one
// and every one with a heartbeat record.
func (n *Node) members(ctx context.Context) ([]string, error) {
	ectx, cancel := n.engineCtx(ctx)
	nodes, err := n.eng.Nodes(ectx)
	cancel()
	if err != nil {
		return nil, unavailable(err)
	}
	ids := make([]string, 0, len(nodes)+1)
	ids = append(ids, n.cfg.NodeID)
	for id := range nodes {
		if id != n.cfg.NodeID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ask sends req to another node and waits at most InspectTimeout for the
// answer, which must start with statusOK; it returns the rest.
func (n *Node) ask(ctx context.Context, node string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, InspectTimeout)
	defer cancel()
	resp, err := n.eng.Request(ctx, node, req)
	if err != nil {
		return nil, err
	}
	if len(resp) == 0 || status(resp[0]) != statusOK {
		return nil, errMalformed
	}
	return resp[1:], nil
}

// Nodes returns every node of the cluster, in byte order of id, with what
// each reports about itself: this node, and every node with a heartbeat
// record in the engine. The others are asked in parallel; one that does not
// answer within InspectTimeout is listed unreachable. Nodes fails, with
// ErrUnavailable, only when the engine cannot list the nodes.
func (n *Node) Nodes(ctx context.Context) ([]NodeStatus, error) {
	ids, err := n.members(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]NodeStatus, len(ids))
	n.beatsMu.Lock()
	for i, id := range ids {
		out[i] = NodeStatus{NodeID: id, HeartbeatAge: -1}
		if t, ok := n.beats[id]; ok && id != n.cfg.NodeID {
			out[i].HeartbeatAge = max(now.Sub(t), 0)
		}
	}
	n.beatsMu.Unlock()
	n.each(len(ids), func(i int) {
		s := &out[i]
		if s.NodeID == n.cfg.NodeID {
			s.Self, s.Reachable, s.NodeStats = true, true, n.localStats()
			s.HeartbeatAge = -1
			if last := n.lastBeat.Load(); last != 0 && !n.cfg.Standalone {
				s.HeartbeatAge = max(now.Sub(time.Unix(0, last)), 0)
			}
			return
		}
		resp, err := n.ask(ctx, s.NodeID, []byte{byte(opStats)})
		if err != nil {
			return
		}
		r := reader{b: resp}
		st := r.stats()
		if r.err == nil {
			s.Reachable, s.NodeStats = true, st
		}
	})
	return out, nil
}

// TopicQuery selects a page of the cluster's topics: those whose names
// start with Prefix ("" for any) and sort after After ("" to start at the
// first), the first Limit of them (1 to MaxTopicPage).
type TopicQuery struct {
	Prefix string
	After  string
	Limit  int
}

// TopicSubscribers is a topic and how many connections subscribe to it.
type TopicSubscribers struct {
	Topic       string
	Subscribers int
}

// ListTopics returns the first q.Limit topics that q selects among those
// with at least one subscriber anywhere in the cluster, in byte order of
// the name, with their subscribers counted over every node, and reports
// whether more follow. Each node (this one and every other with a
// heartbeat record) is asked for its own first q.Limit+1, which it reads
// off a sorted index; the pages are merged, counts summed. That is exact:
// a topic among the cluster's first q.Limit is among the first q.Limit of
// every node that has subscribers to it.
//
// A node that does not answer within InspectTimeout fails the call with an
// *UnreachableError, since the listing would be wrong without it. A limit
// out of range is registry.ErrBadLimit.
func (n *Node) ListTopics(ctx context.Context, q TopicQuery) ([]TopicSubscribers, bool, error) {
	if q.Limit < 1 || q.Limit > MaxTopicPage {
		return nil, false, registry.ErrBadLimit
	}
	ids, err := n.members(ctx)
	if err != nil {
		return nil, false, err
	}
	req := []byte{byte(opTopics)}
	req = appendString(req, q.Prefix)
	req = appendString(req, q.After)
	req = appendInt(req, q.Limit+1)
	pages := make([][]TopicSubscribers, len(ids))
	errs := make([]error, len(ids))
	n.each(len(ids), func(i int) {
		if ids[i] == n.cfg.NodeID {
			pages[i] = n.localTopics(q.Prefix, q.After, q.Limit+1)
			return
		}
		resp, err := n.ask(ctx, ids[i], req)
		if err == nil {
			pages[i], err = decodeTopicPage(resp, q, q.Limit+1)
		}
		if err != nil {
			errs[i] = &UnreachableError{NodeID: ids[i]}
		}
	})
	for _, err := range errs {
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, false, unavailable(ctx.Err())
		}
		return nil, false, err
	}
	items, more := mergeTopics(pages, q.Limit)
	return items, more, nil
}

// localTopics returns this node's first limit topics that start with
// prefix and sort after after, with their local subscriber counts. It
// walks the sorted index from the first candidate: O(log T + limit) for T
// local topics, under the index's read lock.
func (n *Node) localTopics(prefix, after string, limit int) []TopicSubscribers {
	start := prefix
	if after >= start {
		// The smallest name that sorts after after.
		start = after + "\x00"
	}
	var out []TopicSubscribers
	n.topicsMu.RLock()
	defer n.topicsMu.RUnlock()
	n.topicNames.AscendGreaterOrEqual(start, func(t string) bool {
		if !strings.HasPrefix(t, prefix) {
			// The names with prefix are contiguous in byte order: past
			// them, none follows.
			return false
		}
		out = append(out, TopicSubscribers{Topic: t, Subscribers: len(n.topics[t])})
		return len(out) < limit
	})
	return out
}

func appendTopicPage(b []byte, page []TopicSubscribers) []byte {
	b = appendInt(b, len(page))
	for _, t := range page {
		b = appendString(b, t.Topic)
		b = appendInt(b, t.Subscribers)
	}
	return b
}

// decodeTopicPage decodes another node's answer to q, which must hold at
// most limit topics, each selected by q, in strictly increasing order:
// the merge relies on it.
func decodeTopicPage(b []byte, q TopicQuery, limit int) ([]TopicSubscribers, error) {
	r := reader{b: b}
	count := r.uvarint()
	if r.err != nil || count > uint64(limit) || count > uint64(len(r.b)) {
		return nil, errMalformed
	}
	page := make([]TopicSubscribers, 0, count)
	prev := q.After
	for range count {
		t := TopicSubscribers{Topic: r.string(), Subscribers: int(r.uvarint())}
		if r.err != nil || !strings.HasPrefix(t.Topic, q.Prefix) || t.Topic <= prev || t.Subscribers < 1 {
			return nil, errMalformed
		}
		prev = t.Topic
		page = append(page, t)
	}
	if len(r.b) != 0 {
		return nil, errMalformed
	}
	return page, nil
}

// mergeTopics merges pages, each sorted by topic, summing the counts of a
// topic that several hold, and returns the first limit topics and whether
// more follow. Each step looks at every page's head: O(k) for k pages,
// where k is the number of nodes.
func mergeTopics(pages [][]TopicSubscribers, limit int) ([]TopicSubscribers, bool) {
	next := make([]int, len(pages))
	var out []TopicSubscribers
	for {
		least, found := "", false
		for k, p := range pages {
			if next[k] < len(p) && (!found || p[next[k]].Topic < least) {
				least, found = p[next[k]].Topic, true
			}
		}
		if !found {
			return out, false
		}
		if len(out) == limit {
			return out, true
		}
		sum := 0
		for k, p := range pages {
			if next[k] < len(p) && p[next[k]].Topic == least {
				sum += p[next[k]].Subscribers
				next[k]++
			}
		}
		out = append(out, TopicSubscribers{Topic: least, Subscribers: sum})
	}
}
