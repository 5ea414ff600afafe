package o365receiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// TestCatchUpConcurrentlyKeepsOrderAndExactness collects ten hours of history from a slow Graph in
// spans fetched concurrently, and checks the stream that comes out: every record once, in time order.
func TestCatchUpConcurrentlyKeepsOrderAndExactness(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 15, Latency: 100 * time.Millisecond, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 2000, Span: 10 * time.Hour, PerTimestamp: 3}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.InitialLookback = 11 * time.Hour
	cfg.MaxConcurrentRequests = 4
	cfg.PollInterval = time.Hour
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)
	requireExactly(t, sink, map[string][]string{
		"signins": sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-11*time.Hour), sim.Anchor()),
	})

	var last time.Time
	for _, l := range sink.AllLogs() {
		lrs := l.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
		for i := 0; i < lrs.Len(); i++ {
			ts := lrs.At(i).Timestamp().AsTime()
			require.False(t, ts.Before(last), "records are emitted in time order across slices")
			last = ts
		}
	}

	// Concurrency: each response takes at least the simulated latency, so one request after another
	// can never arrive closer than that; two arrivals closer together were in flight at once.
	reqs := sim.Requests()
	require.GreaterOrEqual(t, len(reqs), 20)
	overlapped := 0
	for i := 1; i < len(reqs); i++ {
		if reqs[i].At.Sub(reqs[i-1].At) < 100*time.Millisecond {
			overlapped++
		}
	}
	require.Positive(t, overlapped, "spans were fetched concurrently")
}

// TestCatchUpOneRequestAtATime: with a single request in flight, spans fetched ahead never keep the
// head of the window from being fetched (a deadlock once).
func TestCatchUpOneRequestAtATime(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 16, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 3000, Span: 10 * time.Hour}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.InitialLookback = 11 * time.Hour
	cfg.MaxConcurrentRequests = 1
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)
	requireExactly(t, sink, map[string][]string{
		"signins": sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-11*time.Hour), sim.Anchor()),
	})
}

// TestCatchUpSharesTheFanOutAcrossTenants: tenants catching up together want more pages fetched ahead
// than the receiver allows (scheduler.ahead); the polls that get none read one page at a time. Every
// tenant's records still come out exactly once, and every token is given back.
func TestCatchUpSharesTheFanOutAcrossTenants(t *testing.T) {
	const tenants = 8
	var simTenants []graphsim.Tenant
	for n := 1; n <= tenants; n++ {
		simTenants = append(simTenants, graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{"signins": {Count: 1500, Span: 10 * time.Hour}}))
	}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 17, Latency: 20 * time.Millisecond, Tenants: simTenants})
	tenantNumbers := make([]int, 0, tenants)
	for n := 1; n <= tenants; n++ {
		tenantNumbers = append(tenantNumbers, n)
	}
	cfg := simConfig(sim, tenantNumbers...)
	cfg.PageSize = 100
	cfg.InitialLookback = 11 * time.Hour
	cfg.MaxConcurrentRequests = 2 // 8 tokens ahead for the receiver; each poll could use 5
	cfg.PollInterval = time.Hour
	var want []string
	for i := range cfg.Tenants {
		cfg.Tenants[i].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
		want = append(want, sim.IDs(graphsimtest.TenantID(i+1), "signins", sim.Anchor().Add(-11*time.Hour), sim.Anchor())...)
	}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	requireExactly(t, sink, map[string][]string{"signins": want})
	require.Eventually(t, func() bool { return len(r.sched.ahead) == 0 }, 10*time.Second, 10*time.Millisecond,
		"the polls gave back every token of pages fetched ahead")
}
