package servicetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestPostgresStopStart: the cluster answers on its DSN with the password,
// refuses a wrong one, is unreachable while stopped, and comes back on the
// same port with its data.
func TestPostgresStopStart(t *testing.T) {
	srv := servicetest.Postgres(t)
	ctx := context.Background()
	c := srv.Conn(t, srv.DSN())
	if _, err := c.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')"); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(srv.DSN(), servicetest.PostgresPassword, "wrong", 1)
	if c, err := pgx.Connect(ctx, wrong); err == nil {
		_ = c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}
	srv.Stop()
	if c, err := pgx.Connect(ctx, srv.DSN()); err == nil {
		_ = c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	srv.Start(t)
	c, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "before" {
		t.Fatalf("after the restart: %q, %v", v, err)
	}
}
