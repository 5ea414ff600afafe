package o365receiver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// streamsOf returns a replica's statuses of one tenant's streams.
func streamsOf(rp *replica, tenant string) []StreamStatus {
	var out []StreamStatus
	for _, st := range rp.recv.Streams() {
		if st.Tenant == tenant {
			out = append(out, st)
		}
	}
	return out
}

// pollingTenant reports whether every stream of the tenant is polled by the replica.
func pollingTenant(rp *replica, tenant string) bool {
	sts := streamsOf(rp, tenant)
	for _, st := range sts {
		if st.State == StateStandby {
			return false
		}
	}
	return len(sts) > 0
}

// TestPausedReplicaDeliversNothingAfterItsDeadline: replica a's lease coordinator hangs (paused, or its
// connection to Postgres hangs) while its streams go on; replica b takes the tenant over once a's lease
// expired. Records that appear after the takeover are delivered by b only: none of a's streams — two
// event streams and a snapshot — hands anything to its consumer once its lease deadline passed.
func TestPausedReplicaDeliversNothingAfterItsDeadline(t *testing.T) {
	dsn := pgtest.DSN(t)
	prefix := pgtest.TablePrefix(t, dsn, "o365pause")
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 71, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins": {Count: 50, Span: time.Hour}, "directory_audits": {Count: 20, Span: time.Hour}, policies: {Count: 5},
		}),
	}})
	cfg := simConfig(sim, 1)
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}, "directory_audits": {}, policies: {}}
	a := startReplica(t, "replica-a", dsn, prefix, cfg)
	defer a.stop(t)
	require.Eventually(t, func() bool { return pollingTenant(a, "tenant1") && a.sink.LogRecordCount() >= 75 }, 30*time.Second, 10*time.Millisecond)
	b := startReplica(t, "replica-b", dsn, prefix, cfg)
	defer b.stop(t)

	a.leases.pause()
	require.Eventually(t, func() bool { return pollingTenant(b, "tenant1") }, 30*time.Second, 10*time.Millisecond, "b takes the tenant over")
	// b holds the lease, so a's deadline has passed. New records for every stream:
	tenant := graphsimtest.TenantID(1)
	injected := time.Now()
	late := map[string]string{"signins": "late-signin", "directory_audits": "late-audit", policies: "11111111-aaaa-4bbb-8ccc-000000000071"}
	require.NoError(t, sim.Inject(tenant, "signins", time.Time{}, map[string]any{"id": late["signins"], "createdDateTime": graphsim.FormatTime(time.Now())}))
	require.NoError(t, sim.Inject(tenant, "directory_audits", time.Time{}, map[string]any{"id": late["directory_audits"], "activityDateTime": graphsim.FormatTime(time.Now())}))
	require.NoError(t, sim.SetItem(tenant, policies, map[string]any{"id": late[policies], "displayName": "Late policy", "state": "enabled"}))

	has := func(sink *consumertest.LogsSink, ds, id string) bool {
		for _, got := range idsByDataset(sink.AllLogs())[ds] {
			if got == id {
				return true
			}
		}
		return false
	}
	// Until b delivered all three and each of a's streams refused a delivery after they appeared — or,
	// the failure, a delivered one of them.
	require.Eventually(t, func() bool {
		for ds, id := range late {
			if has(a.sink, ds, id) {
				return true
			}
			if !has(b.sink, ds, id) {
				return false
			}
		}
		for _, st := range streamsOf(a, "tenant1") {
			if !st.LastPollStart.After(injected) || !strings.Contains(st.LastError, "delivers nothing more") {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond)
	for ds, id := range late {
		require.False(t, has(a.sink, ds, id), "the paused replica delivered %s %s after its lease deadline", ds, id)
	}
}

// TestPausedReplicaStopsMidSnapshot: replica a is paused in the middle of a snapshot — its consumer
// holds the first page while its lease coordinator hangs and replica b takes the tenant over. When a
// wakes up, the page in the consumer's hands is accepted, and the rest of the snapshot is not delivered.
func TestPausedReplicaStopsMidSnapshot(t *testing.T) {
	dsn := pgtest.DSN(t)
	prefix := pgtest.TablePrefix(t, dsn, "o365pausesnap")
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 75, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{policies: {Count: 250}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PollInterval = time.Hour
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{policies: {}}
	held := newGate()
	held.release() // the baseline passes
	a := startReplicaWith(t, "replica-a", dsn, prefix, cfg, replicaOptions{next: held})
	defer a.stop(t)
	require.Eventually(t, func() bool { return held.sink.LogRecordCount() == 250 }, 30*time.Second, 10*time.Millisecond)
	tasks, err := a.recv.tasksOf("tenant1", policies)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !tasks[0].Status().LastSuccess.IsZero() }, 30*time.Second, 10*time.Millisecond)
	b := startReplica(t, "replica-b", dsn, prefix, cfg)
	defer b.stop(t)

	held.arm()
	require.True(t, tasks[0].Trigger()) // the second snapshot: its first page is held
	require.Eventually(t, func() bool { return held.held("tenant1") == 1 }, 30*time.Second, 10*time.Millisecond)
	a.leases.pause()
	require.Eventually(t, func() bool { return pollingTenant(b, "tenant1") }, 30*time.Second, 10*time.Millisecond, "b takes the tenant over")
	woke := time.Now()
	held.release()
	require.Eventually(t, func() bool { return tasks[0].Status().LastPollEnd.After(woke) }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, 350, held.sink.LogRecordCount(), "the baseline, then only the page that was in the consumer's hands")
	require.Contains(t, tasks[0].Status().LastError, "delivers nothing more")
}

// gate is a next consumer that holds every call until released (or the call's context ends), counting
// the calls it holds; once released it passes them to its sink, until armed again.
type gate struct {
	sink    *consumertest.LogsSink
	mu      sync.Mutex
	open    chan struct{}
	waiting map[string]int // calls held, by tenant
}

func newGate() *gate {
	return &gate{sink: new(consumertest.LogsSink), open: make(chan struct{}), waiting: map[string]int{}}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

func (g *gate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *gate) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (g *gate) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	tenant, _ := ld.ResourceLogs().At(0).Resource().Attributes().Get("o365.tenant.name")
	g.mu.Lock()
	g.waiting[tenant.Str()]++
	open := g.open
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting[tenant.Str()]--
		g.mu.Unlock()
	}()
	select {
	case <-open:
		return g.sink.ConsumeLogs(ctx, ld)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) held(tenant string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting[tenant]
}

// TestHandoverKeepsRenewingTheOtherLeases: replica a polls two tenants, each with a page held in a
// slow next consumer, when replica b joins. a hands one tenant over — which waits for the page in hand
// — and keeps renewing the other lease meanwhile: b never gets the tenant a kept, and gets the one it
// gave up only after the page in hand was delivered and committed, so nothing is delivered twice.
func TestHandoverKeepsRenewingTheOtherLeases(t *testing.T) {
	dsn := pgtest.DSN(t)
	prefix := pgtest.TablePrefix(t, dsn, "o365handover")
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 72, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}}),
		graphsimtest.Tenant(2, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}}),
	}})
	cfg := simConfig(sim, 1, 2)
	cfg.PageSize = 100
	for i := range cfg.Tenants {
		cfg.Tenants[i].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	}
	const ttl = 1500 * time.Millisecond
	slow := newGate()
	a := startReplicaWith(t, "replica-a", dsn, prefix, cfg, replicaOptions{next: slow})
	defer a.stop(t)
	require.Eventually(t, func() bool { return slow.held("tenant1") == 1 && slow.held("tenant2") == 1 }, 30*time.Second, 10*time.Millisecond)

	b := startReplica(t, "replica-b", dsn, prefix, cfg)
	defer b.stop(t)
	joined := time.Now()
	// a renews both leases for two TTLs while the handed-over tenant's page is held — unless b gets one.
	require.Eventually(t, func() bool {
		if polling(b) > 0 {
			return true
		}
		for _, n := range []int{1, 2} {
			if a.leases.lastRenewal(graphsimtest.TenantID(n)).Before(joined.Add(2 * ttl)) {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond)
	require.Zero(t, polling(b), "b took a tenant while a still held it")
	given, kept := "tenant1", "tenant2"
	if pollingTenant(a, given) {
		given, kept = kept, given
	}
	require.True(t, pollingTenant(a, kept), "a hands over one tenant and keeps the other")
	require.False(t, pollingTenant(a, given))

	slow.release() // the pages in hand are delivered; the handed-over tenant is released
	require.Eventually(t, func() bool { return pollingTenant(b, given) }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return slow.sink.LogRecordCount()+b.sink.LogRecordCount() >= 600 }, 60*time.Second, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond) // more polls: nothing more may arrive
	require.True(t, pollingTenant(a, kept), "a kept its tenant throughout")
	got := map[string]int{}
	for _, sink := range []*consumertest.LogsSink{slow.sink, b.sink} {
		for _, id := range idsByDataset(sink.AllLogs())["signins"] {
			got[id]++
		}
	}
	require.Equal(t, 600, len(got))
	for id, n := range got {
		require.Equal(t, 1, n, "record %s", id)
	}
	keptIDs := map[string]bool{}
	for _, id := range sim.IDs(graphsimtest.TenantID(map[string]int{"tenant1": 1, "tenant2": 2}[kept]), "signins", sim.Anchor().Add(-2*time.Hour), sim.Anchor()) {
		keptIDs[id] = true
	}
	for _, id := range idsByDataset(b.sink.AllLogs())["signins"] {
		require.False(t, keptIDs[id], "b delivered record %s of the tenant a kept", id)
	}
}

// TestShutdownReleasesLeasesAtOnce: a replica shuts down while its next consumer holds a page until the
// shutdown grace cancels it; its lease (ttl 30 s) is released once that page is settled, so the other
// replica takes the tenant over within seconds, not at the lease's expiry.
func TestShutdownReleasesLeasesAtOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	prefix := pgtest.TablePrefix(t, dsn, "o365release")
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 73, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	const ttl = 30 * time.Second
	slow := newGate()
	a := startReplicaWith(t, "replica-a", dsn, prefix, cfg, replicaOptions{next: slow, ttl: ttl, renew: 300 * time.Millisecond})
	require.Eventually(t, func() bool { return slow.held("tenant1") == 1 }, 30*time.Second, 10*time.Millisecond)
	b := startReplicaWith(t, "replica-b", dsn, prefix, cfg, replicaOptions{ttl: ttl, renew: 300 * time.Millisecond})
	defer b.stop(t)

	a.stop(t)
	stopped := time.Now()
	require.Eventually(t, func() bool { return pollingTenant(b, "tenant1") }, ttl, 10*time.Millisecond)
	require.Less(t, time.Since(stopped), ttl/6, "b took the tenant over long before a's lease would have expired")
	require.Eventually(t, func() bool { return b.sink.LogRecordCount() >= 300 }, 30*time.Second, 10*time.Millisecond)
}
