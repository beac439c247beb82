package cluster

import "sync"

// maxOwners bounds the owner cache; when full it starts over.
const maxOwners = 1 << 16

// ownerCache remembers which node holds a connection of another node, so
// that repeated pushes to it skip the registry. A connection never moves
// between nodes and its id is never reused, so an entry can only be stale
// when the connection is gone, and the node it names then answers gone
// (or no longer exists); either way the entry is dropped.
type ownerCache struct {
	mu sync.RWMutex
	m  map[string]string
}

func (c *ownerCache) get(id string) (string, bool) {
	c.mu.RLock()
	node, ok := c.m[id]
	c.mu.RUnlock()
	return node, ok
}

func (c *ownerCache) put(id, node string) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxOwners {
		c.m = make(map[string]string)
	}
	c.m[id] = node
	c.mu.Unlock()
}

func (c *ownerCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
