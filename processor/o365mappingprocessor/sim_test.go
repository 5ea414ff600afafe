package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

var capture = flag.Bool("capture", false, "rewrite the simulator pages under testdata/golden from the Graph simulator")

// simAnchor makes the simulator's records deterministic.
var simAnchor = time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)

// timeQuery asks for [from, to] on timeField, oldest first.
func timeQuery(timeField string, from, to time.Time, top int) url.Values {
	q := url.Values{}
	q.Set("$filter", fmt.Sprintf("%s ge %s and %s le %s", timeField, graphsim.FormatTime(from), timeField, graphsim.FormatTime(to)))
	q.Set("$orderby", timeField+" asc")
	q.Set("$top", fmt.Sprint(top))
	return q
}

func startSim(t *testing.T, specs map[string]graphsim.DatasetSpec) *graphsimtest.Sim {
	return graphsimtest.Start(t, graphsim.Config{Seed: 7, Anchor: simAnchor, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, specs)}})
}

// TestSimulatorRecords runs every sign-in and directory audit of a simulated tenant through the processor:
// all are normalized and mapped, none is left with an error, and every incident is well formed.
func TestSimulatorRecords(t *testing.T) {
	sim := startSim(t, map[string]graphsim.DatasetSpec{
		"signins":          {Count: 2000, Span: 6 * time.Hour},
		"directory_audits": {Count: 500, Span: 6 * time.Hour},
	})
	c := graphsimtest.NewClient(t, sim, graphsimtest.TenantID(1))
	p, sink, _ := newTestProcessor(t, defaultConfig())
	from, to := simAnchor.Add(-7*time.Hour), simAnchor
	total := 0
	for _, ds := range []struct{ dataset, path, timeField string }{
		{a.DatasetSignIns, "/auditLogs/signIns", "createdDateTime"},
		{a.DatasetDirectoryAudits, "/auditLogs/directoryAudits", "activityDateTime"},
	} {
		pages := c.Pages(t, "v1.0", ds.path, timeQuery(ds.timeField, from, to, 250))
		for _, pg := range pages {
			ld := receiverLogs(t, ds.dataset, pg)
			total += ld.LogRecordCount()
			require.NoError(t, p.ConsumeLogs(context.Background(), ld))
		}
		if *capture {
			writeCapture(t, ds.dataset, pages[0])
		}
	}
	require.Equal(t, 2500, total)
	normalized, incidents := 0, 0
	for _, ld := range sink.AllLogs() {
		for _, lr := range allRecords(ld) {
			if lr.EventName() == a.EventIncidentCandidate {
				incidents++
				assert.NotEmpty(t, attrStr(lr, a.IncidentRule))
				ids, ok := lr.Attributes().Get(a.IncidentRecordIDs)
				require.True(t, ok)
				assert.GreaterOrEqual(t, ids.Slice().Len(), 1)
				continue
			}
			normalized++
			assert.Empty(t, attrStr(lr, a.NormalizationError))
			assert.NotEmpty(t, attrStr(lr, a.EventType))
			assert.NotEmpty(t, attrStr(lr, a.Domain), attrStr(lr, a.EventType))
			assert.NotEmpty(t, attrStr(lr, a.UserName))
		}
	}
	assert.Equal(t, total, normalized)
	t.Logf("%d records, %d incident candidates", normalized, incidents)
}

// writeCapture stores the first 20 records of a simulator page as the golden input of the dataset.
func writeCapture(t *testing.T, dataset string, pg []byte) {
	var p struct {
		Value []json.RawMessage `json:"value"`
	}
	require.NoError(t, json.Unmarshal(pg, &p))
	items := make([]string, 0, 20)
	for _, v := range p.Value[:min(20, len(p.Value))] {
		items = append(items, string(v))
	}
	dir := filepath.Join("testdata", "golden", dataset+"_simulator")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	var pretty map[string]any
	require.NoError(t, json.Unmarshal(page(items...), &pretty))
	b, err := json.MarshalIndent(pretty, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "page.json"), append(b, '\n'), 0o644))
}

