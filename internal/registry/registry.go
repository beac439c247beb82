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

// Record is what the registry knows about one connection.
type Record struct {
	ConnectionID string
	NodeID       string
	PrincipalID  string
	ConnectedAt  time.Time
	SourceIP     string
	UserAgent    string
}

// Registry is the shared table of connections. Implementations are safe for
// concurrent use.
type Registry interface {
	// Register records rec. Registering an id that is already present
	// replaces its record.
	Register(ctx context.Context, rec Record) error
	// Unregister removes the connection id. Removing an unknown id is not an
	// error.
	Unregister(ctx context.Context, connectionID string) error
	// Lookup returns the record for id, or ErrNotFound.
	Lookup(ctx context.Context, connectionID string) (Record, error)
}

// Closer is implemented by registries that hold resources to release.
type Closer interface {
	Close() error
}
