package o365receiver

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// simConfig is a receiver config that reads every tenant of sim quickly: short poll interval and
// retries, no rate limits unless the test sets them.
func simConfig(sim *graphsimtest.Sim, tenants ...int) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.GraphEndpoint = sim.URL()
	cfg.AuthorityHost = sim.URL() + "/"
	cfg.HTTP.TLS.CAFile = sim.CAFile
	cfg.PollInterval = 100 * time.Millisecond
	cfg.InitialLookback = 48 * time.Hour
	cfg.Lookback = 10 * time.Second
	cfg.RateLimits = nil
	cfg.RetryOnFailure.InitialInterval = 10 * time.Millisecond
	cfg.RetryOnFailure.MaxInterval = 100 * time.Millisecond
	// Tests restart streams inside long intervals and expect them to resume at once (the spread has
	// tests of its own).
	cfg.SpreadFirstPolls = false
	for _, n := range tenants {
		cfg.Tenants = append(cfg.Tenants, TenantConfig{
			Name: graphsimtest.Tenant(n, nil).Name, TenantID: graphsimtest.TenantID(n),
			ClientID: graphsimtest.ClientID, ClientSecret: graphsimtest.Secret,
			Datasets: map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}, "directory_audits": {}},
		})
	}
	return cfg
}

// startReceiver starts a receiver on host and shuts it down at cleanup.
func startReceiver(t *testing.T, cfg *Config, next consumer.Logs) *o365Receiver {
	t.Helper()
	set := receivertest.NewNopSettings(NewFactory().Type())
	set.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

// idsByDataset lists the o365.record.id of every record in the sink, by dataset, in order of arrival.
func idsByDataset(logs []plog.Logs) map[string][]string {
	out := map[string][]string{}
	eachRecord(logs, func(ds string, lr plog.LogRecord) {
		id, _ := lr.Attributes().Get(AttrRecordID)
		out[ds] = append(out[ds], id.Str())
	})
	return out
}

// eachRecord calls f with every record of logs, in order, and its o365.dataset.
func eachRecord(logs []plog.Logs, f func(dataset string, lr plog.LogRecord)) {
	for _, l := range logs {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			ds, _ := rl.Resource().Attributes().Get("o365.dataset")
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					f(ds.Str(), lrs.At(k))
				}
			}
		}
	}
}

// requireExactly waits until sink holds want's ids for each dataset, then checks (after a few more
// polls) that it holds them exactly once and nothing else.
func requireExactly(t *testing.T, sink *consumertest.LogsSink, want map[string][]string) {
	t.Helper()
	total := 0
	for _, ids := range want {
		total += len(ids)
	}
	require.Eventually(t, func() bool { return sink.LogRecordCount() >= total }, 60*time.Second, 20*time.Millisecond,
		"expected %d records", total)
	time.Sleep(500 * time.Millisecond) // several more polls: nothing more may arrive
	got := idsByDataset(sink.AllLogs())
	for ds, ids := range want {
		require.Equal(t, sorted(ids), sorted(got[ds]), "dataset %s: every record exactly once", ds)
	}
	require.Equal(t, total, sink.LogRecordCount(), "no records beyond the expected ones")
}

func sorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

func TestExactlyOnceAcrossPages(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 7, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			// 7 records per timestamp with 100-record pages: ties straddle page boundaries.
			"signins":          {Count: 2503, Span: 6 * time.Hour, PerTimestamp: 7},
			"directory_audits": {Count: 1301, Span: 6 * time.Hour, PerTimestamp: 3},
		}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)
	from, to := sim.Anchor().Add(-7*time.Hour), sim.Anchor()
	requireExactly(t, sink, map[string][]string{
		"signins":          sim.IDs(graphsimtest.TenantID(1), "signins", from, to),
		"directory_audits": sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, to),
	})
}

func TestLateArrivalWithinLookback(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 11, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			// Live records, 30 % of which become visible only 1.5 s after their own time.
			"signins": {Count: 300, Span: time.Minute, RatePerSecond: 200, PerTimestamp: 2, LateFraction: 0.3, LateDelay: 1500 * time.Millisecond},
		}),
	}})
	cfg := simConfig(sim, 1)
	cfg.Lookback = 3 * time.Second
	cfg.PageSize = 50
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	sink := new(consumertest.LogsSink)
	startReceiver(t, cfg, sink)

	time.Sleep(3 * time.Second)
	// Everything stamped up to cutoff is visible by now (late delay 1.5 s) and has been polled since.
	cutoff := time.Now().Add(-2 * time.Second)
	want := sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-time.Hour), cutoff)
	require.Greater(t, len(want), 400, "the live stream produced records")
	require.Eventually(t, func() bool {
		got := map[string]bool{}
		for _, id := range idsByDataset(sink.AllLogs())["signins"] {
			got[id] = true
		}
		for _, id := range want {
			if !got[id] {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "every record up to the cutoff, late ones included, arrives")

	all := idsByDataset(sink.AllLogs())["signins"]
	universe := map[string]bool{}
	for _, id := range sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-time.Hour), time.Now()) {
		universe[id] = true
	}
	seen := map[string]bool{}
	for _, id := range all {
		require.False(t, seen[id], "record %s emitted twice", id)
		seen[id] = true
		require.True(t, universe[id], "record %s is not one the simulator holds", id)
	}
}
