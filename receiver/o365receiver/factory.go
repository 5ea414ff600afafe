package o365receiver

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadata"
)

// NewFactory returns the `o365` receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithLogs(createLogsReceiver, metadata.LogsStability))
}

// defaultRateLimits are Graph's documented limits.
func defaultRateLimits() map[string]RateLimit {
	out := map[string]RateLimit{}
	for family, l := range catalog.Limits {
		out[family] = RateLimit{TenantRequests: l.TenantRequests, AppRequests: l.AppRequests, Window: l.Window}
	}
	return out
}

func createDefaultConfig() component.Config {
	httpCfg := confighttp.NewDefaultClientConfig()
	httpCfg.Timeout = 2 * time.Minute
	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = time.Second
	return &Config{
		PollInterval:       5 * time.Minute,
		InitialLookback:    24 * time.Hour,
		PageSize:           1000,
		HTTP:               httpCfg,
		RetryOnFailure:     retry,
		RateLimits:         defaultRateLimits(),
		RateLimitMargin:    250 * time.Millisecond,
		RateLimitMaxMargin: 2 * time.Second,

		MaxConcurrentRequests:  6,
		PollWorkers:            64,
		SpreadFirstPolls:       true,
		MaxCooldown:            time.Hour,
		ForbiddenRetryInterval: time.Hour,
	}
}

func createLogsReceiver(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(set, cfg.(*Config), next)
}
