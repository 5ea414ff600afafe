package sqlstorageextension

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
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
	db0       *sqldb.Database
	q         queries
	redact    sqldb.Redactor
	// target describes the database for messages (path, or host:port/database and user; never the
	// password).
	target string

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
	db, err := sqldb.New("sql_storage", &cfg.Config)
	if err != nil {
		return nil, err
	}
	e.db0, e.redact, e.target = db, db.Redact, db.Target
	e.q = newQueries(db.Dialect, cfg.TablePrefix)
	return e, nil
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

// Start opens the database and creates or migrates the schema. It fails the collector's start-up when
// the database cannot be used — components depend on their state at start — but never waits longer
// than `start_timeout`: an unreachable database is retried within that time (a database container
// starting next to the collector), a permanent error (bad credentials, missing database, a schema from
// a newer collector) fails at once.
func (e *sqlStorage) Start(ctx context.Context, _ component.Host) error {
	db, from, err := e.db0.Start(ctx, e.logger, schema, 8, e.cfg.Timeout, e.cfg.StartTimeout)
	if err != nil {
		return err
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
			e.logger.Warn("Could not free the leases of replicas that are no longer running; they expire after `lease.ttl`", zap.Error(e.redact.Error(err)))
		}
	}
	e.logger.Info("SQL storage ready",
		zap.String("database", e.target), zap.String("table_prefix", e.cfg.TablePrefix),
		zap.Int64("schema_version", schemaVersion), zap.Int64("previous_schema_version", from),
		zap.String("replica_id", e.replicaID))
	return nil
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
	return e.redact.Error(db.Close())
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
	return e.redact.Error(err)
}

var errNotOurLease = errors.New("sql_storage: the lease belongs to another replica")
