package o365receiver

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Graph documents $orderby on sign-ins and audits, and newest first as their default order; a proxy
// that strips the option, or an API that does not honour it, must not lose records. Before the order
// was checked, a full first page was split by time at its newest record and its nextLink dropped: with
// newest first, everything older than the first page of each span was lost (100 of 1000).
func TestOrderIsCheckedNotTrusted(t *testing.T) {
	for name, mode := range map[string]graphsim.Config{
		"orderby ignored, newest first": {IgnoreOrderBy: true},
		"pages in no order":             {ShufflePages: true},
	} {
		t.Run(name, func(t *testing.T) {
			mode.Seed = 31
			mode.Tenants = []graphsim.Tenant{graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
				"signins":          {Count: 1000, Span: 6 * time.Hour, PerTimestamp: 3},
				"directory_audits": {Count: 600, Span: 6 * time.Hour},
			})}
			sim := graphsimtest.Start(t, mode)
			cfg := simConfig(sim, 1)
			cfg.PageSize = 100
			sink := new(consumertest.LogsSink)
			startReceiver(t, cfg, sink)
			from, to := sim.Anchor().Add(-7*time.Hour), sim.Anchor()
			requireExactly(t, sink, map[string][]string{
				"signins":          sim.IDs(graphsimtest.TenantID(1), "signins", from, to),
				"directory_audits": sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, to),
			})
		})
	}
}

// alerts_v2 may end a full page without a nextLink, and after a bulk update more alerts than a page
// share one lastUpdateDateTime: paging past the page's time boundary cannot reach the rest of that
// instant. Before, the rest of the instant (and, in no time order, of the span) was lost with a warning.
func TestAlertsSharingOneTimeWithoutNextLink(t *testing.T) {
	for name, shuffle := range map[string]bool{"newest first": false, "pages in no order": true} {
		t.Run(name, func(t *testing.T) {
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 32, ShufflePages: shuffle, Tenants: []graphsim.Tenant{
				graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
					// 250 alerts per update instant, 100 per page, no nextLink ever.
					"security_alerts": {Count: 1500, Span: 3 * time.Hour, PerTimestamp: 250, OmitNextLink: true},
				}),
			}})
			cfg := simConfig(sim, 1)
			cfg.PageSize = 100
			enabled := true
			cfg.Tenants[0].Datasets = map[string]DatasetConfig{"security_alerts": {Enabled: &enabled}}
			sink := new(consumertest.LogsSink)
			startReceiver(t, cfg, sink)
			requireExactly(t, sink, map[string][]string{
				"security_alerts": sim.IDs(graphsimtest.TenantID(1), "security_alerts", sim.Anchor().Add(-4*time.Hour), sim.Anchor()),
			})
		})
	}
}

// Graph may cap pages below $top (the documented maximum) and, for alerts, sometimes end a page without
// a nextLink (elastic/integrations#20234). Together, a capped page without a nextLink looks complete by
// $top; the pages that did carry a nextLink have shown the server's own page size, and a page that holds
// as many must be continued by time.
func TestCappedPagesWithoutNextLinkAreContinued(t *testing.T) {
	for name, shuffle := range map[string]bool{"newest first": false, "pages in no order": true} {
		t.Run(name, func(t *testing.T) {
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 33, PageCap: 100, ShufflePages: shuffle, Tenants: []graphsim.Tenant{
				graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
					"security_alerts": {Count: 1200, Span: 3 * time.Hour, OmitNextLinkEvery: 3},
				}),
			}})
			cfg := simConfig(sim, 1)
			cfg.PageSize = 250 // above the server's cap of 100
			enabled := true
			cfg.Tenants[0].Datasets = map[string]DatasetConfig{"security_alerts": {Enabled: &enabled}}
			sink := new(consumertest.LogsSink)
			startReceiver(t, cfg, sink)
			requireExactly(t, sink, map[string][]string{
				"security_alerts": sim.IDs(graphsimtest.TenantID(1), "security_alerts", sim.Anchor().Add(-4*time.Hour), sim.Anchor()),
			})
		})
	}
}

// queryStarts lists the lower bound of the time filter of every request the simulator served for a
// dataset (a sign-in kind: signins_non_interactive, ...), in order.
func queryStarts(t *testing.T, sim *graphsimtest.Sim, dataset, timeField string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, rec := range sim.Requests() {
		if rec.Dataset != dataset {
			continue
		}
		q, err := url.ParseQuery(rec.Query)
		require.NoError(t, err)
		_, rest, ok := strings.Cut(q.Get("$filter"), timeField+" ge ")
		require.True(t, ok, "request without a lower time bound: %s", rec.Query)
		at, err := time.Parse(time.RFC3339Nano, strings.Fields(rest)[0])
		require.NoError(t, err)
		out = append(out, at)
	}
	return out
}

