package o365receiver

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// record is one emitted log record, flattened for assertions.
type record struct {
	dataset, kind, id, change, eventName string
	body                                 pcommon.Map
}

func records(sink *consumertest.LogsSink) []record {
	var out []record
	for _, l := range sink.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			ds, _ := rl.Resource().Attributes().Get("o365.dataset")
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					out = append(out, record{dataset: ds.Str(), kind: attr(lr, AttrRecordKind), id: attr(lr, AttrRecordID),
						change: attr(lr, AttrChange), eventName: lr.EventName(), body: lr.Body().Map()})
				}
			}
		}
	}
	return out
}

func attr(lr plog.LogRecord, key string) string {
	v, _ := lr.Attributes().Get(key)
	return v.Str()
}

// TestEveryDataset collects every dataset of a tenant and compares each with the simulator's ground
// truth: event streams exactly once (alerts once per version), snapshots whole with a baseline — with
// nextLinks as Graph writes them (absolute) and as OData also allows (relative).
func TestEveryDataset(t *testing.T) {
	for name, relative := range map[string]bool{"absolute nextLinks": false, "relative nextLinks": true} {
		t.Run(name, func(t *testing.T) { testEveryDataset(t, relative) })
	}
}

func testEveryDataset(t *testing.T, relativeNextLinks bool) {
	const tid = 1
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 51, RelativeNextLinks: relativeNextLinks, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(tid, map[string]graphsim.DatasetSpec{
			"signins":                     {Count: 230, Span: 6 * time.Hour, PerTimestamp: 2},
			"signins_non_interactive":     {Count: 410, Span: 6 * time.Hour},
			"signins_service_principal":   {Count: 120, Span: 6 * time.Hour},
			"signins_managed_identity":    {Count: 90, Span: 6 * time.Hour},
			"directory_audits":            {Count: 150, Span: 6 * time.Hour},
			"security_alerts":             {Count: 120, Span: 6 * time.Hour, Versions: 3},
			"risk_detections":             {Count: 75, Span: 6 * time.Hour},
			"role_assignments":            {Count: 12},
			"role_eligibility_schedules":  {Count: 5},
			"conditional_access_policies": {Count: 6},
			"mfa_coverage":                {Count: 40},
			"security_incidents":          {Count: 60, Span: 6 * time.Hour, Versions: 3},
			"intune_audit_events":         {Count: 70, Span: 6 * time.Hour},
			"risky_users":                 {Count: 9},
		}),
	}})
	cfg := simConfig(sim, tid)
	cfg.PageSize = 50
	cfg.PollInterval = time.Hour
	enabled := true
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{
		"signins": {}, "directory_audits": {}, "security_alerts": {Enabled: &enabled}, "risk_detections": {},
		"role_assignments": {}, "conditional_access_policies": {}, "mfa_coverage": {},
		"security_incidents": {Enabled: &enabled}, "intune_audit_events": {Enabled: &enabled}, "risky_users": {Enabled: &enabled},
	}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)

	from, to := sim.Anchor().Add(-7*time.Hour), sim.Anchor()
	tenant := graphsimtest.TenantID(tid)
	want := map[string][]string{} // dataset/kind → ids (or id@version for alerts)
	for kind, simDS := range map[string]string{"interactive": "signins", "non_interactive": "signins_non_interactive",
		"service_principal": "signins_service_principal", "managed_identity": "signins_managed_identity"} {
		want["signins/"+kind] = sim.IDs(tenant, simDS, from, to)
	}
	want["directory_audits/"] = sim.IDs(tenant, "directory_audits", from, to)
	want["security_alerts/"] = sim.Keys(tenant, "security_alerts", from, to)
	want["risk_detections/"] = sim.Keys(tenant, "risk_detections", from, to)
	want["role_assignments/active"] = sim.Items(tenant, "role_assignments")
	want["role_assignments/eligible"] = sim.Items(tenant, "role_eligibility_schedules")
	want["conditional_access_policies/"] = sim.Items(tenant, "conditional_access_policies")
	want["mfa_coverage/"] = sim.Items(tenant, "mfa_coverage")
	want["security_incidents/"] = sim.Keys(tenant, "security_incidents", from, to)
	want["intune_audit_events/"] = sim.IDs(tenant, "intune_audit_events", from, to)
	want["risky_users/"] = sim.Items(tenant, "risky_users")
	total := 0
	for _, ids := range want {
		require.NotEmpty(t, ids)
		total += len(ids)
	}
	total++ // the MFA coverage summary
	require.Eventually(t, func() bool { return sink.LogRecordCount() >= total }, 60*time.Second, 20*time.Millisecond,
		"%d of %d records", sink.LogRecordCount(), total)
	time.Sleep(300 * time.Millisecond)

	got := map[string][]string{}
	summaries := 0
	for _, rec := range records(sink) {
		if rec.eventName == "o365.mfa_coverage_summary" {
			summaries++
			users, _ := rec.body.Get("users")
			require.Equal(t, int64(len(want["mfa_coverage/"])), users.Int())
			continue
		}
		key := rec.id
		if rec.dataset == "security_alerts" || rec.dataset == "security_incidents" {
			key += "@" + stringField(rec.body, "lastUpdateDateTime")
		}
		if rec.dataset == "risk_detections" {
			key += "@" + stringField(rec.body, "lastUpdatedDateTime")
		}
		got[rec.dataset+"/"+rec.kind] = append(got[rec.dataset+"/"+rec.kind], key)
		if ds, _ := catalog.ByName(rec.dataset); ds.Kind == catalog.Snapshot {
			require.Equal(t, ChangeBaseline, rec.change, "the first snapshot is the baseline")
		}
	}
	require.Equal(t, 1, summaries)
	for k, ids := range want {
		require.Equal(t, sorted(ids), sorted(got[k]), k)
	}
	require.Equal(t, total, sink.LogRecordCount())
	for _, st := range r.Streams() {
		require.Equal(t, StateOK, st.State, "%s/%s/%s: %s", st.Tenant, st.Dataset, st.Variant, st.LastError)
	}

	// page_size is the $top of event-stream requests (capped at the dataset's maximum); snapshot requests
	// send none, as the README says (issue 13: the two disagreed).
	kindOf := map[string]*catalog.Dataset{}
	for _, d := range catalog.All() {
		for _, src := range d.Sources {
			kindOf["/"+src.APIVersion+src.Path] = d
		}
	}
	tops, snapshots := 0, 0
	for _, req := range sim.Requests() {
		d, ok := kindOf[req.Path]
		if !ok {
			continue
		}
		q, err := url.ParseQuery(req.Query)
		require.NoError(t, err)
		switch {
		case d.Kind == catalog.Snapshot:
			require.False(t, q.Has("$top"), "snapshot request %s?%s sends $top", req.Path, req.Query)
			snapshots++
		case d.MaxPageSize > 0 && !q.Has("$skiptoken"):
			require.Equal(t, fmt.Sprint(min(cfg.PageSize, d.MaxPageSize)), q.Get("$top"), "%s?%s", req.Path, req.Query)
			tops++
		}
	}
	require.Positive(t, tops)
	require.Positive(t, snapshots)
}

