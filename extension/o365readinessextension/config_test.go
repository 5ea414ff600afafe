package o365readinessextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-o365/otelcol-o365/extension/o365readinessextension/internal/metadata"
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
	defaults, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), defaults)
	assert.Equal(t, DefaultEndpoint, defaults.ServerConfig.NetAddr.Endpoint)
	assert.False(t, defaults.AdminAuth.HasValue(), "no authenticator by default: admin routes are refused")
	assert.False(t, defaults.ReadinessRequiresAuth)

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	want := createDefaultConfig().(*Config)
	want.ServerConfig.NetAddr.Endpoint = "0.0.0.0:8080"
	want.ServerConfig.TLS = configoptional.Some(configtls.ServerConfig{Config: configtls.Config{
		CertFile: "/etc/otelcol/readiness.crt", KeyFile: "/etc/otelcol/readiness.key",
	}})
	want.AdminAuth = configoptional.Some(configauth.Config{AuthenticatorID: component.MustNewIDWithName("bearertokenauth", "admin")})
	want.ReadinessRequiresAuth = true
	want.Readiness.Datasets = []string{"signins", "directory_audits"}
	want.Readiness.MaxWatermarkLag = 2 * time.Hour
	want.Readiness.IncludeComponentStatus = false
	want.Probe.Interval = 15 * time.Minute
	want.Probe.Timeout = 20 * time.Second
	want.RunRateLimit.Requests = 2
	want.RunRateLimit.Per = 10 * time.Minute
	assert.Equal(t, want, full)
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		errs []string
	}{
		{"empty_endpoint", []string{"`endpoint` must be set (host:port, e.g. 127.0.0.1:13134)"}},
		{"readiness_auth_without_authenticator", []string{"`readiness_requires_auth` is true but `admin_auth` is not configured"}},
		{"admin_auth_without_id", []string{"`admin_auth.authenticator` must name an authenticator extension (e.g. bearertokenauth)"}},
		{"bad_datasets", []string{
			"`readiness.datasets[1]` must not be empty",
			"`readiness.datasets[2]` \"signins\" is listed twice",
		}},
		{"negative_lag", []string{"`readiness.max_watermark_lag` must not be negative (0 disables the check)"}},
		{"zero_probe", []string{"`probe.interval` must be positive", "`probe.timeout` must be positive"}},
		{"zero_rate_limit", []string{"`run_rate_limit.requests` must be at least 1", "`run_rate_limit.per` must be positive"}},
		{"bad_duration", []string{"'probe.interval' time: invalid duration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.Error(t, err)
			for _, want := range tt.errs {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}
