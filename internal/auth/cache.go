package auth

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Cache remembers authorizer decisions, Allow and Deny alike, for a fixed
// time, keyed by CacheKey of the identity-source values. It never holds a
// failure: an authorizer that could not decide is asked again next time.
//
// The cache holds at most size entries and evicts the least recently used
// one to make room. Expired entries are dropped when they are looked up or
// evicted. A Cache is safe for concurrent use; a nil *Cache, or one made
// with ttl <= 0 or size < 1, stores nothing.
type Cache struct {
	ttl  time.Duration
	size int

	// entriesMu guards entries and lru.
	entriesMu sync.Mutex
	entries   map[string]*list.Element // of *cacheEntry
	lru       *list.List               // most recently used first
}

type cacheEntry struct {
	key     string
	id      *Identity
	deny    *Denial
	expires time.Time
}

// NewCache returns a cache that keeps decisions for ttl and holds at most
// size of them.
func NewCache(ttl time.Duration, size int) *Cache {
	return &Cache{ttl: ttl, size: size, entries: map[string]*list.Element{}, lru: list.New()}
}

// CacheKey returns the cache key of identity-source values: values[i] holds
// every value of source i, in order (Source.Values). The key is the hex
// SHA-256 of an unambiguous encoding of them (each list and each value
// prefixed by its length), so that the cache never holds a credential and
// two requests share an entry only when every source has the same values in
// the same order: the authorizer, which sees them all, decided for exactly
// those.
func CacheKey(values [][]string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, vs := range values {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(vs)))])
		for _, v := range vs {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
			io.WriteString(h, v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Cache) disabled() bool {
	return c == nil || c.ttl <= 0 || c.size < 1
}

// Get returns the decision stored under key, if one has not expired at now:
// the Identity of an Allow, or the Denial of a Deny. The values returned are
// shared by every hit and must not be modified.
func (c *Cache) Get(key string, now time.Time) (id *Identity, deny *Denial, ok bool) {
	if c.disabled() {
		return nil, nil, false
	}
	c.entriesMu.Lock()
	defer c.entriesMu.Unlock()
	el, found := c.entries[key]
	if !found {
		return nil, nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return nil, nil, false
	}
	c.lru.MoveToFront(el)
	return e.id, e.deny, true
}

// Put stores a decision under key at now: id for an Allow, or deny for a
// Deny. Only a 401 or 403 Denial is a Deny; Put ignores any other Denial
// (a failure), a Denial of an authorizer that could not decide yet, a call
// with both or neither, and an Identity that has already expired. The
// entry expires after the cache's ttl, or at id.ExpiresAt when that is
// sooner. Put keeps copies of id and deny, so the
// caller may go on using them.
func (c *Cache) Put(key string, id *Identity, deny *Denial, now time.Time) {
	if c.disabled() || (id == nil) == (deny == nil) {
		return
	}
	expires := now.Add(c.ttl)
	if deny != nil {
		if deny.undecided || (deny.Status != http.StatusUnauthorized && deny.Status != http.StatusForbidden) {
			return
		}
		d := *deny
		d.Header = d.Header.Clone()
		deny = &d
	} else {
		if !id.ExpiresAt.IsZero() {
			if !now.Before(id.ExpiresAt) {
				return
			}
			if id.ExpiresAt.Before(expires) {
				expires = id.ExpiresAt
			}
		}
		i := *id
		i.Context = maps.Clone(i.Context)
		id = &i
	}
	e := &cacheEntry{key: key, id: id, deny: deny, expires: expires}

	c.entriesMu.Lock()
	defer c.entriesMu.Unlock()
	if el, found := c.entries[key]; found {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		oldest := c.lru.Back()
		c.lru.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

// Len returns the number of entries held, expired ones included.
func (c *Cache) Len() int {
	if c.disabled() {
		return 0
	}
	c.entriesMu.Lock()
	defer c.entriesMu.Unlock()
	return c.lru.Len()
}
