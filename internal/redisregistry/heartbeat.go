package redisregistry

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
)

// Heartbeat implements cluster.Engine: one MULTI increments the node's
// counter and checks its lost marker. While Redis is down, each heartbeat
// tries to reach it.
func (e *Engine) Heartbeat(ctx context.Context, nodeID string) (cluster.Beat, error) {
	if err := e.probe(ctx); err != nil {
		return cluster.Beat{}, err
	}
	if err := e.check(ctx); err != nil {
		return cluster.Beat{}, err
	}
	pipe := e.client.TxPipeline()
	incr := pipe.HIncrBy(ctx, e.keys.beats(), nodeID, 1)
	lost := pipe.Exists(ctx, e.keys.lost(nodeID))
	if _, err := pipe.Exec(ctx); err != nil {
		return cluster.Beat{}, fmt.Errorf("redis: heartbeat: %w", err)
	}
	c := incr.Val()
	return cluster.Beat{Counter: uint64(c), Fresh: c == 1, Lost: lost.Val() > 0}, nil
}

// Nodes implements cluster.Engine.
func (e *Engine) Nodes(ctx context.Context) (map[string]uint64, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	all, err := e.client.HGetAll(ctx, e.keys.beats()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: nodes: %w", err)
	}
	out := make(map[string]uint64, len(all))
	for node, v := range all {
		c, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis: nodes: node %q has counter %q: %w", node, v, err)
		}
		out[node] = c
	}
	return out, nil
}

// ClaimNode implements cluster.Engine.
func (e *Engine) ClaimNode(ctx context.Context, nodeID, claimer string, ttl time.Duration) (bool, error) {
	if err := e.check(ctx); err != nil {
		return false, err
	}
	ok, err := e.client.SetNX(ctx, e.keys.claim(nodeID), claimer, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis: claim node: %w", err)
	}
	return ok, nil
}

// ForgetNode implements cluster.Engine. The lost marker expires after a
// day; a node that is still running has long noticed by then.
func (e *Engine) ForgetNode(ctx context.Context, nodeID string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	pipe := e.client.TxPipeline()
	pipe.HDel(ctx, e.keys.beats(), nodeID)
	pipe.Set(ctx, e.keys.lost(nodeID), 1, lostTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redis: forget node: %w", err)
	}
	return nil
}
