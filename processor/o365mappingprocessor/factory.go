package o365mappingprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/metadata"
)

// defaultMaxEntriesPerTenant bounds the correlation state of one tenant (~200 bytes an entry).
const defaultMaxEntriesPerTenant = 200_000

// NewFactory returns the `o365_mapping` processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(metadata.Type, createDefaultConfig,
		processor.WithLogs(createLogsProcessor, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		KeepRaw: true,
		Correlation: CorrelationConfig{
			Enabled:             true,
			MaxEntriesPerTenant: defaultMaxEntriesPerTenant,
		},
	}
}

func createLogsProcessor(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(p.shutdown))
}
