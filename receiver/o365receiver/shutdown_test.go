package o365receiver

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// faultyStorage is a real storage extension (sql_storage on SQLite) whose writes fail while failing is
// set: a disk that is full, a database that is read-only for a while.
type faultyStorage struct {
	extension.Extension
	failing atomic.Bool
}

func (f *faultyStorage) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	c, err := f.Extension.(storage.Extension).GetClient(ctx, kind, id, name)
	return faultyClient{Client: c, failing: &f.failing}, err
}

type faultyClient struct {
	storage.Client
	failing *atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (c faultyClient) Set(ctx context.Context, key string, value []byte) error {
	if c.failing.Load() {
		return errDiskFull
	}
	return c.Client.Set(ctx, key, value)
}

func (c faultyClient) Delete(ctx context.Context, key string) error {
	if c.failing.Load() {
		return errDiskFull
	}
	return c.Client.Delete(ctx, key)
}

func (c faultyClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		if op.Type != storage.Get && c.failing.Load() {
			return errDiskFull
		}
	}
	return c.Client.Batch(ctx, ops...)
}

// stuckConsumer never returns from ConsumeLogs for one dataset, whatever its context says (until the
// test ends); the others pass to the sink.
type stuckConsumer struct {
	sink    *consumertest.LogsSink
	dataset string
	release chan struct{}
	stuck   atomic.Int64
}

func (s *stuckConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *stuckConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if ds, _ := ld.ResourceLogs().At(0).Resource().Attributes().Get("o365.dataset"); ds.Str() == s.dataset {
		s.stuck.Add(1)
		<-s.release
		return nil
	}
	return s.sink.ConsumeLogs(ctx, ld)
}

// TestShutdownBoundedWhenConsumerNeverReturns: one stream's next consumer never returns; another
// stream's page was accepted but its commit failed (storage refused writes). Shutdown returns anyway,
// after one last attempt to commit that page — which storage now takes, so a restart does not collect
// it again.
func TestShutdownBoundedWhenConsumerNeverReturns(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 81, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 250, Span: time.Hour}, "directory_audits": {Count: 20, Span: time.Hour}}),
	}})
	f := sqlstorageextension.NewFactory()
	scfg := f.CreateDefaultConfig().(*sqlstorageextension.Config)
	scfg.Path = filepath.Join(t.TempDir(), "storage.db")
	id := component.MustNewID("sql_storage")
	run := func(next consumer.Logs, failing bool, until func(*o365Receiver) bool) (*o365Receiver, func() error) {
		ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
		fs := &faultyStorage{Extension: ext}
		fs.failing.Store(failing)
		cfg := simConfig(sim, 1)
		cfg.PageSize = 100
		cfg.Storage = &id
		// Sign-ins poll once an hour: only Shutdown can commit their page once storage is back.
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}, PollInterval: time.Hour}, "directory_audits": {}}
		set := receivertest.NewNopSettings(NewFactory().Type())
		set.ID = component.MustNewID("o365")
		r, err := newReceiver(set, cfg, next)
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), extensionHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: fs}}))
		require.Eventually(t, func() bool { return until(r) }, 30*time.Second, 10*time.Millisecond)
		fs.failing.Store(false)
		return r, func() error {
			err := r.Shutdown(context.Background())
			return errors.Join(err, ext.Shutdown(context.Background()))
		}
	}
	stream := func(r *o365Receiver, ds string) StreamStatus {
		tasks, err := r.tasksOf("tenant1", ds)
		require.NoError(t, err)
		return tasks[0].Status()
	}

	next := &stuckConsumer{sink: new(consumertest.LogsSink), dataset: "directory_audits", release: make(chan struct{})}
	t.Cleanup(func() { close(next.release) })
	_, shutdown := run(next, true, func(r *o365Receiver) bool {
		return stream(r, "signins").LastErrorKind == "storage" && next.stuck.Load() == 1
	})
	require.Equal(t, 100, next.sink.LogRecordCount(), "the first sign-in page was accepted, its commit failed")
	done := make(chan error, 1)
	go func() { done <- shutdown() }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second): // a hang guard, not a timing
		t.Fatal("Shutdown did not return while the next consumer blocks")
	}

	// Restarted: the accepted sign-in page was committed at shutdown, and is not collected again.
	sink := new(consumertest.LogsSink)
	_, shutdown = run(sink, false, func(r *o365Receiver) bool {
		return !stream(r, "signins").LastSuccess.IsZero() && !stream(r, "directory_audits").LastSuccess.IsZero()
	})
	require.NoError(t, shutdown())
	require.Equal(t, 150, len(idsByDataset(sink.AllLogs())["signins"]), "the page accepted before the shutdown is not collected again")
	require.Equal(t, 20, len(idsByDataset(sink.AllLogs())["directory_audits"]), "the page the consumer never returned from is collected again")
}

// The last commits at a shutdown share one flushTimeout: a storage that hangs (a Postgres cut off
// without a reset) delays the shutdown by flushTimeout, not by flushTimeout per stream left
// uncommitted — with a thousand streams, over an hour.
func TestShutdownFlushesWithinOneTimeout(t *testing.T) {
	const streams = 3
	runs := map[*task]<-chan struct{}{}
	var flushed atomic.Int32
	for range streams {
		done := make(chan struct{})
		close(done) // the task returned: its commit is flushed
		tk := &task{flush: func(ctx context.Context) error {
			<-ctx.Done() // the storage hangs until the deadline
			flushed.Add(1)
			return nil
		}}
		runs[tk] = done
	}
	began := time.Now()
	require.Empty(t, stopTasks(runs, true))
	took := time.Since(began)
	require.Equal(t, int32(streams), flushed.Load(), "every stream's last commit was attempted")
	require.Less(t, took, 2*flushTimeout, "the attempts share one timeout (one each would take %s)", streams*flushTimeout)
}
