package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidatePostgresIntegration(t *testing.T) {
	at := func(line int, rest string) string {
		return "wsgate.yaml:" + strconv.Itoa(line) + ": routes.chat.integration." + rest
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"minimal", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: messages"), nil},
		{"everything", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: chat.messages_2", "payload: body", "timeout: 2s"), nil},
		{"on $connect and $disconnect", "routes:\n  $connect: {integration: {type: postgres, dsn_env: PG_DSN, table: connects}}\n  $disconnect: {integration: {type: postgres, dsn_env: PG_DSN, table: connects}}", nil},
		{"without dsn_env and table", chatRoute("type: postgres"), []string{
			at(3, "dsn_env: required for postgres integrations: the environment variable holding the connection string, e.g. WSGATE_POSTGRES_DSN"),
			at(3, "table: required for postgres integrations: the table to insert into, e.g. messages or chat.messages"),
		}},
		{"dsn_env holding a DSN", chatRoute("type: postgres", "dsn_env: 'postgres://u:s3cret@h/db'", "table: t"), []string{
			at(5, "dsn_env: must be the name of an environment variable (letters, digits and _), not its value"),
		}},
		{"table with a placeholder", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: 'chat_{principalId}'"), []string{
			at(6, `table: "chat_{principalId}": placeholders are not supported in a table name (clients would make the gateway create tables without bound); every row carries principal_id and connection_id to filter on`),
		}},
		{"table with upper case", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: Messages"), []string{
			at(6, `table: "Messages" must be a table name or schema.table, each lower-case letters, digits and _ (not starting with a digit), at most 63 characters`),
		}},
		{"table with a quote", chatRoute("type: postgres", "dsn_env: PG_DSN", `table: 'm"; drop table x; --'`), []string{
			at(6, `table: "m\"; drop table x; --" must be a table name or schema.table, each lower-case letters, digits and _ (not starting with a digit), at most 63 characters`),
		}},
		{"table with three parts", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: db.chat.messages"), []string{
			at(6, `table: "db.chat.messages" must be a table name or schema.table, each lower-case letters, digits and _ (not starting with a digit), at most 63 characters`),
		}},
		{"table too long", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: "+strings.Repeat("t", 64)), []string{
			at(6, `table: "`+strings.Repeat("t", 64)+`" must be a table name or schema.table, each lower-case letters, digits and _ (not starting with a digit), at most 63 characters`),
		}},
		{"table starting with a digit", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: 1messages"), []string{
			at(6, `table: "1messages" must be a table name or schema.table, each lower-case letters, digits and _ (not starting with a digit), at most 63 characters`),
		}},
		{"unknown payload", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: t", "payload: row"), []string{
			at(7, `payload: unknown payload "row"; one of event (the AWS event JSON), body (the client's message alone)`),
		}},
		{"timeout out of range", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: t", "timeout: 1m"), []string{
			at(7, "timeout: must be from 50ms to 29s, got 1m"),
		}},
		{"postgres with other types' keys", chatRoute("type: postgres", "dsn_env: PG_DSN", "table: t", "url: 'postgres://h/db'", "stream: s", "subject: x", "password_env: P", "headers: {X-A: b}", "body: ok"), []string{
			at(7, "url: only used by http, nats, redis and amqp integrations"),
			at(8, "stream: only used by nats and redis integrations"),
			at(9, "subject: only used by nats integrations"),
			at(10, "password_env: only used by redis integrations"),
			at(11, "headers: only used by http integrations"),
			at(12, "body: only used by mock integrations"),
		}},
		{"postgres keys on other types", chatRoute("type: redis", "url: redis://h:1", "stream: s", "dsn_env: PG_DSN", "table: t"), []string{
			at(7, "dsn_env: only used by postgres integrations"),
			at(8, "table: only used by postgres integrations"),
		}},
		{"postgres keys on http", chatRoute("type: http", "url: http://h/", "table: t"), []string{
			at(6, "table: only used by postgres integrations"),
		}},
		{"misspelt key", chatRoute("type: postgres", "dsn_env: PG_DSN", "tabel: t"), []string{
			at(3, "table: required for postgres integrations: the table to insert into, e.g. messages or chat.messages"),
			`wsgate.yaml:6: unknown key "tabel" in routes.chat.integration; did you mean "table"?`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.in, tt.want...)
		})
	}
}

func TestPostgresDefaults(t *testing.T) {
	c, err := Parse("wsgate.yaml", []byte(chatRoute("type: postgres", "dsn_env: PG_DSN", "table: messages")))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Routes["chat"].Integration
	if in.Payload != PayloadEvent || in.Timeout.String() != "29s" || in.DSNEnv != "PG_DSN" || in.Table != "messages" {
		t.Errorf("defaults: %+v", in)
	}
}
