package sqlstorageextension

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
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

// dialect holds what differs between SQLite and Postgres; everything else is the same SQL.
type dialect struct {
	name string
	// blob is the binary column type.
	blob string
	// now is an expression for the database's clock in milliseconds since the Unix epoch.
	now string
	// shareLock is appended to the lease check of a fenced write: it keeps the lease row from being
	// taken over until the write has committed. SQLite needs none: `BEGIN IMMEDIATE` already holds
	// the database's only write lock.
	shareLock string
}

var (
	sqliteDialect = dialect{
		name: driverSQLite,
		blob: "BLOB",
		now:  "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
	}
	postgresDialect = dialect{
		name: driverPostgres,
		blob: "BYTEA",
		// clock_timestamp(), not now(): a statement that waited for a lock compares expiry with the
		// time it actually runs, not the time its transaction began.
		now:       "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
		shareLock: " FOR SHARE",
	}
)

// migrations[i] brings the schema from version i to i+1. Never edit a released migration: append one.
var migrations = [][]string{
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
}

// schemaVersion is the version this build writes.
var schemaVersion = int64(len(migrations))

// queries are the statements of one extension instance, with its table prefix and dialect.
type queries struct {
	get, set, del, walk              string
	leaseAcquire, leaseHolder        string
	leaseOwners, leaseExpireOwner    string
	leaseRelease, leaseCheck         string
	leaseList                        string
	schemaTable, schemaGet, schemaUp string
}

func (d dialect) expand(prefix, s string) string {
	return strings.NewReplacer("{p}", prefix, "{blob}", d.blob, "{now}", d.now, "{share}", d.shareLock).Replace(s)
}

func newQueries(d dialect, prefix string) queries {
	x := func(s string) string { return d.expand(prefix, s) }
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

		schemaTable: x(`CREATE TABLE IF NOT EXISTS {p}schema (id INTEGER NOT NULL PRIMARY KEY, version BIGINT NOT NULL, updated_at BIGINT NOT NULL)`),
		schemaGet:   x(`SELECT version FROM {p}schema WHERE id = 1`),
		schemaUp: x(`INSERT INTO {p}schema (id, version, updated_at) VALUES (1, $1, {now})
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`),
	}
}

// errSchemaTooNew is permanent: an older collector must not write a schema it does not know.
var errSchemaTooNew = errors.New("schema is newer than this collector")

// migrate creates or upgrades the schema in one transaction and returns the version found before.
// Concurrent starts are serialized: by an advisory lock on Postgres, by the write lock on SQLite.
func migrate(ctx context.Context, db *sql.DB, d dialect, prefix string, q queries) (from int64, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.name == driverPostgres {
		h := fnv.New64a()
		_, _ = h.Write([]byte("sql_storage/" + prefix))
		if _, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
			return 0, err
		}
	}
	if _, err = tx.ExecContext(ctx, q.schemaTable); err != nil {
		return 0, err
	}
	switch err = tx.QueryRowContext(ctx, q.schemaGet).Scan(&from); {
	case errors.Is(err, sql.ErrNoRows):
		from, err = 0, nil
	case err != nil:
		return 0, err
	}
	if from > schemaVersion {
		return from, fmt.Errorf("%w: tables %s* are at schema version %d, this collector knows up to %d; upgrade the collector",
			errSchemaTooNew, prefix, from, schemaVersion)
	}
	for v := from; v < schemaVersion; v++ {
		for _, stmt := range migrations[v] {
			if _, err = tx.ExecContext(ctx, d.expand(prefix, stmt)); err != nil {
				return from, fmt.Errorf("migrating the schema to version %d: %w", v+1, err)
			}
		}
	}
	if from != schemaVersion {
		if _, err = tx.ExecContext(ctx, q.schemaUp, schemaVersion); err != nil {
			return from, err
		}
	}
	return from, tx.Commit()
}
