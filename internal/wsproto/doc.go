// Package wsproto implements the RFC 6455 WebSocket wire protocol for the
// gateway's edge: an incremental frame parser for client-to-server traffic,
// helpers that append server-to-client frames to a byte slice, and the
// opening-handshake checks.
//
// The package does no I/O. The edge runs a non-blocking event loop that
// hands each connection's bytes to [Parser.Feed] in whatever chunks the
// kernel returned, down to one byte at a time; the parser keeps just enough
// state to resume and calls a [Handler] for every complete message and
// control frame. Protocol and limit violations are reported as a
// [*CloseError] that carries the close code the server must send before it
// closes the connection.
//
// No extensions are negotiated (in particular not permessage-deflate), so a
// frame with any RSV bit set is a protocol error.
//
// Memory matters more than speed here because the gateway keeps many idle
// connections: a [Parser] that is between messages holds no buffers, and
// the buffers it needs while a message is in flight come from a shared pool.
package wsproto
