package gateway

import (
	"context"
	"time"

	"github.com/wsgate/wsgate/internal/edge"
)

// Test hooks for the external gateway_test package.
var MatchTopic = matchTopic

// TopicCount reports how many connections the registry has subscribed to
// topic.
func (g *Gateway) TopicCount(topic string) (int, error) {
	return g.node.TopicCount(context.Background(), topic)
}

// SetUserSlotTTL sets the lifetime of the reservations of user slots that
// handshakes take from now on.
func (g *Gateway) SetUserSlotTTL(d time.Duration) { g.gen.Load().slotTTL.Store(int64(d)) }

// EdgeStats returns the client edge's connection and in-flight counts.
func (g *Gateway) EdgeStats() edge.Stats { return g.edge.Stats() }

// Retiring reports how many replaced configurations wait for their
// in-flight work before being closed.
func (g *Gateway) Retiring() int64 { return g.retiring.Load() }
