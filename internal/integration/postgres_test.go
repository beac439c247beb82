package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsgate/wsgate/internal/servicetest"
)

func dialPostgres(t testing.TB, dsn string) *PostgresConn {
	t.Helper()
	c, err := DialPostgres(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// pgStored is a row as the tests read it back.
type pgStored struct {
	requestID, connectionID, routeKey, eventType string
	principalID, authorizer, event               *string
	body                                         []byte
	receivedAt                                   time.Time
}

func pgRowByID(t testing.TB, db *pgx.Conn, table string, id int64) pgStored {
	t.Helper()
	var r pgStored
	err := db.QueryRow(context.Background(), "SELECT request_id, connection_id, route_key, event_type, principal_id, authorizer::text, event::text, body, received_at FROM "+table+" WHERE id = $1", id).
		Scan(&r.requestID, &r.connectionID, &r.routeKey, &r.eventType, &r.principalID, &r.authorizer, &r.event, &r.body, &r.receivedAt)
	if err != nil {
		t.Fatalf("row %d of %s: %v", id, table, err)
	}
	return r
}

func pgCount(t testing.TB, db *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t testing.TB, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

// TestPostgresRows inserts with both payloads into a schema-qualified
// table that the first insert creates, and reads every row back: the
// identity columns, the event or the message as jsonb, a message that is
// not JSON (text or binary) as bytes, and the ack naming the row's id.
func TestPostgresRows(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	ctx := context.Background()
	if _, err := db.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS rows_test"); err != nil {
		t.Fatal(err)
	}
	conn := dialPostgres(t, dsn)
	table := conn.Table("rows_test.messages")
	invoke := func(mode Payload, ev *Event) (int64, pgStored) {
		t.Helper()
		p := &Postgres{Table: table, Payload: mode, Timeout: 10 * time.Second}
		resp, err := p.Invoke(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		var ack struct{ ID int64 }
		if err := json.Unmarshal([]byte(resp.Body), &ack); err != nil || ack.ID <= 0 {
			t.Fatalf("ack %s: %v", resp.Body, err)
		}
		want := fmt.Sprintf(`{"status":"accepted","requestId":%q,"table":"rows_test.messages","id":%d}`, ev.RequestContext.RequestID, ack.ID)
		if resp.StatusCode != 200 || resp.Body != want {
			t.Errorf("ack %d %s, want %s", resp.StatusCode, resp.Body, want)
		}
		return ack.ID, pgRowByID(t, db, "rows_test.messages", ack.ID)
	}

	// payload: event — the AWS event, and the identity beside it.
	ev := messageEvent("L0SM9cOFvHcCIhw=", `{"action":"sendmessage","text":"hi"}`, "alice")
	ev.RequestContext.RequestTimeEpoch = 1700000000123
	_, r := invoke(PayloadEvent, ev)
	want, _ := json.Marshal(ev)
	if r.event == nil || !jsonEqual(t, *r.event, string(want)) || r.body != nil {
		t.Errorf("event payload: event %v, body %q", r.event, r.body)
	}
	if r.requestID != ev.RequestContext.RequestID || r.connectionID != "L0SM9cOFvHcCIhw=" || r.routeKey != "sendmessage" || r.eventType != "MESSAGE" ||
		r.principalID == nil || *r.principalID != "alice" || r.authorizer == nil || !strings.Contains(*r.authorizer, `"tenant": "acme"`) ||
		!r.receivedAt.Equal(time.UnixMilli(1700000000123)) {
		t.Errorf("identity: %+v (principal %v, authorizer %v)", r, deref(r.principalID), deref(r.authorizer))
	}

	// payload: body — JSON as jsonb; no authorizer, no principal.
	ev = messageEvent("c2", `{"action":"sendmessage","n":[1,2.5,"x"]}`, "")
	_, r = invoke(PayloadBody, ev)
	if r.event == nil || !jsonEqual(t, *r.event, ev.Body) || r.body != nil || r.principalID != nil || r.authorizer != nil {
		t.Errorf("JSON body: event %v, body %q, principal %v", deref(r.event), r.body, r.principalID)
	}

	// Text that is not JSON, and JSON holding \u0000 that jsonb refuses:
	// the bytes in body.
	for _, body := range []string{"plain text, not JSON", `{"a":"nul \u0000 inside"}`, `{"a":"lone \ud800 surrogate"}`} {
		ev = messageEvent("c3", body, "bob")
		_, r = invoke(PayloadBody, ev)
		if r.event != nil || string(r.body) != body || r.principalID == nil || *r.principalID != "bob" {
			t.Errorf("text body %q: event %v, body %q", body, deref(r.event), r.body)
		}
	}

	// An escaped backslash before u0000 is text jsonb holds.
	ev = messageEvent("c3", `{"a":"\\u0000 is how JSON writes NUL"}`, "")
	_, r = invoke(PayloadBody, ev)
	if r.event == nil || !jsonEqual(t, *r.event, ev.Body) || r.body != nil {
		t.Errorf("escaped backslash: event %v, body %q", deref(r.event), r.body)
	}

	// A binary message: its bytes, decoded.
	raw := []byte{0, 1, 2, 0xff, 'x'}
	ev = messageEvent("c4", base64.StdEncoding.EncodeToString(raw), "")
	ev.IsBase64Encoded = true
	_, r = invoke(PayloadBody, ev)
	if r.event != nil || string(r.body) != string(raw) {
		t.Errorf("binary body: event %v, body %v", deref(r.event), r.body)
	}

	// An empty $connect body.
	ev = messageEvent("c5", "", "")
	ev.RequestContext.EventType, ev.RequestContext.RouteKey = "CONNECT", "$connect"
	_, r = invoke(PayloadBody, ev)
	if r.event != nil || r.body == nil || len(r.body) != 0 || r.eventType != "CONNECT" || r.routeKey != "$connect" {
		t.Errorf("$connect body: event %v, body %v", deref(r.event), r.body)
	}

	// A NUL in the event is refused before it reaches PostgreSQL.
	p := &Postgres{Table: table, Payload: PayloadEvent, Timeout: 10 * time.Second}
	_, err := p.Invoke(ctx, messageEvent("c6", "nul \x00 here", ""))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("NUL in the event: %v", err)
	}
	if n := pgCount(t, db, "rows_test.messages"); n != 8 {
		t.Errorf("%d rows, want 8", n)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestPostgresDuplicateRequestID: an event inserted twice (same request
// id) is one row, and the second answer names it with duplicate: true.
func TestPostgresDuplicateRequestID(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	p := &Postgres{Table: dialPostgres(t, dsn).Table("dup_test"), Timeout: 10 * time.Second}
	ev := messageEvent("c", `{"a":1}`, "")
	first, err := p.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Invoke(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var a, b struct {
		ID        int64
		Duplicate bool
	}
	_ = json.Unmarshal([]byte(first.Body), &a)
	_ = json.Unmarshal([]byte(second.Body), &b)
	if a.ID == 0 || a.Duplicate || b.ID != a.ID || !b.Duplicate || !strings.HasSuffix(second.Body, `,"duplicate":true}`) {
		t.Errorf("first %s, second %s", first.Body, second.Body)
	}
	if n := pgCount(t, db, "dup_test"); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

// TestPostgresConcurrentInserts: many callers at once, some of them with
// rows PostgreSQL refuses (a CHECK constraint): every good row is
// acknowledged with its own id and stored, every bad one fails alone.
func TestPostgresConcurrentInserts(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	conn := dialPostgres(t, dsn)
	table := conn.Table("concurrent_test")
	if _, err := table.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(context.Background(), "ALTER TABLE concurrent_test ADD CHECK (connection_id <> 'bad')"); err != nil {
		t.Fatal(err)
	}
	p := &Postgres{Table: table, Payload: PayloadBody, Timeout: 20 * time.Second}
	const callers, each = 32, 40
	var (
		mu     sync.Mutex
		ids    = map[int64]string{}
		failed int
		wg     sync.WaitGroup
	)
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				conn := fmt.Sprintf("w%d", w)
				if i%10 == 5 {
					conn = "bad"
				}
				body := fmt.Sprintf(`{"w":%d,"i":%d}`, w, i)
				resp, err := p.Invoke(context.Background(), messageEvent(conn, body, ""))
				mu.Lock()
				switch {
				case conn == "bad" && err == nil:
					t.Errorf("a row the CHECK refuses was acknowledged: %s", resp.Body)
				case conn == "bad":
					failed++
					if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "23514") {
						t.Errorf("bad row: %v", err)
					}
				case err != nil:
					t.Errorf("good row %s: %v", body, err)
				default:
					var ack struct{ ID int64 }
					_ = json.Unmarshal([]byte(resp.Body), &ack)
					if prev, dup := ids[ack.ID]; dup {
						t.Errorf("id %d acknowledged for %s and %s", ack.ID, prev, body)
					}
					ids[ack.ID] = body
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed != callers*each/10 || len(ids) != callers*each-failed {
		t.Errorf("%d failed, %d acknowledged", failed, len(ids))
	}
	rows, err := db.Query(context.Background(), "SELECT id, event::text FROM concurrent_test")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]string{}
	var id int64
	var ev string
	if _, err := pgx.ForEachRow(rows, []any{&id, &ev}, func() error { stored[id] = ev; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(ids) {
		t.Errorf("%d rows stored, %d acknowledged", len(stored), len(ids))
	}
	for id, body := range ids {
		if got, ok := stored[id]; !ok || !jsonEqual(t, got, body) {
			t.Errorf("row %d: %q, acknowledged %s", id, got, body)
		}
	}
}

// TestPostgresMigrate: Migrate creates the table and its index once, says
// so, and leaves them alone after; docs/postgres.sql shows the same
// statements; a table of the same name that wsgate did not make is
// reported; a wrong password fails without the DSN or the password in the
// error.
func TestPostgresMigrate(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	ctx := context.Background()
	tbl := dialPostgres(t, dsn).Table("migrate_test")
	res, err := tbl.Migrate(ctx)
	if err != nil || !res.CreatedTable || !res.CreatedIndex || res.Index != "migrate_test_connection_id_received_at_idx" {
		t.Fatalf("first migrate: %+v, %v", res, err)
	}
	// A second pool, as a second gateway or the migrate command would.
	res, err = dialPostgres(t, dsn).Table("migrate_test").Migrate(ctx)
	if err != nil || res.CreatedTable || res.CreatedIndex {
		t.Fatalf("second migrate: %+v, %v", res, err)
	}
	var indexed bool
	if err := db.QueryRow(ctx, "SELECT to_regclass('migrate_test_connection_id_received_at_idx') IS NOT NULL").Scan(&indexed); err != nil || !indexed {
		t.Errorf("index: %v %v", indexed, err)
	}

	doc, err := os.ReadFile("../../docs/postgres.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), PostgresSchema("messages")) {
		t.Errorf("docs/postgres.sql does not hold the statements migrate runs:\n%s", PostgresSchema("messages"))
	}

	if _, err := db.Exec(ctx, "CREATE TABLE foreign_test (id serial, request_id int)"); err != nil {
		t.Fatal(err)
	}
	_, err = dialPostgres(t, dsn).Table("foreign_test").Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "table foreign_test exists but was not made for wsgate: columns id (integer, not bigint), request_id (integer, not text), connection_id (missing)") {
		t.Errorf("a foreign table: %v", err)
	}

	wrong := strings.Replace(dsn, servicetest.PostgresPassword, "wrong-pw-"+servicetest.PostgresPassword, 1)
	_, err = dialPostgres(t, wrong).Table("migrate_test").Migrate(ctx)
	if err == nil || strings.Contains(err.Error(), servicetest.PostgresPassword) || strings.Contains(err.Error(), "postgres://") {
		t.Errorf("wrong password: %v", err)
	}

	if _, err := DialPostgres("postgres://u:s3cret@[::1:5432/db", nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a malformed DSN: %v", err)
	}
}

// TestPostgresDownAtStart: with PostgreSQL down, inserts fail promptly;
// once it is up the table is created and inserts succeed without a new
// connection.
func TestPostgresDownAtStart(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	srv.Stop()
	t.Cleanup(func() { srv.Start(t) })
	conn := dialPostgres(t, dsn)
	conn.Start()
	p := &Postgres{Table: conn.Table("down_test"), Timeout: 20 * time.Second}
	done := make(chan error, 1)
	go func() {
		_, err := p.Invoke(context.Background(), messageEvent("c", "x", ""))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrFailed) || strings.Contains(err.Error(), servicetest.PostgresPassword) {
			t.Fatalf("while down: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("inserting while PostgreSQL is down waited")
	}
	srv.Start(t)
	db := srv.Conn(t, dsn)
	eventually(t, func() bool {
		var exists bool
		err := db.QueryRow(context.Background(), "SELECT to_regclass('down_test') IS NOT NULL").Scan(&exists)
		return err == nil && exists
	}, "the table created once PostgreSQL is up")
	if _, err := p.Invoke(context.Background(), messageEvent("c", "x", "")); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPostgresInsert inserts from many callers at once, as many
// clients' messages arrive, each waiting for its commit; rows/s is the
// throughput the batching gives.
func BenchmarkPostgresInsert(b *testing.B) {
	srv := servicetest.SharedPostgres(b)
	p := &Postgres{Table: dialPostgres(b, srv.NewDatabase(b)).Table("bench"), Payload: PayloadBody, Timeout: 10 * time.Second}
	if _, err := p.Table.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(64)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Invoke(context.Background(), messageEvent("c", `{"action":"save","text":"hello"}`, "alice")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
}

// TestPostgresTableDropped: a table dropped while the pool uses it is
// created again by the next insert, which succeeds.
func TestPostgresTableDropped(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	p := &Postgres{Table: dialPostgres(t, dsn).Table("dropped_test"), Timeout: 10 * time.Second}
	for i := range 2 {
		if _, err := p.Invoke(context.Background(), messageEvent("c", `{"i":1}`, "")); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		if n := pgCount(t, db, "dropped_test"); n != 1 {
			t.Fatalf("insert %d: %d rows, want 1", i, n)
		}
		if _, err := db.Exec(context.Background(), "DROP TABLE dropped_test"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJSONBUnfit(t *testing.T) {
	for in, want := range map[string]bool{
		`{"a":"x"}`:            false,
		`{"a":"\u0000"}`:       true,
		`{"a":"\\u0000"}`:      false,
		`{"a":"\\\u0000"}`:     true,
		`{"a":"\ud83d\ude00"}`: true,
		`{"a":"\u00e9\u0041"}`: false,
		`{"\u0000":1}`:         true,
		`"\\\\u0000 and \\n"`:  false,
	} {
		if got := jsonbUnfit([]byte(in)); got != want {
			t.Errorf("jsonbUnfit(%s) = %v, want %v", in, got, want)
		}
	}
}
