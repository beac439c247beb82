package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
)

// migrate creates the tables of the configuration's postgres routes and
// prints a line per route: what it created or found, or why it could
// not. It fails when a table is not ready; connection strings never
// appear in what it prints.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	path := fs.String("c", "", "config `file` naming the postgres routes (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after `D`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *path == "" {
		return usageError{fmt.Errorf("-c FILE is required: the config whose postgres routes' tables to create")}
	}
	if *timeout <= 0 {
		return usageError{fmt.Errorf("-timeout must be positive, got %v", *timeout)}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		printErrors(stdout, config.Leaves(err))
		return fmt.Errorf("%d problem(s) in %s; nothing done", len(config.Leaves(err)), *path)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	steps, err := gateway.Migrate(ctx, cfg, gateway.Options{})
	if err != nil {
		printErrors(stdout, config.Leaves(err))
		return fmt.Errorf("%d problem(s) in %s; nothing done", len(config.Leaves(err)), *path)
	}
	if len(steps) == 0 {
		fmt.Fprintf(stdout, "%s: no postgres routes; nothing to do\n", *path)
		return nil
	}
	failed := 0
	for _, s := range steps {
		fmt.Fprintln(stdout, s.Message(cfg))
		if s.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d postgres route(s) not ready", failed, len(steps))
	}
	return nil
}
