package cli_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestMigrate runs wsgate migrate against a real PostgreSQL: it creates
// the tables of every postgres route, in route order, saying so at each
// route's table line; run again it changes nothing and says that; it
// fails with a clear message and without the connection string when the
// variable is unset or the server is down; and a config without postgres
// routes has nothing to do.
func TestMigrate(t *testing.T) {
	srv := servicetest.Postgres(t)
	db := srv.Conn(t, srv.DSN())
	ctx := context.Background()
	if _, err := db.Exec(ctx, "CREATE SCHEMA audit"); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "wsgate.yaml", `routes:
  save:
    integration:
      type: postgres
      dsn_env: WSGATE_TEST_PG_DSN
      table: messages
  audit:
    integration:
      type: postgres
      dsn_env: WSGATE_TEST_PG_DSN
      table: audit.log
  $default: {integration: {type: mock}, route_response: true}
`)
	t.Setenv("WSGATE_TEST_PG_DSN", srv.DSN())
	r := run(t, nil, "migrate", "-c", path)
	want := fmt.Sprintf("%[1]s:11: routes.audit.integration.table: created table audit.log and index log_connection_id_received_at_idx\n"+
		"%[1]s:6: routes.save.integration.table: created table messages and index messages_connection_id_received_at_idx\n", path)
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("first run: %v\nwant stdout:\n%s", r, want)
	}
	for _, table := range []string{"messages", "audit.log", "messages_connection_id_received_at_idx", "audit.log_connection_id_received_at_idx"} {
		var exists bool
		if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || !exists {
			t.Errorf("%s does not exist: %v", table, err)
		}
	}

	r = run(t, nil, "migrate", "-c", path)
	want = fmt.Sprintf("%[1]s:11: routes.audit.integration.table: table audit.log and index log_connection_id_received_at_idx exist; nothing to do\n"+
		"%[1]s:6: routes.save.integration.table: table messages and index messages_connection_id_received_at_idx exist; nothing to do\n", path)
	if r.code != 0 || r.stdout != want {
		t.Fatalf("second run: %v\nwant stdout:\n%s", r, want)
	}

	t.Setenv("WSGATE_TEST_PG_DSN", "")
	r = run(t, nil, "migrate", "-c", path)
	if r.code != 1 || !strings.Contains(r.stdout, path+":5: routes.save.integration.dsn_env: environment variable WSGATE_TEST_PG_DSN is unset or empty\n") ||
		!strings.Contains(r.stderr, "wsgate migrate: 2 of 2 postgres route(s) not ready") {
		t.Fatalf("DSN unset: %v", r)
	}

	t.Setenv("WSGATE_TEST_PG_DSN", srv.DSN())
	srv.Stop()
	r = run(t, nil, "migrate", "-c", path, "-timeout", "10s")
	if r.code != 1 || !strings.Contains(r.stdout, path+":6: routes.save.integration.table: messages: cannot connect: ") ||
		!strings.Contains(r.stdout, "connection refused") {
		t.Fatalf("server down: %v", r)
	}
	if out := r.stdout + r.stderr; strings.Contains(out, servicetest.PostgresPassword) || strings.Contains(out, "postgres://") {
		t.Errorf("the output shows the connection string: %v", r)
	}

	none := writeFile(t, "none.yaml", "routes:\n  $default: {integration: {type: mock}}\n")
	r = run(t, nil, "migrate", "-c", none)
	if r.code != 0 || r.stdout != none+": no postgres routes; nothing to do\n" {
		t.Fatalf("no postgres routes: %v", r)
	}

	r = run(t, nil, "migrate")
	if r.code != 2 || !strings.Contains(r.stderr, "-c FILE is required") {
		t.Fatalf("without -c: %v", r)
	}
	bad := writeFile(t, "bad.yaml", "routes:\n  save: {integration: {type: postgres, table: 'Messages'}}\n")
	r = run(t, nil, "migrate", "-c", bad)
	if r.code != 1 || !strings.Contains(r.stdout, bad+":2: routes.save.integration.dsn_env: required") || !strings.Contains(r.stderr, "nothing done") {
		t.Fatalf("a bad config: %v", r)
	}
}