// TestSnapshotChangeRecords adds, modifies and removes items between two snapshots.
func TestSnapshotChangeRecords(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 52, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"conditional_access_policies": {Count: 5}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PollInterval = time.Hour
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"conditional_access_policies": {}}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	tenant := graphsimtest.TenantID(1)
	items := sim.Items(tenant, "conditional_access_policies")
	require.Eventually(t, func() bool { return sink.LogRecordCount() == len(items) }, 30*time.Second, 10*time.Millisecond)

	// Disable one policy, delete another, add a new one.
	modified, removed := items[0], items[1]
	var policy map[string]any
	for _, rec := range records(sink) {
		if rec.id == modified {
			policy = rec.body.AsRaw()
		}
	}
	policy["state"] = "disabled"
	require.NoError(t, sim.SetItem(tenant, "conditional_access_policies", policy))
	require.NoError(t, sim.RemoveItem(tenant, "conditional_access_policies", removed))
	added := map[string]any{"id": "11111111-aaaa-4bbb-8ccc-000000000001", "displayName": "New policy", "state": "enabled"}
	require.NoError(t, sim.SetItem(tenant, "conditional_access_policies", added))
	sink.Reset()
	_, err := r.Trigger("tenant1", "conditional_access_policies")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == len(items)+1 }, 30*time.Second, 10*time.Millisecond)

	changes := map[string]string{}
	for _, rec := range records(sink) {
		changes[rec.id] = rec.change
	}
	require.Equal(t, ChangeModified, changes[modified])
	require.Equal(t, ChangeRemoved, changes[removed])
	require.Equal(t, ChangeAdded, changes[added["id"].(string)])
	for _, id := range items[2:] {
		require.Equal(t, ChangeUnchanged, changes[id])
	}

	// A third snapshot without changes marks everything unchanged (nothing added or removed twice).
	sink.Reset()
	_, err = r.Trigger("tenant1", "")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == len(items) }, 30*time.Second, 10*time.Millisecond)
	for _, rec := range records(sink) {
		require.Equal(t, ChangeUnchanged, rec.change, rec.id)
	}
}

