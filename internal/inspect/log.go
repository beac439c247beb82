// Package inspect keeps what the inspector shows an operator about one
// node, in memory only: the most recent authorizer decisions and refused
// handshakes (Log), and the message tails of the connections an operator
// watches (Tails). The cluster node answers other nodes' requests for them,
// so that any node's management API shows the whole cluster.
package inspect

import (
	"sync"
	"time"
	"unicode/utf8"
)

// The kinds of log entries.
const (
	// KindAuthorizer is one authorizer decision at $connect.
	KindAuthorizer = "authorizer"
	// KindRefused is one handshake refused before its connection opened.
	KindRefused = "refused"
)

// LogSize is how many entries of each kind a node keeps.
const LogSize = 1000

// Decisions of authorizer entries.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	DecisionError = "error"
)

// maxField bounds the text fields of an entry (reason, user agent, path),
// so that one client cannot make the log large.
const maxField = 256

// Entry is one log entry. The fields of the other kind are zero.
type Entry struct {
	Time   time.Time
	NodeID string
	// SourceIP is the client's address.
	SourceIP string
	// Reason says why: a denial's or failure's reason for an authorizer
	// entry, the refusal's for a refused one. It never holds a credential.
	Reason string

	// Authorizer entries: the configured authorizer type, the decision
	// (DecisionAllow, DecisionDeny or DecisionError), how long the
	// authorizer took (zero on a cache hit), whether the decision came
	// from the cache, and the principal of an allow.
	Authorizer  string
	Decision    string
	Latency     time.Duration
	CacheHit    bool
	PrincipalID string

	// Refused entries: the status answered, the User-Agent and the path
	// of the upgrade request, without its query string.
	Status    int
	UserAgent string
	Path      string
}

// ValidKind reports whether kind is a kind of entry.
func ValidKind(kind string) bool { return kind == KindAuthorizer || kind == KindRefused }

// Log is a node's recent entries, LogSize of each kind. The zero value is
// not usable; use NewLog. It is safe for concurrent use; adding an entry
// takes a short lock.
type Log struct {
	nodeID     string
	authorizer ring
	refused    ring
}

// NewLog returns an empty log whose entries name nodeID.
func NewLog(nodeID string) *Log {
	return &Log{nodeID: nodeID, authorizer: ring{buf: make([]Entry, LogSize)}, refused: ring{buf: make([]Entry, LogSize)}}
}

func (l *Log) ring(kind string) *ring {
	switch kind {
	case KindAuthorizer:
		return &l.authorizer
	case KindRefused:
		return &l.refused
	}
	return nil
}

// Add records e as an entry of kind, stamped with the log's node and, when
// e has none, the current time. Long text fields are cut. A nil Log or an
// unknown kind records nothing.
func (l *Log) Add(kind string, e Entry) {
	if l == nil {
		return
	}
	r := l.ring(kind)
	if r == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.NodeID = l.nodeID
	e.Reason, e.UserAgent, e.Path = cut(e.Reason), cut(e.UserAgent), cut(e.Path)
	r.add(e)
}

// Recent returns up to max entries of kind, newest first; none for a nil
// Log or an unknown kind.
func (l *Log) Recent(kind string, max int) []Entry {
	if l == nil {
		return nil
	}
	r := l.ring(kind)
	if r == nil {
		return nil
	}
	return r.recent(max)
}

// cut shortens s to maxField bytes at a character boundary.
func cut(s string) string {
	if len(s) <= maxField {
		return s
	}
	k := maxField
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return s[:k]
}

// ring is a fixed-size ring of entries.
type ring struct {
	// mu guards the ring's fields.
	mu sync.Mutex
	// buf holds the entries; next is where the next one goes, and n how
	// many are held.
	buf  []Entry
	next int
	n    int
}

func (r *ring) add(e Entry) {
	r.mu.Lock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

func (r *ring) recent(max int) []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	count := min(max, r.n)
	if count <= 0 {
		return nil
	}
	out := make([]Entry, 0, count)
	for i := 1; i <= count; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}
