// Package hub keeps the table of live WebSocket connections on this node.
//
// The hub is always in memory and is not pluggable: it holds the sockets this
// process owns. Which node owns a connection id, and the cluster-wide indexes,
// belong to the registry. The table is sharded so that lookups from the
// management API and inserts from the edge do not contend on one lock.
package hub

import (
	"errors"
	"hash/maphash"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrClosed is returned by Conn.Send when the connection has closed or is closing.
var ErrClosed = errors.New("connection is closed")

// Info describes a live connection for the management API.
type Info struct {
	ConnectedAt  time.Time
	LastActiveAt time.Time
	SourceIP     string
	UserAgent    string
}

// Conn is a live connection as the hub and its users see it. Implementations
// are safe for concurrent use.
type Conn interface {
	// ID returns the connection id.
	ID() string
	// Send queues data as one message to the client without blocking. It
	// returns ErrClosed when the connection is gone; a client that cannot keep
	// up is closed and Send returns ErrClosed.
	Send(data []byte) error
	// Close starts a close handshake with the given code and reason. It does
	// not wait for the peer; the connection leaves the hub once it has closed.
	Close(code int, reason string)
	// Info reports the connection's times and identity.
	Info() Info
}

// Tap is told of a connection's data messages, in both directions, while
// it is set on the connection (see Tappable). Message is called on the
// paths that receive and send messages, possibly from several goroutines
// at once: it must not block, and must not keep data, which the caller
// may reuse.
type Tap interface {
	Message(out bool, data []byte, binary bool)
}

// Tappable is implemented by connections that can be tapped. SetTap sets
// the connection's tap, replacing any; nil removes it. A connection
// without a tap pays one atomic load per message for the possibility.
type Tappable interface {
	SetTap(t Tap)
}

const numShards = 64

type shard struct {
	connsMu sync.RWMutex
	conns   map[string]Conn
}

// Hub is a sharded map from connection id to Conn. The zero value is not
// usable; use New.
type Hub struct {
	seed   maphash.Seed
	shards [numShards]shard
}

// New returns an empty hub.
func New() *Hub {
	h := &Hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].conns = make(map[string]Conn)
	}
	return h
}

func (h *Hub) shard(id string) *shard {
	return &h.shards[maphash.String(h.seed, id)%numShards]
}

// Add inserts c. It reports false when a connection with the same id is
// already present, in which case nothing changes.
func (h *Hub) Add(c Conn) bool {
	s := h.shard(c.ID())
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if _, ok := s.conns[c.ID()]; ok {
		return false
	}
	s.conns[c.ID()] = c
	return true
}

// Remove deletes the connection with id, if it is c. Passing the Conn avoids
// removing a different connection that reused the id.
func (h *Hub) Remove(c Conn) {
	s := h.shard(c.ID())
	s.connsMu.Lock()
	if cur, ok := s.conns[c.ID()]; ok && cur == c {
		delete(s.conns, c.ID())
	}
	s.connsMu.Unlock()
}

// Get returns the connection with id, or nil.
func (h *Hub) Get(id string) Conn {
	s := h.shard(id)
	s.connsMu.RLock()
	c := s.conns[id]
	s.connsMu.RUnlock()
	return c
}

// Len returns the number of connections in the hub.
func (h *Hub) Len() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.connsMu.RLock()
		n += len(s.conns)
		s.connsMu.RUnlock()
	}
	return n
}

// Range calls f for every connection until f returns false. f runs without
// any hub lock held, so it may call back into the hub; connections added or
// removed during Range may or may not be seen.
func (h *Hub) Range(f func(Conn) bool) {
	var batch []Conn
	for i := range h.shards {
		s := &h.shards[i]
		s.connsMu.RLock()
		batch = batch[:0]
		for _, c := range s.conns {
			batch = append(batch, c)
		}
		s.connsMu.RUnlock()
		for _, c := range batch {
			if !f(c) {
				return
			}
		}
	}
}

// Message is one message prepared once for a fan-out: whether it is text
// or binary is decided once, and a connection type may cache its wire
// encoding on it so that every connection sharing that encoding sends the
// same bytes. A Message is used by one goroutine at a time; the bytes it
// returns are shared and must not be modified.
type Message struct {
	data   []byte
	binary bool
	at     int64
	encKey int
	enc    []byte
}

// NewMessage prepares data for sending. The message is text when data is
// valid UTF-8 and binary otherwise. data must not change while the Message
// is in use.
func NewMessage(data []byte) *Message {
	return &Message{data: data, binary: !utf8.Valid(data), at: time.Now().UnixNano()}
}

// At returns when the message was prepared, in Unix nanoseconds: the time
// a connection that takes it records as its last activity, read once per
// fan-out instead of once per connection.
func (m *Message) At() int64 { return m.at }

// Data returns the payload.
func (m *Message) Data() []byte { return m.data }

// Binary reports whether the payload is sent as a binary message.
func (m *Message) Binary() bool { return m.binary }

// Encoded returns encode(m.Data(), m.Binary(), key), computing it only when
// key differs from the previous call's. encode must return a new slice that
// nothing else modifies: every caller with the same key gets that slice.
func (m *Message) Encoded(key int, encode func(data []byte, binary bool, key int) []byte) []byte {
	if m.enc == nil || m.encKey != key {
		m.enc, m.encKey = encode(m.data, m.binary, key), key
	}
	return m.enc
}

// MessageSender is implemented by connections that can send a Message
// prepared once for many of them; Broadcast uses it when present. A
// MessageSender's SendMessage behaves as Send(m.Data()) does, except that it
// may return before the bytes reach the socket: they are written soon after,
// in order with the connection's other messages, possibly together with
// other messages queued for it.
type MessageSender interface {
	SendMessage(m *Message) error
}

// Broadcast sends data to each of conns as Send does and reports how many
// took it. Fan-out paths (a user's connections, a topic's subscribers) use
// it so that what can be shared between the sends is prepared once: the
// text/binary decision and, for connections that implement MessageSender,
// the encoded frame. data must not change until Broadcast returns.
func Broadcast(conns []Conn, data []byte) int {
	if len(conns) == 0 {
		return 0
	}
	m := NewMessage(data)
	n := 0
	for _, c := range conns {
		var err error
		if ms, ok := c.(MessageSender); ok {
			err = ms.SendMessage(m)
		} else {
			err = c.Send(data)
		}
		if err == nil {
			n++
		}
	}
	return n
}