// TestSimulatorBruteForce injects an attack into the simulator (failed sign-ins of one user, then a
// success) among its normal traffic; the processor reports it once, with the attack's records.
func TestSimulatorBruteForce(t *testing.T) {
	sim := startSim(t, map[string]graphsim.DatasetSpec{"signins": {Count: 300, Span: time.Hour}})
	tenant := graphsimtest.TenantID(1)
	base := simAnchor.Add(-30 * time.Minute)
	var attack []map[string]any
	var want []string
	for i := range 7 {
		var obj map[string]any
		require.NoError(t, json.Unmarshal([]byte(sample(t, "signin")), &obj))
		obj["id"] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		obj["createdDateTime"] = graphsim.FormatTime(base.Add(time.Duration(i) * time.Minute))
		obj["userPrincipalName"] = "victim@contoso.com"
		obj["userId"] = "99999999-0000-4000-8000-000000000001"
		obj["ipAddress"] = "203.0.113.7"
		status := obj["status"].(map[string]any)
		if i < 6 {
			status["errorCode"] = 50126
			status["failureReason"] = "Error validating credentials due to invalid username or password."
		}
		attack = append(attack, obj)
		want = append(want, obj["id"].(string))
	}
	require.NoError(t, sim.Inject(tenant, "signins", time.Time{}, attack...))
	c := graphsimtest.NewClient(t, sim, tenant)
	p, sink, _ := newTestProcessor(t, defaultConfig())
	for _, pg := range c.Pages(t, "v1.0", "/auditLogs/signIns", timeQuery("createdDateTime", simAnchor.Add(-2*time.Hour), simAnchor, 100)) {
		require.NoError(t, p.ConsumeLogs(context.Background(), receiverLogs(t, a.DatasetSignIns, pg)))
	}
	var brute []string
	for _, inc := range incidentsOf(sink.AllLogs()...) {
		if attrStr(inc, a.IncidentRule) == "brute_force" {
			brute = append(brute, attrStr(inc, a.UserName))
			ids, _ := inc.Attributes().Get(a.IncidentRecordIDs)
			var got []string
			for _, v := range ids.Slice().AsRaw() {
				got = append(got, v.(string))
			}
			assert.Equal(t, want, got) // all six failures and the success
		}
	}
	assert.Equal(t, []string{"victim@contoso.com"}, brute)
}

// TestSimulatorAllDatasets runs a simulated tenant's every dataset (beta sign-in kinds, alerts, risk
// detections, incidents, Intune audit events and the snapshots) through the processor: every record is
// normalized and mapped.
func TestSimulatorAllDatasets(t *testing.T) {
	hist := graphsim.DatasetSpec{Count: 200, Span: 6 * time.Hour}
	sim := startSim(t, map[string]graphsim.DatasetSpec{
		"signins_non_interactive": hist, "signins_service_principal": hist, "signins_managed_identity": hist,
		"security_alerts": hist, "risk_detections": hist,
		"role_assignments": {Count: 60}, "role_eligibility_schedules": {Count: 20},
		"conditional_access_policies": {Count: 10}, "mfa_coverage": {Count: 150},
		"security_incidents": {Count: 90, Span: 6 * time.Hour, Versions: 3}, "intune_audit_events": hist, "risky_users": {Count: 30},
	})
	c := graphsimtest.NewClient(t, sim, graphsimtest.TenantID(1))
	from, to := graphsim.FormatTime(simAnchor.Add(-7*time.Hour)), graphsim.FormatTime(simAnchor)
	window := func(field, extra string) url.Values {
		f := fmt.Sprintf("%s ge %s and %s le %s", field, from, field, to)
		if extra != "" {
			f += " and " + extra
		}
		return url.Values{"$filter": {f}}
	}
	expand := url.Values{"$expand": {"principal,roleDefinition"}}
	sources := []struct {
		dataset, version, path string
		q                      url.Values
	}{
		{a.DatasetSignIns, "beta", "/auditLogs/signIns", window("createdDateTime", "signInEventTypes/any(t: t eq 'nonInteractiveUser')")},
		{a.DatasetSignIns, "beta", "/auditLogs/signIns", window("createdDateTime", "signInEventTypes/any(t: t eq 'servicePrincipal')")},
		{a.DatasetSignIns, "beta", "/auditLogs/signIns", window("createdDateTime", "signInEventTypes/any(t: t eq 'managedIdentity')")},
		{a.DatasetSecurityAlerts, "v1.0", "/security/alerts_v2", window("lastUpdateDateTime", "")},
		{a.DatasetRiskDetections, "v1.0", "/identityProtection/riskDetections", window("lastUpdatedDateTime", "")},
		{a.DatasetRoleAssignments, "v1.0", "/roleManagement/directory/roleAssignments", expand},
		{a.DatasetRoleAssignments, "v1.0", "/roleManagement/directory/roleEligibilitySchedules", expand},
		{a.DatasetConditionalAccessPolicies, "v1.0", "/identity/conditionalAccess/policies", url.Values{}},
		{a.DatasetMFACoverage, "v1.0", "/reports/authenticationMethods/userRegistrationDetails", url.Values{}},
		{a.DatasetSecurityIncidents, "v1.0", "/security/incidents", func() url.Values {
			q := window("lastUpdateDateTime", "")
			q.Set("$expand", "alerts")
			return q
		}()},
		{a.DatasetIntuneAuditEvents, "v1.0", "/deviceManagement/auditEvents", window("activityDateTime", "")},
		{a.DatasetRiskyUsers, "v1.0", "/identityProtection/riskyUsers", url.Values{}},
	}
	p, sink, _ := newTestProcessor(t, defaultConfig())
	counts := map[string]int{}
	for _, src := range sources {
		for _, pg := range c.Pages(t, src.version, src.path, src.q) {
			ld := receiverLogs(t, src.dataset, pg)
			counts[src.path] += ld.LogRecordCount()
			require.NoError(t, p.ConsumeLogs(context.Background(), ld))
		}
		assert.Positive(t, counts[src.path], src.path)
	}
	rules := map[string]int{}
	for _, ld := range sink.AllLogs() {
		for _, lr := range allRecords(ld) {
			if lr.EventName() == a.EventIncidentCandidate {
				rules[attrStr(lr, a.IncidentRule)]++
				continue
			}
			assert.Empty(t, attrStr(lr, a.NormalizationError), "%s %s", lr.EventName(), lr.Body().AsString())
			assert.NotEmpty(t, attrStr(lr, a.Domain), attrStr(lr, a.EventType))
		}
	}
	t.Logf("records per source: %v; incident candidates per rule: %v", counts, rules)
}

