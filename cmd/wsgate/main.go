// Command wsgate is a self-hosted WebSocket API gateway that speaks AWS API
// Gateway's WebSocket formats. See the README for usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/wsgate/wsgate/internal/cli"
)

func main() {
	// SIGHUP reloads the configuration of `wsgate serve` (see cli); it
	// does not stop the gateway.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
