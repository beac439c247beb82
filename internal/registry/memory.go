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
	users   map[string]*userConns           // principalId → connection ids, oldest first
	topics  map[string]map[string]struct{}  // topic → connection ids
	nodes   map[string]map[string]struct{}  // node id → connection ids
	slots   map[string]map[string]time.Time // principalId → reserved connection id → expiry
	all     *btree.BTreeG[string]           // every connection id, in order, for ListConnections
}

type entry struct {
	rec    Record
	topics []string
	// userAt is the record's place in its user's userConns.ids.
	userAt int
}

// userConns holds a user's connection ids, oldest first. Removing one
// leaves a hole ("") in its place instead of shifting the ones after it,
// and the ids are compacted once holes are half of them: a user with n
// connections that all close costs O(n) in all, not O(n²), while the
// registry's lock is held.
type userConns struct {
	ids   []string
	holes int
}

// live returns the number of connection ids.
func (u *userConns) live() int {
	if u == nil {
		return 0
	}
	return len(u.ids) - u.holes
}

// each calls f with every connection id, oldest first.
func (u *userConns) each(f func(id string)) {
	if u == nil {
		return
	}
	for _, id := range u.ids {
		if id != "" {
			f(id)
		}
	}
}

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory { return &Memory{} }

func (m *Memory) init() {
	if m.records == nil {
		m.records = make(map[string]*entry)
		m.users = make(map[string]*userConns)
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
	e := &entry{rec: rec}
	m.records[rec.ConnectionID] = e
	m.all.ReplaceOrInsert(rec.ConnectionID)
	if p := rec.PrincipalID; p != "" {
		u := m.users[p]
		if u == nil {
			u = &userConns{}
			m.users[p] = u
		}
		e.userAt = len(u.ids)
		u.ids = append(u.ids, rec.ConnectionID)
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
		m.removeUserLocked(p, e.userAt)
	}
	for _, t := range e.topics {
		subs := m.topics[t]
		delete(subs, id)
		if len(subs) == 0 {
			delete(m.topics, t)
		}
	}
}

// removeUserLocked removes the id at place at of principal p's
// connections.
func (m *Memory) removeUserLocked(p string, at int) {
	u := m.users[p]
	u.ids[at] = ""
	u.holes++
	switch {
	case u.holes == len(u.ids):
		delete(m.users, p)
	case u.holes > len(u.ids)/2:
		n := 0
		for _, id := range u.ids {
			if id != "" {
				u.ids[n] = id
				m.records[id].userAt = n
				n++
			}
		}
		clear(u.ids[n:])
		u.ids = u.ids[:n]
		u.holes = 0
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
	u := m.users[principalID]
	out := make([]Record, 0, u.live())
	u.each(func(id string) { out = append(out, m.records[id].rec) })
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
	// Registered connections other than connectionID, then reservations
	// not yet registered.
	others := m.users[principalID].live()
	if e, ok := m.records[connectionID]; ok && e.rec.PrincipalID == principalID {
		others--
	}
	for id := range reserved {
		if e, ok := m.records[id]; id != connectionID && !(ok && e.rec.PrincipalID == principalID) {
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
