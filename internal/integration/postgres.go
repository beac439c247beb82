package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// postgresWriters is how many batches of one table may be in flight
	// at once.
	postgresWriters = 4
	// postgresMaxBatch bounds the rows of one INSERT.
	postgresMaxBatch = 256
	// postgresQueue bounds the rows of one table waiting for a writer.
	postgresQueue = 4096
	// postgresMaxConns is the pool size when the connection string does
	// not set pool_max_conns.
	postgresMaxConns = 8
	// postgresConnectTimeout bounds connecting when the connection string
	// does not set connect_timeout; a call's own timeout bounds it further.
	postgresConnectTimeout = 5 * time.Second
	// postgresEnsureBackoff is the longest pause between attempts to
	// prepare a table while PostgreSQL is unreachable.
	postgresEnsureBackoff = 5 * time.Second
	// postgresMigrateLock is the advisory lock that serialises creating
	// tables across gateways sharing a database.
	postgresMigrateLock = 0x77736761746531 // "wsgate1"
)

// PostgresConn is a pool of connections to one PostgreSQL database that
// postgres integrations share. It connects when a statement needs a
// connection, so a server that is down is not an error: inserts fail while
// it stays down and work again once it is back. Each table has a small
// set of writers that insert the rows waiting for it as one statement.
// Start starts them (inserting starts them too); Close stops them and
// closes the pool.
type PostgresConn struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	// password is scrubbed from error texts, should a driver error ever
	// quote it.
	password string

	// ctx ends the writers and their statements; cancel is called by
	// Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// tablesMu guards tables and started.
	tablesMu sync.Mutex
	tables   map[string]*PostgresTable
	started  bool
}

