package o365eventsexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365eventsexporter/internal/metadata"
)

// loadConfig decodes and validates the exporter `o365_events[/name]` of testdata/config.yaml.
func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	all, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	key := component.NewIDWithName(metadata.Type, name).String()
	cfg := createDefaultConfig().(*Config)
	if !all.IsSet(key) || all.Get(key) == nil {
		return cfg, confmap.Validate(cfg) // the bare key: defaults
	}
	if err := confmap.NewFromStringMap(all.Get(key).(map[string]any)).Unmarshal(cfg); err != nil {
		return cfg, err
	}
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	storage := component.MustNewID("sql_storage")
	tests := []struct {
		name string
		want func(*Config)
	}{
		{"", func(*Config) {}},
		{"postgres", func(c *Config) {
			c.Driver, c.DSN, c.TablePrefix = "postgres", "postgres://collector:from-the-test@db.internal:5432/otelcol?sslmode=verify-full", "evt_"
			c.TimeoutConfig.Timeout = 10 * time.Second
			c.StartTimeout = time.Minute
			c.Retention = RetentionConfig{MaxAge: 168 * time.Hour, MaxRecordsPerTenant: 500000, Interval: time.Minute}
			s := c.Server.Get()
			s.ServerConfig.NetAddr.Endpoint = "0.0.0.0:13136"
			s.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewIDWithName("bearertokenauth", "events")}})
			s.QueryTimeout = 2 * time.Second
			q := c.QueueConfig.GetOrInsertDefault()
			q.StorageID = &storage
		}},
		{"no_server", func(c *Config) { c.Server = configoptional.None[ServerConfig]() }},
	}
	for _, tt := range tests {
		want := createDefaultConfig().(*Config)
		tt.want(want)
		got, err := loadConfig(t, tt.name)
		if assert.NoError(t, err, tt.name) {
			assert.Equal(t, want, got, tt.name)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	assert.Equal(t, "sqlite", cfg.Driver)
	assert.Equal(t, "./otelcol-o365-events.db", cfg.Path)
	assert.Equal(t, "full", cfg.SQLite.Synchronous, "a commit is fsynced before ConsumeLogs returns")
	assert.False(t, cfg.QueueConfig.HasValue(), "no sending_queue: acceptance means committed")
	assert.True(t, cfg.durableQueue())
	assert.Equal(t, "127.0.0.1:13136", cfg.Server.Get().ServerConfig.NetAddr.Endpoint)
}

// Which queue settings keep the receiver's guarantee (ConsumeLogs returns nil only once the records
// are stored or persisted).
func TestDurableQueue(t *testing.T) {
	storage := component.MustNewID("file_storage")
	for name, tt := range map[string]struct {
		mutate  func(*Config)
		durable bool
	}{
		"no queue":        {func(*Config) {}, true},
		"in memory":       {func(c *Config) { c.QueueConfig.GetOrInsertDefault() }, false},
		"persistent":      {func(c *Config) { c.QueueConfig.GetOrInsertDefault().StorageID = &storage }, true},
		"wait for result": {func(c *Config) { c.QueueConfig.GetOrInsertDefault().WaitForResult = true }, true},
	} {
		cfg := createDefaultConfig().(*Config)
		tt.mutate(cfg)
		assert.Equal(t, tt.durable, cfg.durableQueue(), name)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := map[string]string{
		"bad_driver":           "`driver` must be sqlite or postgres, got \"mysql\"",
		"zero_timeout":         "`timeout` must be positive: a write that never ends would hold the receiver's page forever",
		"negative_max_age":     "`retention.max_age` must not be negative (0 keeps records of any age)",
		"negative_max_records": "`retention.max_records_per_tenant` must not be negative (0 keeps every record)",
		"zero_interval":        "`retention.interval` must be positive",
		"empty_endpoint":       "`server.endpoint` must be set (host:port, e.g. 127.0.0.1:13136)",
		"zero_query_timeout":   "`server.query_timeout` must be positive",
		"zero_start_timeout":   "`start_timeout` must be positive",
		"several": "`dsn` is required with `driver: postgres`\n" +
			"`table_prefix` must be 1 to 40 lower-case letters, digits or '_', not starting with a digit, got \"\"\n" +
			"`retention.interval` must be positive",
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.EqualError(t, err, want)
		})
	}
}