// A sign-in kind without records never got a watermark, so every poll re-read initial_lookback (24 h
// by default) and spent the tenant's reports budget on it. An empty, complete read moves the position
// to the query's end.
func TestEmptyReadAdvancesThePosition(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 33, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 50, Span: time.Hour}}), // other kinds: empty
	}})
	cfg := simConfig(sim, 1)
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive", "non_interactive"}}}
	startReceiver(t, cfg, new(consumertest.LogsSink))
	require.Eventually(t, func() bool {
		return len(queryStarts(t, sim, "signins_non_interactive", "createdDateTime")) >= 4
	}, 10*time.Second, 20*time.Millisecond)
	starts := queryStarts(t, sim, "signins_non_interactive", "createdDateTime")
	first, last := starts[0], starts[len(starts)-1]
	require.WithinDuration(t, time.Now().Add(-cfg.InitialLookback), first, time.Minute, "the first poll reads initial_lookback")
	require.WithinDuration(t, time.Now().Add(-cfg.Lookback), last, 5*time.Second,
		"later polls read only the lookback before the previous read's end")
	for _, at := range starts {
		require.False(t, at.After(time.Now().Add(-cfg.Lookback)), "the position never passes a query's end")
	}
}

// Raising `lookback` across a restart re-read records whose dedup keys the shorter lookback had pruned,
// and emitted them again (180 of 600 with 10 s → 2 h). The pruned horizon is part of the stored state.
func TestRaisingLookbackAcrossRestartReEmitsNothing(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 34, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 600, Span: time.Hour}}),
	}})
	dir := t.TempDir()
	config := func(lookback time.Duration) *Config {
		cfg := simConfig(sim, 1)
		cfg.PageSize = 100
		cfg.Lookback = lookback
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
		return cfg
	}
	first := new(consumertest.LogsSink)
	runOnStorage(t, dir, config(10*time.Second), first, func(*o365Receiver) bool { return first.LogRecordCount() >= 600 })
	require.Equal(t, 600, first.LogRecordCount())

	second := new(consumertest.LogsSink)
	began := time.Now()
	runOnStorage(t, dir, config(2*time.Hour), second, func(r *o365Receiver) bool {
		st := r.Streams()[0]
		return st.LastSuccess.After(began) && st.LastPollStart.After(st.LastSuccess.Add(-time.Second)) && st.RecordsLastPoll == 0 && st.LastPollEnd.After(began.Add(200*time.Millisecond))
	})
	require.Zero(t, second.LogRecordCount(), "nothing emitted before the restart is emitted again")
}

// How late records arrive is measured (a record new to the stream but older than the position it
// arrived behind), exported as a histogram, kept in the stream's status, and warned about when it comes
// within 20 % of `lookback` — records a little later would vanish without a trace.
func TestLatenessIsMeasuredAndWarned(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 35, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			// Live records, half of which become visible 4.5 s after their own time: 90 % of the lookback.
			"signins": {Count: 100, Span: time.Minute, RatePerSecond: 50, LateFraction: 0.5, LateDelay: 4500 * time.Millisecond},
		}),
	}})
	cfg := simConfig(sim, 1)
	cfg.Lookback = 5 * time.Second
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	core, logs := observer.New(zap.WarnLevel)
	r, tel := startWithTelemetry(t, cfg, new(consumertest.LogsSink), zap.New(core))

	require.Eventually(t, func() bool { return r.Streams()[0].MaxLateness >= 4*time.Second }, 20*time.Second, 20*time.Millisecond)
	st := r.Streams()[0]
	require.Equal(t, 5*time.Second, st.Lookback)
	require.Less(t, st.MaxLateness, 5*time.Second, "a lower bound of the record's delay, never more than it")
	require.Eventually(t, func() bool { return logs.FilterMessageSnippet("nearly as late as `lookback`").Len() > 0 }, 5*time.Second, 20*time.Millisecond)

	hist, err := tel.GetMetric("otelcol_o365_records_lateness")
	require.NoError(t, err)
	points := hist.Data.(metricdata.Histogram[float64]).DataPoints
	require.Len(t, points, 1)
	require.Positive(t, points[0].Count)
	largest, ok := points[0].Max.Value()
	require.True(t, ok)
	require.GreaterOrEqual(t, largest, 4.0)
	require.Less(t, largest, 4.5)
}
