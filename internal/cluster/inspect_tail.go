package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wsgate/wsgate/internal/hub"
	"github.com/wsgate/wsgate/internal/inspect"
)

// PeerWait bounds how long an inspector call waits for one other node;
// a node that does not answer within it is left out of the answer.
const PeerWait = time.Second

// ErrTailsOff, ErrTooManyTails and ErrNoTail are the tail errors of the
// node that holds the connection (see package inspect).
var (
	ErrTailsOff     = inspect.ErrTailsOff
	ErrTooManyTails = inspect.ErrTooManyTails
	ErrNoTail       = inspect.ErrNoTail
)

// RecentLog returns up to max log entries of kind, newest first, merged
// over every node of the cluster: this node's, and those of the nodes
// with a heartbeat record that answer within PeerWait. When the engine
// cannot list the nodes, only this node's entries are returned.
func (n *Node) RecentLog(ctx context.Context, kind string, max int) []inspect.Entry {
	all := n.cfg.Log.Recent(kind, max)
	ectx, cancel := context.WithTimeout(ctx, PeerWait)
	nodes, err := n.eng.Nodes(ectx)
	cancel()
	if err != nil {
		n.log.Debug("log entries of this node only: the nodes could not be listed", "err", err)
	}
	var others []string
	for id := range nodes {
		if id != n.cfg.NodeID {
			others = append(others, id)
		}
	}
	got := make([][]inspect.Entry, len(others))
	n.each(len(others), func(i int) {
		req := appendString([]byte{byte(opLog)}, kind)
		req = appendInt(req, max)
		rctx, cancel := context.WithTimeout(ctx, PeerWait)
		defer cancel()
		resp, err := n.eng.Request(rctx, others[i], req)
		if err != nil {
			return
		}
		r := reader{b: resp}
		count := r.uvarint()
		if r.err != nil || count > uint64(len(r.b)) {
			return
		}
		entries := make([]inspect.Entry, 0, count)
		for range count {
			e := r.entry()
			if r.err != nil {
				return
			}
			entries = append(entries, e)
		}
		got[i] = entries
	})
	for _, g := range got {
		all = append(all, g...)
	}
	slices.SortStableFunc(all, func(a, b inspect.Entry) int { return b.Time.Compare(a.Time) })
	if len(all) > max {
		all = all[:max]
	}
	return all
}

// StartTail starts, or extends, the message tail of connection id on the
// node that holds it. Besides ErrGone and ErrUnavailable, it fails with
// ErrTailsOff when this node's or the holder's tails are off and
// ErrTooManyTails when the holder has the most open.
func (n *Node) StartTail(ctx context.Context, id string) error {
	if !n.cfg.Tails.Enabled() {
		return ErrTailsOff
	}
	if c := n.hub.Get(id); c != nil {
		return n.startLocalTail(c)
	}
	_, err := n.tailRequest(ctx, opTailStart, id, nil)
	return err
}

// startLocalTail starts, or extends, the tail of c, a connection of this
// node's hub. A connection that closed meanwhile may have dropped its tail
// before the tail existed, which would then outlive it until it lapses:
// the connection leaves the hub before it drops its tail, so one that is
// still in the hub after the tail is in place will drop it when it closes,
// and one that is not is gone.
func (n *Node) startLocalTail(c hub.Conn) error {
	if err := n.cfg.Tails.Start(c); err != nil {
		return err
	}
	if n.hub.Get(c.ID()) != c {
		n.cfg.Tails.Stop(c.ID())
		return ErrGone
	}
	return nil
}

// ReadTail returns the items of connection id's tail after seq after,
// from the node that holds it. Besides ErrGone and ErrUnavailable, it
// fails with ErrTailsOff and ErrNoTail.
func (n *Node) ReadTail(ctx context.Context, id string, after uint64) (inspect.TailPage, error) {
	if !n.cfg.Tails.Enabled() {
		return inspect.TailPage{}, ErrTailsOff
	}
	if n.hub.Get(id) != nil {
		return n.cfg.Tails.Read(id, after)
	}
	// A tail of a connection that has just left the hub goes with it.
	n.cfg.Tails.Drop(id)
	resp, err := n.tailRequest(ctx, opTailRead, id, binary.AppendUvarint(nil, after))
	if err != nil {
		return inspect.TailPage{}, err
	}
	r := reader{b: resp}
	p := r.tailPage()
	if r.err != nil {
		return inspect.TailPage{}, fmt.Errorf("%w: %v", ErrUnavailable, r.err)
	}
	return p, nil
}

