package config

import (
	"regexp"
	"strings"
)

// IntegrationPostgres inserts a row for each event into a PostgreSQL table
// and answers once the row is committed.
const IntegrationPostgres IntegrationType = "postgres"

// tableNamePattern is what a postgres integration's table may be: one or
// two lower-case identifiers, schema and table, each at most 63 bytes, the
// longest name PostgreSQL keeps.
var tableNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$`)

// postgresIntegration checks the keys of a postgres integration.
//
// The table name is fixed: placeholders are refused. A table per user or
// tenant, named from each event, would let clients make the gateway create
// tables without bound, and per-principal tables are better served by the
// principal_id column every row carries (an index, a view or declarative
// partitioning on it).
func (k *checker) postgresIntegration(path string, in Integration) {
	if in.DSNEnv == "" {
		k.add(path+".dsn_env", "required for postgres integrations: the environment variable holding the connection string, e.g. WSGATE_POSTGRES_DSN")
	} else {
		k.envName(path+".dsn_env", in.DSNEnv)
	}
	switch t := in.Table; {
	case t == "":
		k.add(path+".table", "required for postgres integrations: the table to insert into, e.g. messages or chat.messages")
	case strings.ContainsAny(t, "{}"):
		k.add(path+".table", "%q: placeholders are not supported in a table name (clients would make the gateway create tables without bound); every row carries principal_id and connection_id to filter on", t)
	case !tableNamePattern.MatchString(t):
		k.add(path+".table", "%q must be a table name or schema.table, each lower-case letters, digits and _ (not starting with a digit), at most 63 characters", t)
	}
	k.payload(path, in.Payload)
}
