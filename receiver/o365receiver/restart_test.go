package o365receiver

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// extensionHost is a host that offers extensions to the receiver.
type extensionHost struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// startFileStorage starts contrib's file_storage extension in dir.
func startFileStorage(t *testing.T, dir string) (component.ID, extension.Extension) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	id := component.MustNewID("file_storage")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return id, ext
}

// runOnStorage runs a receiver with cfg on the file storage in dir (the same storage client across
// runs) until `until` holds, lets it poll a few more times, and shuts it down.
func runOnStorage(t *testing.T, dir string, cfg *Config, sink *consumertest.LogsSink, until func(r *o365Receiver) bool) {
	t.Helper()
	id, ext := startFileStorage(t, dir)
	cfg.Storage = &id
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.ID = component.MustNewID("o365") // the storage client is per component id: keep it across runs
	r, err := newReceiver(set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), extensionHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: ext}}))
	require.Eventually(t, func() bool { return until(r) }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // more polls, which must find nothing new
	require.NoError(t, r.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestRestartResumesWithoutReemitting(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 12, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 700, Span: time.Hour, PerTimestamp: 3}}),
	}})
	dir := t.TempDir()
	run := func(sink *consumertest.LogsSink, until func() bool) {
		cfg := simConfig(sim, 1)
		cfg.PageSize = 100
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
		runOnStorage(t, dir, cfg, sink, func(*o365Receiver) bool { return until() })
	}

	first := new(consumertest.LogsSink)
	run(first, func() bool { return first.LogRecordCount() >= 700 })
	require.Equal(t, 700, first.LogRecordCount())

	// New records arrive while the collector is down.
	var injected []map[string]any
	for i := range 25 {
		injected = append(injected, map[string]any{
			"id": fmt.Sprintf("after-restart-%d", i), "createdDateTime": graphsim.FormatTime(time.Now().Add(-time.Duration(i) * time.Millisecond)),
		})
	}
	require.NoError(t, sim.Inject(graphsimtest.TenantID(1), "signins", time.Time{}, injected...))

	second := new(consumertest.LogsSink)
	run(second, func() bool { return second.LogRecordCount() >= 25 })
	got := idsByDataset(second.AllLogs())["signins"]
	require.Len(t, got, 25, "only the new records are emitted after the restart")
	for _, id := range got {
		require.True(t, strings.HasPrefix(id, "after-restart-"), id)
	}
}

func TestSecretsAndTokensNeverLeak(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 13, TokenTTL: 2 * time.Second, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}}),
		graphsimtest.Tenant(2, map[string]graphsim.DatasetSpec{"signins": {Count: 10, Span: time.Hour}}),
	}})
	// Failures of every kind, whose log lines must stay clean too.
	sim.FailNext(graphsim.Fault{Kind: "status", Status: 503}, graphsim.Fault{Kind: "truncate"})
	cfg := simConfig(sim, 1, 2)
	cfg.PageSize = 50
	cfg.Tenants[1].ClientSecret = "wrong-" + graphsimtest.Secret // tenant 2 fails authentication
	core, logs := observer.New(zapcore.DebugLevel)
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.Logger = zap.New(core)
	sink := new(consumertest.LogsSink)
	r, err := newReceiver(set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return sink.LogRecordCount() >= 300 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(2500 * time.Millisecond) // outlive a token: refreshes happen too
	require.NoError(t, r.Shutdown(context.Background()))
	require.Greater(t, sim.Stats().TokensIssued, int64(1), "a token was refreshed")

	var text strings.Builder
	for _, e := range logs.All() {
		text.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&text, " %s=%v", k, v)
		}
		text.WriteByte('\n')
	}
	for _, l := range sink.AllLogs() {
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(l)
		require.NoError(t, err)
		text.Write(b)
	}
	out := text.String()
	require.Contains(t, out, "AADSTS7000215", "the failed tenant's error was logged")
	require.NotContains(t, out, graphsimtest.Secret)
	// Every access token is a JWT, whose header starts with base64url `{"` = "eyJ".
	require.NotContains(t, out, "eyJ")
}
