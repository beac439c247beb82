// Package edge accepts WebSocket clients and runs their connections.
//
// The upgrade handshake is served by net/http so that the gateway can answer
// any status AWS answers (401, 403, the $connect integration's status, 502)
// before a socket exists. Once the handshake succeeds the socket is handed to
// an epoll event loop (nbio): no goroutine and no buffer stays with an idle
// connection, which keeps memory per connection to about a kilobyte.
//
// Frames are decoded by package wsproto with AWS's limits and close codes.
// Each connection has a bounded inbound queue drained by a goroutine that
// exists only while messages are pending, so messages of one connection reach
// the Handler in order, and a bounded outbound queue: a client that cannot
// keep up is closed as a slow consumer without delaying anyone else. The
// inbound queue outlives the socket: a closed connection's messages are
// still handled, and its Disconnect comes after the last of them. A
// server-wide budget bounds the messages accepted and not yet handled; when
// it is full the event loop stops reading (budget.go). Replies to messages
// received before a client's close frame are written before the answer to
// it, within the drain timeout. Outgoing
// messages are written by one flusher goroutine per CPU, which gathers what
// is waiting for a connection into one write (see flush.go). A single
// sweeper goroutine enforces the idle timeout, the connection duration limit
// and keepalive pings for all connections.
package edge
