package o365receiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadata"
)

// NewFactory returns the `o365` receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability))
}

// defaultRateLimits are Graph's documented limits (learn.microsoft.com/graph/throttling-limits).
func defaultRateLimits() map[string]RateLimit {
	return map[string]RateLimit{
		familyReports: {TenantRequests: 5, AppRequests: 122, Window: 10 * time.Second},
		// 1 request / s per tenant across all apps; Graph sends no Retry-After for this family.
		familyIdentityProtection: {TenantRequests: 1, Window: time.Second},
		familySecurity:           {TenantRequests: 150, Window: time.Minute},
		// Directory reads are metered in resource units (3,500+ per 10 s per app and tenant); a list page
		// costs a few, so this stays far inside the smallest tenant's allowance.
		familyDirectory: {TenantRequests: 100, Window: 10 * time.Second},
	}
}

func createDefaultConfig() component.Config {
	httpCfg := confighttp.NewDefaultClientConfig()
	httpCfg.Timeout = 2 * time.Minute
	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = time.Second
	return &Config{
		PollInterval:    5 * time.Minute,
		Lookback:        30 * time.Minute,
		InitialLookback: 24 * time.Hour,
		PageSize:        1000,
		HTTP:            httpCfg,
		RetryOnFailure:  retry,
		RateLimits:      defaultRateLimits(),
		RateLimitMargin: 250 * time.Millisecond,

		MaxConcurrentRequests:  6,
		MaxCooldown:            time.Hour,
		ForbiddenRetryInterval: time.Hour,
	}
}

func createLogsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
