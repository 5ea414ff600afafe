package o365receiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

func TestRetryAfterIsHonoured(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 8, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins": {Count: 400, Span: time.Hour}, "directory_audits": {Count: 400, Span: time.Hour},
		}),
	}})
	// The first sign-in request is throttled for 2 s.
	sim.FailNext(graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second, Path: "signIns"})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)
	from := sim.Anchor().Add(-2 * time.Hour)
	requireExactly(t, sink, map[string][]string{
		"signins":          sim.IDs(graphsimtest.TenantID(1), "signins", from, sim.Anchor()),
		"directory_audits": sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, sim.Anchor()),
	})

	var throttledAt time.Time
	for _, r := range sim.Requests() {
		if r.Status == http.StatusTooManyRequests {
			throttledAt = r.At
			continue
		}
		if throttledAt.IsZero() || r.TenantID != graphsimtest.TenantID(1) {
			continue
		}
		// Both datasets belong to the throttled family, so no request of the tenant may follow early.
		// Requests of the other dataset or of other catch-up slices may have been in flight when the
		// 429 arrived; one that reached the simulator well after it was sent after the receiver knew.
		if r.At.Sub(throttledAt) > 100*time.Millisecond {
			require.GreaterOrEqual(t, r.At.Sub(throttledAt), 2*time.Second, "request %s came before Retry-After elapsed", r.Path)
		}
	}
	require.False(t, throttledAt.IsZero(), "the simulator throttled a request")
}

func TestTransientFaultsAreRetried(t *testing.T) {
	for _, f := range []graphsim.Fault{
		{Kind: "truncate"},
		{Kind: "reset"},
		{Kind: "status", Status: http.StatusServiceUnavailable},
		{Kind: "status", Status: http.StatusServiceUnavailable, RetryAfter: 500 * time.Millisecond},
		{Kind: "status", Status: http.StatusInternalServerError},
		{Kind: "status", Status: http.StatusGatewayTimeout},
	} {
		t.Run(f.Kind+http.StatusText(f.Status), func(t *testing.T) {
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 9, Tenants: []graphsim.Tenant{
				graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 350, Span: time.Hour}}),
			}})
			// Two faults in a row: the first request and its first retry.
			sim.FailNext(f, graphsim.Fault{Kind: f.Kind, Status: f.Status, RetryAfter: f.RetryAfter})
			cfg := simConfig(sim, 1)
			cfg.PageSize = 100
			cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
			sink := new(consumertest.LogsSink)
			startReceiver(t, cfg, sink)
			requireExactly(t, sink, map[string][]string{
				"signins": sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-2*time.Hour), sim.Anchor()),
			})
			require.Equal(t, int64(2), sim.Stats().Faults)
		})
	}
}

func TestRequestRateStaysWithinBudget(t *testing.T) {
	// A scaled-down copy of Graph's 5 requests / 10 s: 5 requests / 1 s, enforced by the simulator.
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 10,
		RateLimits: graphsim.RateLimits{Enforce: true, Families: map[string]graphsim.Limit{
			"reports": {TenantRequests: 5, AppRequests: 8, Window: time.Second},
		}},
		Tenants: []graphsim.Tenant{
			graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 1200, Span: time.Hour}, "directory_audits": {Count: 600, Span: time.Hour}}),
			graphsimtest.Tenant(2, map[string]graphsim.DatasetSpec{"signins": {Count: 600, Span: time.Hour}}),
		},
	})
	cfg := simConfig(sim, 1, 2)
	cfg.PageSize = 100
	cfg.RateLimits = map[string]RateLimit{catalog.FamilyReports: {TenantRequests: 5, AppRequests: 8, Window: time.Second}}
	// The default margin: a loaded machine (a whole `make test` on 2 cores) delays requests between the
	// budget's admission and the simulator's count by more than a few tens of milliseconds.
	cfg.RateLimitMargin = 250 * time.Millisecond
	cfg.PollInterval = time.Hour // one pass
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)
	from := sim.Anchor().Add(-2 * time.Hour)
	want := map[string][]string{
		"signins": append(sim.IDs(graphsimtest.TenantID(1), "signins", from, sim.Anchor()),
			sim.IDs(graphsimtest.TenantID(2), "signins", from, sim.Anchor())...),
		"directory_audits": sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, sim.Anchor()),
	}
	requireExactly(t, sink, want)
	st := sim.Stats()
	require.Zero(t, st.Throttled, "the receiver never exceeded the enforced budget")
	require.Zero(t, st.Violations)
	require.GreaterOrEqual(t, st.GraphRequests, int64(25), "enough requests to have tested the budget")
}

// Regression (found by the reliability suite's nextLink-loop scenario under load): a page served again
// through a nextLink after the watermark moved past it held records at its start boundary whose dedup
// keys had already been pruned with an older page's chunk, and those records were emitted twice.
// Records older than the dedup horizon (position − lookback) are never emitted; they are counted apart
// from duplicates (otelcol_o365_records_beyond_horizon).
func TestPageServedAgainAfterPruneIsNotReEmitted(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 94, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 1200, Span: 6 * time.Hour, PerTimestamp: 2}}),
	}})
	// With one request at a time: the first (full) page is split by time and its nextLink ignored; the
	// next pages come back not quite full with a nextLink to themselves, which the receiver follows —
	// after it emitted them and moved the watermark on.
	loop := graphsim.Fault{Kind: "next_loop"}
	sim.FailNext(loop, loop, loop, loop)
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Lookback = time.Second
	cfg.MaxConcurrentRequests = 1
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	sink := new(consumertest.LogsSink)
	r, tel := startWithTelemetry(t, cfg, sink, nil)
	requireExactly(t, sink, map[string][]string{
		"signins": sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor()),
	})
	require.Equal(t, int64(4), sim.Stats().Faults)
	require.NoError(t, r.Shutdown(context.Background()))
	beyond, err := tel.GetMetric("otelcol_o365_records_beyond_horizon")
	require.NoError(t, err)
	points := beyond.Data.(metricdata.Sum[int64]).DataPoints
	require.Len(t, points, 1)
	require.Positive(t, points[0].Value, "the loop served records from before the horizon")
}
