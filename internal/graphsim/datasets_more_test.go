package graphsim_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/security"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Security incidents, Intune audit events and risky users (issue 15).

const (
	incidentsPath   = "/v1.0/security/incidents"
	intuneAuditPath = "/v1.0/deviceManagement/auditEvents"
	riskyUsersPath  = "/v1.0/identityProtection/riskyUsers"
)

var severityOrder = map[string]int{"informational": 1, "low": 2, "medium": 3, "high": 4}

func TestSecurityIncidents(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"security_incidents": {Count: 60, Span: 2 * time.Hour, Versions: 3}}
	cfg := smallTenants(2, spec)
	cfg.Tenants[1].Unlicensed = true // Defender, not Entra ID P1/P2, licenses incidents
	e := start(t, cfg)
	tok := e.token(tenant1)
	from, to := e.sim.Anchor().Add(-3*time.Hour), e.sim.Anchor()

	recs := e.listRecords(incidentsPath+query("$filter", window("lastUpdateDateTime", from, to), "$top", "7", "$expand", "alerts"), tok)
	require.Len(t, recs, 60)
	var keys []string
	byID := map[string][]map[string]any{}
	for _, r := range recs {
		id := r["id"].(string)
		assert.Regexp(t, regexp.MustCompile(`^\d+$`), id, "incident ids are numeric strings")
		keys = append(keys, id+"@"+r["lastUpdateDateTime"].(string))
		byID[id] = append(byID[id], r)
	}
	assert.Equal(t, e.sim.Keys(tenant1, "security_incidents", from, to), reversed(keys), "newest first; Keys per version")
	require.Len(t, byID, 20)
	for id, versions := range byID {
		require.Len(t, versions, 3, id)
		last, first := versions[0], versions[2] // newest first
		assert.Equal(t, "active", first["status"], id)
		assert.Equal(t, "resolved", last["status"], id)
		assert.Equal(t, first["createdDateTime"], last["createdDateTime"], id)
		assert.Equal(t, first["severity"], last["severity"], "%s: a background incident keeps its severity", id)
		prev := 0
		for k := 2; k >= 0; k-- {
			alerts := versions[k]["alerts"].([]any)
			require.NotEmpty(t, alerts, "every version has its alerts expanded")
			assert.GreaterOrEqual(t, len(alerts), prev, "%s: alerts join, none leaves", id)
			prev = len(alerts)
			for _, a := range alerts {
				am := a.(map[string]any)
				assert.Equal(t, id, am["incidentId"], "the alert names its incident")
				assert.LessOrEqual(t, severityOrder[am["severity"].(string)], severityOrder[versions[k]["severity"].(string)], id)
			}
		}
		top := 0
		for _, a := range last["alerts"].([]any) {
			top = max(top, severityOrder[a.(map[string]any)["severity"].(string)])
		}
		assert.Equal(t, top, severityOrder[last["severity"].(string)], "%s: the incident is as severe as its worst alert", id)
	}

	// Without $expand the alerts are left out, and nothing else changes.
	plain := e.listRecords(incidentsPath+query("$filter", window("lastUpdateDateTime", from, to), "$top", "50"), tok)
	require.Len(t, plain, 60)
	for k, r := range plain {
		assert.NotContains(t, r, "alerts")
		delete(recs[k], "alerts")
		assert.Equal(t, recs[k], r)
	}
	p := decodePage(t, e.get(incidentsPath+query("$expand", "alerts", "$top", "1"), tok))
	assert.True(t, strings.HasSuffix(p.Context, "$metadata#security/incidents(alerts())"), p.Context)

	injected := map[string]any{"id": "424242", "lastUpdateDateTime": graphsim.FormatTime(to.Add(-time.Minute)), "severity": "high",
		"alerts": []any{map[string]any{"id": "da1", "severity": "high"}}}
	require.NoError(t, e.sim.Inject(tenant1, "security_incidents", time.Time{}, injected))
	got := e.listRecords(incidentsPath+query("$filter", "lastUpdateDateTime ge "+graphsim.FormatTime(to.Add(-time.Minute))), tok)
	require.Len(t, got, 1)
	assert.Equal(t, "424242", got[0]["id"])
	assert.NotContains(t, got[0], "alerts", "an injected incident loses its alerts without $expand too")

	requireGraphError(t, e.get(incidentsPath+query("$orderby", "lastUpdateDateTime asc"), tok), http.StatusBadRequest, "BadRequest")
	msg := requireGraphError(t, e.get(incidentsPath+query("$expand", "evidence"), tok), http.StatusBadRequest, "BadRequest")
	assert.Contains(t, msg, "navigation property named 'evidence'")
	assert.Equal(t, http.StatusOK, e.get(incidentsPath+query("$skip", "5"), tok).Status, "$skip is documented")
	assert.Equal(t, http.StatusOK, e.get(incidentsPath, e.token(tenant2)).Status, "an Entra ID licence is not what incidents need")
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"SecurityAlert.Read.All"})
	requireGraphError(t, e.get(incidentsPath, e.token(tenant1)), http.StatusForbidden, "Authorization_RequestDenied")
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"SecurityIncident.ReadWrite.All"})
	assert.Equal(t, http.StatusOK, e.get(incidentsPath, e.token(tenant1)).Status)
	assert.Equal(t, "security", e.sim.Requests()[0].Family)
}

