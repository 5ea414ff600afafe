package reliability

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// exportLike is a next consumer that behaves like an exporter sending to a remote backend: the backend
// records the batch whatever happens, and the answer takes `answerIn`; a call whose context ends first
// returns the context's error — the backend has the batch, the caller does not know it. On its
// `shutdownOn`-th batch it starts the receiver's shutdown before answering.
type exportLike struct {
	ledger     *ledger
	answerIn   time.Duration
	shutdownOn int
	shutdown   func()

	mu    sync.Mutex
	calls int
}

func (e *exportLike) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	e.mu.Lock()
	e.calls++
	call := e.calls
	e.mu.Unlock()
	e.ledger.add(0, keysOf(ld)) // the backend has it
	if call == e.shutdownOn {
		go e.shutdown()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(e.answerIn):
		return nil
	}
}

func (*exportLike) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// Regression (found by scenario 4c): a graceful shutdown (SIGTERM, or a configuration reload on SIGHUP)
// that began while a page was being delivered cancelled the delivery — whose page the backend already
// had — and the commit of a page already accepted (sql_storage refuses a cancelled context), so the page
// was emitted again after the restart. The receiver now lets the page in hand finish (delivery and
// commit, within a grace period) and only then stops.
func TestGracefulShutdownFinishesThePageInHand(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 97, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 2000, Span: 6 * time.Hour}}),
	}})
	want := truth("signins", sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor()))
	path := filepath.Join(t.TempDir(), "state.db")
	l := newLedger()
	for _, shutdownOn := range []int{3, 7, 12} {
		ext := startStorage(t, storageConfig(func(c *sqlstorageextension.Config) {
			c.Path = path
			c.Lease.TTL, c.Lease.RenewInterval = 2*time.Second, 500*time.Millisecond
		}))
		cfg := receiverConfig(sim, 1)
		cfg.PageSize = 100
		cfg.Storage = &component.ID{}
		*cfg.Storage = component.MustNewID("sql_storage")
		next := &exportLike{ledger: l, answerIn: 100 * time.Millisecond, shutdownOn: shutdownOn}
		run := startReceiver(t, cfg, next, newHost(map[component.ID]component.Component{component.MustNewID("sql_storage"): ext}))
		stopped := make(chan struct{})
		next.shutdown = func() { run.stop(t); close(stopped) }
		select {
		case <-stopped:
		case <-time.After(time.Minute):
			t.Fatalf("no shutdown during batch %d", shutdownOn)
		}
		require.NoError(t, ext.Shutdown(context.Background()))
	}
	// Last run: to the end, without interruption.
	ext := startStorage(t, storageConfig(func(c *sqlstorageextension.Config) { c.Path = path }))
	cfg := receiverConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Storage = &component.ID{}
	*cfg.Storage = component.MustNewID("sql_storage")
	sink := newConsumerSink()
	sink.ledger = l
	run := startReceiver(t, cfg, sink, newHost(map[component.ID]component.Component{component.MustNewID("sql_storage"): ext}))
	l.waitUnique(t, len(want), time.Minute)
	time.Sleep(500 * time.Millisecond)
	run.stop(t)
	l.exactlyOnce(t, want)
}
