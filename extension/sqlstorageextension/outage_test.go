package sqlstorageextension

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// proxiedConfig is testConfig(postgres) with the DSN pointed at the proxy and a password that must
// never show up in errors or logs (trust auth ignores it).
func proxiedConfig(t *testing.T) (*Config, *pgtest.Proxy) {
	cfg := testConfig(t, driverPostgres)
	u, err := url.Parse(string(cfg.DSN))
	require.NoError(t, err)
	p := pgtest.NewProxy(t, u.Host)
	u.Host = p.Addr
	u.User = url.UserPassword(u.User.Username(), secretPassword)
	cfg.DSN = configopaque.String(u.String())
	return cfg, p
}

const secretPassword = "s3cr3t-Pa55word"

// A Postgres that goes away after start: client calls and lease calls return errors (never panic,
// never hang past `timeout`), counted as `unavailable`; when it comes back, the same clients work again
// and the data committed before the outage is there.
func TestPostgresOutageAndRecovery(t *testing.T) {
	ctx := context.Background()
	cfg, p := proxiedConfig(t)
	cfg.Timeout = time.Second
	e, tel := startExtensionWithTelemetry(t, cfg, "replica-a")
	c := getClient(t, e, component.KindReceiver, receiverID, "")
	require.NoError(t, c.Set(ctx, "watermark", []byte("w1")))

	p.Down()
	err := c.Set(ctx, "watermark", []byte("w2"))
	require.Error(t, err)
	t.Logf("while down: %v", err)
	assert.Contains(t, err.Error(), `sql_storage: set "watermark"`)
	assert.NotContains(t, err.Error(), secretPassword)
	_, err = c.Get(ctx, "watermark")
	require.Error(t, err)
	require.Error(t, c.Batch(ctx, storage.SetOperation("watermark", []byte("w2"))))
	_, _, err = e.TryAcquire(ctx, "r")
	require.Error(t, err)

	// Hanging: the connection is accepted but never answered; `timeout` bounds every call.
	p.Up(true)
	err = c.Set(ctx, "watermark", []byte("w2"))
	require.Error(t, err)
	t.Logf("while hanging: %v", err)
	assert.True(t, isUnavailable(err), "a timeout is classified as unavailable: %v", err)
	p.Down()

	p.Up(false)
	require.Eventually(t, func() bool { return c.Set(ctx, "watermark", []byte("w3")) == nil }, 15*time.Second, 100*time.Millisecond,
		"the pool reconnects when the database is back")
	assertValues(t, c, map[string][]byte{"watermark": []byte("w3")})
	_, ok, err := e.TryAcquire(ctx, "r")
	require.NoError(t, err)
	assert.True(t, ok)

	errs := sumByAttributes(t, tel, "otelcol_sql_storage_operation_errors", "error.type")
	assert.Positive(t, errs["unavailable"])
	assert.Equal(t, []string{"unavailable"}, keys(errs), "every outage error is classified as unavailable")
}

// A Postgres that is down at start fails Start with a clear error — after retrying for
// `start_timeout`, not forever — that names the database and never the password, in the error and in
// the logs.
func TestPostgresDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	cfg := createDefaultConfig().(*Config)
	cfg.Driver, cfg.Path = driverPostgres, ""
	cfg.DSN = configopaque.String("postgres://collector:" + secretPassword + "@" + addr + "/watermarks?sslmode=disable")
	cfg.StartTimeout = time.Second
	require.NoError(t, cfg.Validate())

	core, logs := observer.New(zap.DebugLevel)
	set := extensiontest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	ext, err := NewFactory().Create(context.Background(), set, cfg)
	require.NoError(t, err)
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	msg := err.Error()
	t.Logf("start error: %v", err)
	assert.Contains(t, msg, "sql_storage: cannot reach the postgres at "+addr+` (database "watermarks", user "collector") within `+"`start_timeout`"+" (1s")
	assert.Contains(t, msg, "connection refused")
	assert.NotContains(t, msg, secretPassword)
	require.NoError(t, ext.Shutdown(context.Background()))

	require.Positive(t, logs.Len(), "retries are logged")
	for _, entry := range logs.All() {
		assert.NotContains(t, entry.Message, secretPassword)
		for _, f := range entry.Context {
			assert.NotContains(t, f.String, secretPassword)
			if e, ok := f.Interface.(error); ok {
				assert.NotContains(t, e.Error(), secretPassword)
			}
		}
	}
}

// A permanent problem (here a database that does not exist) fails Start at once, not after
// `start_timeout`.
func TestPostgresPermanentErrorFailsFast(t *testing.T) {
	cfg := testConfig(t, driverPostgres)
	u, err := url.Parse(string(cfg.DSN))
	require.NoError(t, err)
	u.Path = "/sql_storage_no_such_database"
	cfg.DSN = configopaque.String(u.String())
	cfg.StartTimeout = time.Hour // a retry would hang the test: the error must come first
	ext, err := NewFactory().Create(context.Background(), extensionSettings(), cfg)
	require.NoError(t, err)
	err = ext.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	t.Logf("start error: %v", err)
	assert.Contains(t, err.Error(), "sql_storage: cannot use the postgres at")
	assert.Contains(t, err.Error(), `database "sql_storage_no_such_database" does not exist`)
	require.NoError(t, ext.Shutdown(context.Background()))
}

// A schema written by a newer collector is refused at start (permanently), and never downgraded.
func TestSchemaMigration(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.StartTimeout = time.Hour
		e := startExtension(t, cfg, "")
		db, err := e.database()
		require.NoError(t, err)
		var version int64
		require.NoError(t, db.QueryRowContext(ctx, sqldb.VersionQuery(cfg.TablePrefix)).Scan(&version))
		assert.Equal(t, schemaVersion, version)

		_, err = db.ExecContext(ctx, "UPDATE "+cfg.TablePrefix+"schema SET version = 99")
		require.NoError(t, err)
		ext, err := NewFactory().Create(ctx, extensionSettings(), cfg)
		require.NoError(t, err)
		err = ext.Start(ctx, nil)
		require.ErrorIs(t, err, errSchemaTooNew)
		assert.Contains(t, err.Error(), "tables "+cfg.TablePrefix+"* are at schema version 99, this collector knows up to 1; upgrade the collector")
		require.NoError(t, ext.Shutdown(ctx))
		require.NoError(t, db.QueryRowContext(ctx, sqldb.VersionQuery(cfg.TablePrefix)).Scan(&version))
		assert.Equal(t, int64(99), version, "left alone")
	})
}

func TestRedactor(t *testing.T) {
	r := newRedactor("p@ss w/rd")
	err := errors.New(`dial postgres://u:p%40ss%20w%2Frd@h/db and "p@ss w/rd"`)
	assert.Equal(t, `dial postgres://u:xxxxx@h/db and "xxxxx"`, r.Error(err).Error())
	plain := errors.New("nothing secret")
	assert.Same(t, plain, r.Error(plain), "errors without the secret keep their identity")
	assert.NoError(t, r.Error(nil))
	assert.Same(t, plain, newRedactor("").Error(plain))

	cfg := createDefaultConfig().(*Config)
	cfg.Driver, cfg.Path = driverPostgres, ""
	cfg.DSN = "postgres://u:" + secretPassword + "@host:notaport/db"
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "`dsn` is not a valid Postgres connection string")
	assert.NotContains(t, err.Error(), secretPassword)
}

func keys(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
