package sqlstorageextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	if err := sub.Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name string
		want func(*Config)
	}{
		{"", func(*Config) {}},
		{"sqlite", func(c *Config) {
			c.Path = "/var/lib/otelcol/o365/storage.db"
			c.TablePrefix = "o365_"
			c.SQLite.Synchronous = "normal"
			c.SQLite.BusyTimeout = 2 * time.Second
		}},
		{"postgres", func(c *Config) {
			c.Driver = driverPostgres
			c.DSN = "postgres://collector:from-the-test@db.internal:5432/otelcol?sslmode=verify-full"
			c.TablePrefix = "o365_"
			c.Timeout = 5 * time.Second
			c.StartTimeout = time.Minute
			c.Pool = PoolConfig{MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxLifetime: time.Hour, ConnMaxIdleTime: time.Minute}
			c.Lease = LeaseConfig{TTL: 20 * time.Second, RenewInterval: 5 * time.Second}
			c.ReplicaID = "collector-0"
		}},
	}
	for _, tt := range tests {
		t.Run("config "+tt.name, func(t *testing.T) {
			got, err := loadConfig(t, tt.name)
			require.NoError(t, err)
			want := createDefaultConfig().(*Config)
			tt.want(want)
			assert.Equal(t, want, got)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, driverSQLite, cfg.Driver)
	assert.Equal(t, "./otelcol-o365-storage.db", cfg.Path)
	assert.Equal(t, "full", cfg.SQLite.Synchronous)
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		err  string
	}{
		{"bad_driver", "`driver` must be sqlite or postgres, got \"mysql\""},
		{"postgres_without_dsn", "`dsn` is required with `driver: postgres`"},
		{"bad_dsn", "`dsn` is not a valid Postgres connection string: cannot parse `postgres://collector:xxxxx@db.internal:notaport/otelcol`: invalid port"},
		{"dsn_with_sqlite", "`dsn` is only used with `driver: postgres`; set `path` for sqlite"},
		{"empty_path", "`path` is required with `driver: sqlite`"},
		{"path_with_query", "`path` must not contain '?' or '#', got \"/var/lib/otelcol/storage.db?mode=ro\""},
		{"bad_table_prefix", "`table_prefix` must be 1 to 40 lower-case letters, digits or '_', not starting with a digit, got \"Otel-Storage\""},
		{"bad_synchronous", "`sqlite.synchronous` must be one of normal, full, extra, got \"off\""},
		{"negative_busy_timeout", "`sqlite.busy_timeout` must not be negative"},
		{"zero_timeout", "`timeout` must be positive"},
		{"zero_start_timeout", "`start_timeout` must be positive"},
		{"negative_pool", "`pool.max_open_conns` must not be negative"},
		{"zero_ttl", "`lease.ttl` must be positive"},
		{"renew_not_shorter", "`lease.renew_interval` (10s) must be shorter than `lease.ttl` (10s)"},
		{"bad_replica_id", "`replica_id` must be at most 200 printable characters"},
		{"several", "`dsn` is required with `driver: postgres`\n" +
			"`table_prefix` must be 1 to 40 lower-case letters, digits or '_', not starting with a digit, got \"\"\n" +
			"`lease.renew_interval` must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.EqualError(t, err, tt.err)
			assert.NotContains(t, err.Error(), "hunter2", "a password never appears in an error")
		})
	}
	for name, want := range map[string]string{
		"bad_duration": "'timeout' time: invalid duration",
		"unknown_key":  "invalid keys: paht",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.ErrorContains(t, err, want)
		})
	}
}
