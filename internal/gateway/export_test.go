package gateway

import (
	"context"

	"github.com/wsgate/wsgate/internal/edge"
)

// Test hooks for the external gateway_test package.
var (
	MatchTopic = matchTopic
	ValidTopic = validTopic
)

// TopicCount reports how many connections the registry has subscribed to
// topic.
func (g *Gateway) TopicCount(topic string) (int, error) {
	return g.node.TopicCount(context.Background(), topic)
}

// EdgeStats returns the client edge's connection and in-flight counts.
func (g *Gateway) EdgeStats() edge.Stats { return g.edge.Stats() }
