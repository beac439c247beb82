package natsregistry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsgate/wsgate/internal/cluster"
)

// The nodes bucket holds, with node ids encoded by enc:
//
//	b.<node>  the node's heartbeat counter, decimal
//	l.<node>  lost marker, written by ForgetNode, expiring after lostTTL
//	c.<node>  claim on a lost node: the claimer, expiring after the claim's ttl

// beatAttempts bounds the optimistic-concurrency retries of one heartbeat;
// only two engines beating for one node id contend.
const beatAttempts = 10

func nodesErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("nats nodes: %s: %w", op, err)
}

func isMissing(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// Heartbeat implements cluster.Engine. It increments b.<node> with
// optimistic concurrency: created when absent (Fresh), else updated on the
// revision it read.
func (e *Engine) Heartbeat(ctx context.Context, nodeID string) (cluster.Beat, error) {
	// A heartbeat in flight when the connection drops fails at once.
	ctx, done := e.onConn(ctx)
	defer done()
	beat, err := e.heartbeat(ctx, nodeID)
	if err != nil && dropped(ctx) {
		return cluster.Beat{}, nodesErr("heartbeat", errNotConnected)
	}
	return beat, err
}

func (e *Engine) heartbeat(ctx context.Context, nodeID string) (cluster.Beat, error) {
	b, err := e.buckets(ctx)
	if err != nil {
		return cluster.Beat{}, nodesErr("heartbeat", err)
	}
	key := "b." + enc(nodeID)
	var beat cluster.Beat
	for attempt := 0; ; attempt++ {
		if attempt == beatAttempts {
			return cluster.Beat{}, nodesErr("heartbeat", errors.New("counter kept changing under concurrent heartbeats"))
		}
		ent, err := b.nodes.Get(ctx, key)
		switch {
		case isMissing(err):
			if _, err := b.nodes.Create(ctx, key, []byte("1")); err != nil {
				if errors.Is(err, jetstream.ErrKeyExists) {
					continue
				}
				return cluster.Beat{}, nodesErr("heartbeat", err)
			}
			beat = cluster.Beat{Counter: 1, Fresh: true}
		case err != nil:
			return cluster.Beat{}, nodesErr("heartbeat", err)
		default:
			n, perr := strconv.ParseUint(string(ent.Value()), 10, 64)
			if perr != nil {
				return cluster.Beat{}, nodesErr("heartbeat", fmt.Errorf("counter of %q: %w", nodeID, perr))
			}
			if _, err := b.nodes.Update(ctx, key, strconv.AppendUint(nil, n+1, 10), ent.Revision()); err != nil {
				if isWrongRevision(err) {
					continue
				}
				return cluster.Beat{}, nodesErr("heartbeat", err)
			}
			beat = cluster.Beat{Counter: n + 1}
		}
		break
	}
	_, err = b.nodes.Get(ctx, "l."+enc(nodeID))
	switch {
	case err == nil:
		beat.Lost = true
	case !isMissing(err):
		return cluster.Beat{}, nodesErr("heartbeat", err)
	}
	return beat, nil
}

// Nodes implements cluster.Engine. It lists the counters with one ordered
// consumer.
func (e *Engine) Nodes(ctx context.Context) (map[string]uint64, error) {
	b, err := e.buckets(ctx)
	if err != nil {
		return nil, nodesErr("nodes", err)
	}
	entries, err := list(ctx, b.nodes, b.nodesStream, "b.*")
	if err != nil {
		return nil, nodesErr("nodes", err)
	}
	out := make(map[string]uint64, len(entries))
	for _, ent := range entries {
		id, err := dec(strings.TrimPrefix(ent.Key(), "b."))
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(string(ent.Value()), 10, 64)
		if err != nil {
			continue
		}
		out[id] = n
	}
	return out, nil
}

// ClaimNode implements cluster.Engine. The claim is a key created with a
// per-key TTL, so it is exclusive until the server expires it. TTLs have
// whole-second granularity and a minimum of one second; ttl is rounded up.
func (e *Engine) ClaimNode(ctx context.Context, nodeID, claimer string, ttl time.Duration) (bool, error) {
	b, err := e.buckets(ctx)
	if err != nil {
		return false, nodesErr("claim", err)
	}
	_, err = b.nodes.Create(ctx, "c."+enc(nodeID), []byte(claimer), jetstream.KeyTTL(wholeSeconds(ttl)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, nodesErr("claim", err)
	}
	return true, nil
}

// wholeSeconds rounds d up to a whole number of seconds, at least one.
func wholeSeconds(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second
	return max(s, 1) * time.Second
}

// ForgetNode implements cluster.Engine. It removes the counter, then
// writes the lost marker; a node that beats in between is Fresh but not
// yet Lost, and Lost on its next beat.
func (e *Engine) ForgetNode(ctx context.Context, nodeID string) error {
	b, err := e.buckets(ctx)
	if err != nil {
		return nodesErr("forget", err)
	}
	if err := b.nodes.Purge(ctx, "b."+enc(nodeID), purgeOpts(0)...); err != nil {
		return nodesErr("forget", err)
	}
	_, err = b.nodes.Create(ctx, "l."+enc(nodeID), nil, jetstream.KeyTTL(lostTTL))
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nodesErr("forget", err)
	}
	return nil
}
