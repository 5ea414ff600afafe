package reliability

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// Scenario 10, Graph shapes the documentation does not rule out. Graph documents `$orderby` on
// sign-ins and audits and newest first as their default; a proxy may strip the option. alerts_v2 may end
// a full page without a nextLink, and after a bulk update more alerts than a page share one
// lastUpdateDateTime. For each shape, two tenants are backfilled (100-record pages, so spans, nextLinks
// and time paging all run) with sql_storage (SQLite), the receiver restarted once when half the records
// arrived; checked: exactly once. Before the order was checked, Graph ignoring `$orderby` lost 90 % of
// the sign-ins and both alert shapes 93 % of the alerts (docs/reliability.md).
func TestGraphShapes(t *testing.T) {
	records := pick(3000, 30000)
	sign := map[string]graphsim.DatasetSpec{
		"signins":          {Count: records, Span: 12 * time.Hour, PerTimestamp: 3},
		"directory_audits": {Count: records / 2, Span: 12 * time.Hour},
	}
	alerts := map[string]graphsim.DatasetSpec{
		"security_alerts": {Count: records, Span: 12 * time.Hour, PerTimestamp: 250, OmitNextLink: true},
	}
	cases := []struct {
		name     string
		mode     graphsim.Config
		datasets map[string]graphsim.DatasetSpec
	}{
		{"$orderby ignored (newest first)", graphsim.Config{IgnoreOrderBy: true}, sign},
		{"pages in no order", graphsim.Config{ShufflePages: true}, sign},
		{"alerts: 250 per instant, no nextLink", graphsim.Config{}, alerts},
		{"alerts: 250 per instant, no nextLink, no order", graphsim.Config{ShufflePages: true}, alerts},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mode := c.mode
			mode.Seed = 101 + uint64(i)
			mode.Tenants = []graphsim.Tenant{graphsimtest.Tenant(1, c.datasets), graphsimtest.Tenant(2, c.datasets)}
			sim := graphsimtest.Start(t, mode)
			var want []string
			for _, n := range []int{1, 2} {
				for ds := range c.datasets {
					want = append(want, truth(ds, sim.IDs(graphsimtest.TenantID(n), ds, sim.Anchor().Add(-13*time.Hour), sim.Anchor()))...)
				}
			}
			cfg := receiverConfig(sim, 1, 2)
			cfg.PageSize = 100
			for i := range cfg.Tenants {
				cfg.Tenants[i].Datasets = map[string]o365receiver.DatasetConfig{}
				enabled := true
				for ds := range c.datasets {
					dc := o365receiver.DatasetConfig{Enabled: &enabled}
					if ds == "signins" {
						dc.Kinds = []string{"interactive"}
					}
					cfg.Tenants[i].Datasets[ds] = dc
				}
			}
			dbPath := filepath.Join(t.TempDir(), "state.db")
			id := component.MustNewID("sql_storage")
			cfg.Storage = &id
			sink := newConsumerSink()
			runOnce := func(until int) {
				ext := startStorage(t, storageConfig(func(s *sqlstorageextension.Config) { s.Path = dbPath }))
				run := startReceiver(t, cfg, sink, newHost(map[component.ID]component.Component{id: ext}))
				sink.ledger.waitUnique(t, until, pick(2*time.Minute, 10*time.Minute))
				if until == len(want) {
					time.Sleep(time.Second) // more polls: nothing else may arrive
				}
				run.stop(t)
				_ = ext.Shutdown(t.Context())
			}
			runOnce(len(want) / 2)
			sink.epoch.Add(1)
			runOnce(len(want))
			res := sink.ledger.exactlyOnce(t, want)
			report(t, row{Scenario: "10 Graph shape: " + c.name, Runs: 2, Lost: res.lost, Duplicated: res.duplicated,
				Note: fmt.Sprintf("%d records, 2 tenants, restarted once; %d Graph requests", len(want), sim.Stats().GraphRequests)})
		})
	}
}