// DialPostgres returns a pool for the connection string dsn (a
// postgres:// URL or key=value pairs), without connecting. Its errors
// never quote dsn, which holds a password.
func DialPostgres(dsn string, logger *slog.Logger) (*PostgresConn, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message repeats the connection string, the password
		// masked, and the host and user with it.
		return nil, errors.New("postgres: the connection string is neither a postgres:// URL nor key=value pairs that PostgreSQL accepts")
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = postgresMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = postgresConnectTimeout
	}
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, errors.New("postgres: the connection string's pool settings are not valid")
	}
	c := &PostgresConn{pool: pool, log: logger, password: cfg.ConnConfig.Password, tables: map[string]*PostgresTable{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Table returns the table name (table or schema.table, plain lower-case
// identifiers as config checks them) of this database, one per name.
func (c *PostgresConn) Table(name string) *PostgresTable {
	c.tablesMu.Lock()
	defer c.tablesMu.Unlock()
	if t := c.tables[name]; t != nil {
		return t
	}
	t := newPostgresTable(c, name)
	c.tables[name] = t
	if c.started {
		t.start()
	}
	return t
}

// Start starts the writers of every table and, in the background, creates
// those that are missing, trying again until PostgreSQL answers. It
// returns at once.
func (c *PostgresConn) Start() {
	c.tablesMu.Lock()
	defer c.tablesMu.Unlock()
	c.started = true
	for _, t := range c.tables {
		t.start()
	}
}

// Close stops the writers, fails the rows still waiting and closes the
// pool. Inserting fails afterwards.
func (c *PostgresConn) Close() error {
	c.cancel()
	c.wg.Wait()
	c.pool.Close()
	return nil
}

// errorText returns err's message on one line, without the connection's
// password or, for a failed connection, the user and database pgx names.
func (c *PostgresConn) errorText(err error) string {
	var ce *pgconn.ConnectError
	msg := err.Error()
	if errors.As(err, &ce) && errors.Unwrap(ce) != nil {
		msg = "cannot connect: " + errors.Unwrap(ce).Error()
	}
	if c.password != "" {
		msg = strings.ReplaceAll(msg, c.password, "xxxxx")
	}
	// pgx puts each address or TLS mode it tried on a line of its own.
	return strings.ReplaceAll(strings.ReplaceAll(msg, "\n\t", "; "), "\n", "; ")
}

// PostgresTable is one table that postgres integrations insert into,
// with the writers that batch its rows.
type PostgresTable struct {
	conn  *PostgresConn
	name  string
	ident pgx.Identifier
	index string
	queue chan *pgRow

	insertSQL, lookupSQL string

	startOnce sync.Once
	// ensureMu serialises preparing the table; ensured is true once it
	// is known to exist with the columns wsgate writes.
	ensureMu sync.Mutex
	ensured  atomic.Bool
}

func newPostgresTable(c *PostgresConn, name string) *PostgresTable {
	ident := pgx.Identifier(strings.Split(name, "."))
	t := &PostgresTable{conn: c, name: name, ident: ident, index: postgresIndexName(ident[len(ident)-1]),
		queue: make(chan *pgRow, postgresQueue)}
	q := ident.Sanitize()
	t.insertSQL = "INSERT INTO " + q + " (request_id, connection_id, route_key, event_type, principal_id, authorizer, event, body, received_at)\n" +
		"SELECT r, c, k, e, p, a::jsonb, ev::jsonb, b, ts\n" +
		"FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::timestamptz[]) AS u(r, c, k, e, p, a, ev, b, ts)\n" +
		"ON CONFLICT (request_id) DO NOTHING\n" +
		"RETURNING request_id, id"
	t.lookupSQL = "SELECT request_id, id FROM " + q + " WHERE request_id = ANY($1::text[])"
	return t
}

// Name returns the table's name as configured.
func (t *PostgresTable) Name() string { return t.name }

// start starts the writers and the background preparation, once.
func (t *PostgresTable) start() {
	t.startOnce.Do(func() {
		c := t.conn
		if c.ctx.Err() != nil {
			return
		}
		c.wg.Add(postgresWriters + 1)
		for range postgresWriters {
			go t.writer()
		}
		go t.prepare()
	})
}

// prepare creates the table when it is missing, trying until it succeeds
// or the connection is closed.
func (t *PostgresTable) prepare() {
	c := t.conn
	defer c.wg.Done()
	wait := 250 * time.Millisecond
	for c.ctx.Err() == nil && !t.ensured.Load() {
		res, err := t.ensure(c.ctx)
		if err == nil {
			if res.CreatedTable {
				c.log.Info("postgres table created", "table", t.name)
			}
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("postgres table not ready", "table", t.name, "err", c.errorText(err), "retry_in", wait)
		select {
		case <-c.ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, postgresEnsureBackoff)
	}
}

// MigrateResult is what Migrate did to one table.
type MigrateResult struct {
	// Table and Index are the names of the table and of its index on
	// (connection_id, received_at).
	Table, Index string
	// CreatedTable and CreatedIndex are true when they did not exist.
	CreatedTable, CreatedIndex bool
}

// Migrate creates the table and its index when they are missing and
// checks that the table has the columns wsgate writes. It is idempotent,
// and needs no CREATE privilege when both exist.
func (t *PostgresTable) Migrate(ctx context.Context) (MigrateResult, error) {
	res, err := t.ensure(ctx)
	if err != nil {
		return res, errors.New(t.conn.errorText(err))
	}
	return res, nil
}

// ensure is Migrate, remembering success.
func (t *PostgresTable) ensure(ctx context.Context) (MigrateResult, error) {
	t.ensureMu.Lock()
	defer t.ensureMu.Unlock()
	return t.ensureLocked(ctx)
}

// ensureOnce prepares the table unless that has been done.
func (t *PostgresTable) ensureOnce(ctx context.Context) error {
	t.ensureMu.Lock()
	defer t.ensureMu.Unlock()
	if t.ensured.Load() {
		return nil
	}
	_, err := t.ensureLocked(ctx)
	return err
}

func (t *PostgresTable) ensureLocked(ctx context.Context) (MigrateResult, error) {
	res := MigrateResult{Table: t.name, Index: t.index}
	err := pgx.BeginFunc(ctx, t.conn.pool, func(tx pgx.Tx) error {
		tableExists, err := t.exists(ctx, tx, t.ident)
		if err != nil {
			return err
		}
		indexIdent := append(pgx.Identifier{}, t.ident[:len(t.ident)-1]...)
		indexIdent = append(indexIdent, t.index)
		indexExists, err := t.exists(ctx, tx, indexIdent)
		if err != nil {
			return err
		}
		if !tableExists || !indexExists {
			// Another gateway may be creating the same table.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(postgresMigrateLock)); err != nil {
				return err
			}
			if tableExists, err = t.exists(ctx, tx, t.ident); err != nil {
				return err
			}
			if indexExists, err = t.exists(ctx, tx, indexIdent); err != nil {
				return err
			}
		}
		if !tableExists {
			if _, err := tx.Exec(ctx, postgresCreateTable(t.ident)); err != nil {
				return fmt.Errorf("creating table %s: %w", t.name, err)
			}
			res.CreatedTable = true
		}
		if err := t.checkColumns(ctx, tx); err != nil {
			return err
		}
		if !indexExists {
			if _, err := tx.Exec(ctx, postgresCreateIndex(t.ident, t.index)); err != nil {
				return fmt.Errorf("creating index %s: %w", t.index, err)
			}
			res.CreatedIndex = true
		}
		return nil
	})
	if err == nil {
		t.ensured.Store(true)
	}
	return res, err
}

func (t *PostgresTable) exists(ctx context.Context, tx pgx.Tx, ident pgx.Identifier) (bool, error) {
	var exists bool
	err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident.Sanitize()).Scan(&exists)
	return exists, err
}

// postgresColumns are the columns wsgate writes and their types, as
// format_type names them.
var postgresColumns = []struct{ name, typ string }{
	{"id", "bigint"},
	{"request_id", "text"},
	{"connection_id", "text"},
	{"route_key", "text"},
	{"event_type", "text"},
	{"principal_id", "text"},
	{"authorizer", "jsonb"},
	{"event", "jsonb"},
	{"body", "bytea"},
	{"received_at", "timestamp with time zone"},
}

// checkColumns reports a table that lacks a column wsgate writes or has
// it with another type: one not made by wsgate migrate.
func (t *PostgresTable) checkColumns(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped", t.ident.Sanitize())
	if err != nil {
		return err
	}
	have := map[string]string{}
	var name, typ string
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		have[name] = typ
		return nil
	}); err != nil {
		return err
	}
	var wrong []string
	for _, col := range postgresColumns {
		switch got, ok := have[col.name]; {
		case !ok:
			wrong = append(wrong, col.name+" (missing)")
		case got != col.typ:
			wrong = append(wrong, fmt.Sprintf("%s (%s, not %s)", col.name, got, col.typ))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("table %s exists but was not made for wsgate: columns %s; see docs/postgres.sql", t.name, strings.Join(wrong, ", "))
	}
	return nil
}

// postgresIndexName is the name of the index on (connection_id,
// received_at) of table, cut to the 63 bytes PostgreSQL keeps.
func postgresIndexName(table string) string {
	name := table + "_connection_id_received_at_idx"
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// postgresCreateTable is the statement that creates a table.
func postgresCreateTable(table pgx.Identifier) string {
	return "CREATE TABLE IF NOT EXISTS " + table.Sanitize() + ` (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text NOT NULL UNIQUE,
    connection_id text NOT NULL,
    route_key     text NOT NULL,
    event_type    text NOT NULL,
    principal_id  text,
    authorizer    jsonb,
    event         jsonb,
    body          bytea,
    received_at   timestamptz NOT NULL DEFAULT now()
)`
}

// postgresCreateIndex is the statement that creates a table's index.
func postgresCreateIndex(table pgx.Identifier, index string) string {
	return "CREATE INDEX IF NOT EXISTS " + pgx.Identifier{index}.Sanitize() + " ON " + table.Sanitize() + " (connection_id, received_at)"
}

// PostgresSchema returns the statements Migrate runs to create table
// (table or schema.table), for documentation and for running by hand.
func PostgresSchema(table string) string {
	ident := pgx.Identifier(strings.Split(table, "."))
	return postgresCreateTable(ident) + ";\n" + postgresCreateIndex(ident, postgresIndexName(ident[len(ident)-1])) + ";\n"
}

// pgRow is one event waiting to be inserted.
type pgRow struct {
	// ctx is the call's: a row whose caller has given up is not inserted.
	ctx context.Context

	requestID, connectionID, routeKey, eventType string
	principalID, authorizer, event               *string
	body                                         []byte
	receivedAt                                   time.Time

	done chan pgResult
}

type pgResult struct {
	id        int64
	duplicate bool
	err       error
}

func (r *pgRow) finish(res pgResult) {
	r.done <- res
}

// writer inserts the rows waiting in the queue, as many as are there up
// to postgresMaxBatch in one statement, until the connection is closed.
// No timer gathers rows: a batch is what arrived while the writers were
// busy, so a lone row goes at once and a burst goes in a few statements.
func (t *PostgresTable) writer() {
	c := t.conn
	defer c.wg.Done()
	batch := make([]*pgRow, 0, postgresMaxBatch)
	for {
		select {
		case r := <-t.queue:
			batch = append(batch[:0], r)
		case <-c.ctx.Done():
			return
		}
	fill:
		for len(batch) < postgresMaxBatch {
			select {
			case r := <-t.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		t.flush(batch)
		clear(batch)
	}
}

// flush inserts batch and answers each row. When PostgreSQL refuses the
// statement for a row's data, the rows are inserted one by one, so one
// bad row fails alone.
func (t *PostgresTable) flush(batch []*pgRow) {
	live := make([]*pgRow, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := t.batchContext(live)
	defer cancel()
	err := t.insert(ctx, live)
	if err != nil && rowError(err) && len(live) > 1 {
		for _, r := range live {
			if err := t.insert(ctx, []*pgRow{r}); err != nil {
				r.finish(pgResult{err: err})
			}
		}
		return
	}
	if err != nil {
		for _, r := range live {
			r.finish(pgResult{err: err})
		}
	}
}

// batchContext bounds a batch by the latest deadline of its rows, so no
// row is cut short by another's, and by Close.
func (t *PostgresTable) batchContext(rows []*pgRow) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range rows {
		d, ok := r.ctx.Deadline()
		if !ok {
			return context.WithCancel(t.conn.ctx)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(t.conn.ctx, latest)
}

// rowError reports whether PostgreSQL refused a statement for the data of
// a row (a data exception, a constraint, a limit), rather than for the
// connection, the table or permissions.
func rowError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return false
	}
	switch pe.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}

// insert inserts rows in one statement, and answers every row when it
// succeeds; it returns the statement's error otherwise, answering none.
func (t *PostgresTable) insert(ctx context.Context, rows []*pgRow) error {
	if !t.ensured.Load() {
		if err := t.ensureOnce(ctx); err != nil {
			return err
		}
	}
	ids, err := t.insertOnce(ctx, rows)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" {
		// undefined_table: dropped since it was prepared.
		t.ensured.Store(false)
		if err := t.ensureOnce(ctx); err != nil {
			return err
		}
		ids, err = t.insertOnce(ctx, rows)
	}
	if err != nil {
		return err
	}
	var dups []string
	for _, r := range rows {
		if _, ok := ids[r.requestID]; !ok {
			dups = append(dups, r.requestID)
		}
	}
	existing := map[string]int64{}
	if len(dups) > 0 {
		// A request id inserted before: the row is there, committed
		// by an earlier statement.
		rs, err := t.conn.pool.Query(ctx, t.lookupSQL, dups)
		if err == nil {
			existing, err = collectIDs(rs)
		}
		if err != nil {
			return err
		}
	}
	for _, r := range rows {
		if id, ok := ids[r.requestID]; ok {
			r.finish(pgResult{id: id})
		} else if id, ok := existing[r.requestID]; ok {
			r.finish(pgResult{id: id, duplicate: true})
		} else {
			r.finish(pgResult{err: errors.New("the row was neither inserted nor found")})
		}
	}
	return nil
}

func (t *PostgresTable) insertOnce(ctx context.Context, rows []*pgRow) (map[string]int64, error) {
	n := len(rows)
	var (
		reqIDs, connIDs, routeKeys, eventTypes = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		principals, authorizers, events        = make([]*string, n), make([]*string, n), make([]*string, n)
		bodies                                 = make([][]byte, n)
		times                                  = make([]time.Time, n)
	)
	for i, r := range rows {
		reqIDs[i], connIDs[i], routeKeys[i], eventTypes[i] = r.requestID, r.connectionID, r.routeKey, r.eventType
		principals[i], authorizers[i], events[i] = r.principalID, r.authorizer, r.event
		bodies[i], times[i] = r.body, r.receivedAt
	}
	rs, err := t.conn.pool.Query(ctx, t.insertSQL, reqIDs, connIDs, routeKeys, eventTypes, principals, authorizers, events, bodies, times)
	if err != nil {
		return nil, err
	}
	return collectIDs(rs)
}

func collectIDs(rs pgx.Rows) (map[string]int64, error) {
	out := map[string]int64{}
	var reqID string
	var id int64
	_, err := pgx.ForEachRow(rs, []any{&reqID, &id}, func() error {
		out[reqID] = id
		return nil
	})
	return out, err
}

// errPostgresClosed is the error of an insert after Close.
var errPostgresClosed = errors.New("the postgres connection is closed")

// submit queues row and waits for its answer.
func (t *PostgresTable) submit(ctx context.Context, row *pgRow) (pgResult, error) {
	c := t.conn
	if c.ctx.Err() != nil {
		return pgResult{}, errPostgresClosed
	}
	t.start()
	select {
	case t.queue <- row:
	case <-ctx.Done():
		return pgResult{}, ctx.Err()
	case <-c.ctx.Done():
		return pgResult{}, errPostgresClosed
	}
	var res pgResult
	select {
	case res = <-row.done:
	case <-ctx.Done():
		select {
		case res = <-row.done:
		default:
			return pgResult{}, ctx.Err()
		}
	case <-c.ctx.Done():
		return pgResult{}, errPostgresClosed
	}
	return res, res.err
}

// Postgres inserts a row for each event into a PostgreSQL table and
// answers once the row is committed, with the row's id. The row holds the
// identity (request_id, which is unique, connection_id, route_key,
// event_type, principal_id, authorizer) and the payload: with PayloadEvent
// the AWS event JSON in the jsonb column event; with PayloadBody the
// client's message, in event when it is JSON and otherwise, as bytes, in
// the bytea column body. Rows waiting at the same moment are inserted by
// one statement.
type Postgres struct {
	Table   *PostgresTable
	Payload Payload
	// Timeout bounds one insert, waiting for a writer included; zero
	// means no bound beyond ctx.
	Timeout time.Duration
}

var _ Integration = (*Postgres)(nil)

// postgresAccepted is the acknowledgement of a postgres integration:
//
//	{"status":"accepted","requestId":"…","table":"messages","id":42}
//
// with "duplicate":true added when a row of that request id was there
// already, committed earlier.
type postgresAccepted struct {
	Status    string `json:"status"`
	RequestID string `json:"requestId"`
	Table     string `json:"table"`
	ID        int64  `json:"id"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// Invoke implements Integration.
func (p *Postgres) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	row, err := p.row(ev)
	if err != nil {
		return nil, failf("postgres insert into %s: %v", p.Table.name, err)
	}
	callCtx, cancel := bound(ctx, p.Timeout)
	defer cancel()
	row.ctx = callCtx
	res, err := p.Table.submit(callCtx, row)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, failf("postgres insert into %s: not committed within %v", p.Table.name, p.Timeout)
		}
		return nil, failf("postgres insert into %s: %s", p.Table.name, p.Table.conn.errorText(err))
	}
	ack := postgresAccepted{Status: "accepted", RequestID: ev.RequestContext.RequestID, Table: p.Table.name, ID: res.id, Duplicate: res.duplicate}
	b, _ := json.Marshal(ack)
	return &Response{StatusCode: 200, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}, nil
}

// row builds the row of ev. Values PostgreSQL would refuse — a NUL
// character in a text or jsonb value, text that is not UTF-8 — are
// refused here, so that they fail their own event only.
func (p *Postgres) row(ev *Event) (*pgRow, error) {
	rc := &ev.RequestContext
	r := &pgRow{done: make(chan pgResult, 1),
		requestID: rc.RequestID, connectionID: rc.ConnectionID, routeKey: rc.RouteKey, eventType: rc.EventType,
		receivedAt: time.Now()}
	if rc.RequestTimeEpoch > 0 {
		r.receivedAt = time.UnixMilli(rc.RequestTimeEpoch)
	}
	for _, f := range identity(ev) {
		v := f.value
		switch f.name {
		case "principalId":
			r.principalID = &v
		case "authorizer":
			r.authorizer = &v
		}
	}
	for _, s := range []*string{&r.requestID, &r.connectionID, &r.routeKey, &r.eventType, r.principalID} {
		if s != nil && (!utf8.ValidString(*s) || strings.ContainsRune(*s, 0)) {
			return nil, errors.New("the identity holds a NUL character or is not UTF-8")
		}
	}
	if r.authorizer != nil && jsonbUnfit([]byte(*r.authorizer)) {
		return nil, errors.New("the authorizer context holds a NUL character")
	}
	data, err := p.Payload.payload(ev)
	if err != nil {
		return nil, err
	}
	switch {
	case p.Payload == PayloadEvent:
		if jsonbUnfit(data) {
			return nil, errors.New(`the event holds a NUL character (\u0000), which a jsonb column cannot store; use payload: body`)
		}
		s := string(data)
		r.event = &s
	case utf8.Valid(data) && json.Valid(data) && !jsonbUnfit(data):
		s := string(data)
		r.event = &s
	default:
		r.body = data
		if r.body == nil {
			r.body = []byte{}
		}
	}
	return r, nil
}

// jsonbEscape matches the escapes of valid JSON that jsonb refuses: NUL
// and UTF-16 surrogates (jsonb refuses lone ones; pairs are rare enough
// in what clients send to be treated alike).
var jsonbEscape = regexp.MustCompile(`\\u(0000|[dD][89a-fA-F])`)

// jsonbUnfit reports whether the JSON text b holds an escape jsonb
// refuses. Escaped backslashes are dropped first, so that the text \\u0000
// in a string is not taken for an escape.
// It also reports a number outside what jsonb's numeric holds.
func jsonbUnfit(b []byte) bool {
	return jsonbEscape.Match(bytes.ReplaceAll(b, []byte(`\\`), nil)) || jsonbNumberUnfit(b)
}

// The limits of PostgreSQL's numeric, which jsonb stores numbers in:
// digits before the decimal point, and digits after it as written (a
// number's trailing zeros and a negative exponent count).
const (
	numericMaxIntDigits   = 131072
	numericMaxScaleDigits = 16383
)

// jsonbNumberUnfit reports whether the valid JSON text b holds a number
// that numeric refuses ("value overflows numeric format"), such as 1e999999.
// It errs on the side of refusing: a number at the very edge of the range
// may be reported although PostgreSQL would take it.
func jsonbNumberUnfit(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			// Skip the string, escapes included.
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case c == '-' || ('0' <= c && c <= '9'):
			j := i
			if b[j] == '-' {
				j++
			}
			start := j
			for j < len(b) && '0' <= b[j] && b[j] <= '9' {
				j++
			}
			intDigits := int64(j - start)
			var fracDigits int64
			if j < len(b) && b[j] == '.' {
				j++
				start = j
				for j < len(b) && '0' <= b[j] && b[j] <= '9' {
					j++
				}
				fracDigits = int64(j - start)
			}
			var exp int64
			if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
				j++
				start = j
				if j < len(b) && (b[j] == '+' || b[j] == '-') {
					j++
				}
				for j < len(b) && '0' <= b[j] && b[j] <= '9' {
					j++
				}
				e, err := strconv.ParseInt(string(b[start:j]), 10, 64)
				if err != nil || e > numericMaxIntDigits || e < -numericMaxScaleDigits {
					return true
				}
				exp = e
			}
			if intDigits+exp > numericMaxIntDigits || fracDigits-exp > numericMaxScaleDigits {
				return true
			}
			i = j - 1
		}
	}
	return false
}
