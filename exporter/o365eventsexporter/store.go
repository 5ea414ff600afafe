package o365eventsexporter

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// Schema (every table name carries `table_prefix`, default o365_events_):
//
//	<p>schema  (id = 1, version, updated_at)            the applied migration (internal/sqldb)
//	<p>records seq → tenant, dataset, record_id, version, event_time (ns), event_type, raw, normalized,
//	           stored_at (ms, database clock); unique (tenant, dataset, record_id, version)
//	<p>tenants tenant → tenant_id (Entra), records      the count kept with every insert and delete, so
//	                                                    that max_records_per_tenant costs no COUNT(*)
//
// The indexes serve the queries: (tenant, dataset, event_time, seq) GET /events/raw?dataset=,
// (tenant, event_type, event_time, seq) GET /events/normalized?type=, (tenant, event_time, seq) both
// without those filters and the retention. Rows come back in (event_time, seq) order, which is also
// the cursor.
var schema = &sqldb.Schema{Lock: "o365_events", Migrations: [][]string{
	{
		`CREATE TABLE {p}records (
			seq        {serial},
			tenant     TEXT   NOT NULL,
			dataset    TEXT   NOT NULL,
			record_id  TEXT   NOT NULL,
			version    TEXT   NOT NULL,
			event_time BIGINT NOT NULL,
			event_type TEXT,
			raw        TEXT,
			normalized TEXT,
			stored_at  BIGINT NOT NULL
		)`,
		`CREATE UNIQUE INDEX {p}records_key ON {p}records (tenant, dataset, record_id, version)`,
		`CREATE INDEX {p}records_dataset ON {p}records (tenant, dataset, event_time, seq)`,
		`CREATE INDEX {p}records_type ON {p}records (tenant, event_type, event_time, seq)`,
		`CREATE INDEX {p}records_time ON {p}records (tenant, event_time, seq)`,
		`CREATE TABLE {p}tenants (
			tenant    TEXT   NOT NULL PRIMARY KEY,
			tenant_id TEXT   NOT NULL,
			records   BIGINT NOT NULL
		)`,
	},
}}

// maxTxRecords bounds one transaction: a larger batch is written in several, each idempotent, and
// acknowledged only once all committed. pgInsertRows is the rows of one Postgres INSERT statement, where
// each statement is a round trip; SQLite inserts one row per execution of a statement prepared once per
// transaction (no round trip to save, and its driver looks every bind parameter up by position, which
// is quadratic in the parameters of a statement).
const (
	maxTxRecords = 5000
	rowParams    = 8
	pgInsertRows = 500
)

// store is the database behind the exporter: w writes (SQLite: the one writer connection), r reads
// (SQLite: a pool of readers beside it, which WAL lets run while a write is under way; Postgres: the
// same pool as w).
type store struct {
	dialect sqldb.Dialect
	prefix  string
	w, r    *sql.DB
	q       queries
	// known caches resolveTenant's answers for tenants that exist: a tenant row is never deleted, and
	// its name never changes.
	known sync.Map // name or Entra tenant id → name
	stmts sync.Map // query text → *sql.Stmt on r (prepared)
}

type queries struct {
	insertOne, insertFull, update, tenantAdd, tenants, tenantLookup string
	deleteBeyond, deleteBefore                                      string
}

func newQueries(d sqldb.Dialect, prefix string) queries {
	x := func(s string) string { return d.Expand(prefix, s) }
	// The rows a retention chunk deletes, by seq: Postgres plans `seq IN (SELECT … LIMIT $n)` as a join
	// with a scan of the whole table (it does not know $n), an array of the seqs as lookups of the key.
	seqIn := "seq IN (%s)"
	if d.Name == sqldb.DriverPostgres {
		seqIn = "seq = ANY(ARRAY(%s))"
	}
	return queries{
		insertOne:  insertQuery(d, prefix, 1, false),
		insertFull: insertQuery(d, prefix, pgInsertRows, true),
		// A row stored already is merged: a normalized copy adds its attributes to a raw-only one (and
		// the other way round), and a later snapshot's copy of an item replaces an earlier one's time.
		update: x(`UPDATE {p}records SET event_time = $5, event_type = COALESCE($6, event_type),
			raw = COALESCE($7, raw), normalized = COALESCE($8, normalized)
			WHERE tenant = $1 AND dataset = $2 AND record_id = $3 AND version = $4 AND event_time <= $5`),
		tenantAdd: x(`INSERT INTO {p}tenants (tenant, tenant_id, records) VALUES ($1, $2, $3)
			ON CONFLICT (tenant) DO UPDATE SET records = {p}tenants.records + excluded.records,
				tenant_id = CASE WHEN excluded.tenant_id <> '' THEN excluded.tenant_id ELSE {p}tenants.tenant_id END`),
		tenants:      x(`SELECT tenant, records FROM {p}tenants ORDER BY tenant`),
		tenantLookup: x(`SELECT tenant FROM {p}tenants WHERE tenant = $1 OR tenant_id = $1 ORDER BY tenant <> $1 LIMIT 1`),
		// The oldest (count - $2), at most $3: an index range from the oldest, not a walk past the newest
		// $2 (OFFSET $2: 0.26 s per chunk on SQLite at 900k kept). The count is read in the statement's
		// own snapshot, where it is exact (it changes in the transactions that insert and delete): two
		// passes at once (replicas on one Postgres, the start-up pass beside a scheduled one) either see
		// each other's deletes and count, or select the same rows, which are deleted once. CASE and
		// COALESCE: SQLite reads a negative LIMIT as none, Postgres a NULL one.
		deleteBeyond: x(`DELETE FROM {p}records WHERE ` + fmt.Sprintf(seqIn, `
			SELECT seq FROM {p}records WHERE tenant = $1 ORDER BY event_time, seq LIMIT COALESCE((
				SELECT CASE WHEN records <= $2 THEN 0 WHEN records - $2 < $3 THEN records - $2 ELSE $3 END
				FROM {p}tenants WHERE tenant = $1), 0)`)),
		deleteBefore: x(`DELETE FROM {p}records WHERE ` + fmt.Sprintf(seqIn, `
			SELECT seq FROM {p}records WHERE tenant = $1 AND event_time < $2 ORDER BY event_time, seq LIMIT $3`)),
	}
}

