package reliability

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// Two otelcol-o365 processes share Postgres (sql_storage leases) and the simulator's 10 tenants, each
// sending to the OTLP sink with its replica number as the x-epoch header. While both run, every tenant
// is polled by one replica at a time; then one replica is killed with SIGKILL, and the other takes its
// tenants over once their leases expire (ttl 3 s). The simulator enforces the reports family's limits,
// 4 requests / s per tenant and 20 / s for the app across tenants: ten tenants could send 40 / s, so the
// app's window binds, and each replica may use only its share of it (by the tenants it holds) for the
// two together to get no 429. Checked: no 429; no id lost; before the kill a tenant's
// records come from one replica, or from one and then the other (a handover as the two settle); the
// survivor delivered records of the killed replica's tenants; and,
// deduplicated by id, the sink holds exactly the ground truth — the only repeats allowed are the pages
// the killed replica had handed over but not committed (at most one page per tenant it held).
func TestReplicasTakeOverAfterKill(t *testing.T) {
	dsn := pgtest.DSN(t)
	const tenants, perTenant, pageSize = 10, 3000, 100
	var specs []graphsim.Tenant
	for n := 1; n <= tenants; n++ {
		specs = append(specs, graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{"signins": {Count: perTenant, Span: 6 * time.Hour}}))
	}
	limits := graphsim.Limit{TenantRequests: 4, AppRequests: 20, Window: time.Second}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 95, Tenants: specs,
		RateLimits: graphsim.RateLimits{Enforce: true, Families: map[string]graphsim.Limit{"reports": limits}}})
	tenantOf := map[string]int{} // ground-truth key → tenant
	var want []string
	var tenantYAML strings.Builder
	for n := 1; n <= tenants; n++ {
		for _, key := range truth("signins", sim.IDs(graphsimtest.TenantID(n), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor())) {
			tenantOf[key] = n
			want = append(want, key)
		}
		fmt.Fprintf(&tenantYAML, `
      - name: tenant%d
        tenant_id: %s
        client_id: %s
        client_secret: ${env:RELIABILITY_SECRET}
        datasets: { signins: { kinds: [interactive] } }`, n, graphsimtest.TenantID(n), graphsimtest.ClientID)
	}
	require.Len(t, want, tenants*perTenant)

	sink := startOTLPSink(t)
	prefix := pgtest.TablePrefix(t, dsn, "replicas")
	dir := t.TempDir()
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}
	start := func(replica int) *proctest.Proc {
		// Paced by the limits (20 requests / s for the app), so that the run lasts long enough to kill a
		// replica mid-way.
		cfg := fmt.Sprintf(`
extensions:
  sql_storage:
    driver: postgres
    dsn: "%[1]s"
    table_prefix: %[2]s
    replica_id: replica-%[3]d
    lease: { ttl: 3s, renew_interval: 1s }
receivers:
  o365:
    storage: sql_storage
    poll_interval: 1s
    initial_lookback: 7h
    page_size: %[8]d
    graph_endpoint: %[4]s
    authority_host: %[4]s/
    rate_limits:
      reports: { tenant_requests: %[9]d, app_requests: %[10]d, window: 1s }
    http:
      tls:
        ca_file: %[5]s
    tenants:%[6]s
%[7]s`, dsn, prefix, replica, sim.URL(), sim.CAFile, tenantYAML.String(), sinkPipelineYAML(sink.addr, replica, ""), pageSize,
			limits.TenantRequests, limits.AppRequests)
		return proctest.StartCollector(t, env, "--config", proctest.WriteFile(t, filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", replica)), cfg))
	}
	a, b := start(0), start(1)

	// Both replicas deliver; kill replica 0 once the sink holds a third of the records.
	deadline := time.Now().Add(3 * time.Minute)
	for sink.ledger.unique() < len(want)/3 {
		require.True(t, a.Running() && b.Running(), "a replica exited")
		require.True(t, time.Now().Before(deadline), "no progress: %d of %d records", sink.ledger.unique(), len(want))
		time.Sleep(5 * time.Millisecond)
	}
	a.Kill(t)
	sink.ledger.mu.Lock()
	beforeKill := len(sink.ledger.batches)
	sink.ledger.mu.Unlock()

	sink.ledger.waitUnique(t, len(want), 3*time.Minute)
	time.Sleep(3 * time.Second) // more polls: nothing else may arrive
	b.Stop(t)

	// Who polled which tenant, before and after the kill. While the two replicas settle (the second
	// joins a moment after the first took every lease), a tenant may be handed over once — after its
	// commit, so without repeats — but never polled by both in turn.
	sink.ledger.mu.Lock()
	owner := map[int]int{}     // tenant → the replica that delivered it last before the kill
	handovers := map[int]int{} // tenant → owner changes before the kill
	tookOver := map[int]bool{} // tenants replica 1 delivered after the kill
	for i, bt := range sink.ledger.batches {
		if len(bt.keys) == 0 {
			continue
		}
		n := tenantOf[bt.keys[0]] // a batch is one page of one tenant
		switch prev, seen := owner[n]; {
		case i >= beforeKill:
			tookOver[n] = tookOver[n] || bt.epoch == 1
		case seen && prev != bt.epoch:
			handovers[n]++
			owner[n] = bt.epoch
		default:
			owner[n] = bt.epoch
		}
	}
	sink.ledger.mu.Unlock()
	killedTenants := 0
	for n := 1; n <= tenants; n++ {
		assert.LessOrEqual(t, handovers[n], 1, "tenant%d was polled by one replica at a time before the kill", n)
		if owner[n] == 0 {
			killedTenants++
			assert.True(t, tookOver[n], "replica 1 took over tenant%d of the killed replica", n)
		}
	}
	assert.Positive(t, killedTenants, "the killed replica held tenants")
	assert.Less(t, killedTenants, tenants, "the tenants were split between the replicas")

	res := sink.ledger.compare(want)
	assert.Zero(t, res.lost, "ids never delivered, e.g. %v", res.lostSample)
	assert.Zero(t, res.unknown, "records the simulator does not hold")
	assert.Equal(t, len(want), sink.ledger.unique(), "deduplicated by o365.record.id, exactly the ground truth")
	assert.LessOrEqual(t, res.duplicated, killedTenants*pageSize, "repeats only of pages in flight at the kill")
	st := sim.Stats()
	assert.Zero(t, st.Throttled, "the two replicas together stay within the app's window")
	report(t, row{Scenario: "1b replicas: kill -9 one of two (Postgres, 10 tenants)", Runs: 2, Lost: res.lost, Duplicated: res.duplicated,
		Violations: int(st.Throttled),
		Note: fmt.Sprintf("%d records; the killed replica held %d tenants, all taken over; repeats <= %d; %d Graph requests at <= %d / s for the app, %d answered 429",
			len(want), killedTenants, killedTenants*pageSize, st.GraphRequests, limits.AppRequests, st.Throttled)})
}
