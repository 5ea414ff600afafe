package o365receiver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// replica is one collector replica: a sql_storage extension on the shared Postgres and an o365 receiver.
type replica struct {
	ext    extension.Extension
	leases *pausableLeases
	recv   *o365Receiver
	sink   *consumertest.LogsSink
}

// replicaOptions vary a replica: its next consumer (default: its sink) and lease timing (default ttl
// 1.5 s, renewed every 300 ms).
type replicaOptions struct {
	next       consumer.Logs
	ttl, renew time.Duration
}

func startReplica(t *testing.T, name, dsn, prefix string, cfg *Config) *replica {
	return startReplicaWith(t, name, dsn, prefix, cfg, replicaOptions{})
}

func startReplicaWith(t *testing.T, name, dsn, prefix string, cfg *Config, opt replicaOptions) *replica {
	t.Helper()
	f := sqlstorageextension.NewFactory()
	scfg := f.CreateDefaultConfig().(*sqlstorageextension.Config)
	scfg.Driver, scfg.Path, scfg.DSN, scfg.TablePrefix = "postgres", "", configopaque.String(dsn), prefix
	scfg.Lease.TTL, scfg.Lease.RenewInterval = 1500*time.Millisecond, 300*time.Millisecond
	if opt.ttl > 0 {
		scfg.Lease.TTL, scfg.Lease.RenewInterval = opt.ttl, opt.renew
	}
	scfg.ReplicaID = name
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	leases := &pausableLeases{leasingStorage: ext.(leasingStorage)}
	id := component.MustNewID("sql_storage")
	rcfg := *cfg
	rcfg.Storage = &id
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.ID = component.MustNewID("o365") // the same receiver in every replica: same leases, same checkpoints
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).With(zap.String("replica", name))
	sink := new(consumertest.LogsSink)
	next := opt.next
	if next == nil {
		next = sink
	}
	r, err := newReceiver(set, &rcfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), extensionHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: leases}}))
	return &replica{ext: ext, leases: leases, recv: r, sink: sink}
}

func (rp *replica) stop(t *testing.T) {
	rp.leases.resume()
	require.NoError(t, rp.recv.Shutdown(context.Background()))
	require.NoError(t, rp.ext.Shutdown(context.Background()))
}

// leasingStorage is what sql_storage offers: a storage extension with leases.
type leasingStorage interface {
	extension.Extension
	storage.Extension
	leasing.Provider
}

// pausableLeases is a replica's sql_storage whose lease calls can be paused: while paused, TryAcquire
// and Holders hang until resumed (or their context ends) — the replica's coordinator is stopped, or its
// connection to Postgres hangs — while the tasks and their fenced writes go on. It also records the
// tenant leases acquired or renewed.
type pausableLeases struct {
	leasingStorage

	mu       sync.Mutex
	paused   chan struct{} // closed on resume; nil when not paused
	renewals map[string][]time.Time
}

func (p *pausableLeases) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
}

func (p *pausableLeases) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

func (p *pausableLeases) wait(ctx context.Context) error {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if paused == nil {
		return nil
	}
	select {
	case <-paused:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pausableLeases) TryAcquire(ctx context.Context, resource string) (leasing.Lease, bool, error) {
	if err := p.wait(ctx); err != nil {
		return leasing.Lease{}, false, err
	}
	l, ok, err := p.leasingStorage.TryAcquire(ctx, resource)
	if ok && err == nil && strings.Contains(resource, "/tenant/") {
		p.mu.Lock()
		if p.renewals == nil {
			p.renewals = map[string][]time.Time{}
		}
		p.renewals[resource] = append(p.renewals[resource], time.Now())
		p.mu.Unlock()
	}
	return l, ok, err
}

func (p *pausableLeases) Holders(ctx context.Context, prefix string) ([]leasing.Lease, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	return p.leasingStorage.Holders(ctx, prefix)
}

// lastRenewal is when the lease on a tenant was last acquired or renewed by this replica.
func (p *pausableLeases) lastRenewal(tenantID string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	for res, at := range p.renewals {
		if strings.HasSuffix(res, "/tenant/"+tenantID) {
			return at[len(at)-1]
		}
	}
	return time.Time{}
}

// TestReplicasSplitTenantsAndTakeOver runs two replicas sharing Postgres for six tenants: each tenant
// is polled by one replica, every record is emitted exactly once across both, and when one replica
// stops, the other takes its tenants over from their committed positions.
func TestReplicasSplitTenantsAndTakeOver(t *testing.T) {
	dsn := pgtest.DSN(t)
	prefix := pgtest.TablePrefix(t, dsn, "o365rcv")

	const tenants = 6
	var specs []graphsim.Tenant
	ids := []int{}
	for n := 1; n <= tenants; n++ {
		specs = append(specs, graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}}))
		ids = append(ids, n)
	}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 31, Tenants: specs})
	cfg := simConfig(sim, ids...)
	cfg.PageSize = 100
	for i := range cfg.Tenants {
		cfg.Tenants[i].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	}

	a := startReplica(t, "replica-a", dsn, prefix, cfg)
	b := startReplica(t, "replica-b", dsn, prefix, cfg)
	want := map[string]bool{}
	for n := 1; n <= tenants; n++ {
		for _, id := range sim.IDs(graphsimtest.TenantID(n), "signins", sim.Anchor().Add(-2*time.Hour), sim.Anchor()) {
			want[id] = true
		}
	}
	require.Eventually(t, func() bool { return a.sink.LogRecordCount()+b.sink.LogRecordCount() >= len(want) }, 60*time.Second, 20*time.Millisecond)
	// The replicas settle on a split: three tenants each, none polled by both.
	require.Eventually(t, func() bool { return polling(a) == 3 && polling(b) == 3 }, 30*time.Second, 50*time.Millisecond,
		"a=%d b=%d", polling(a), polling(b))

	// Replica a goes away; records arriving afterwards for its tenants are collected by b.
	a.stop(t)
	var late []map[string]any
	for n := 1; n <= tenants; n++ {
		id := "late-" + graphsimtest.TenantID(n)
		want[id] = true
		late = append(late, map[string]any{"id": id, "createdDateTime": graphsim.FormatTime(time.Now())})
		require.NoError(t, sim.Inject(graphsimtest.TenantID(n), "signins", time.Time{}, late[len(late)-1]))
	}
	require.Eventually(t, func() bool { return a.sink.LogRecordCount()+b.sink.LogRecordCount() >= len(want) }, 60*time.Second, 20*time.Millisecond)
	time.Sleep(time.Second)
	b.stop(t)

	got := map[string]int{}
	for _, sink := range []*consumertest.LogsSink{a.sink, b.sink} {
		for _, id := range idsByDataset(sink.AllLogs())["signins"] {
			got[id]++
		}
	}
	for id := range want {
		require.Equal(t, 1, got[id], "record %s", id)
	}
	require.Len(t, got, len(want), "nothing beyond the expected records")
}

// polling counts the tenants a replica is polling (not on standby).
func polling(rp *replica) int {
	n := 0
	for _, st := range rp.recv.Streams() {
		if st.State != StateStandby {
			n++
		}
	}
	return n
}
