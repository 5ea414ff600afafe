package sqlstorageextension

import (
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// Schema (every table name carries `table_prefix`, default otelcol_storage_):
//
//	<p>schema (id = 1, version, updated_at)                 the applied migration, one row
//	<p>kv     (kind, component, client, key) → value        every client's data, one table
//	<p>lease  (resource) → owner, generation, expires_at    leases; times are ms since the epoch
//	                                                        on the database's clock
//
// A client of component kind K (receiver, ...), id T/N and storage name S reads and writes the rows
// with (kind, component, client) = (K, "T/N", S): components never see each other's keys, as with
// contrib's storage extensions (which use one file or table per kind/type/name/storage name).

// schema is the extension's versioned schema (internal/sqldb): never edit a released migration, append
// one.
var schema = &sqldb.Schema{Lock: "sql_storage", Migrations: [][]string{
	{
		`CREATE TABLE {p}kv (
			kind       TEXT   NOT NULL,
			component  TEXT   NOT NULL,
			client     TEXT   NOT NULL,
			key        TEXT   NOT NULL,
			value      {blob} NOT NULL,
			updated_at BIGINT NOT NULL,
			PRIMARY KEY (kind, component, client, key)
		)`,
		`CREATE TABLE {p}lease (
			resource    TEXT   NOT NULL PRIMARY KEY,
			owner       TEXT   NOT NULL,
			generation  BIGINT NOT NULL,
			expires_at  BIGINT NOT NULL,
			acquired_at BIGINT NOT NULL,
			renewed_at  BIGINT NOT NULL
		)`,
	},
}}

// schemaVersion is the version this build writes.
var schemaVersion = schema.Version()

// queries are the statements of one extension instance, with its table prefix and dialect.
type queries struct {
	get, set, del, walk           string
	leaseAcquire, leaseHolder     string
	leaseOwners, leaseExpireOwner string
	leaseRelease, leaseCheck      string
	leaseList                     string
}

func newQueries(d sqldb.Dialect, prefix string) queries {
	x := func(s string) string { return d.Expand(prefix, s) }
	return queries{
		get: x(`SELECT value FROM {p}kv WHERE kind = $1 AND component = $2 AND client = $3 AND key = $4`),
		set: x(`INSERT INTO {p}kv (kind, component, client, key, value, updated_at) VALUES ($1, $2, $3, $4, $5, {now})
			ON CONFLICT (kind, component, client, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		del:  x(`DELETE FROM {p}kv WHERE kind = $1 AND component = $2 AND client = $3 AND key = $4`),
		walk: x(`SELECT key, value FROM {p}kv WHERE kind = $1 AND component = $2 AND client = $3 ORDER BY key`),

		// One statement, atomic in both databases: insert the lease, or take it over if it is
		// released or expired (new generation), or renew it if it is ours (same generation). When
		// another owner holds it, the WHERE leaves the row alone and nothing is returned. The clock is
		// read once for the new row (so that acquired_at = renewed_at tells a new tenure from a
		// renewal) and again for the expiry test, after any wait for the row lock. `WHERE true` lets
		// SQLite parse INSERT ... SELECT ... ON CONFLICT.
		leaseAcquire: x(`INSERT INTO {p}lease (resource, owner, generation, expires_at, acquired_at, renewed_at)
			SELECT $1, $2, 1, clock.t + $3, clock.t, clock.t FROM (SELECT {now} AS t) AS clock WHERE true
			ON CONFLICT (resource) DO UPDATE SET
				generation  = CASE WHEN {p}lease.owner = excluded.owner THEN {p}lease.generation ELSE {p}lease.generation + 1 END,
				acquired_at = CASE WHEN {p}lease.owner = excluded.owner THEN {p}lease.acquired_at ELSE excluded.acquired_at END,
				owner       = excluded.owner,
				expires_at  = excluded.expires_at,
				renewed_at  = excluded.renewed_at
			WHERE {p}lease.owner = excluded.owner OR {p}lease.expires_at <= {now}
			RETURNING generation, expires_at, acquired_at = renewed_at`),
		leaseHolder: x(`SELECT owner, generation, expires_at FROM {p}lease WHERE resource = $1`),
		leaseOwners: x(`SELECT DISTINCT owner FROM {p}lease WHERE owner <> '' AND expires_at > {now}`),
		// Expired, the owner kept: the next acquisition by another owner is a takeover (new generation).
		leaseExpireOwner: x(`UPDATE {p}lease SET expires_at = 0 WHERE owner = $1 AND expires_at > {now}`),
		leaseRelease:     x(`UPDATE {p}lease SET owner = '', expires_at = 0, renewed_at = {now} WHERE resource = $1 AND owner = $2 AND generation = $3`),
		leaseCheck:       x(`SELECT generation FROM {p}lease WHERE resource = $1 AND owner = $2 AND generation = $3{share}`),
		leaseList: x(`SELECT resource, owner, generation, expires_at FROM {p}lease
			WHERE resource LIKE $1 ESCAPE '\' AND owner <> '' AND expires_at > {now} ORDER BY resource`),
	}
}

// errSchemaTooNew is permanent: an older collector must not write a schema it does not know.
var errSchemaTooNew = sqldb.ErrSchemaTooNew
