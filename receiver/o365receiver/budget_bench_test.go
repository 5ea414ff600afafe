package o365receiver

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// BenchmarkBudgetUse measures how much of Graph's request budget the receiver uses while it catches
// up, against a simulator that enforces the documented limit for sign-ins (5 requests per 10 s per
// app per tenant) and answers each page after a latency. The ceiling is 0.5 requests/s = 500 records/s
// per tenant; `budget_%` is the share of it Graph served (records on the pages served per second, over
// whole budget cycles, against full pages at the documented rate), `records/s` what the consumer
// received in the window, `throttled` the 429s provoked (must be 0). Each case runs O365_BENCH_SECONDS (default 60) after a warm-up; `-benchtime 1x`.
func BenchmarkBudgetUse(b *testing.B) {
	measure := 60 * time.Second
	if v, err := strconv.Atoi(os.Getenv("O365_BENCH_SECONDS")); err == nil {
		measure = time.Duration(v) * time.Second
	}
	cases := []struct {
		name        string
		latency     time.Duration
		concurrency int
		tenants     int
		appRequests int // per 10 s across the tenants; 0 = Graph's 122
	}{
		{"latency=100ms", 100 * time.Millisecond, 6, 1, 0},
		{"latency=2s", 2 * time.Second, 6, 1, 0},
		{"latency=8s", 8 * time.Second, 6, 1, 0},
		{"latency=8s/sequential", 8 * time.Second, 1, 1, 0},
		// Five tenants on one app registration whose app-wide budget (scaled down to 12 per 10 s so it
		// binds below 5 × 5) is the ceiling.
		{"tenants=5/app_budget=12", 100 * time.Millisecond, 6, 5, 12},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				res := runBudget(b, c.latency, c.concurrency, c.tenants, c.appRequests, measure)
				b.ReportMetric(res.budgetShare*100, "budget_%")
				b.ReportMetric(res.recordsPerSecond, "records/s")
				b.ReportMetric(float64(res.throttled), "throttled")
				if res.throttled > 0 || res.violations > 0 {
					b.Errorf("the receiver provoked %d 429s and %d Retry-After violations", res.throttled, res.violations)
				}
			}
		})
	}
}

type budgetResult struct {
	budgetShare, recordsPerSecond float64
	throttled, violations         int64
}

// countingSink counts records and drops them.
type countingSink struct{ n atomic.Int64 }

func (c *countingSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (c *countingSink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	c.n.Add(int64(ld.LogRecordCount()))
	return nil
}

func runBudget(b *testing.B, latency time.Duration, concurrency, tenants, appRequests int, measure time.Duration) budgetResult {
	const window, perTenant = 10 * time.Second, 5
	app := 122
	if appRequests > 0 {
		app = appRequests
	}
	var specs []graphsim.Tenant
	var ids []int
	for n := 1; n <= tenants; n++ {
		specs = append(specs, graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{"signins": {Count: 1_000_000, Span: 24 * time.Hour}}))
		ids = append(ids, n)
	}
	sim := graphsimtest.Start(b, graphsim.Config{Seed: 61, Latency: latency, Tenants: specs,
		RateLimits: graphsim.RateLimits{Enforce: true, Families: map[string]graphsim.Limit{
			"reports": {TenantRequests: perTenant, AppRequests: app, Window: window},
		}}})
	cfg := simConfig(sim, ids...)
	cfg.PollInterval = time.Hour
	cfg.InitialLookback = 25 * time.Hour
	cfg.MaxConcurrentRequests = concurrency
	cfg.RateLimits = map[string]RateLimit{catalog.FamilyReports: {TenantRequests: perTenant, AppRequests: app, Window: window}}
	cfg.HTTP.Timeout = 2 * time.Minute
	for i := range cfg.Tenants {
		cfg.Tenants[i].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	}
	sink := &countingSink{}
	r, err := newReceiver(receivertest.NewNopSettings(NewFactory().Type()), cfg, sink)
	require.NoError(b, err)
	require.NoError(b, r.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(b, r.Shutdown(context.Background())) }()

	warmup := 2*window + 2*latency // budget windows filled and the first spans split
	time.Sleep(warmup)
	start, startRecords := time.Now(), sink.n.Load()
	time.Sleep(measure)
	end, endRecords := time.Now(), sink.n.Load()

	// The budget used is measured where Graph sees it: records on the pages served, per second, over
	// whole budget cycles. A sliding-window budget of P requests per window is spent in cycles — request
	// i+P goes out one window (plus the margin) after request i — so the rate is measured from a request
	// to the one a whole number of cycles later, not over a fixed span whose phase would count a burst
	// more or less.
	var served []graphsim.RequestRecord
	for _, req := range sim.Requests() {
		if req.Status == http.StatusOK && !req.At.Before(start) && req.At.Before(end) {
			served = append(served, req)
		}
	}
	perWindow := perTenant * tenants
	if appRequests > 0 {
		perWindow = app
	}
	step := perWindow
	if (len(served)-1)/step < 3 { // not budget-bound (one request at a time): evenly spaced requests
		step = 1
	}
	cycles := (len(served) - 1) / step
	require.GreaterOrEqual(b, cycles, 3, "enough requests in the measured window")
	last := cycles * step
	records := 0
	for _, req := range served[:last] {
		records += req.Records
	}
	span := served[last].At.Sub(served[0].At)
	ceiling := float64(perWindow) / window.Seconds() * float64(cfg.PageSize) // records/s: full pages, full budget
	st := sim.Stats()
	return budgetResult{
		budgetShare:      float64(records) / span.Seconds() / ceiling,
		recordsPerSecond: float64(endRecords-startRecords) / end.Sub(start).Seconds(),
		throttled:        st.Throttled,
		violations:       st.Violations,
	}
}
