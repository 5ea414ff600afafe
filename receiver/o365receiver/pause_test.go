package o365receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// startSQLStorage starts sql_storage as configure sets it up. It offers leases, so the receiver
// writes through a tenant lease's fenced client.
func startSQLStorage(t *testing.T, configure func(*sqlstorageextension.Config)) (component.ID, extension.Extension) {
	t.Helper()
	f := sqlstorageextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*sqlstorageextension.Config)
	configure(cfg)
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return component.MustNewID("sql_storage"), ext
}

// A receiver throttled with Retry-After and restarted inside the pause waits it out: the pause is kept
// in storage (through a tenant lease's fenced client where the storage offers leases) and put back into
// the budget before the first request, so the simulator sees no request before the end Graph gave. The
// first receiver is stopped while it waits; the restarted one — on Postgres another replica, taking
// the tenant over — then collects everything.
func TestRetryAfterPauseSurvivesARestart(t *testing.T) {
	type storageStarter func(t *testing.T, run int) (component.ID, extension.Extension)
	storages := map[string]func(t *testing.T) storageStarter{
		"file_storage": func(t *testing.T) storageStarter {
			dir := t.TempDir()
			return func(t *testing.T, _ int) (component.ID, extension.Extension) { return startFileStorage(t, dir) }
		},
		"sql_storage on SQLite": func(t *testing.T) storageStarter {
			path := filepath.Join(t.TempDir(), "o365.db")
			return func(t *testing.T, _ int) (component.ID, extension.Extension) {
				return startSQLStorage(t, func(c *sqlstorageextension.Config) { c.Path = path })
			}
		},
		"sql_storage on Postgres, another replica": func(t *testing.T) storageStarter {
			dsn := pgtest.DSN(t)
			prefix := pgtest.TablePrefix(t, dsn, "o365pause")
			return func(t *testing.T, run int) (component.ID, extension.Extension) {
				return startSQLStorage(t, func(c *sqlstorageextension.Config) {
					c.Driver, c.Path, c.DSN, c.TablePrefix = "postgres", "", configopaque.String(dsn), prefix
					c.ReplicaID = fmt.Sprintf("replica-%d", run)
				})
			}
		},
	}
	for name, newStorage := range storages {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			startStorage := newStorage(t)
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 91, Tenants: []graphsim.Tenant{
				graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 50, Span: time.Hour}}),
			}})
			const retryAfter = 4 * time.Second // short, so the test is; long enough for a restart inside it
			sim.FailNext(graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: retryAfter, Path: "signIns"})
			cfg := simConfig(sim, 1)
			cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
			set := receivertest.NewNopSettings(NewFactory().Type())
			set.ID = component.MustNewID("o365") // the same receiver after the restart: the same storage
			sink := new(consumertest.LogsSink)
			pauseKey := "o365/pause/" + graphsimtest.TenantID(1) + "/" + catalog.FamilyReports
			start := func(run int) (*o365Receiver, extension.Extension) {
				id, ext := startStorage(t, run)
				rcfg := *cfg
				rcfg.Storage = &id
				r, err := newReceiver(set, &rcfg, sink)
				require.NoError(t, err)
				require.NoError(t, r.Start(context.Background(), extensionHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: ext}}))
				return r, ext
			}

			first, ext := start(1)
			require.Eventually(t, func() bool {
				first.pauses.mu.Lock()
				defer first.pauses.mu.Unlock()
				return !first.pauses.written[pauseKey].IsZero()
			}, 30*time.Second, 5*time.Millisecond, "the pause is kept in storage")
			require.NoError(t, first.Shutdown(context.Background()))
			log := sim.Requests()
			require.Len(t, log, 1, "the first receiver sent nothing after the 429")
			require.Equal(t, http.StatusTooManyRequests, log[0].Status)
			client, err := ext.(storage.Extension).GetClient(context.Background(), component.KindReceiver, set.ID, "")
			require.NoError(t, err)
			raw, err := client.Get(context.Background(), pauseKey)
			require.NoError(t, err)
			require.NoError(t, client.Close(context.Background()))
			require.NoError(t, ext.Shutdown(context.Background()))
			var stored storedPause
			require.NoError(t, json.Unmarshal(raw, &stored), "%s", raw)
			end := stored.Until
			require.False(t, end.Before(log[0].At.Add(retryAfter)), "kept until %s, Graph asked for %s", end, log[0].At.Add(retryAfter))

			restartAt := time.Now()
			require.True(t, restartAt.Before(end), "the restart came after the pause ended: nothing would be tested")
			second, ext := start(2)
			require.Eventually(t, func() bool { return sink.LogRecordCount() >= 50 }, 30*time.Second, 10*time.Millisecond)
			require.NoError(t, second.Shutdown(context.Background()))
			require.NoError(t, ext.Shutdown(context.Background()))

			log = sim.Requests()
			require.Greater(t, len(log), 1)
			for _, rec := range log[1:] {
				require.False(t, rec.At.Before(end), "the restarted receiver sent at %s, before the pause ended at %s", rec.At, end)
				require.False(t, rec.Violation)
			}
			require.Zero(t, sim.Stats().Violations, "no request before a Retry-After elapsed")
			require.Equal(t, 50, sink.LogRecordCount())
		})
	}
}
