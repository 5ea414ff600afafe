package o365exportexporter

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadata"
)

// NewFactory returns the `o365_export` exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithLogs(createLogsExporter, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = defaultHTTPTimeout
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultSummaryEndpoint
	queue := exporterhelper.NewDefaultQueueConfig()
	// One consumer: the versions of one document are POSTed in the order they were written.
	queue.NumConsumers = 1
	return &Config{
		Period:              defaultPeriod,
		FlushDelay:          defaultFlushDelay,
		StateIdleTimeout:    defaultStateIdleTimeout,
		MaxRecordsPerTenant: defaultMaxRecordsPerTenant,
		Directory:           configoptional.None[DirectoryConfig](),
		HTTP:                configoptional.Default(client),
		RetryConfig:         configretry.NewDefaultBackOffConfig(),
		QueueConfig:         configoptional.Some(queue),
		SummaryServer: configoptional.Default(SummaryServerConfig{
			ServerConfig:          server,
			MaxDocumentsPerTenant: defaultSummaryDocuments,
		}),
		Journal: configoptional.Some(JournalConfig{}),
	}
}

func createLogsExporter(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e, err := newExportExporter(ctx, set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, e.consume,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		// Counting records in memory cannot time out, fail transiently or need a queue.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: 0}),
	)
}
