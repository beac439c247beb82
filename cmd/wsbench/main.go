//go:build linux

// Command wsbench measures a wsgate gateway on one Linux machine over
// loopback: how many idle WebSocket connections it holds and what each one
// costs in resident memory (wsbench idle), how fast connections are
// established and what each costs the gateway in CPU (wsbench connect), the
// round-trip latency of a message through route
// selection and a mock integration (wsbench echo), and how many messages per
// second a publishing integration gets acknowledged by its broker (wsbench
// publish). See BENCHMARKS.md at the repository root for the method and the
// figures measured with it.
//
// The client side is a hand-written HTTP upgrade and masked frames on raw
// TCP sockets, so that it stays cheap next to the gateway it measures.
// wsbench dials loopback addresses only.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
