package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
// detections and the snapshots) through the processor: every record is normalized and mapped.
func TestSimulatorAllDatasets(t *testing.T) {
	hist := graphsim.DatasetSpec{Count: 200, Span: 6 * time.Hour}
	sim := startSim(t, map[string]graphsim.DatasetSpec{
		"signins_non_interactive": hist, "signins_service_principal": hist, "signins_managed_identity": hist,
		"security_alerts": hist, "risk_detections": hist,
		"role_assignments": {Count: 60}, "role_eligibility_schedules": {Count: 20},
		"conditional_access_policies": {Count: 10}, "mfa_coverage": {Count: 150},
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
