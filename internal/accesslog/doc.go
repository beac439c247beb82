// Package accesslog writes AWS-style access logs: one line per WebSocket
// connect (refused handshakes included), message and disconnect, and per
// management API call, laid out by a format of AWS's $context variables.
//
// A Format is parsed once from the configuration; a Logger renders each
// Entry with it on the caller's goroutine and hands the line to a single
// writer goroutine through a bounded buffer, so logging never waits for the
// disk. When the buffer is full, lines are dropped and counted. The output,
// standard output or a file, can be reopened (after logrotate moved the
// file) without losing lines that are buffered.
package accesslog
