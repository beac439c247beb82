//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

const usage = `wsbench — load generator and meter for a wsgate gateway, loopback only

Usage:
  wsbench idle -n N [flags]       open N idle connections: connect rate, handshake
                                  latency, failures, gateway RSS per connection
  wsbench connect -n N [flags]    open N connections at full rate, each ended
                                  once its 101 arrives: connects/s, handshake
                                  latency, gateway CPU per 1,000 connects
  wsbench echo [flags]            round-trip latency of messages through route
                                  selection and an echoing mock integration;
                                  -backend http|h2c|lambda|local: through an
                                  integration to a trivial backend process,
                                  with its CPU and TIME-WAIT sockets;
                                  -peer centrifugo: the same against
                                  Centrifugo v6 (RPC proxy or built-in RPC)
  wsbench push -mode post|batch|topic [flags]
                                  deliveries per second through the management
                                  API (@connections, @batch, @topics) and their
                                  latency
  wsbench floor [-n 10000 -rate 10]
                                  the fan-out floor of this machine: one
                                  write(2) per socket from a bare writer
                                  process, read as push -mode topic reads
  wsbench publish -gateway BIN (-integration-config FILE | -type TYPE ...)
                                  acknowledged publications per second
                                  through a route on a publishing integration
                                  (nats, redis, ...) to its broker, their
                                  latency, errors and gateway CPU per message
  wsbench soak -gateway BIN [-duration 10m] [flags]
                                  hostile clients (slow-route floods, bad
                                  management calls, subscription floods)
                                  against one gateway; samples RSS, fds,
                                  threads and goroutines and says whether
                                  they stay flat
  wsbench backend [-listen ADDR]  the trivial backend of echo -backend, alone

Recommended: let wsbench start the gateway, so that its baseline is a fresh
process:
  go build -o /tmp/bench/wsgate ./cmd/wsgate
  go run ./cmd/wsbench idle -n 15000 -gateway /tmp/bench/wsgate
  go run ./cmd/wsbench idle -n 50000 -gateway /tmp/bench/wsgate -gateways 3
  go run ./cmd/wsbench echo -n 1000 -messages 100000 -gateway /tmp/bench/wsgate
  go run ./cmd/wsbench echo -n 100 -messages 100000 -gateway /tmp/bench/wsgate -backend http

Run "wsbench COMMAND -h" for a command's flags. See BENCHMARKS.md.
`

// run executes the command line args and returns the exit code: 0 on
// success, 1 when the run failed, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "idle":
		err = runIdle(ctx, args[1:], stdout, stderr)
	case "connect":
		err = runConnect(ctx, args[1:], stdout, stderr)
	case "echo":
		err = runEcho(ctx, args[1:], stdout, stderr)
	case "push":
		err = runPush(ctx, args[1:], stdout, stderr)
	case "floor":
		err = runFloor(ctx, args[1:], stdout, stderr)
	case "floor-writer":
		err = runFloorWriter(ctx, args[1:], stdin, stdout, stderr)
	case "soak":
		err = runSoak(ctx, args[1:], stdout, stderr)
	case "publish":
		err = runPublish(ctx, args[1:], stdout, stderr)
	case "backend":
		err = runBackend(ctx, args[1:], stdout, stderr)
	case "lambda-function":
		err = runLambdaFunction(args[1:], stderr)
	case "idle-worker":
		err = runIdleWorker(ctx, args[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "wsbench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsagePrinted):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "wsbench %s: %v\n", args[0], ue.error)
		return 2
	default:
		fmt.Fprintf(stderr, "wsbench %s: %v\n", args[0], err)
		return 1
	}
}

// usageError is a problem with the command line.
type usageError struct{ error }
