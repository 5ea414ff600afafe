package o365eventsexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365eventsexporter/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// Defaults.
const (
	// DefaultPath is the SQLite database unless `path` says otherwise (relative to the collector's
	// working directory).
	DefaultPath = "./otelcol-o365-events.db"
	// defaultEndpoint: loopback only, next to o365_readiness's 13134 and o365_export's 13135.
	defaultEndpoint      = "127.0.0.1:13136"
	defaultTablePrefix   = "o365_events_"
	defaultMaxAge        = 30 * 24 * time.Hour // Graph's own retention of sign-ins and audits
	defaultMaxRecords    = 10_000_000
	defaultInterval      = 30 * time.Second
	defaultQueryTimeout  = 10 * time.Second
	defaultWriteTimeout  = 30 * time.Second
	defaultStartTimeout  = 30 * time.Second
	defaultQueueMinBatch = 1000
	defaultQueueMaxBatch = maxTxRecords
)

// NewFactory returns the `o365_events` exporter factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(metadata.Type, createDefaultConfig,
		exporter.WithLogs(createLogsExporter, metadata.LogsStability))
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	// Used only when `sending_queue` is configured: batches (when `batch` is set) of at most one
	// transaction's bound.
	queue := exporterhelper.NewDefaultQueueConfig()
	batch := queue.Batch
	b := *batch.GetOrInsertDefault()
	b.MinSize, b.MaxSize = defaultQueueMinBatch, defaultQueueMaxBatch
	queue.Batch = configoptional.Default(b)
	return &Config{
		Config:       sqldb.DefaultConfig(DefaultPath, defaultTablePrefix),
		StartTimeout: defaultStartTimeout,
		Retention: RetentionConfig{
			MaxAge:              defaultMaxAge,
			MaxRecordsPerTenant: defaultMaxRecords,
			Interval:            defaultInterval,
		},
		Server:        configoptional.Some(ServerConfig{ServerConfig: server, QueryTimeout: defaultQueryTimeout}),
		TimeoutConfig: exporterhelper.TimeoutConfig{Timeout: defaultWriteTimeout},
		RetryConfig:   configretry.NewDefaultBackOffConfig(),
		// No queue by default: acceptance means committed (an in-memory queue would acknowledge pages
		// the receiver then commits, before they are stored).
		QueueConfig: configoptional.Default(queue),
	}
}

func createLogsExporter(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e, err := newEventsExporter(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return e.logsExporter(ctx)
}

// logsExporter wraps the exporter in exporterhelper: timeout, retries, queue.
func (e *eventsExporter) logsExporter(ctx context.Context) (exporter.Logs, error) {
	c := e.cfg
	return exporterhelper.NewLogs(ctx, e.set, c, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(c.TimeoutConfig),
		exporterhelper.WithRetry(c.RetryConfig),
		exporterhelper.WithQueue(c.QueueConfig),
	)
}
