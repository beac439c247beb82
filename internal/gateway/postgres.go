package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/integration"
)

// postgresIntegration builds the postgres integration ic, configured at
// the key path, describes.
func (b *brokers) postgresIntegration(path string, ic config.Integration, opts Options) (integration.Integration, error) {
	conn, err := b.postgresConn(path, ic, opts)
	if err != nil {
		return nil, err
	}
	return &integration.Postgres{Table: conn.Table(ic.Table), Payload: payload(ic.Payload), Timeout: ic.Timeout}, nil
}

// postgresConn returns the pool of the connection string ic.DSNEnv holds,
// shared by the routes naming the same one.
func (b *brokers) postgresConn(path string, ic config.Integration, opts Options) (*integration.PostgresConn, error) {
	if ic.DSNEnv == "" || ic.Table == "" {
		return nil, errReported
	}
	dsn := strings.TrimSpace(opts.Getenv(ic.DSNEnv))
	if dsn == "" {
		return nil, unsetEnv(path+".dsn_env", ic.DSNEnv)
	}
	if conn := b.postgres[dsn]; conn != nil {
		return conn, nil
	}
	conn, err := integration.DialPostgres(dsn, b.log)
	if err != nil {
		// The message names no part of the connection string.
		return nil, &config.Error{Path: path + ".dsn_env", Msg: fmt.Sprintf("environment variable %s: %v", ic.DSNEnv, err)}
	}
	b.postgres[dsn] = conn
	b.all = append(b.all, conn)
	return conn, nil
}

// start starts what the broker connections run in the background: the
// postgres writers, and the creation of missing tables.
func (b *brokers) start() {
	for _, c := range b.postgres {
		c.Start()
	}
}

// MigrateStep is what Migrate did for one postgres route.
type MigrateStep struct {
	// Route is the route's key.
	Route string
	// Result is what was found and created; Err, when set, why the table
	// is not ready, located at the route's table key.
	Result integration.MigrateResult
	Err    error
}

// Message describes the step in a line, located at the route's table key:
// "wsgate.yaml:7: routes.chat.integration.table: created table messages
// and index messages_connection_id_received_at_idx".
func (s MigrateStep) Message(cfg *config.Config) string {
	if s.Err != nil {
		return s.Err.Error()
	}
	r := s.Result
	var msg string
	switch {
	case r.CreatedTable:
		msg = fmt.Sprintf("created table %s and index %s", r.Table, r.Index)
	case r.CreatedIndex:
		msg = fmt.Sprintf("table %s exists; created index %s", r.Table, r.Index)
	default:
		msg = fmt.Sprintf("table %s and index %s exist; nothing to do", r.Table, r.Index)
	}
	return cfg.Locate(&config.Error{Path: "routes." + s.Route + ".integration.table", Msg: msg}).Error()
}

// Migrate creates the tables of cfg's postgres routes that are missing,
// with their indexes, in route key order, and checks those that exist. A
// configuration with problems is returned as Validate's error and nothing
// is done; otherwise every route has a step, failed or not. Connection
// strings come from opts.Getenv and never appear in the errors.
func Migrate(ctx context.Context, cfg *config.Config, opts Options) ([]MigrateStep, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	brk := newBrokers(opts.Logger)
	defer brk.close()
	var steps []MigrateStep
	for _, key := range slices.Sorted(maps.Keys(cfg.Routes)) {
		ic := cfg.Routes[key].Integration
		if cfg.Routes[key].Builtin != "" || ic.Type != config.IntegrationPostgres {
			continue
		}
		path := "routes." + key + ".integration"
		step := MigrateStep{Route: key}
		conn, err := brk.postgresConn(path, ic, opts)
		if err == nil {
			step.Result, err = conn.Table(ic.Table).Migrate(ctx)
			if err != nil {
				err = cfg.Errorf(path+".table", "%s: %v", ic.Table, err)
			}
		} else if ce, ok := err.(*config.Error); ok {
			err = cfg.Locate(ce)
		}
		step.Err = err
		steps = append(steps, step)
	}
	return steps, nil
}
