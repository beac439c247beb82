package registry

import (
	"context"
	"sync"
)

var _ Registry = (*Memory)(nil)

// Memory is a Registry held in this process's memory. It serves a single
// gateway process. The zero value is ready to use.
type Memory struct {
	recordsMu sync.RWMutex
	records   map[string]Record
}

// NewMemory returns an empty in-memory registry.
func NewMemory() *Memory { return &Memory{} }

// Register implements Registry.
func (m *Memory) Register(ctx context.Context, rec Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.recordsMu.Lock()
	defer m.recordsMu.Unlock()
	if m.records == nil {
		m.records = make(map[string]Record)
	}
	m.records[rec.ConnectionID] = rec
	return nil
}

// Unregister implements Registry.
func (m *Memory) Unregister(ctx context.Context, connectionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.recordsMu.Lock()
	delete(m.records, connectionID)
	m.recordsMu.Unlock()
	return nil
}

// Lookup implements Registry.
func (m *Memory) Lookup(ctx context.Context, connectionID string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	m.recordsMu.RLock()
	rec, ok := m.records[connectionID]
	m.recordsMu.RUnlock()
	if !ok {
		return Record{}, ErrNotFound
	}
	return rec, nil
}
