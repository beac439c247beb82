package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/gateway"
	gt "github.com/wsgate/wsgate/internal/gatewaytest"
	"github.com/wsgate/wsgate/internal/servicetest"
)

// startWithEnv starts a gateway as gatewaytest.Start does, its environment
// env and the gatewaytest secrets.
func startWithEnv(t *testing.T, yamlText string, env map[string]string) *gt.Gateway {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Management.Listen = "127.0.0.1:0"
	logs := &gt.LogBuffer{}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "WSGATE_TEST_JWT_SECRET" {
			return gt.TestJWTSecret
		}
		return ""
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Getenv: getenv})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := g.Start(); err != nil {
		t.Fatalf("gateway.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
		if strings.Contains(logs.String(), servicetest.PostgresPassword) {
			t.Errorf("the log shows the password:\n%s", logs.String())
		}
	})
	return &gt.Gateway{Gateway: g, Config: cfg, Logs: logs, URL: "ws://" + g.Addr() + cfg.UpgradePath()}
}

// pgFrame is a reply of a postgres route decoded.
type pgFrame struct {
	Status       string `json:"status"`
	RequestID    string `json:"requestId"`
	Table        string `json:"table"`
	ID           int64  `json:"id"`
	Message      string `json:"message"`
	ConnectionID string `json:"connectionId"`
}

func nextPgFrame(t *testing.T, c *gt.Client) (pgFrame, string) {
	t.Helper()
	raw := c.NextText()
	var f pgFrame
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return f, raw
}

func tableExists(db *pgx.Conn, table string) bool {
	var exists bool
	err := db.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists)
	return err == nil && exists
}

var ackPattern = regexp.MustCompile(`^\{"status":"accepted","requestId":"[^"]+","table":"[a-z_.]+","id":[1-9][0-9]*\}$`)

