package o365eventsexporter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// Config is the `o365_events` exporter's configuration.
type Config struct {
	// Config is the database: `driver` (`sqlite`, embedded, the default; or `postgres`), `path`,
	// `dsn`, `table_prefix`, `sqlite.*`, `pool.*` — the same settings as `sql_storage` (internal/sqldb).
	sqldb.Config `mapstructure:",squash"`
	// StartTimeout is how long Start keeps trying to reach the database and migrate the schema.
	StartTimeout time.Duration `mapstructure:"start_timeout"`
	// Retention bounds what is kept.
	Retention RetentionConfig `mapstructure:"retention"`
	// Server serves the queries (confighttp: `endpoint`, `tls`, `auth`, timeouts, ...).
	Server configoptional.Optional[ServerConfig] `mapstructure:"server"`

	// TimeoutConfig bounds one write (`timeout`); RetryConfig and QueueConfig are exporterhelper's.
	// The default has no sending_queue: ConsumeLogs returns once the records are committed.
	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	RetryConfig   configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RetentionConfig bounds the stored records; it is enforced every Interval, by the records' own time.
type RetentionConfig struct {
	// MaxAge deletes records whose time (the event's own time) is older than this; records older than
	// it are not stored at all. 0 keeps them.
	MaxAge time.Duration `mapstructure:"max_age"`
	// MaxRecordsPerTenant keeps the newest N records of each tenant. 0 keeps them all.
	MaxRecordsPerTenant int64 `mapstructure:"max_records_per_tenant"`
	// Interval is how often the bounds are enforced.
	Interval time.Duration `mapstructure:"interval"`

	_ struct{}
}

// ServerConfig is the query API's HTTP server.
type ServerConfig struct {
	ServerConfig confighttp.ServerConfig `mapstructure:",squash"`
	// QueryTimeout bounds the database work of one request.
	QueryTimeout time.Duration `mapstructure:"query_timeout"`

	_ struct{}
}

// Validate checks the configuration; every message names the offending key.
func (cfg *Config) Validate() error {
	errs := cfg.Config.Errors()
	if cfg.StartTimeout <= 0 {
		errs = append(errs, errors.New("`start_timeout` must be positive"))
	}
	if cfg.TimeoutConfig.Timeout <= 0 {
		errs = append(errs, errors.New("`timeout` must be positive: a write that never ends would hold the receiver's page forever"))
	}
	if cfg.Retention.MaxAge < 0 {
		errs = append(errs, errors.New("`retention.max_age` must not be negative (0 keeps records of any age)"))
	}
	if cfg.Retention.MaxRecordsPerTenant < 0 {
		errs = append(errs, errors.New("`retention.max_records_per_tenant` must not be negative (0 keeps every record)"))
	}
	if cfg.Retention.Interval <= 0 {
		errs = append(errs, errors.New("`retention.interval` must be positive"))
	}
	if cfg.Server.HasValue() {
		s := cfg.Server.Get()
		if strings.TrimSpace(s.ServerConfig.NetAddr.Endpoint) == "" {
			errs = append(errs, fmt.Errorf("`server.endpoint` must be set (host:port, e.g. %s)", defaultEndpoint))
		}
		if s.QueryTimeout <= 0 {
			errs = append(errs, errors.New("`server.query_timeout` must be positive"))
		}
	}
	return errors.Join(errs...)
}

// durableQueue reports whether ConsumeLogs returning nil means the records are stored or persisted:
// no sending_queue, a persistent one (`storage`), or one that waits for the result.
func (cfg *Config) durableQueue() bool {
	if !cfg.QueueConfig.HasValue() {
		return true
	}
	q := cfg.QueueConfig.Get()
	return q.StorageID != nil || q.WaitForResult
}
