package integration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/servicetest"
)

// TestPostgresBodyJSONOutOfNumericRange: a message that is valid JSON but
// holds a number jsonb's numeric cannot hold is stored as bytes in body,
// like JSON holding \u0000, instead of failing.
func TestPostgresBodyJSONOutOfNumericRange(t *testing.T) {
	srv := servicetest.SharedPostgres(t)
	dsn := srv.NewDatabase(t)
	db := srv.Conn(t, dsn)
	ctx := context.Background()
	conn := dialPostgres(t, dsn)
	table := conn.Table("messages")
	p := &Postgres{Table: table, Payload: PayloadBody, Timeout: 10 * time.Second}
	for _, body := range []string{`{"n":1e1000000}`, `{"n":-1e999999}`, `{"n":1e-999999}`} {
		resp, err := p.Invoke(ctx, messageEvent("c1", body, ""))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		var ack struct{ ID int64 }
		if err := json.Unmarshal([]byte(resp.Body), &ack); err != nil {
			t.Fatal(err)
		}
		r := pgRowByID(t, db, "messages", ack.ID)
		if r.event != nil || string(r.body) != body {
			t.Errorf("%s: event %v, body %q", body, deref(r.event), r.body)
		}
	}
}

// TestJSONBNumberUnfit checks the numeric limits at their edges, as
// PostgreSQL 15 answers them.
func TestJSONBNumberUnfit(t *testing.T) {
	for s, want := range map[string]bool{
		`1e131071`: false, `1e131072`: true, `12.5e131070`: false, `12.5e131071`: true,
		`1e-16383`: false, `1e-16384`: true, `1.5e-16382`: false, `1.5e-16383`: true, `100e-16385`: true,
		`1e99999999999999999999`: true, `[1, 2.5, -3e10, {"a": "1e999999"}]`: false, `{"a\"1e999999": 0}`: false,
		`{"n": -1E+1000000}`: true, `0`: false, `-0.0e-0`: false,
	} {
		if got := jsonbNumberUnfit([]byte(s)); got != want {
			t.Errorf("jsonbNumberUnfit(%.40s) = %v, want %v", s, got, want)
		}
	}
}
