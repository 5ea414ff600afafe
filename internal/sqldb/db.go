package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Database is a validated configuration ready to open: its dialect, a description for messages and
// the redactor of its password.
type Database struct {
	cfg     *Config
	Dialect Dialect
	// Target describes the database for messages (path, or host:port/database and user; never the
	// password).
	Target string
	Redact Redactor
	// SQLitePragmas are set on every SQLite connection Open makes, e.g. "cache_size(-65536)".
	SQLitePragmas []string
	// component prefixes start-up errors ("sql_storage", "o365_events").
	component string
	pgConfig  *pgx.ConnConfig
}

// New prepares cfg (already validated) for component; nothing is opened yet.
func New(component string, cfg *Config) (*Database, error) {
	d := &Database{cfg: cfg, component: component}
	switch cfg.Driver {
	case DriverPostgres:
		d.Dialect = Postgres
		pc, err := pgx.ParseConfig(string(cfg.DSN))
		if err != nil {
			// Validate parsed it already; a failure here is unexpected, and pgx redacts the DSN.
			return nil, fmt.Errorf("`dsn`: %w", NewRedactor(string(cfg.DSN)).Error(err))
		}
		d.pgConfig = pc
		d.Redact = NewRedactor(pc.Password)
		d.Target = fmt.Sprintf("postgres at %s (database %q, user %q)", pgHosts(pc), pc.Database, pc.User)
	default:
		d.Dialect = SQLite
		d.Target = fmt.Sprintf("sqlite database %s", cfg.Path)
	}
	return d, nil
}

// checkDSN parses a Postgres DSN for Validate; the error never contains the password.
func checkDSN(dsn string) error {
	_, err := pgx.ParseConfig(dsn)
	return NewRedactor(dsnPassword(dsn)).Error(err)
}

// dsnPassword extracts the password of a URL DSN, for redaction when the DSN does not parse.
func dsnPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	return ""
}

func pgHosts(pc *pgx.ConnConfig) string {
	hosts := []string{pc.Host + ":" + strconv.Itoa(int(pc.Port))}
	for _, f := range pc.Fallbacks {
		hosts = append(hosts, f.Host+":"+strconv.Itoa(int(f.Port)))
	}
	return strings.Join(hosts, ",")
}

// Open opens a connection pool; connections are made lazily. `pool.max_open_conns: 0` means
// sqliteConns for SQLite (1 for a writer: SQLite has one, and callers then queue in the pool,
// honouring their contexts, not on the file lock) and pgConns for Postgres. sqlitePragmas are set on
// its SQLite connections, after SQLitePragmas.
func (d *Database) Open(sqliteConns, pgConns int, sqlitePragmas ...string) (*sql.DB, error) {
	var db *sql.DB
	maxOpen := d.cfg.Pool.MaxOpenConns
	switch d.cfg.Driver {
	case DriverPostgres:
		db = sql.OpenDB(stdlib.GetConnector(*d.pgConfig))
		if maxOpen == 0 {
			maxOpen = pgConns
		}
	default:
		if dir := filepath.Dir(d.cfg.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("`path`: cannot create the directory of %s: %w", d.cfg.Path, err)
			}
		}
		// WAL: readers do not block the writer, and a commit is one append to the log. synchronous
		// (default FULL): the log is fsynced at every commit, so a committed write survives kill -9
		// and power loss; NORMAL survives kill -9 only. _txlock=immediate: every transaction takes
		// the write lock when it begins, so that two writers never deadlock upgrading read locks.
		dsn := d.cfg.Path + "?" + url.Values{
			"_busy_timeout": {strconv.FormatInt(d.cfg.SQLite.BusyTimeout.Milliseconds(), 10)},
			"_journal_mode": {"WAL"},
			"_synchronous":  {strings.ToUpper(d.cfg.SQLite.Synchronous)},
			"_txlock":       {"immediate"},
			"_pragma":       append(slices.Clone(d.SQLitePragmas), sqlitePragmas...),
		}.Encode()
		var err error
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return nil, err
		}
		if maxOpen == 0 {
			maxOpen = sqliteConns
		}
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(min(d.cfg.Pool.MaxIdleConns, maxOpen))
	db.SetConnMaxLifetime(d.cfg.Pool.ConnMaxLifetime)
	db.SetConnMaxIdleTime(d.cfg.Pool.ConnMaxIdleTime)
	return db, nil
}

// Start opens the pool and migrates the schema, for a component's Start: an unreachable database is
// retried with backoff within startTimeout (a database container starting next to the collector), each
// attempt bounded by timeout; a permanent error (bad credentials, a missing database, a schema from a
// newer collector) fails at once. With SQLite it also checks that WAL mode is on. It returns the pool
// (Open(1, pgConns)) and the schema version found before the migration. Errors are redacted.
func (d *Database) Start(ctx context.Context, logger *zap.Logger, s *Schema, pgConns int, timeout, startTimeout time.Duration) (*sql.DB, int64, error) {
	db, err := d.Open(1, pgConns)
	if err != nil {
		return nil, 0, d.Redact.Error(fmt.Errorf("%s: cannot open the %s: %w", d.component, d.Target, err))
	}
	from, err := d.startSchema(ctx, logger, db, s, timeout, startTimeout)
	if err != nil {
		_ = db.Close()
		return nil, 0, d.Redact.Error(err)
	}
	if d.cfg.Driver == DriverSQLite {
		var mode string
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
			_ = db.Close()
			return nil, 0, fmt.Errorf("`path`: SQLite could not use WAL mode on %s (journal_mode %q, %v); put the file on a local filesystem", d.cfg.Path, mode, err)
		}
	}
	return db, from, nil
}

func (d *Database) startSchema(ctx context.Context, logger *zap.Logger, db *sql.DB, s *Schema, timeout, startTimeout time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, timeout)
		from, err := s.Migrate(attemptCtx, db, d.Dialect, d.cfg.TablePrefix)
		cancelAttempt()
		if err == nil {
			return from, nil
		}
		if !IsUnavailable(err) {
			return 0, fmt.Errorf("%s: cannot use the %s: %w", d.component, d.Target, err)
		}
		logger.Warn(d.component+": database not reachable yet, retrying",
			zap.String("database", d.Target), zap.Int("attempt", attempt), zap.Error(d.Redact.Error(err)))
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: cannot reach the %s within `start_timeout` (%s, %d attempts): %w",
				d.component, d.Target, startTimeout, attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
