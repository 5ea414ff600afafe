package sqlstorageextension

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
)

var (
	_ storage.Extension = (*sqlStorage)(nil)
	_ leasing.Provider  = (*sqlStorage)(nil)
)

// sqlStorage is the running extension.
type sqlStorage struct {
	cfg       *Config
	logger    *zap.Logger
	tb        *metadata.TelemetryBuilder
	replicaID string
	dialect   dialect
	q         queries
	redact    redactor
	// target describes the database for messages (path, or host:port/database and user; never the
	// password).
	target string
	// pgConfig is the parsed DSN (postgres only).
	pgConfig *pgx.ConnConfig

	mu sync.RWMutex
	db *sql.DB // nil before Start and after Shutdown
	// releaseLiveness drops this replica's liveness lock (SQLite; nil otherwise).
	releaseLiveness func()
}

func newExtension(set extension.Settings, cfg *Config) (*sqlStorage, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	e := &sqlStorage{
		cfg:       cfg,
		logger:    set.Logger,
		tb:        tb,
		replicaID: cfg.ReplicaID,
	}
	if e.replicaID == "" {
		e.replicaID = defaultReplicaID()
	}
	switch cfg.Driver {
	case driverPostgres:
		e.dialect = postgresDialect
		pc, err := pgx.ParseConfig(string(cfg.DSN))
		if err != nil {
			// Validate parsed it already; a failure here is unexpected, and pgx redacts the DSN.
			return nil, fmt.Errorf("`dsn`: %w", newRedactor(string(cfg.DSN)).error(err))
		}
		e.pgConfig = pc
		e.redact = newRedactor(pc.Password)
		e.target = fmt.Sprintf("postgres at %s (database %q, user %q)", pgHosts(pc), pc.Database, pc.User)
	default:
		e.dialect = sqliteDialect
		e.target = fmt.Sprintf("sqlite database %s", cfg.Path)
	}
	e.q = newQueries(e.dialect, cfg.TablePrefix)
	return e, nil
}

// checkDSN parses a Postgres DSN for Validate; the error never contains the password.
func checkDSN(dsn string) error {
	_, err := pgx.ParseConfig(dsn)
	return newRedactor(dsnPassword(dsn)).error(err)
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

// defaultReplicaID is hostname-pid-random: unique per process start, so that a restarted replica
// never mistakes its predecessor's leases for its own.
func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// openDB opens the connection pool; connections are made lazily.
func (e *sqlStorage) openDB() (*sql.DB, error) {
	var db *sql.DB
	maxOpen := e.cfg.Pool.MaxOpenConns
	switch e.cfg.Driver {
	case driverPostgres:
		db = sql.OpenDB(stdlib.GetConnector(*e.pgConfig))
		if maxOpen == 0 {
			maxOpen = 8
		}
	default:
		if dir := filepath.Dir(e.cfg.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("`path`: cannot create the directory of %s: %w", e.cfg.Path, err)
			}
		}
		// WAL: readers do not block the writer, and a commit is one append to the log. synchronous
		// (default FULL): the log is fsynced at every commit, so a committed write survives kill -9
		// and power loss; NORMAL survives kill -9 only. _txlock=immediate: every transaction takes
		// the write lock when it begins, so that two writers never deadlock upgrading read locks.
		dsn := e.cfg.Path + "?" + url.Values{
			"_busy_timeout": {strconv.FormatInt(e.cfg.SQLite.BusyTimeout.Milliseconds(), 10)},
			"_journal_mode": {"WAL"},
			"_synchronous":  {strings.ToUpper(e.cfg.SQLite.Synchronous)},
			"_txlock":       {"immediate"},
		}.Encode()
		var err error
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return nil, err
		}
		if maxOpen == 0 {
			maxOpen = 1 // SQLite has one writer: queue in the pool (honouring contexts), not on the file lock
		}
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(min(e.cfg.Pool.MaxIdleConns, maxOpen))
	db.SetConnMaxLifetime(e.cfg.Pool.ConnMaxLifetime)
	db.SetConnMaxIdleTime(e.cfg.Pool.ConnMaxIdleTime)
	return db, nil
}

