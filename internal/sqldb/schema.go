package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
)

// Dialect holds what differs between SQLite and Postgres; everything else is the same SQL.
type Dialect struct {
	Name string
	// Blob is the binary column type.
	Blob string
	// Now is an expression for the database's clock in milliseconds since the Unix epoch.
	Now string
	// ShareLock is appended to a SELECT that must keep the rows it read from changing until the
	// transaction commits. SQLite needs none: `BEGIN IMMEDIATE` already holds the database's only
	// write lock.
	ShareLock string
}

// The dialects.
var (
	SQLite = Dialect{
		Name: DriverSQLite,
		Blob: "BLOB",
		Now:  "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
	}
	Postgres = Dialect{
		Name: DriverPostgres,
		Blob: "BYTEA",
		// clock_timestamp(), not now(): a statement that waited for a lock compares times with the
		// moment it actually runs, not the moment its transaction began.
		Now:       "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
		ShareLock: " FOR SHARE",
	}
)

// Expand replaces {p} (the table prefix), {blob}, {now} and {share} in a statement.
func (d Dialect) Expand(prefix, s string) string {
	return strings.NewReplacer("{p}", prefix, "{blob}", d.Blob, "{now}", d.Now, "{share}", d.ShareLock).Replace(s)
}

// Schema is a component's versioned schema: Migrations[i] brings it from version i to i+1 (statements
// expanded by the dialect). Never edit a released migration: append one. The applied version is kept
// in <prefix>schema, one row.
type Schema struct {
	// Lock names the Postgres advisory lock that serializes concurrent migrations (with the prefix).
	Lock       string
	Migrations [][]string
}

// Version is the version this build writes.
func (s *Schema) Version() int64 { return int64(len(s.Migrations)) }

// ErrSchemaTooNew is permanent: an older collector must not write a schema it does not know.
var ErrSchemaTooNew = errors.New("schema is newer than this collector")

// VersionQuery reads the applied version.
func VersionQuery(prefix string) string {
	return `SELECT version FROM ` + prefix + `schema WHERE id = 1`
}

// Migrate creates or upgrades the schema in one transaction and returns the version found before.
// Concurrent starts are serialized: by an advisory lock on Postgres, by the write lock on SQLite.
func (s *Schema) Migrate(ctx context.Context, db *sql.DB, d Dialect, prefix string) (from int64, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.Name == DriverPostgres {
		h := fnv.New64a()
		_, _ = h.Write([]byte(s.Lock + "/" + prefix))
		if _, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
			return 0, err
		}
	}
	x := func(q string) string { return d.Expand(prefix, q) }
	if _, err = tx.ExecContext(ctx, x(`CREATE TABLE IF NOT EXISTS {p}schema (id INTEGER NOT NULL PRIMARY KEY, version BIGINT NOT NULL, updated_at BIGINT NOT NULL)`)); err != nil {
		return 0, err
	}
	switch err = tx.QueryRowContext(ctx, VersionQuery(prefix)).Scan(&from); {
	case errors.Is(err, sql.ErrNoRows):
		from, err = 0, nil
	case err != nil:
		return 0, err
	}
	to := s.Version()
	if from > to {
		return from, fmt.Errorf("%w: tables %s* are at schema version %d, this collector knows up to %d; upgrade the collector",
			ErrSchemaTooNew, prefix, from, to)
	}
	for v := from; v < to; v++ {
		for _, stmt := range s.Migrations[v] {
			if _, err = tx.ExecContext(ctx, x(stmt)); err != nil {
				return from, fmt.Errorf("migrating the schema to version %d: %w", v+1, err)
			}
		}
	}
	if from != to {
		if _, err = tx.ExecContext(ctx, x(`INSERT INTO {p}schema (id, version, updated_at) VALUES (1, $1, {now})
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`), to); err != nil {
			return from, err
		}
	}
	return from, tx.Commit()
}