// TestAlertsPerVersion: an alert is emitted once per version (id + lastUpdateDateTime), also when
// Graph leaves the nextLink out of full pages; polling again re-emits nothing.
func TestAlertsPerVersion(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 53, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"security_alerts": {Count: 240, Span: 3 * time.Hour, Versions: 2, OmitNextLink: true}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 50
	enabled := true
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"security_alerts": {Enabled: &enabled}}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	want := sim.Keys(graphsimtest.TenantID(1), "security_alerts", sim.Anchor().Add(-4*time.Hour), sim.Anchor())
	require.Len(t, want, 240)
	require.Eventually(t, func() bool { return sink.LogRecordCount() >= len(want) }, 30*time.Second, 10*time.Millisecond)
	_, err := r.Trigger("tenant1", "security_alerts")
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	var got []string
	ids := map[string]int{}
	for _, rec := range records(sink) {
		got = append(got, rec.id+"@"+stringField(rec.body, "lastUpdateDateTime"))
		ids[rec.id]++
	}
	require.Equal(t, sorted(want), sorted(got))
	require.Len(t, ids, 120, "two versions of each of 120 alerts")
}

// TestLicenceErrorIsReportedAndOthersFlow: a tenant without Entra ID P1/P2 gets 403 on sign-ins; the
// stream says so (cooling down on the slow schedule) while directory audits keep flowing.
func TestLicenceErrorIsReportedAndOthersFlow(t *testing.T) {
	tenant := graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
		"signins": {Count: 50, Span: time.Hour}, "directory_audits": {Count: 60, Span: time.Hour},
	})
	tenant.Unlicensed = true
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 54, Tenants: []graphsim.Tenant{tenant}})
	cfg := simConfig(sim, 1)
	cfg.ForbiddenRetryInterval = time.Hour
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)
	requireExactly(t, sink, map[string][]string{
		"directory_audits": sim.IDs(graphsimtest.TenantID(1), "directory_audits", sim.Anchor().Add(-2*time.Hour), sim.Anchor()),
	})
	var signins StreamStatus
	for _, st := range r.Streams() {
		if st.Dataset == "signins" {
			signins = st
		}
	}
	require.Equal(t, StateCoolingDown, signins.State)
	require.Equal(t, "licence", signins.LastErrorKind)
	require.Contains(t, signins.LastError, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	require.WithinDuration(t, time.Now().Add(time.Hour), signins.NextPoll, time.Minute, "retried on the slow schedule")
	forbidden := 0
	for _, req := range sim.Requests() {
		if req.Status == http.StatusForbidden {
			forbidden++
		}
	}
	// One poll's worth (its concurrent catch-up slices each ask once), then nothing until the slow retry.
	require.Positive(t, forbidden)
	require.LessOrEqual(t, forbidden, cfg.MaxConcurrentRequests, "one poll's requests, not a retry storm")
	time.Sleep(500 * time.Millisecond)
	again := 0
	for _, req := range sim.Requests() {
		if req.Status == http.StatusForbidden {
			again++
		}
	}
	require.Equal(t, forbidden, again, "no further request before forbidden_retry_interval")
}

// The README's dataset table describes the catalog (internal/catalog, the one home of these facts):
// every dataset with its time field (or "snapshot"), permission and default lookback.
func TestREADMEDatasetTableMatchesTheCatalog(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	require.NoError(t, err)
	rows := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, _, ok := strings.Cut(strings.TrimPrefix(line, "| `"), "`"); ok && strings.HasPrefix(line, "| `") {
			rows[name] = line
		}
	}
	for _, d := range catalog.All() {
		row, ok := rows[d.Name]
		require.True(t, ok, "README has no row for %s", d.Name)
		cells := strings.Split(row, "|")
		require.Len(t, cells, 9, "%s: a row of 7 columns", d.Name)
		timeField, permission, lookback := cells[3], cells[4], strings.TrimSpace(cells[7])
		require.Contains(t, permission, "`"+d.Permission+"`", d.Name)
		if d.Kind == catalog.Snapshot {
			require.Contains(t, timeField, "snapshot", d.Name)
			require.Equal(t, "—", lookback, d.Name)
			continue
		}
		require.Contains(t, timeField, "`"+d.TimeField+"`", d.Name)
		want := fmt.Sprintf("%dm", int(d.Lookback.Minutes()))
		if d.Lookback%time.Hour == 0 {
			want = fmt.Sprintf("%dh", int(d.Lookback.Hours()))
		}
		require.Equal(t, want, lookback, "%s: default lookback", d.Name)
	}
}