// insertQuery inserts n rows; a row whose key is stored already is left alone (and, with returning,
// not returned).
func insertQuery(d sqldb.Dialect, prefix string, n int, returning bool) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO {p}records (tenant, dataset, record_id, version, event_time, event_type, raw, normalized, stored_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range rowParams {
			b.WriteString(d.Param(i*rowParams+j+1) + ",")
		}
		b.WriteString("{now})")
	}
	b.WriteString(` ON CONFLICT (tenant, dataset, record_id, version) DO NOTHING`)
	if returning {
		b.WriteString(` RETURNING tenant, dataset, record_id, version`)
	}
	return d.Expand(prefix, b.String())
}

// writeResult is what a write did.
type writeResult struct{ stored, redelivered int64 }

// write stores rows, each key once: new keys are inserted, stored ones merged. Every transaction
// commits before write returns, and the tenants' counts change in the same transactions. Rows are
// written in key order, so that concurrent writers (several replicas on Postgres) take row locks in
// one order and cannot deadlock each other.
func (s *store) write(ctx context.Context, rows []row) (writeResult, error) {
	rows = dedupRows(rows)
	var res writeResult
	for start := 0; start < len(rows); start += maxTxRecords {
		r, err := s.writeTx(ctx, rows[start:min(start+maxTxRecords, len(rows))])
		if err != nil {
			return res, err
		}
		res.stored += r.stored
		res.redelivered += r.redelivered
	}
	return res, nil
}

// dedupRows sorts rows by key and keeps the last of each key (a batch holding one record twice).
func dedupRows(rows []row) []row {
	slices.SortStableFunc(rows, func(a, b row) int { return compareKeys(&a, &b) })
	out := rows[:0]
	for i := range rows {
		if len(out) > 0 && compareKeys(&out[len(out)-1], &rows[i]) == 0 {
			out[len(out)-1] = rows[i]
			continue
		}
		out = append(out, rows[i])
	}
	return out
}

func compareKeys(a, b *row) int {
	if c := strings.Compare(a.tenant, b.tenant); c != 0 {
		return c
	}
	if c := strings.Compare(a.dataset, b.dataset); c != 0 {
		return c
	}
	if c := strings.Compare(a.recordID, b.recordID); c != 0 {
		return c
	}
	return strings.Compare(a.version, b.version)
}

func (s *store) writeTx(ctx context.Context, rows []row) (res writeResult, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	isNew, err := s.insert(ctx, tx, rows)
	if err != nil {
		return res, err
	}
	perTenant := map[string]int64{}
	var update *sql.Stmt
	for i := range rows {
		r := &rows[i]
		if isNew[i] {
			perTenant[r.tenant]++
			continue
		}
		if update == nil {
			if update, err = tx.PrepareContext(ctx, s.q.update); err != nil {
				return res, err
			}
			defer update.Close()
		}
		if _, err = update.ExecContext(ctx, r.tenant, r.dataset, r.recordID, r.version, r.time,
			nullString(r.eventType), nullBytes(r.raw), nullBytes(r.normalized)); err != nil {
			return res, err
		}
		res.redelivered++
	}
	tenantIDs := map[string]string{}
	for i := range rows {
		if rows[i].tenantID != "" {
			tenantIDs[rows[i].tenant] = rows[i].tenantID
		}
	}
	for _, t := range sortedKeys(perTenant) {
		if _, err = tx.ExecContext(ctx, s.q.tenantAdd, t, tenantIDs[t], perTenant[t]); err != nil {
			return res, err
		}
		res.stored += perTenant[t]
	}
	return res, tx.Commit()
}

