package gateway

import "context"

// Test hooks for the external gateway_test package.
var MatchTopic = matchTopic

// TopicCount reports how many connections the registry has subscribed to
// topic.
func (g *Gateway) TopicCount(topic string) (int, error) {
	return g.node.TopicCount(context.Background(), topic)
}
