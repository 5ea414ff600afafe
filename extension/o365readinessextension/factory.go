package o365readinessextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-o365/otelcol-o365/extension/o365readinessextension/internal/metadata"
)

// NewFactory returns the `o365_readiness` extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = DefaultEndpoint
	return &Config{
		ServerConfig: server,
		Readiness: ReadinessConfig{
			IncludeComponentStatus: true,
		},
		Probe: ProbeConfig{
			Interval: 5 * time.Minute,
			Timeout:  10 * time.Second,
		},
		RunRateLimit: RateLimitConfig{
			Requests: 6,
			Per:      time.Minute,
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(set, cfg.(*Config))
}
