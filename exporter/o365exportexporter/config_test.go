package o365exportexporter

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadata"
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
	defaults := createDefaultConfig().(*Config)
	assert.Equal(t, time.Hour, defaults.Period)
	assert.Equal(t, 5*time.Minute, defaults.FlushDelay)
	assert.Equal(t, 2*time.Hour, defaults.StateIdleTimeout)
	assert.Equal(t, 500_000, defaults.MaxRecordsPerTenant)
	assert.False(t, defaults.Directory.HasValue())
	assert.False(t, defaults.HTTP.HasValue())
	assert.False(t, defaults.SummaryServer.HasValue())
	assert.EqualError(t, defaults.Validate(), "at least one of `directory`, `http` or `summary_server` must be configured")

	dir, err := loadConfig(t, "directory")
	require.NoError(t, err)
	want := createDefaultConfig().(*Config)
	want.Directory = configoptional.Some(DirectoryConfig{Path: "./run/export"})
	assert.Equal(t, want, dir)
	assert.Equal(t, filepath.Join("run", "export", ".journal"), dir.journalPath(), "the journal is on, in the directory")

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, 15*time.Minute, full.Period)
	assert.Equal(t, 2*time.Minute, full.FlushDelay)
	assert.Equal(t, 6*time.Hour, full.StateIdleTimeout)
	assert.Equal(t, 1000, full.MaxRecordsPerTenant)
	assert.True(t, full.IncludeEvents)
	assert.True(t, full.IncludeGeneratedAt)
	assert.Equal(t, DirectoryConfig{Path: "/var/lib/otelcol-o365/export", MaxAge: 720 * time.Hour, MaxDocumentsPerTenant: 2000}, *full.Directory.Get())
	require.True(t, full.HTTP.HasValue())
	assert.Equal(t, "https://siem.example.com/o365/export", full.HTTP.Get().Endpoint)
	assert.Equal(t, 10*time.Second, full.HTTP.Get().Timeout)
	auth, ok := full.HTTP.Get().Headers.Get("Authorization")
	require.True(t, ok)
	assert.Equal(t, configopaque.String("Bearer secret-token"), auth)
	assert.Equal(t, 2*time.Second, full.RetryConfig.InitialInterval)
	assert.Equal(t, time.Hour, full.RetryConfig.MaxElapsedTime)
	require.True(t, full.QueueConfig.HasValue())
	assert.EqualValues(t, 50, full.QueueConfig.Get().QueueSize)
	assert.Equal(t, 1, full.QueueConfig.Get().NumConsumers, "the default keeps documents in order")
	require.True(t, full.SummaryServer.HasValue())
	assert.Equal(t, "0.0.0.0:13135", full.SummaryServer.Get().ServerConfig.NetAddr.Endpoint)
	assert.Equal(t, 24, full.SummaryServer.Get().MaxDocumentsPerTenant)
	assert.Equal(t, "/var/lib/otelcol-o365/export-journal", full.journalPath())

	httpOnly, err := loadConfig(t, "http_only")
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, httpOnly.HTTP.Get().Timeout, "default timeout")
	assert.False(t, httpOnly.QueueConfig.HasValue())
	assert.False(t, httpOnly.Directory.HasValue())
	assert.Equal(t, "/var/lib/otelcol-o365/export-journal", httpOnly.journalPath())

	inMemory, err := loadConfig(t, "in_memory")
	require.NoError(t, err)
	assert.False(t, inMemory.Journal.HasValue())
	assert.Empty(t, inMemory.journalPath())
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		errs []string
	}{
		{"no_destination", []string{"at least one of `directory`, `http` or `summary_server` must be configured"}},
		{"bad_period", []string{"`period` must divide 24h evenly in whole minutes (e.g. 15m, 1h, 6h, 24h), got 7m0s"}},
		{"sub_minute_period", []string{"`period` must divide 24h evenly in whole minutes (e.g. 15m, 1h, 6h, 24h), got 1m30s"}},
		{"long_period", []string{"`period` must divide 24h evenly in whole minutes (e.g. 15m, 1h, 6h, 24h), got 48h0m0s"}},
		{"bad_numbers", []string{
			"`flush_delay` must not be negative, got -1s",
			"`state_idle_timeout` must be positive, got 0s",
			"`max_records_per_tenant` must be at least 1, got 0",
			"`directory.max_age` must not be negative (0 keeps every document), got -1h0m0s",
			"`directory.max_documents_per_tenant` must not be negative (0 keeps every document), got -1",
		}},
		{"empty_directory", []string{"`directory.path` must be set"}},
		{"root_directory", []string{"`directory.path` must not be the root directory"}},
		{"bad_endpoint", []string{"`http.endpoint` must be an http:// or https:// URL, got \"siem.example.com:443\""}},
		{"bad_server", []string{
			"`summary_server.endpoint` must be set (host:port, e.g. 127.0.0.1:13135)",
			"`summary_server.max_documents_per_tenant` must be at least 1, got 0",
		}},
		{"no_journal_path", []string{"`journal.path` must be set when there is no `directory` (or `journal: { enabled: false }` to count records in memory only, which a crash loses)"}},
		{"root_journal", []string{"`journal.path` must not be the root directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.Error(t, err)
			assert.Equal(t, strings.Join(tt.errs, "\n"), err.Error())
		})
	}
}