// StopTail stops connection id's tail on the node that holds it; a
// connection without one, or gone, is not an error.
func (n *Node) StopTail(ctx context.Context, id string) error {
	n.cfg.Tails.Stop(id)
	if n.hub.Get(id) != nil {
		return nil
	}
	_, err := n.tailRequest(ctx, opTailStop, id, nil)
	if errors.Is(err, ErrGone) || errors.Is(err, ErrNoTail) {
		return nil
	}
	return err
}

// tailRequest sends a tail request for connection id, which is not in
// this node's hub, to the node that holds it, and returns the rest of the
// answer after its status.
func (n *Node) tailRequest(ctx context.Context, o op, id string, args []byte) ([]byte, error) {
	node, err := n.owner(ctx, id)
	if err != nil {
		return nil, err
	}
	if node == n.cfg.NodeID {
		return nil, ErrGone
	}
	req := appendString([]byte{byte(o)}, id)
	req = append(req, args...)
	rctx, cancel := context.WithTimeout(ctx, PeerWait)
	defer cancel()
	resp, err := n.request(rctx, node, req)
	err = n.recheck(ctx, id, err)
	if err == nil && len(resp) == 0 {
		err = fmt.Errorf("%w: %v", ErrUnavailable, errMalformed)
	}
	if err != nil {
		return nil, err
	}
	switch status(resp[0]) {
	case statusOK:
		return resp[1:], nil
	case statusTailsOff:
		return nil, ErrTailsOff
	case statusTailLimit:
		return nil, ErrTooManyTails
	case statusNoTail:
		return nil, ErrNoTail
	case statusGone:
		n.owners.drop(id)
		return nil, ErrGone
	}
	return nil, statusErr(status(resp[0]))
}

// tailStatus is the status byte of a tail error.
func tailStatus(err error) status {
	switch {
	case err == nil:
		return statusOK
	case errors.Is(err, ErrTailsOff):
		return statusTailsOff
	case errors.Is(err, ErrTooManyTails):
		return statusTailLimit
	case errors.Is(err, ErrNoTail):
		return statusNoTail
	}
	return statusFail
}

// handleInspect answers another node's log or tail request, o, whose
// operands r holds; ok is false for a malformed one.
func (n *Node) handleInspect(o op, r *reader) (resp []byte, ok bool) {
	if o == opLog {
		kind, max := r.string(), r.uvarint()
		if r.err != nil || max > inspect.LogSize {
			return nil, false
		}
		entries := n.cfg.Log.Recent(kind, int(max))
		out := appendInt(nil, len(entries))
		body := make([]byte, 0, 256*len(entries))
		count := 0
		for i := range entries {
			next := appendEntry(body, &entries[i])
			if len(next) > maxRequestBytes {
				break
			}
			body, count = next, count+1
		}
		if count < len(entries) {
			out = appendInt(nil, count)
		}
		return append(out, body...), true
	}
	id := r.string()
	var after uint64
	if o == opTailRead {
		after = r.uvarint()
	}
	if r.err != nil {
		return nil, false
	}
	if o == opTailStop {
		n.cfg.Tails.Stop(id)
		return []byte{byte(statusOK)}, true
	}
	if !n.cfg.Tails.Enabled() {
		return []byte{byte(statusTailsOff)}, true
	}
	c := n.hub.Get(id)
	if c == nil {
		n.cfg.Tails.Drop(id)
		return []byte{byte(statusGone)}, true
	}
	if o == opTailStart {
		err := n.startLocalTail(c)
		if errors.Is(err, ErrGone) {
			return []byte{byte(statusGone)}, true
		}
		return []byte{byte(tailStatus(err))}, true
	}
	p, err := n.cfg.Tails.Read(id, after)
	if err != nil {
		return []byte{byte(tailStatus(err))}, true
	}
	return appendTailPage([]byte{byte(statusOK)}, &p), true
}
