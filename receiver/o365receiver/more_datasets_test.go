package o365receiver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Security incidents, Intune audit events and risky users against the simulator over TLS: paging,
// versions, and exactly once across a restart on persistent storage.

func TestSecurityIncidentsPerVersionAcrossRestart(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 151, Tenants: []graphsim.Tenant{
		// Full pages without a nextLink, as alerts_v2 does: the receiver pages by time.
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"security_incidents": {Count: 180, Span: 3 * time.Hour, Versions: 3, OmitNextLink: true}}),
	}})
	dir := t.TempDir()
	enabled := true
	run := func(sink *consumertest.LogsSink, until func() bool) {
		cfg := simConfig(sim, 1)
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"security_incidents": {Enabled: &enabled}}
		runOnStorage(t, dir, cfg, sink, func(*o365Receiver) bool { return until() })
	}
	tenant := graphsimtest.TenantID(1)
	want := sim.Keys(tenant, "security_incidents", sim.Anchor().Add(-4*time.Hour), sim.Anchor())
	require.Len(t, want, 180)

	first := new(consumertest.LogsSink)
	run(first, func() bool { return first.LogRecordCount() >= len(want) })
	var got []string
	ids := map[string]int{}
	for _, rec := range records(first) {
		require.Equal(t, "o365.security_incident", rec.eventName)
		got = append(got, rec.id+"@"+stringField(rec.body, "lastUpdateDateTime"))
		ids[rec.id]++
		alerts, ok := rec.body.Get("alerts")
		require.True(t, ok, "%s: the receiver asks for $expand=alerts", rec.id)
		require.Positive(t, alerts.Slice().Len(), rec.id)
	}
	require.Equal(t, sorted(want), sorted(got), "every incident version exactly once")
	require.Len(t, ids, 60, "three versions of each of 60 incidents")
	for _, r := range sim.Requests() {
		if r.Dataset == "security_incidents" && r.Status == 200 {
			require.LessOrEqual(t, r.Records, 50, "the catalog's page size for incidents")
		}
	}

	// While the collector is down an incident gets a new version and a new one appears.
	var existing string
	for id := range ids {
		existing = id
		break
	}
	at := time.Now().Add(-time.Second)
	require.NoError(t, sim.Inject(tenant, "security_incidents", time.Time{},
		map[string]any{"id": existing, "lastUpdateDateTime": graphsim.FormatTime(at), "severity": "high", "status": "active"},
		map[string]any{"id": "9999999", "lastUpdateDateTime": graphsim.FormatTime(at.Add(time.Millisecond)), "severity": "low", "status": "active"}))
	second := new(consumertest.LogsSink)
	run(second, func() bool { return second.LogRecordCount() >= 2 })
	got = nil
	for _, rec := range records(second) {
		got = append(got, rec.id+"@"+stringField(rec.body, "lastUpdateDateTime"))
	}
	require.Equal(t, sorted([]string{existing + "@" + graphsim.FormatTime(at), "9999999@" + graphsim.FormatTime(at.Add(time.Millisecond))}), sorted(got),
		"only the new versions after the restart")
}

func TestIntuneAuditEventsExactlyOnceAcrossRestart(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 152, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"intune_audit_events": {Count: 430, Span: 3 * time.Hour}}),
	}})
	dir := t.TempDir()
	enabled := true
	run := func(sink *consumertest.LogsSink, until func() bool) {
		cfg := simConfig(sim, 1)
		cfg.PageSize = 100
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"intune_audit_events": {Enabled: &enabled}}
		runOnStorage(t, dir, cfg, sink, func(*o365Receiver) bool { return until() })
	}
	tenant := graphsimtest.TenantID(1)
	want := sim.IDs(tenant, "intune_audit_events", sim.Anchor().Add(-4*time.Hour), sim.Anchor())
	require.Len(t, want, 430)

	first := new(consumertest.LogsSink)
	run(first, func() bool { return first.LogRecordCount() >= len(want) })
	require.Equal(t, sorted(want), sorted(idsByDataset(first.AllLogs())["intune_audit_events"]))
	pages := 0
	for _, r := range sim.Requests() {
		if r.Dataset == "intune_audit_events" && r.Records > 0 {
			pages++
			require.NotContains(t, r.Query, "orderby", "Graph documents no $orderby for auditEvents")
		}
	}
	require.GreaterOrEqual(t, pages, 5, "430 events in pages of 100")

	var injected []map[string]any
	for i := range 7 {
		injected = append(injected, map[string]any{"id": fmt.Sprintf("intune-after-restart-%d", i),
			"activityDateTime": graphsim.FormatTime(time.Now().Add(-time.Duration(i) * time.Millisecond)), "category": "Device"})
	}
	require.NoError(t, sim.Inject(tenant, "intune_audit_events", time.Time{}, injected...))
	second := new(consumertest.LogsSink)
	run(second, func() bool { return second.LogRecordCount() >= 7 })
	got := idsByDataset(second.AllLogs())["intune_audit_events"]
	require.Len(t, got, 7, "only the new events after the restart")
	for _, id := range got {
		require.True(t, strings.HasPrefix(id, "intune-after-restart-"), id)
	}
}