// insert inserts the rows whose keys are not stored yet and reports which those were.
func (s *store) insert(ctx context.Context, tx *sql.Tx, rows []row) ([]bool, error) {
	isNew := make([]bool, len(rows))
	if s.dialect.Name != sqldb.DriverPostgres {
		stmt, err := tx.PrepareContext(ctx, s.q.insertOne)
		if err != nil {
			return nil, err
		}
		defer stmt.Close()
		// The driver watches a cancellable context in a goroutine of its own per execution; one row
		// takes microseconds (the write lock was taken at BEGIN), and a cancelled ctx still ends the
		// transaction between two rows, so the rows are inserted without it.
		rowCtx := context.WithoutCancel(ctx)
		for i := range rows {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r := &rows[i]
			res, err := stmt.ExecContext(rowCtx, r.tenant, r.dataset, r.recordID, r.version, r.time,
				nullString(r.eventType), nullBytes(r.raw), nullBytes(r.normalized))
			if err != nil {
				return nil, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, err
			}
			isNew[i] = n == 1
		}
		return isNew, nil
	}
	for start := 0; start < len(rows); start += pgInsertRows {
		if err := s.insertReturning(ctx, tx, rows[start:min(start+pgInsertRows, len(rows))], isNew[start:]); err != nil {
			return nil, err
		}
	}
	return isNew, nil
}

// insertReturning inserts chunk in one statement and marks in isNew the rows it inserted.
func (s *store) insertReturning(ctx context.Context, tx *sql.Tx, chunk []row, isNew []bool) error {
	q := s.q.insertFull
	if len(chunk) != pgInsertRows {
		q = insertQuery(s.dialect, s.prefix, len(chunk), true)
	}
	args := make([]any, 0, len(chunk)*rowParams)
	index := make(map[string]int, len(chunk))
	for i := range chunk {
		r := &chunk[i]
		args = append(args, r.tenant, r.dataset, r.recordID, r.version, r.time,
			nullString(r.eventType), nullBytes(r.raw), nullBytes(r.normalized))
		index[r.key()] = i
	}
	rs, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.tenant, &r.dataset, &r.recordID, &r.version); err != nil {
			return err
		}
		isNew[index[r.key()]] = true
	}
	return rs.Err()
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nullBytes binds JSON as text (a []byte would be a BLOB in SQLite), without a copy: the rows' JSON is
// never changed once encoded, and the drivers copy what they bind.
func nullBytes(b []byte) sql.NullString {
	if b == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: unsafe.String(unsafe.SliceData(b), len(b)), Valid: true}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// tenantCount is a tenant and its stored records.
type tenantCount struct {
	tenant  string
	records int64
}

func (s *store) tenants(ctx context.Context) ([]tenantCount, error) {
	rs, err := s.r.QueryContext(ctx, s.q.tenants)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []tenantCount
	for rs.Next() {
		var t tenantCount
		if err := rs.Scan(&t.tenant, &t.records); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rs.Err()
}

// resolveTenant finds a tenant by name or Entra tenant id; ok is false for one never stored.
func (s *store) resolveTenant(ctx context.Context, nameOrID string) (string, bool, error) {
	if name, ok := s.known.Load(nameOrID); ok {
		return name.(string), true, nil
	}
	var name string
	err := s.r.QueryRowContext(ctx, s.q.tenantLookup, nameOrID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	s.known.Store(nameOrID, name)
	return name, true, nil
}

// deleteBefore deletes up to n of tenant's records older than before (the oldest first), and
// deleteBeyond up to n of those beyond its newest keep; each returns how many it deleted.
func (s *store) deleteBefore(ctx context.Context, tenant string, before, n int64) (int64, error) {
	return s.deleteChunk(ctx, tenant, s.q.deleteBefore, before, n)
}

func (s *store) deleteBeyond(ctx context.Context, tenant string, keep, n int64) (int64, error) {
	return s.deleteChunk(ctx, tenant, s.q.deleteBeyond, keep, n)
}

// deleteChunk runs one of the delete queries in a transaction with the tenant's count.
func (s *store) deleteChunk(ctx context.Context, tenant, query string, bound, n int64) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, query, tenant, bound, n)
	var deleted int64
	if err == nil {
		deleted, err = res.RowsAffected()
	}
	if err == nil && deleted > 0 {
		_, err = tx.ExecContext(ctx, s.q.tenantAdd, tenant, "", -deleted)
	}
	if err != nil {
		_ = tx.Rollback()
		return 0, fmt.Errorf("retention of tenant %q: %w", tenant, err)
	}
	return deleted, tx.Commit()
}
