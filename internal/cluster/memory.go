package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/registry"
)

// ErrClosed is returned by an engine's methods after Close.
var ErrClosed = errors.New("cluster engine closed")

// MemoryNetwork is an engine held in one process's memory: the default
// registry of a single gateway, and a way to run several nodes in one test
// process. Engines made by one MemoryNetwork see one registry and reach
// each other's handlers.
type MemoryNetwork struct {
	*registry.Memory

	mu        sync.Mutex
	listeners map[string]*MemoryEngine
	beats     map[string]uint64
	lost      map[string]bool
	claims    map[string]claim
}

type claim struct {
	by    string
	until time.Time
}

// NewMemoryNetwork returns an empty network.
func NewMemoryNetwork() *MemoryNetwork {
	return &MemoryNetwork{
		Memory:    registry.NewMemory(),
		listeners: make(map[string]*MemoryEngine),
		beats:     make(map[string]uint64),
		lost:      make(map[string]bool),
		claims:    make(map[string]claim),
	}
}

// NewMemory returns the engine of a single node on a network of its own.
func NewMemory() *MemoryEngine { return NewMemoryNetwork().Engine() }

// Engine returns a new node's engine on the network.
func (n *MemoryNetwork) Engine() *MemoryEngine {
	return &MemoryEngine{Memory: n.Memory, net: n, topics: make(map[string]bool)}
}

// MemoryEngine is one node's engine on a MemoryNetwork.
type MemoryEngine struct {
	*registry.Memory
	net *MemoryNetwork

	// mu guards the fields below; the network's mu is taken before it.
	mu      sync.Mutex
	node    string
	handler Handler
	topics  map[string]bool
	closed  bool
}

var _ Engine = (*MemoryEngine)(nil)

// Listen implements Engine.
func (e *MemoryEngine) Listen(nodeID string, h Handler) error {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.node != "" {
		return errors.New("engine already listens")
	}
	e.node, e.handler = nodeID, h
	e.net.listeners[nodeID] = e
	return nil
}

func (e *MemoryEngine) check(ctx context.Context) error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Request implements Engine.
func (e *MemoryEngine) Request(ctx context.Context, nodeID string, req []byte) ([]byte, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	e.net.mu.Lock()
	dst := e.net.listeners[nodeID]
	e.net.mu.Unlock()
	if dst == nil {
		return nil, ErrNoNode
	}
	// The handler runs on its own goroutine so that ctx bounds the wait, as
	// it does over a network.
	done := make(chan []byte, 1)
	go func() { done <- dst.handler.HandleRequest(clone(req)) }()
	select {
	case resp := <-done:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Publish implements Engine.
func (e *MemoryEngine) Publish(ctx context.Context, topic string, msg []byte) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.net.mu.Lock()
	var dsts []Handler
	for _, l := range e.net.listeners {
		l.mu.Lock()
		if l.topics[topic] && !l.closed {
			dsts = append(dsts, l.handler)
		}
		l.mu.Unlock()
	}
	e.net.mu.Unlock()
	for _, h := range dsts {
		h.HandlePublish(topic, clone(msg))
	}
	return nil
}

// SubscribeTopic implements Engine.
func (e *MemoryEngine) SubscribeTopic(ctx context.Context, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	e.topics[topic] = true
	e.mu.Unlock()
	return nil
}

// UnsubscribeTopic implements Engine.
func (e *MemoryEngine) UnsubscribeTopic(ctx context.Context, topic string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	delete(e.topics, topic)
	e.mu.Unlock()
	return nil
}

// Heartbeat implements Engine.
func (e *MemoryEngine) Heartbeat(ctx context.Context, nodeID string) (Beat, error) {
	if err := e.check(ctx); err != nil {
		return Beat{}, err
	}
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	c, ok := e.net.beats[nodeID]
	c++
	e.net.beats[nodeID] = c
	return Beat{Counter: c, Fresh: !ok, Lost: e.net.lost[nodeID]}, nil
}

// Nodes implements Engine.
func (e *MemoryEngine) Nodes(ctx context.Context) (map[string]uint64, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	out := make(map[string]uint64, len(e.net.beats))
	for k, v := range e.net.beats {
		out[k] = v
	}
	return out, nil
}

// ClaimNode implements Engine.
func (e *MemoryEngine) ClaimNode(ctx context.Context, nodeID, claimer string, ttl time.Duration) (bool, error) {
	if err := e.check(ctx); err != nil {
		return false, err
	}
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	now := time.Now()
	if c, ok := e.net.claims[nodeID]; ok && now.Before(c.until) {
		return false, nil
	}
	e.net.claims[nodeID] = claim{by: claimer, until: now.Add(ttl)}
	return true, nil
}

// ForgetNode implements Engine.
func (e *MemoryEngine) ForgetNode(ctx context.Context, nodeID string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	delete(e.net.beats, nodeID)
	e.net.lost[nodeID] = true
	return nil
}

// Close implements Engine. The node's records stay in the network's
// registry, as a killed process's records stay in a shared engine.
func (e *MemoryEngine) Close() error {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if e.node != "" && e.net.listeners[e.node] == e {
		delete(e.net.listeners, e.node)
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
