package o365receiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// replica is one collector replica: a sql_storage extension on the shared Postgres and an o365 receiver.
type replica struct {
	ext  extension.Extension
	recv *o365Receiver
	sink *consumertest.LogsSink
}

func startReplica(t *testing.T, name, dsn, prefix string, cfg *Config) *replica {
	t.Helper()
	f := sqlstorageextension.NewFactory()
	scfg := f.CreateDefaultConfig().(*sqlstorageextension.Config)
	scfg.Driver, scfg.Path, scfg.DSN, scfg.TablePrefix = "postgres", "", configopaque.String(dsn), prefix
	scfg.Lease.TTL, scfg.Lease.RenewInterval = 1500*time.Millisecond, 300*time.Millisecond
	scfg.ReplicaID = name
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	id := component.MustNewID("sql_storage")
	rcfg := *cfg
	rcfg.Storage = &id
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.ID = component.MustNewID("o365") // the same receiver in every replica: same leases, same checkpoints
	sink := new(consumertest.LogsSink)
	r, err := newReceiver(set, &rcfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), extensionHost{componenttest.NewNopHost(), map[component.ID]component.Component{id: ext}}))
	return &replica{ext: ext, recv: r, sink: sink}
}

func (rp *replica) stop(t *testing.T) {
	require.NoError(t, rp.recv.Shutdown(context.Background()))
	require.NoError(t, rp.ext.Shutdown(context.Background()))
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
