package sqlstorageextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// DefaultPath is where the SQLite database lives unless `path` says otherwise (relative to the
// collector's working directory).
const DefaultPath = "./otelcol-o365-storage.db"

// NewFactory returns the `sql_storage` extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{
		Config:       sqldb.DefaultConfig(DefaultPath, "otelcol_storage_"),
		Timeout:      10 * time.Second,
		StartTimeout: 30 * time.Second,
		Lease: LeaseConfig{
			TTL:           30 * time.Second,
			RenewInterval: 10 * time.Second,
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(set, cfg.(*Config))
}
