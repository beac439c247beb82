package registry

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/btree"
)

var _ Registry = (*Memory)(nil)

// Memory is a Registry held in this process's memory. It serves a single
// gateway process. The zero value is ready to use.
type Memory struct {
	// mu guards every index below.
	mu      sync.RWMutex
	records map[string]*entry
	users   map[string][]string             // principalId → connection ids, oldest first
	topics  map[string]map[string]struct{}  // topic → connection ids
	nodes   map[string]map[string]struct{}  // node id → connection ids
	slots   map[string]map[string]time.Time // principalId → reserved connection id → expiry
	all     *btree.BTreeG[string]           // every connection id, in order, for ListConnections
}

type entry struct {
	rec    Record
	topics []string
}

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory { return &Memory{} }

func (m *Memory) init() {
	if m.records == nil {
		m.records = make(map[string]*entry)
		m.users = make(map[string][]string)
		m.topics = make(map[string]map[string]struct{})
		m.nodes = make(map[string]map[string]struct{})
		m.slots = make(map[string]map[string]time.Time)
		m.all = newIDIndex()
	}
}

// Register implements Registry.
func (m *Memory) Register(ctx context.Context, rec Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if old, ok := m.records[rec.ConnectionID]; ok {
		m.removeLocked(rec.ConnectionID, old)
	}
	m.records[rec.ConnectionID] = &entry{rec: rec}
	m.all.ReplaceOrInsert(rec.ConnectionID)
	if rec.PrincipalID != "" {
		m.users[rec.PrincipalID] = append(m.users[rec.PrincipalID], rec.ConnectionID)
	}
	ids := m.nodes[rec.NodeID]
	if ids == nil {
		ids = make(map[string]struct{})
		m.nodes[rec.NodeID] = ids
	}
	ids[rec.ConnectionID] = struct{}{}
	return nil
}

// Unregister implements Registry.
func (m *Memory) Unregister(ctx context.Context, connectionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.records[connectionID]; ok {
		m.removeLocked(connectionID, e)
	}
	return nil
}

func (m *Memory) removeLocked(id string, e *entry) {
	delete(m.records, id)
	m.all.Delete(id)
	if ids := m.nodes[e.rec.NodeID]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m.nodes, e.rec.NodeID)
		}
	}
	if p := e.rec.PrincipalID; p != "" {
		ids := slices.DeleteFunc(m.users[p], func(v string) bool { return v == id })
		if len(ids) == 0 {
			delete(m.users, p)
		} else {
			m.users[p] = ids
		}
	}
	for _, t := range e.topics {
		subs := m.topics[t]
		delete(subs, id)
		if len(subs) == 0 {
			delete(m.topics, t)
		}
	}
}

// Lookup implements Registry.
func (m *Memory) Lookup(ctx context.Context, connectionID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	m.mu.RLock()
	e, ok := m.records[connectionID]
	m.mu.RUnlock()
	if !ok {
		return Record{}, ErrNotFound
	}
	return e.rec, nil
}

// UserConnections implements Registry.
func (m *Memory) UserConnections(ctx context.Context, principalID string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := m.users[principalID]
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		out = append(out, m.records[id].rec)
	}
	return out, nil
}

// Subscribe implements Registry.
func (m *Memory) Subscribe(ctx context.Context, connectionID, topic string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.records[connectionID]
	if !ok {
		return ErrNotFound
	}
	subs := m.topics[topic]
	if subs == nil {
		subs = make(map[string]struct{})
		m.topics[topic] = subs
	}
	if _, dup := subs[connectionID]; !dup {
		subs[connectionID] = struct{}{}
		e.topics = append(e.topics, topic)
	}
	return nil
}

// Unsubscribe implements Registry.
func (m *Memory) Unsubscribe(ctx context.Context, connectionID, topic string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if subs := m.topics[topic]; subs != nil {
		delete(subs, connectionID)
		if len(subs) == 0 {
			delete(m.topics, topic)
		}
	}
	if e, ok := m.records[connectionID]; ok {
		e.topics = slices.DeleteFunc(e.topics, func(t string) bool { return t == topic })
	}
	return nil
}

// TopicSubscribers implements Registry.
func (m *Memory) TopicSubscribers(ctx context.Context, topic string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	subs := m.topics[topic]
	out := make([]Record, 0, len(subs))
	for id := range subs {
		out = append(out, m.records[id].rec)
	}
	return out, nil
}

// TopicCount implements Registry.
func (m *Memory) TopicCount(ctx context.Context, topic string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.topics[topic]), nil
}

// NodeConnections implements Registry.
func (m *Memory) NodeConnections(ctx context.Context, nodeID string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := m.nodes[nodeID]
	out := make([]Record, 0, len(ids))
	for id := range ids {
		out = append(out, m.records[id].rec)
	}
	return out, nil
}

// ReserveUserSlot implements Registry.
func (m *Memory) ReserveUserSlot(ctx context.Context, principalID, connectionID string, limit int, ttl time.Duration) (bool, error) {
	if err := CheckSlot(ctx, principalID, limit); err != nil {
		return false, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	reserved := m.slots[principalID]
	for id, exp := range reserved {
		if !now.Before(exp) {
			delete(reserved, id)
		}
	}
	registered := m.users[principalID]
	others := 0
	for _, id := range registered {
		if id != connectionID {
			others++
		}
	}
	for id := range reserved {
		if id != connectionID && !slices.Contains(registered, id) {
			others++
		}
	}
	if others >= limit {
		m.unreserveLocked(principalID, connectionID)
		return false, nil
	}
	if reserved == nil {
		reserved = make(map[string]time.Time)
		m.slots[principalID] = reserved
	}
	reserved[connectionID] = now.Add(ttl)
	return true, nil
}

// ReleaseUserSlot implements Registry.
func (m *Memory) ReleaseUserSlot(ctx context.Context, principalID, connectionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unreserveLocked(principalID, connectionID)
	return nil
}

func (m *Memory) unreserveLocked(principalID, connectionID string) {
	if reserved := m.slots[principalID]; reserved != nil {
		delete(reserved, connectionID)
		if len(reserved) == 0 {
			delete(m.slots, principalID)
		}
	}
}