func TestIntuneAuditEvents(t *testing.T) {
	cfg := smallTenants(2, map[string]graphsim.DatasetSpec{"intune_audit_events": {Count: 80, Span: time.Hour}})
	cfg.Tenants[1].Unlicensed = true // Intune, not Entra ID P1/P2, licenses its audit log
	e := start(t, cfg)
	tok := e.token(tenant1)
	from, to := e.sim.Anchor().Add(-2*time.Hour), e.sim.Anchor()
	recs := e.listRecords(intuneAuditPath+query("$filter", window("activityDateTime", from, to), "$top", "9"), tok)
	require.Len(t, recs, 80)
	var ids []string
	categories := map[string]int{}
	for _, r := range recs {
		ids = append(ids, r["id"].(string))
		categories[r["category"].(string)]++
		assert.Equal(t, r["activity"], r["activityType"])
		actor := r["actor"].(map[string]any)
		assert.True(t, strings.HasSuffix(actor["userPrincipalName"].(string), "@tenant1.onmicrosoft.com"))
		assert.NotEmpty(t, r["resources"])
	}
	assert.Equal(t, e.sim.IDs(tenant1, "intune_audit_events", from, to), reversed(ids))
	assert.GreaterOrEqual(t, len(categories), 5, "%v", categories)
	mid := e.sim.Anchor().Add(-30 * time.Minute)
	half := e.listRecords(intuneAuditPath+query("$filter", "activityDateTime ge "+graphsim.FormatTime(mid)), tok)
	assert.Len(t, half, len(e.sim.IDs(tenant1, "intune_audit_events", mid, to)))
	assert.Less(t, len(half), 80)

	requireGraphError(t, e.get(intuneAuditPath+query("$orderby", "activityDateTime desc"), tok), http.StatusBadRequest, "BadRequest")
	assert.Equal(t, http.StatusOK, e.get(intuneAuditPath, e.token(tenant2)).Status, "an Entra ID licence is not what Intune needs")
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"DeviceManagementConfiguration.Read.All"})
	requireGraphError(t, e.get(intuneAuditPath, e.token(tenant1)), http.StatusForbidden, "Authorization_RequestDenied")
	assert.Equal(t, "intune", e.sim.Requests()[0].Family)
}

func TestRiskyUsers(t *testing.T) {
	cfg := smallTenants(2, map[string]graphsim.DatasetSpec{"risky_users": {Count: 30}})
	cfg.Tenants[1].Unlicensed = true
	e := start(t, cfg)
	tok := e.token(tenant1)
	recs := e.listRecords(riskyUsersPath+query("$top", "7"), tok)
	require.Len(t, recs, 30)
	var ids []string
	states := map[string]int{}
	for _, r := range recs {
		ids = append(ids, r["id"].(string))
		states[r["riskState"].(string)]++
		assert.True(t, strings.HasSuffix(r["userPrincipalName"].(string), "@tenant1.onmicrosoft.com"))
	}
	assert.Equal(t, e.sim.Items(tenant1, "risky_users"), ids)
	assert.Len(t, uniq(ids), 30)
	assert.GreaterOrEqual(t, len(states), 4, "%v", states)

	// An admin dismisses a user's risk: the item changes in place.
	changed := recs[0]
	changed["riskLevel"], changed["riskState"], changed["riskDetail"] = "none", "dismissed", "adminDismissedAllRiskForUser"
	require.NoError(t, e.sim.SetItem(tenant1, "risky_users", changed))
	again := e.listRecords(riskyUsersPath, tok)
	require.Len(t, again, 30)
	assert.Equal(t, "dismissed", again[0]["riskState"])

	requireGraphError(t, e.get(riskyUsersPath, e.token(tenant2)), http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"IdentityRiskEvent.Read.All"})
	requireGraphError(t, e.get(riskyUsersPath, e.token(tenant1)), http.StatusForbidden, "Authorization_RequestDenied")
	assert.Equal(t, "identity_protection", e.sim.Requests()[0].Family)

	_, err := graphsim.Start(smallTenants(1, map[string]graphsim.DatasetSpec{"risky_users": {Count: 1000}}))
	require.Error(t, err, "more risky users than a third of the pool")
	assert.Contains(t, err.Error(), "exceeds")
}

// The new kinds against Microsoft's models: zero unknown keys and enum values on every page.
func TestSimulatorIncidentsIntuneRiskyUsersFidelity(t *testing.T) {
	cfg := smallTenants(1, map[string]graphsim.DatasetSpec{
		"security_incidents": {Count: 90, Span: 3 * time.Hour, Versions: 3}, "intune_audit_events": {Count: 120, Span: 3 * time.Hour},
		"risky_users": {Count: 40},
	})
	e := start(t, cfg)
	tok := e.token(tenant1)
	statuses, severities := map[security.IncidentStatus]int{}, map[security.AlertSeverity]int{}
	for _, it := range e.fidelityPages(t, "incident", incidentsPath+"?$expand=alerts&$top=20", tok) {
		inc := it.(security.Incidentable)
		statuses[*inc.GetStatus()]++
		severities[*inc.GetSeverity()]++
		require.NotEmpty(t, inc.GetAlerts())
		for _, a := range inc.GetAlerts() {
			assert.Equal(t, *inc.GetId(), *a.GetIncidentId())
		}
	}
	assert.Len(t, statuses, 3, "%v", statuses)
	assert.GreaterOrEqual(t, len(severities), 3, "%v", severities)
	results := map[string]int{}
	for _, it := range e.fidelityPages(t, "auditEvent", intuneAuditPath+"?$top=50", tok) {
		ev := it.(models.AuditEventable)
		results[*ev.GetActivityResult()]++
		assert.NotNil(t, ev.GetActivityDateTime())
	}
	assert.Len(t, results, 2, "Success and Failure: %v", results)
	levels := map[models.RiskLevel]int{}
	for _, it := range e.fidelityPages(t, "riskyUser", riskyUsersPath+"?$top=15", tok) {
		levels[*it.(models.RiskyUserable).GetRiskLevel()]++
	}
	assert.Len(t, levels, 4, "high, medium, low, none: %v", levels)
}
