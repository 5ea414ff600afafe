package sqlstorageextension

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
)

const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// Config is the `sql_storage` extension's configuration.
type Config struct {
	// Driver is the database: `sqlite` (embedded, one file, the default) or `postgres` (shared by
	// several collector replicas).
	Driver string `mapstructure:"driver"`
	// Path is the SQLite database file; its directory is created if missing.
	Path string `mapstructure:"path"`
	// DSN is the Postgres connection string, URL (postgres://user:pass@host:5432/db?sslmode=verify-full)
	// or key=value form. Never logged; passwords are redacted from every error.
	DSN configopaque.String `mapstructure:"dsn"`
	// TablePrefix is prepended to the extension's table names (<prefix>kv, <prefix>lease,
	// <prefix>schema), so that several deployments can share one database or schema.
	TablePrefix string `mapstructure:"table_prefix"`
	// Timeout bounds every storage and lease operation (including waiting for a pooled connection).
	Timeout time.Duration `mapstructure:"timeout"`
	// StartTimeout is how long Start keeps trying to reach the database and migrate the schema before
	// it fails the collector's start-up.
	StartTimeout time.Duration `mapstructure:"start_timeout"`
	// SQLite settings, used with `driver: sqlite`.
	SQLite SQLiteConfig `mapstructure:"sqlite"`
	// Pool settings of the connection pool.
	Pool PoolConfig `mapstructure:"pool"`
	// Lease settings, for replicas that split resources between them (see internal/leasing).
	Lease LeaseConfig `mapstructure:"lease"`
	// ReplicaID identifies this collector as a lease owner. Default: hostname-pid-random, unique per
	// process start.
	ReplicaID string `mapstructure:"replica_id"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SQLiteConfig tunes the embedded SQLite database.
type SQLiteConfig struct {
	// Synchronous is SQLite's `synchronous` pragma in WAL mode: `full` (every commit is fsynced: it
	// survives a crash of the process and of the machine), `normal` (commits survive a crash of the
	// process, the last ones may be lost on power failure) or `extra`.
	Synchronous string `mapstructure:"synchronous"`
	// BusyTimeout is how long a connection waits for another process's write lock on the file.
	BusyTimeout time.Duration `mapstructure:"busy_timeout"`

	_ struct{}
}

// PoolConfig is the database/sql connection pool.
type PoolConfig struct {
	// MaxOpenConns caps open connections; 0 = the driver's default (1 for sqlite, which serializes
	// writers anyway; 8 for postgres).
	MaxOpenConns int `mapstructure:"max_open_conns"`
	// MaxIdleConns caps idle connections kept open (at most MaxOpenConns).
	MaxIdleConns int `mapstructure:"max_idle_conns"`
	// ConnMaxLifetime closes connections older than this (0 = never); lets a pool follow a failover.
	ConnMaxLifetime time.Duration `mapstructure:"conn_max_lifetime"`
	// ConnMaxIdleTime closes connections idle for longer than this (0 = never).
	ConnMaxIdleTime time.Duration `mapstructure:"conn_max_idle_time"`

	_ struct{}
}

// LeaseConfig times the leases offered to components.
type LeaseConfig struct {
	// TTL is how long a lease lasts without renewal: how long a dead replica's resources wait before
	// another replica takes them over.
	TTL time.Duration `mapstructure:"ttl"`
	// RenewInterval is how often holders renew (and replicas look for free resources); at most a third
	// of TTL is advisable, so that two renewals may fail before the lease is lost.
	RenewInterval time.Duration `mapstructure:"renew_interval"`

	_ struct{}
}

var (
	tablePrefixPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)
	synchronousModes   = []string{"normal", "full", "extra"}
)

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.Driver {
	case driverSQLite:
		if cfg.Path == "" {
			errs = append(errs, errors.New("`path` is required with `driver: sqlite`"))
		}
		if strings.ContainsAny(cfg.Path, "?#") {
			errs = append(errs, fmt.Errorf("`path` must not contain '?' or '#', got %q", cfg.Path))
		}
		if cfg.DSN != "" {
			errs = append(errs, errors.New("`dsn` is only used with `driver: postgres`; set `path` for sqlite"))
		}
	case driverPostgres:
		if cfg.DSN == "" {
			errs = append(errs, errors.New("`dsn` is required with `driver: postgres`"))
		} else if err := checkDSN(string(cfg.DSN)); err != nil {
			errs = append(errs, fmt.Errorf("`dsn` is not a valid Postgres connection string: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("`driver` must be sqlite or postgres, got %q", cfg.Driver))
	}
	if !tablePrefixPattern.MatchString(cfg.TablePrefix) {
		errs = append(errs, fmt.Errorf("`table_prefix` must be 1 to 40 lower-case letters, digits or '_', not starting with a digit, got %q", cfg.TablePrefix))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, errors.New("`timeout` must be positive"))
	}
	if cfg.StartTimeout <= 0 {
		errs = append(errs, errors.New("`start_timeout` must be positive"))
	}
	if !slices.Contains(synchronousModes, cfg.SQLite.Synchronous) {
		errs = append(errs, fmt.Errorf("`sqlite.synchronous` must be one of %s, got %q", strings.Join(synchronousModes, ", "), cfg.SQLite.Synchronous))
	}
	if cfg.SQLite.BusyTimeout < 0 {
		errs = append(errs, errors.New("`sqlite.busy_timeout` must not be negative"))
	}
	if cfg.Pool.MaxOpenConns < 0 {
		errs = append(errs, errors.New("`pool.max_open_conns` must not be negative"))
	}
	if cfg.Pool.MaxIdleConns < 0 {
		errs = append(errs, errors.New("`pool.max_idle_conns` must not be negative"))
	}
	if cfg.Pool.ConnMaxLifetime < 0 {
		errs = append(errs, errors.New("`pool.conn_max_lifetime` must not be negative"))
	}
	if cfg.Pool.ConnMaxIdleTime < 0 {
		errs = append(errs, errors.New("`pool.conn_max_idle_time` must not be negative"))
	}
	if cfg.Lease.TTL <= 0 {
		errs = append(errs, errors.New("`lease.ttl` must be positive"))
	}
	if cfg.Lease.RenewInterval <= 0 {
		errs = append(errs, errors.New("`lease.renew_interval` must be positive"))
	} else if cfg.Lease.TTL > 0 && cfg.Lease.RenewInterval >= cfg.Lease.TTL {
		errs = append(errs, fmt.Errorf("`lease.renew_interval` (%s) must be shorter than `lease.ttl` (%s)", cfg.Lease.RenewInterval, cfg.Lease.TTL))
	}
	if strings.ContainsFunc(cfg.ReplicaID, func(r rune) bool { return r < ' ' }) || len(cfg.ReplicaID) > 200 {
		errs = append(errs, errors.New("`replica_id` must be at most 200 printable characters"))
	}
	return errors.Join(errs...)
}
