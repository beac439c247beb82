// Package registry records which node owns each connection.
//
// A gateway process keeps its live sockets in the node-local hub; the
// registry is the shared view that lets any node's management API find the
// node that owns a connection id. The in-memory Memory registry serves a
// single process. Cluster backends implement the same Registry interface and
// must pass the contract tests in package registrytest.
package registry

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when no connection with the given id is registered.
var ErrNotFound = errors.New("connection not found")

// ErrNoPrincipal is returned by ReserveUserSlot for an empty principal:
// anonymous connections are not counted per user.
var ErrNoPrincipal = errors.New("a user slot needs a principal")

// ErrBadLimit is returned by ReserveUserSlot and ListConnections for a
// limit below 1.
var ErrBadLimit = errors.New("the limit must be at least 1")

// ErrBadCursor is returned by ListConnections for a cursor that no
// ListConnections call of the same kind of registry returned.
var ErrBadCursor = errors.New("the listing cursor is not valid")

// Record is what the registry knows about one connection.
type Record struct {
	ConnectionID string
	NodeID       string
	PrincipalID  string
	ConnectedAt  time.Time
	SourceIP     string
	UserAgent    string
	// DomainName is the Host the client connected with.
	DomainName string
	// Authorizer is the authorizer's output for the connection, as
	// requestContext.authorizer carries it. Backends that store records
	// outside the process keep it as JSON, so its values are JSON values
	// (strings, float64 numbers, booleans, nil, and maps and slices of them).
	// A node that finds another node lost builds the lost connections'
	// $disconnect events from the record.
	Authorizer map[string]any
}

// Registry is the shared table of connections, indexed by connection id,
// by user (principalId) and by topic. In a cluster every node sees the same
// registry; which node holds a connection is its Record's NodeID.
// Implementations are safe for concurrent use.
type Registry interface {
	// Register records rec. Registering an id that is already present
	// replaces its record.
	Register(ctx context.Context, rec Record) error
	// Unregister removes the connection id, its place in its user's index
	// and every topic subscription it had. Removing an unknown id is not an
	// error.
	Unregister(ctx context.Context, connectionID string) error
	// Lookup returns the record for id, or ErrNotFound.
	Lookup(ctx context.Context, connectionID string) (Record, error)
	// UserConnections returns the records of principalID's connections,
	// oldest first; none is not an error.
	UserConnections(ctx context.Context, principalID string) ([]Record, error)
	// Subscribe adds the connection to topic; subscribing twice is not an
	// error. An unknown connection is ErrNotFound.
	Subscribe(ctx context.Context, connectionID, topic string) error
	// Unsubscribe removes the connection from topic; an absent subscription
	// is not an error.
	Unsubscribe(ctx context.Context, connectionID, topic string) error
	// TopicSubscribers returns the records of topic's subscribers; none is
	// not an error.
	TopicSubscribers(ctx context.Context, topic string) ([]Record, error)
	// TopicCount returns how many connections are subscribed to topic.
	TopicCount(ctx context.Context, topic string) (int, error)
	// NodeConnections returns the records of the connections nodeID holds;
	// none is not an error.
	NodeConnections(ctx context.Context, nodeID string) ([]Record, error)
	// ListConnections returns a page of the connections that match every
	// filter q sets, in an order of the registry's choosing, with their
	// topics, and the cursor that continues after the page: "" when none
	// is left. Paging from an empty cursor to the end returns each
	// connection that stays registered throughout exactly once. A page
	// holds at most q.Limit connections, and may hold fewer (even none)
	// while more follow, when the registry bounds the work of one call. A
	// cursor the registry did not make is ErrBadCursor; a limit below 1
	// is ErrBadLimit.
	ListConnections(ctx context.Context, q ListQuery) (page []Listed, next string, err error)

	// ReserveUserSlot takes one of principalID's limit connection slots
	// for connectionID, atomically: it counts principalID's other
	// connections — those registered and those holding an unexpired
	// reservation, each once — and when they are fewer than limit it
	// records a reservation for connectionID that expires after ttl, and
	// reports true. Otherwise it leaves connectionID without a reservation
	// and reports false. Reserving again for a connection that holds a
	// reservation renews it; a registered connection counts once, with or
	// without its reservation. Expiry is judged by one clock for every
	// node (the engine's own where it has one), so that the reservations of
	// a node that died mid-handshake end after ttl. An empty principalID is
	// ErrNoPrincipal and a limit below 1 ErrBadLimit.
	ReserveUserSlot(ctx context.Context, principalID, connectionID string, limit int, ttl time.Duration) (bool, error)
	// ReleaseUserSlot removes connectionID's reservation; none is not an
	// error. A handshake releases its reservation when it fails, and once
	// its connection is registered.
	ReleaseUserSlot(ctx context.Context, principalID, connectionID string) error
}

// ListQuery selects the connections ListConnections returns. Empty
// filters select everything.
type ListQuery struct {
	PrincipalID string
	Topic       string
	NodeID      string
	// Cursor is "" for the first page, then the next cursor the previous
	// page returned, with the same filters.
	Cursor string
	// Limit is the most connections a page holds; at least 1.
	Limit int
}

// Listed is a connection as ListConnections returns it: its record and
// the topics it subscribes to, in no particular order.
type Listed struct {
	Record
	Topics []string
}

// CheckSlot returns the error ReserveUserSlot returns before it reaches
// the store, if any: ErrNoPrincipal, ErrBadLimit or the context's error.
func CheckSlot(ctx context.Context, principalID string, limit int) error {
	switch {
	case principalID == "":
		return ErrNoPrincipal
	case limit < 1:
		return ErrBadLimit
	}
	return ctx.Err()
}

// Closer is implemented by registries that hold resources to release.
type Closer interface {
	Close() error
}
