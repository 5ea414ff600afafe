package sqlstorageextension

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// testConfig is a valid configuration of driver on a fresh database: a new SQLite file, or a unique
// table prefix on the test Postgres whose tables are dropped when the test ends.
func testConfig(t *testing.T, driver string) *Config {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Driver = driver
	cfg.Lease.TTL, cfg.Lease.RenewInterval = time.Second, 300*time.Millisecond
	cfg.StartTimeout = 10 * time.Second
	switch driver {
	case driverSQLite:
		cfg.Path = filepath.Join(t.TempDir(), "state", "storage.db")
	case driverPostgres:
		dsn := pgtest.DSN(t)
		cfg.Path = ""
		cfg.DSN = configopaque.String(dsn)
		cfg.TablePrefix = pgtest.TablePrefix(t, dsn, "sqlst")
	}
	require.NoError(t, cfg.Validate())
	return cfg
}

var drivers = []string{driverSQLite, driverPostgres}

// forEachDriver runs fn as a subtest per driver.
func forEachDriver(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

// startExtension creates and starts the extension on cfg (a copy, with replicaID if not empty) and shuts
// it down when the test ends.
func startExtension(t *testing.T, cfg *Config, replicaID string) *sqlStorage {
	t.Helper()
	e, _ := startExtensionWithTelemetry(t, cfg, replicaID)
	return e
}

func startExtensionWithTelemetry(t *testing.T, cfg *Config, replicaID string) (*sqlStorage, *componenttest.Telemetry) {
	t.Helper()
	c := *cfg
	if replicaID != "" {
		c.ReplicaID = replicaID
	}
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := extensiontest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	ext, err := NewFactory().Create(context.Background(), set, &c)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext.(*sqlStorage), tel
}

var (
	receiverID = component.MustNewIDWithName("o365", "a")
	otherID    = component.MustNewIDWithName("o365", "b")
)

func getClient(t *testing.T, e *sqlStorage, kind component.Kind, id component.ID, name string) *client {
	t.Helper()
	c, err := e.GetClient(context.Background(), kind, id, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c.(*client)
}

func extensionSettings() extension.Settings { return extensiontest.NewNopSettings(metadata.Type) }