// demoDay reads a day of the demo's licensed tenant (internal/graphsim/cmd/graphsim/demo.yaml: contoso,
// every dataset) with the given scenarios, through the processor with the default rules, and returns the
// incident candidates by rule.
func demoDay(t *testing.T, scenarios ...string) map[string][]plog.LogRecord {
	t.Helper()
	demo, err := graphsim.LoadConfig("../../internal/graphsim/cmd/graphsim/demo.yaml")
	require.NoError(t, err)
	tenant := demo.Tenants[0]
	require.Equal(t, "contoso", tenant.Name)
	tenant.Apps = graphsimtest.Tenant(1, nil).Apps
	tenant.Scenarios = scenarios
	sim := graphsimtest.Start(t, graphsim.Config{Seed: demo.Seed, Anchor: simAnchor, Tenants: []graphsim.Tenant{tenant}})
	c := graphsimtest.NewClient(t, sim, tenant.ID)
	from, to := graphsim.FormatTime(simAnchor.Add(-24*time.Hour)), graphsim.FormatTime(simAnchor)
	// Every source of every dataset, as the receiver reads them (catalog), snapshots first.
	type source struct {
		dataset string
		src     catalog.Source
		q       url.Values
	}
	var sources []source
	for _, kind := range []catalog.Kind{catalog.Snapshot, catalog.EventStream} {
		for _, ds := range catalog.All() {
			if ds.Kind != kind {
				continue
			}
			for _, src := range ds.Sources {
				q := url.Values{}
				for k, v := range src.Query {
					q.Set(k, v)
				}
				if ds.TimeField != "" {
					f := fmt.Sprintf("%s ge %s and %s le %s", ds.TimeField, from, ds.TimeField, to)
					if src.Filter != "" {
						f += " and " + src.Filter
					}
					q.Set("$filter", f)
				}
				if ds.OrderBy {
					q.Set("$orderby", ds.TimeField+" asc")
				}
				sources = append(sources, source{ds.Name, src, q})
			}
		}
	}
	cfg := defaultConfig()
	cfg.OCSF = true // so that the day's ocsf.* keys are checked against the README too
	p, sink, _ := newTestProcessor(t, cfg)
	for _, src := range sources {
		for _, pg := range c.Pages(t, src.src.APIVersion, src.src.Path, src.q) {
			require.NoError(t, p.ConsumeLogs(context.Background(), receiverLogs(t, src.dataset, pg)))
		}
	}
	// The Management Activity API's blobs, each as the receiver emits it: one batch of its records.
	for _, blob := range sim.AuditBlobs(tenant.ID) {
		i := slices.IndexFunc(catalog.All(), func(ds *catalog.Dataset) bool { return ds.ContentType == blob.ContentType })
		require.GreaterOrEqual(t, i, 0, "no dataset of content type %s", blob.ContentType)
		records, err := json.Marshal(blob.Records)
		require.NoError(t, err)
		pg := append(append([]byte(`{"value":`), records...), '}')
		require.NoError(t, p.ConsumeLogs(context.Background(), receiverLogs(t, catalog.All()[i].Name, pg)))
	}
	listed, ocsf := readmeKeys(t), readmeOCSF(t) // unified audit and DLP records and incident candidates too
	for _, ld := range sink.AllLogs() {
		assertKeysListed(t, listed, ld)
		ocsf.check(t, ld, true, nil)
	}
	out := map[string][]plog.LogRecord{}
	for _, inc := range incidentsOf(sink.AllLogs()...) {
		out[attrStr(inc, a.IncidentRule)] = append(out[attrStr(inc, a.IncidentRule)], inc)
	}
	return out
}