// TestRiskyUsersChangeRecords: a risk level or state change is `modified`, a user no longer listed is
// `removed`, a newly flagged one `added` — also when the collector restarts between the snapshots.
func TestRiskyUsersChangeRecords(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 153, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"risky_users": {Count: 12}}),
	}})
	dir := t.TempDir()
	tenant := graphsimtest.TenantID(1)
	items := sim.Items(tenant, "risky_users")
	require.Len(t, items, 12)
	run := func(sink *consumertest.LogsSink, want int) {
		cfg := simConfig(sim, 1)
		enabled := true
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"risky_users": {Enabled: &enabled}}
		runOnStorage(t, dir, cfg, sink, func(*o365Receiver) bool { return sink.LogRecordCount() >= want })
	}
	first := new(consumertest.LogsSink)
	run(first, len(items))
	bodies := map[string]map[string]any{}
	// runOnStorage polls a few more times: later snapshots of the same run are unchanged.
	for _, rec := range records(first) {
		require.Equal(t, "o365.risky_user", rec.eventName)
		if _, seen := bodies[rec.id]; !seen {
			require.Equal(t, ChangeBaseline, rec.change)
			bodies[rec.id] = rec.body.AsRaw()
		} else {
			require.Equal(t, ChangeUnchanged, rec.change)
		}
	}
	require.Len(t, bodies, 12)

	// Between the runs: one user's risk rises to high (nothing else changes), one at risk is dismissed,
	// one disappears, one is newly flagged.
	var rises, dismissed, removed string
	for _, id := range items {
		switch b := bodies[id]; {
		case rises == "" && b["riskLevel"] != "high":
			rises = id
		case dismissed == "" && b["riskState"] == "atRisk":
			dismissed = id
		case removed == "":
			removed = id
		}
	}
	require.NotEmpty(t, rises)
	require.NotEmpty(t, dismissed)
	require.NotEmpty(t, removed)
	bodies[rises]["riskLevel"] = "high"
	require.NoError(t, sim.SetItem(tenant, "risky_users", bodies[rises]))
	bodies[dismissed]["riskState"] = "dismissed"
	require.NoError(t, sim.SetItem(tenant, "risky_users", bodies[dismissed]))
	require.NoError(t, sim.RemoveItem(tenant, "risky_users", removed))
	added := map[string]any{"id": "11111111-aaaa-4bbb-8ccc-00000000a11e", "riskLevel": "medium", "riskState": "atRisk",
		"riskDetail": "none", "userPrincipalName": "new.risk@tenant1.onmicrosoft.com", "riskLastUpdatedDateTime": graphsim.FormatTime(time.Now())}
	require.NoError(t, sim.SetItem(tenant, "risky_users", added))

	second := new(consumertest.LogsSink)
	run(second, len(items)+1)
	changes := map[string]string{}
	for _, rec := range records(second) {
		if _, seen := changes[rec.id]; !seen { // the first snapshot after the restart
			changes[rec.id] = rec.change
		}
	}
	require.Equal(t, ChangeModified, changes[rises], "a risk level change is a modification")
	require.Equal(t, ChangeModified, changes[dismissed], "a risk state change is a modification")
	require.Equal(t, ChangeRemoved, changes[removed])
	require.Equal(t, ChangeAdded, changes[added["id"].(string)])
	for _, id := range items {
		if id != rises && id != dismissed && id != removed {
			require.Equal(t, ChangeUnchanged, changes[id], id)
		}
	}
	require.Len(t, changes, len(items)+1)
}