// TestPostgresIntegration runs postgres routes over real sockets: the
// gateway creates the tables at start, $connect stores a row before the
// handshake completes, a message route answers with the ack frame naming
// the committed row, which holds the event, and a body route stores the
// message alone.
func TestPostgresIntegration(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	ctx := context.Background()
	if _, err := db.Exec(ctx, "CREATE SCHEMA chat"); err != nil {
		t.Fatal(err)
	}
	g := startWithEnv(t, `
authorizer:
  type: jwt
  jwt: {secret_env: WSGATE_TEST_JWT_SECRET, algorithms: [HS256], context_claims: [tenant]}
routes:
  $connect: {integration: {type: postgres, dsn_env: PG_DSN, table: connects, payload: body}}
  save:
    integration: {type: postgres, dsn_env: PG_DSN, table: messages, timeout: 5s}
    route_response: true
  note:
    integration: {type: postgres, dsn_env: PG_DSN, table: chat.notes, payload: body, timeout: 5s}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, map[string]string{"PG_DSN": dsn})

	for _, table := range []string{"connects", "messages", "chat.notes"} {
		gt.Eventually(t, func() bool { return tableExists(db, table) }, "serve creates table %s", table)
	}

	alice := gt.Dial(t, g.URL+"?access_token="+tenantToken(t, "alice", "acme"), nil)
	var connID string
	if err := db.QueryRow(ctx, "SELECT connection_id FROM connects WHERE principal_id = 'alice' AND event_type = 'CONNECT' AND route_key = '$connect'").Scan(&connID); err != nil {
		t.Fatalf("the $connect row: %v", err)
	}

	body := `{"action":"save","text":"tea for two"}`
	alice.Send(body)
	f, raw := nextPgFrame(t, alice)
	if !ackPattern.MatchString(raw) || f.Table != "messages" {
		t.Fatalf("ack %s", raw)
	}
	var (
		reqID, conn, routeKey, principal string
		evBody, evRequestID, tenant      string
	)
	err := db.QueryRow(ctx, `SELECT request_id, connection_id, route_key, principal_id,
		event->>'body', event->'requestContext'->>'requestId', authorizer->>'tenant' FROM messages WHERE id = $1`, f.ID).
		Scan(&reqID, &conn, &routeKey, &principal, &evBody, &evRequestID, &tenant)
	if err != nil {
		t.Fatalf("row %d: %v", f.ID, err)
	}
	if reqID != f.RequestID || evRequestID != f.RequestID || conn != connID || routeKey != "save" || principal != "alice" || evBody != body || tenant != "acme" {
		t.Errorf("row %d: %q %q %q %q %q %q %q", f.ID, reqID, conn, routeKey, principal, evBody, evRequestID, tenant)
	}

	note := `{"action":"note","n":1}`
	alice.Send(note)
	f, raw = nextPgFrame(t, alice)
	if !ackPattern.MatchString(raw) || f.Table != "chat.notes" {
		t.Fatalf("ack %s", raw)
	}
	var same bool
	if err := db.QueryRow(ctx, "SELECT event = $2::jsonb AND body IS NULL FROM chat.notes WHERE id = $1", f.ID, note).Scan(&same); err != nil || !same {
		t.Errorf("note row %d: %v %v", f.ID, same, err)
	}

	alice.Send("echo")
	if got := alice.NextText(); got != "echo" {
		t.Fatalf("echo %q", got)
	}
}

// TestPostgresOutage starts a gateway while PostgreSQL is down: it starts,
// its other routes serve, and the postgres route answers error frames;
// once PostgreSQL is up the gateway creates the table by itself. Then
// PostgreSQL is stopped mid-test and started again: error frames while it
// is down, acks after, and every message acknowledged has its row.
func TestPostgresOutage(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	srv.Stop()
	t.Cleanup(func() { srv.Start(t) })
	g := startWithEnv(t, `
routes:
  save:
    integration: {type: postgres, dsn_env: PG_DSN, table: saved, payload: body, timeout: 2s}
    route_response: true
  $default: {integration: {type: mock}, route_response: true}
`, map[string]string{"PG_DSN": dsn})
	c := gt.Dial(t, g.URL, nil)
	c.Send("hello")
	if got := c.NextText(); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	c.Send(`{"action":"save","n":-1}`)
	if f, raw := nextPgFrame(t, c); f.Message != "Internal server error" || f.ConnectionID == "" {
		t.Fatalf("while PostgreSQL is down: %s", raw)
	}

	srv.Start(t)
	db := srv.Conn(t, dsn)
	gt.Eventually(t, func() bool { return tableExists(db, "saved") }, "the table created once PostgreSQL is up")

	acked := map[int64]string{}
	phase := 0 // 0: until an ack; 1: stopped, until a failure; 2: restarted, until an ack
	for i := 0; phase < 3; i++ {
		if i > 100000 {
			t.Fatal("the outage never ended")
		}
		msg := fmt.Sprintf(`{"action":"save","n":%d}`, i)
		c.Send(msg)
		f, raw := nextPgFrame(t, c)
		switch {
		case f.Status == "accepted":
			acked[f.ID] = msg
			if phase == 0 {
				srv.Stop()
				phase = 1
			} else if phase == 2 {
				phase = 3
			}
		case f.Message == "Internal server error":
			if phase == 0 {
				t.Fatalf("failed before the outage: %s", raw)
			}
			if phase == 1 {
				c.Send("echo during the outage")
				if got := c.NextText(); got != "echo during the outage" {
					t.Fatalf("echo %q", got)
				}
				srv.Start(t)
				phase = 2
			}
		default:
			t.Fatalf("reply %s", raw)
		}
	}
	db = srv.Conn(t, dsn)
	rows, err := db.Query(context.Background(), "SELECT id, event::text FROM saved")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]string{}
	var id int64
	var ev string
	if _, err := pgx.ForEachRow(rows, []any{&id, &ev}, func() error { stored[id] = ev; return nil }); err != nil {
		t.Fatal(err)
	}
	for id, msg := range acked {
		if got, ok := stored[id]; !ok || !jsonSame(got, msg) {
			t.Errorf("acknowledged %s (row %d): stored %q", msg, id, got)
		}
	}
	if len(acked) < 2 || len(stored) < len(acked) {
		t.Errorf("%d acknowledged, %d rows", len(acked), len(stored))
	}
}

func jsonSame(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// TestPostgresConfigProblems: the connection string is read at start; a
// missing one is reported at its line as missing, and one that does not
// parse is reported without any part of it.
func TestPostgresConfigProblems(t *testing.T) {
	cfg, err := config.Parse("wsgate.yaml", []byte(`routes:
  save:
    integration:
      type: postgres
      dsn_env: WSGATE_TEST_UNSET_PG_DSN
      table: messages
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.New(cfg, gateway.Options{Getenv: func(string) string { return "" }})
	want := "wsgate.yaml:5: routes.save.integration.dsn_env: environment variable WSGATE_TEST_UNSET_PG_DSN is unset or empty"
	if err == nil || !strings.Contains(err.Error(), want) || !config.IsMissing(err) {
		t.Fatalf("unset DSN: %v", err)
	}

	cfg, err = config.Parse("wsgate.yaml", []byte(`routes:
  save: {integration: {type: postgres, dsn_env: PG_DSN, table: messages}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{"postgres://u:s3cret-pw@[::1:5432/db", "host=h password=s3cret-pw port=notaport"} {
		_, err = gateway.New(cfg, gateway.Options{Getenv: func(string) string { return dsn }})
		if err == nil || !strings.Contains(err.Error(), "wsgate.yaml:2: routes.save.integration.dsn_env: environment variable PG_DSN: postgres: the connection string is") {
			t.Fatalf("a malformed DSN: %v", err)
		}
		if strings.Contains(err.Error(), "s3cret") || config.IsMissing(err) {
			t.Errorf("error shows a secret or counts as missing: %v", err)
		}
	}
}
