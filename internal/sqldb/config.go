// Package sqldb is the one home of how otelcol-o365's components use a SQL database: the embedded
// SQLite (modernc.org/sqlite, pure Go) or Postgres (pgx), the connection settings and their validation,
// the SQLite pragmas that make a commit durable, versioned schema migrations, the classification of
// errors worth retrying, and the redaction of passwords from every error. The `sql_storage` extension
// and the `o365_events` exporter both use it; each keeps its own tables and queries.
package sqldb

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
)

// Drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the connection part of a component's configuration, squashed into it: `driver`, `path`,
// `dsn`, `table_prefix`, `sqlite.*`, `pool.*`.
type Config struct {
	// Driver is the database: `sqlite` (embedded, one file, the default) or `postgres`.
	Driver string `mapstructure:"driver"`
	// Path is the SQLite database file; its directory is created if missing.
	Path string `mapstructure:"path"`
	// DSN is the Postgres connection string, URL (postgres://user:pass@host:5432/db?sslmode=verify-full)
	// or key=value form. Never logged; passwords are redacted from every error.
	DSN configopaque.String `mapstructure:"dsn"`
	// TablePrefix is prepended to the component's table names, so that several deployments can share
	// one database or schema.
	TablePrefix string `mapstructure:"table_prefix"`
	// SQLite settings, used with `driver: sqlite`.
	SQLite SQLiteConfig `mapstructure:"sqlite"`
	// Pool settings of the connection pool.
	Pool PoolConfig `mapstructure:"pool"`

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
	// MaxOpenConns caps open connections; 0 = the component's default.
	MaxOpenConns int `mapstructure:"max_open_conns"`
	// MaxIdleConns caps idle connections kept open (at most MaxOpenConns).
	MaxIdleConns int `mapstructure:"max_idle_conns"`
	// ConnMaxLifetime closes connections older than this (0 = never); lets a pool follow a failover.
	ConnMaxLifetime time.Duration `mapstructure:"conn_max_lifetime"`
	// ConnMaxIdleTime closes connections idle for longer than this (0 = never).
	ConnMaxIdleTime time.Duration `mapstructure:"conn_max_idle_time"`

	_ struct{}
}

// DefaultConfig is the shared default: SQLite at path with fsync at every commit, tables prefixed
// with prefix.
func DefaultConfig(path, prefix string) Config {
	return Config{
		Driver:      DriverSQLite,
		Path:        path,
		TablePrefix: prefix,
		SQLite:      SQLiteConfig{Synchronous: "full", BusyTimeout: 10 * time.Second},
		Pool:        PoolConfig{MaxIdleConns: 2, ConnMaxLifetime: 30 * time.Minute, ConnMaxIdleTime: 5 * time.Minute},
	}
}

var (
	tablePrefixPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)
	synchronousModes   = []string{"normal", "full", "extra"}
)

// Errors checks the settings; every message names the offending key. It is not called Validate so
// that confmap does not run it a second time on the squashed struct.
func (cfg *Config) Errors() []error {
	var errs []error
	switch cfg.Driver {
	case DriverSQLite:
		if cfg.Path == "" {
			errs = append(errs, errors.New("`path` is required with `driver: sqlite`"))
		}
		if strings.ContainsAny(cfg.Path, "?#") {
			errs = append(errs, fmt.Errorf("`path` must not contain '?' or '#', got %q", cfg.Path))
		}
		if cfg.DSN != "" {
			errs = append(errs, errors.New("`dsn` is only used with `driver: postgres`; set `path` for sqlite"))
		}
	case DriverPostgres:
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
	if !slices.Contains(synchronousModes, cfg.SQLite.Synchronous) {
		errs = append(errs, fmt.Errorf("`sqlite.synchronous` must be one of %s, got %q", strings.Join(synchronousModes, ", "), cfg.SQLite.Synchronous))
	}
	if cfg.SQLite.BusyTimeout < 0 {
		errs = append(errs, errors.New("`sqlite.busy_timeout` must not be negative"))
	}
	for _, p := range []struct {
		key string
		neg bool
	}{
		{"pool.max_open_conns", cfg.Pool.MaxOpenConns < 0},
		{"pool.max_idle_conns", cfg.Pool.MaxIdleConns < 0},
		{"pool.conn_max_lifetime", cfg.Pool.ConnMaxLifetime < 0},
		{"pool.conn_max_idle_time", cfg.Pool.ConnMaxIdleTime < 0},
	} {
		if p.neg {
			errs = append(errs, fmt.Errorf("`%s` must not be negative", p.key))
		}
	}
	return errs
}