// backgroundIncidents bounds what a day of the simulator's ordinary traffic may raise: the break-glass
// account, a Global Administrator without MFA, is the one true finding it holds.
const backgroundIncidents = 1

// TestSimulatorBackground: a day of the demo tenant without scenarios raises at most a handful of
// incidents.
func TestSimulatorBackground(t *testing.T) {
	got := demoDay(t)
	total := 0
	for rule, incs := range got {
		total += len(incs)
		for _, inc := range incs {
			t.Logf("%s: %s", rule, inc.Body().Str())
		}
	}
	assert.LessOrEqual(t, total, backgroundIncidents, "%v", got)
}

// TestSimulatorScenarios: each scenario of the simulator, over a day of the demo tenant, raises exactly
// its rule's incident, naming its entity, and nothing else beyond the background's.
func TestSimulatorScenarios(t *testing.T) {
	background := demoDay(t)
	tests := []struct {
		scenario, rule, entity, value string
	}{
		{"brute_force", "brute_force", a.UserName, "isabella.rossi@contoso.onmicrosoft.com"},
		{"password_spray", "password_spray", a.ClientAddress, "203.0.113.66"},
		{"privileged_user_without_mfa", "privileged_role_without_mfa", a.UserName, "omar.haddad@contoso.onmicrosoft.com"},
		{"policy_report_only", "conditional_access_policy_disabled", a.PolicyID, "8f45d9e0-6c7b-4b7e-9b4c-2a6f0c1b7d11"},
		{"impossible_travel", "impossible_travel", a.UserName, "kenji.watanabe@contoso.onmicrosoft.com"},
		{"incident_escalation", "security_incident_severity_high", a.SecurityIncidentID, "88000001"},
		{"mailbox_forwarding", "mailbox_forwarding_external", a.UserName, "lucas.moreau@contoso.onmicrosoft.com"},
		{"mass_download", "mass_file_download", a.UserName, "priya.nair@contoso.onmicrosoft.com"},
		{"anonymous_link", "anonymous_link_created", a.UserName, "sofia.lindqvist@contoso.onmicrosoft.com"},
	}
	require.ElementsMatch(t, graphsim.ScenarioNames(), func() []string {
		var names []string
		for _, tt := range tests {
			names = append(names, tt.scenario)
		}
		return names
	}(), "every scenario is tested")
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			got := demoDay(t, tt.scenario)
			for rule, incs := range got {
				want := len(background[rule])
				if rule == tt.rule {
					want++
				}
				assert.Len(t, incs, want, "%s incidents", rule)
			}
			var named []string // the entity, or the context attribute that names it (user.name of a user.id group)
			for _, inc := range got[tt.rule] {
				named = append(named, attrStr(inc, tt.entity))
				if ctx, ok := inc.Attributes().Get(a.IncidentContext); ok {
					if v, ok := ctx.Map().Get(tt.entity); ok {
						named = append(named, v.AsString())
					}
				}
			}
			assert.Contains(t, named, tt.value)
		})
	}
}
