// Package cluster lets several gateway processes serve one API. Each
// process is a node: it holds its own sockets in its hub and shares the
// registry (connection records, the user index, topic membership) through a
// distributed engine, Redis or NATS, which also carries messages between
// nodes.
//
// An Engine is the engine-specific part: the shared registry, node-to-node
// requests, per-topic publications and node heartbeats. Node is the
// engine-independent part: it routes every management operation to the node
// that holds the connection, delivers topic publications to local
// subscribers, detects lost nodes and re-registers its connections after an
// engine outage.
package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// ErrNoNode is returned by Engine.Request when no node listens under the
// name: the node has stopped or died.
var ErrNoNode = errors.New("no such node")

// EngineError is an engine error that says what is wrong with the engine
// itself: it answers, but cannot serve the cluster (a server too old, for
// one). A node reports Reason as why it is not ready, instead of "cluster
// engine unreachable".
type EngineError struct {
	Reason string
}

func (e *EngineError) Error() string { return e.Reason }

// Beat is what a heartbeat learned about the node that sent it.
type Beat struct {
	// Counter is the node's heartbeat count after this beat; other nodes
	// watch it change.
	Counter uint64
	// Fresh reports that the engine held no heartbeat record of the node
	// before this beat: its first beat, or the engine lost its state in a
	// restart, or the node was declared lost. A node that is not new
	// registers its connections again.
	Fresh bool
	// Lost reports that another node declared this node lost (ForgetNode)
	// and sent $disconnect events for its connections.
	Lost bool
}

// Handler receives what the engine delivers to a node. Calls may come from
// several goroutines at once.
type Handler interface {
	// HandleRequest answers a request another node sent to this node with
	// Engine.Request.
	HandleRequest(req []byte) []byte
	// HandlePublish delivers a publication on a topic this node
	// subscribes to.
	HandlePublish(topic string, msg []byte)
}

// Engine is one node's client of the distributed engine. Every method that
// reaches the engine honours ctx and returns an error rather than blocking
// beyond it. Implementations are safe for concurrent use and must pass the
// contracts in packages registrytest and clustertest.
type Engine interface {
	registry.Registry

	// Listen starts delivering requests addressed to nodeID and
	// publications on the topics this engine subscribes to, to h. It is
	// called once, before SubscribeTopic.
	Listen(nodeID string, h Handler) error
	// Request sends req to nodeID's handler and returns its answer. It
	// returns ErrNoNode at once when no node listens under nodeID.
	Request(ctx context.Context, nodeID string, req []byte) ([]byte, error)
	// Publish sends msg to every node subscribed to topic; none is not an
	// error. One publisher's publications on one topic arrive in order.
	Publish(ctx context.Context, topic string, msg []byte) error
	// SubscribeTopic makes this node receive topic's publications, and
	// UnsubscribeTopic stops them. Subscribing twice is the same as once.
	// Subscriptions survive reconnections to the engine.
	SubscribeTopic(ctx context.Context, topic string) error
	UnsubscribeTopic(ctx context.Context, topic string) error

	// Heartbeat records that nodeID is alive.
	Heartbeat(ctx context.Context, nodeID string) (Beat, error)
	// Nodes returns every node with a heartbeat record and its counter.
	Nodes(ctx context.Context) (map[string]uint64, error)
	// ClaimNode makes claimer responsible, for ttl, for cleaning up lost
	// nodeID. It reports false while another claimer holds the claim.
	ClaimNode(ctx context.Context, nodeID, claimer string, ttl time.Duration) (bool, error)
	// ForgetNode removes nodeID's heartbeat record and marks it lost, so
	// that its next Heartbeat, if it is still running, reports Lost.
	ForgetNode(ctx context.Context, nodeID string) error

	// Close stops listening and releases the engine's connections.
	Close() error
}