// Start opens the database and creates or migrates the schema. It fails the collector's start-up when
// the database cannot be used — components depend on their state at start — but never waits longer
// than `start_timeout`: an unreachable database is retried within that time (a database container
// starting next to the collector), a permanent error (bad credentials, missing database, a schema from
// a newer collector) fails at once.
func (e *sqlStorage) Start(ctx context.Context, _ component.Host) error {
	db, err := e.openDB()
	if err != nil {
		return e.redact.error(fmt.Errorf("sql_storage: cannot open the %s: %w", e.target, err))
	}
	from, err := e.startSchema(ctx, db)
	if err != nil {
		_ = db.Close()
		return e.redact.error(err)
	}
	if e.cfg.Driver == driverSQLite {
		var mode string
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
			_ = db.Close()
			return fmt.Errorf("`path`: SQLite could not use WAL mode on %s (journal_mode %q, %v); put the file on a local filesystem", e.cfg.Path, mode, err)
		}
	}
	e.mu.Lock()
	e.db = db
	e.mu.Unlock()
	if e.cfg.Driver == driverSQLite {
		release, err := holdLiveness(livenessDir(e.cfg.Path), e.replicaID)
		if err != nil {
			return errors.Join(fmt.Errorf("sql_storage: %w", err), e.Shutdown(ctx))
		}
		e.releaseLiveness = release
		if err := e.reapDeadOwners(ctx); err != nil {
			e.logger.Warn("Could not free the leases of replicas that are no longer running; they expire after `lease.ttl`", zap.Error(e.redact.error(err)))
		}
	}
	e.logger.Info("SQL storage ready",
		zap.String("database", e.target), zap.String("table_prefix", e.cfg.TablePrefix),
		zap.Int64("schema_version", schemaVersion), zap.Int64("previous_schema_version", from),
		zap.String("replica_id", e.replicaID))
	return nil
}

// startSchema migrates the schema, retrying an unreachable database until `start_timeout`.
func (e *sqlStorage) startSchema(ctx context.Context, db *sql.DB) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.StartTimeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, e.cfg.Timeout)
		from, err := migrate(attemptCtx, db, e.dialect, e.cfg.TablePrefix, e.q)
		cancelAttempt()
		if err == nil {
			return from, nil
		}
		if !isUnavailable(err) {
			return 0, fmt.Errorf("sql_storage: cannot use the %s: %w", e.target, err)
		}
		e.logger.Warn("SQL storage: database not reachable yet, retrying",
			zap.String("database", e.target), zap.Int("attempt", attempt), zap.Error(e.redact.error(err)))
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("sql_storage: cannot reach the %s within `start_timeout` (%s, %d attempts): %w",
				e.target, e.cfg.StartTimeout, attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Shutdown closes the database; it works whether or not Start ran. Clients still held by components
// fail from then on.
func (e *sqlStorage) Shutdown(context.Context) error {
	e.mu.Lock()
	db := e.db
	e.db = nil
	release := e.releaseLiveness
	e.releaseLiveness = nil
	e.mu.Unlock()
	if release != nil {
		release()
	}
	e.tb.Shutdown()
	if db == nil {
		return nil
	}
	return e.redact.error(db.Close())
}

func (e *sqlStorage) database() (*sql.DB, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return nil, errNotStarted
	}
	return e.db, nil
}

// GetClient returns the storage client of one component (and storage name).
func (e *sqlStorage) GetClient(_ context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	if _, err := e.database(); err != nil {
		return nil, err
	}
	return e.newClient(kind, id, name, nil), nil
}

// observe records the duration and outcome of one operation.
func (e *sqlStorage) observe(ctx context.Context, op string, start time.Time, err error) {
	opAttr := attribute.String("operation", op)
	e.tb.SQLStorageOperationDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(opAttr))
	if err != nil {
		e.tb.SQLStorageOperationErrors.Add(ctx, 1, metric.WithAttributes(opAttr, attribute.String("error.type", errorType(err))))
	}
}

func (e *sqlStorage) leaseEvent(ctx context.Context, event string) {
	e.tb.SQLStorageLeaseEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("event", event)))
}

// withTimeout bounds one operation by `timeout`, on top of the caller's context. The context passed
// to observe must outlive the operation's: metrics are recorded after it.
func (e *sqlStorage) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.cfg.Timeout)
}

// opError names the failed operation, and the database when it is unavailable or cannot be written,
// and redacts.
func (e *sqlStorage) opError(op string, err error) error {
	switch {
	case errors.Is(err, errClientClosed), errors.Is(err, errNotStarted):
		return err
	case isUnavailable(err):
		err = fmt.Errorf("sql_storage: %s: the %s is unavailable: %w", op, e.target, err)
	case isNotWritable(err):
		err = fmt.Errorf("sql_storage: %s: the %s cannot be written (read-only, full or failing disk): %w", op, e.target, err)
	default:
		err = fmt.Errorf("sql_storage: %s: %w", op, err)
	}
	return e.redact.error(err)
}

var errNotOurLease = errors.New("sql_storage: the lease belongs to another replica")
