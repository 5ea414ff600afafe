package sqlstorageextension

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

const (
	driverSQLite   = sqldb.DriverSQLite
	driverPostgres = sqldb.DriverPostgres
)

// Config is the `sql_storage` extension's configuration.
type Config struct {
	// Config is the database: `driver` (`sqlite`, embedded, one file, the default; or `postgres`,
	// shared by several collector replicas), `path`, `dsn`, `table_prefix` (prepended to the tables
	// <prefix>kv, <prefix>lease, <prefix>schema), `sqlite.*` and `pool.*` (internal/sqldb).
	sqldb.Config `mapstructure:",squash"`
	// Timeout bounds every storage and lease operation (including waiting for a pooled connection).
	Timeout time.Duration `mapstructure:"timeout"`
	// StartTimeout is how long Start keeps trying to reach the database and migrate the schema before
	// it fails the collector's start-up.
	StartTimeout time.Duration `mapstructure:"start_timeout"`
	// Lease settings, for replicas that split resources between them (see internal/leasing).
	Lease LeaseConfig `mapstructure:"lease"`
	// ReplicaID identifies this collector as a lease owner. Default: hostname-pid-random, unique per
	// process start.
	ReplicaID string `mapstructure:"replica_id"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SQLiteConfig and PoolConfig are the shared database settings (pool.max_open_conns 0 = 1 for sqlite,
// which serializes writers anyway; 8 for postgres).
type (
	SQLiteConfig = sqldb.SQLiteConfig
	PoolConfig   = sqldb.PoolConfig
)

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

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	errs := cfg.Config.Errors()
	if cfg.Timeout <= 0 {
		errs = append(errs, errors.New("`timeout` must be positive"))
	}
	if cfg.StartTimeout <= 0 {
		errs = append(errs, errors.New("`start_timeout` must be positive"))
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
