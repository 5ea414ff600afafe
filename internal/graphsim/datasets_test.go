package graphsim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

const betaSignInsPath = "/beta/auditLogs/signIns"

// window is a $filter for [from, to] on field.
func window(field string, from, to time.Time) string {
	return field + " ge " + graphsim.FormatTime(from) + " and " + field + " le " + graphsim.FormatTime(to)
}

// listRecords follows nextLink from path and returns the records as maps.
func (e *env) listRecords(path, token string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	_, pages := e.listAll(path, token)
	for _, p := range pages {
		for _, raw := range p.Value {
			var m map[string]any
			require.NoError(e.t, json.Unmarshal(raw, &m))
			out = append(out, m)
		}
	}
	return out
}

func idsOfRecords(recs []map[string]any) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r["id"].(string)
	}
	return out
}

func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "?" + strings.ReplaceAll(v.Encode(), "+", "%20")
}

func TestSignInKinds(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{
		"signins":                   {Count: 30, Span: time.Hour},
		"signins_non_interactive":   {Count: 40, Span: time.Hour, PerTimestamp: 2},
		"signins_service_principal": {Count: 25, Span: time.Hour},
		"signins_managed_identity":  {Count: 20, Span: time.Hour},
	}
	cfg := smallTenants(2, spec)
	cfg.Tenants[1].Unlicensed = true
	e := start(t, cfg)
	tok := e.token(tenant1)
	from, to := e.sim.Anchor().Add(-2*time.Hour), e.sim.Anchor()
	times := window("createdDateTime", from, to)
	clause := func(kind string) string { return "signInEventTypes/any(t: t eq '" + kind + "')" }

	isUser := func(t *testing.T, r map[string]any) {
		assert.NotEmpty(t, r["userId"])
		assert.True(t, strings.HasSuffix(r["userPrincipalName"].(string), "@tenant1.onmicrosoft.com"))
		assert.Empty(t, r["servicePrincipalId"])
	}
	cases := []struct {
		name, path, filter, dataset string
		check                       func(t *testing.T, r map[string]any)
	}{
		{"v1.0: interactive, v1.0 shape", signInsPath, times, "signins", func(t *testing.T, r map[string]any) {
			assert.NotContains(t, r, "signInEventTypes")
			assert.Equal(t, true, r["isInteractive"])
		}},
		{"beta without a clause: interactive", betaSignInsPath, times, "signins", func(t *testing.T, r map[string]any) {
			assert.Equal(t, []any{"interactiveUser"}, r["signInEventTypes"])
			assert.Equal(t, true, r["isInteractive"])
			assert.Contains(t, []any{"singleFactorAuthentication", "multiFactorAuthentication"}, r["authenticationRequirement"])
			isUser(t, r)
		}},
		{"beta interactiveUser", betaSignInsPath, clause("interactiveUser") + " and " + times, "signins", func(t *testing.T, r map[string]any) {
			assert.Equal(t, []any{"interactiveUser"}, r["signInEventTypes"])
		}},
		{"beta nonInteractiveUser", betaSignInsPath, clause("nonInteractiveUser") + " and " + times, "signins_non_interactive", func(t *testing.T, r map[string]any) {
			assert.Equal(t, []any{"nonInteractiveUser"}, r["signInEventTypes"])
			assert.Equal(t, false, r["isInteractive"])
			assert.Equal(t, "none", r["clientCredentialType"])
			isUser(t, r)
		}},
		{"beta servicePrincipal, clause last and parenthesised", betaSignInsPath, "(" + times + ") and (" + clause("servicePrincipal") + ")", "signins_service_principal", func(t *testing.T, r map[string]any) {
			assert.Equal(t, []any{"servicePrincipal"}, r["signInEventTypes"])
			assert.Equal(t, false, r["isInteractive"])
			assert.NotEmpty(t, r["servicePrincipalId"])
			assert.Equal(t, r["appDisplayName"], r["servicePrincipalName"])
			assert.Empty(t, r["userId"])
			assert.Contains(t, []any{"clientSecret", "certificate", "clientAssertion", "federatedIdentityCredential"}, r["clientCredentialType"])
			assert.Equal(t, "none", r["managedServiceIdentity"].(map[string]any)["msiType"])
		}},
		{"beta managedIdentity", betaSignInsPath, clause("managedIdentity") + " and " + times, "signins_managed_identity", func(t *testing.T, r map[string]any) {
			assert.Equal(t, []any{"managedIdentity"}, r["signInEventTypes"])
			assert.Equal(t, "managedIdentity", r["clientCredentialType"])
			msi := r["managedServiceIdentity"].(map[string]any)
			assert.Contains(t, []any{"systemAssigned", "userAssigned"}, msi["msiType"])
			assert.True(t, strings.HasPrefix(msi["associatedResourceId"].(string), "/subscriptions/"))
			assert.NotEmpty(t, r["servicePrincipalName"])
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.sim.Requests())
			recs := e.listRecords(c.path+query("$filter", c.filter, "$orderby", "createdDateTime asc", "$top", "7"), tok)
			want := e.sim.IDs(tenant1, c.dataset, from, to)
			require.Len(t, want, spec[c.dataset].Count)
			assert.Equal(t, want, idsOfRecords(recs), "the kind's own stream, in time order")
			for _, r := range recs {
				c.check(t, r)
			}
			for _, r := range e.sim.Requests()[before:] {
				assert.Equal(t, c.dataset, r.Dataset)
				assert.Equal(t, "reports", r.Family)
			}
		})
	}
	// The kinds are four distinct streams.
	seen := map[string]string{}
	for name := range spec {
		for _, id := range e.sim.IDs(tenant1, name, from, to) {
			require.NotContains(t, seen, id, "%s shares an id with %s", name, seen[id])
			seen[id] = name
		}
	}

	for _, c := range []struct{ name, path, filter, want string }{
		{"v1.0 has no signInEventTypes", signInsPath, clause("nonInteractiveUser"), "signInEventTypes"},
		{"unknown kind", betaSignInsPath, clause("robot"), "not a valid signInEventTypes value"},
		{"two kinds", betaSignInsPath, clause("servicePrincipal") + " and " + clause("managedIdentity"), "cannot both match"},
		{"lambda variable mismatch", betaSignInsPath, "signInEventTypes/any(t: x eq 'servicePrincipal')", "invalid filter clause"},
		{"or", betaSignInsPath, clause("servicePrincipal") + " or " + clause("managedIdentity"), "invalid filter clause"},
		{"ne", betaSignInsPath, "signInEventTypes/any(t: t ne 'servicePrincipal')", "invalid filter clause"},
	} {
		t.Run("400: "+c.name, func(t *testing.T) {
			msg := requireGraphError(t, e.get(c.path+query("$filter", c.filter), tok), http.StatusBadRequest, "BadRequest")
			assert.Contains(t, msg, c.want)
		})
	}
	// Every kind needs the licence.
	requireGraphError(t, e.get(betaSignInsPath+query("$filter", clause("servicePrincipal")), e.token(tenant2)), http.StatusForbidden,
		"Authentication_RequestFromNonPremiumTenantOrB2CTenant")
}

func TestSecurityAlerts(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"security_alerts": {Count: 30, Span: time.Hour, Versions: 3}}
	cfg := smallTenants(2, spec)
	cfg.Tenants[1].Unlicensed = true // Defender, not Entra ID P1/P2, licenses alerts
	e := start(t, cfg)
	tok := e.token(tenant1)
	from, to := e.sim.Anchor().Add(-2*time.Hour), e.sim.Anchor()

	recs := e.listRecords(alertsPath+query("$filter", window("lastUpdateDateTime", from, to), "$top", "4"), tok)
	require.Len(t, recs, 30)
	ms3 := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
	var keys []string
	for i, r := range recs {
		assert.Regexp(t, ms3, r["lastUpdateDateTime"], "3 fractional digits")
		assert.Regexp(t, ms3, r["createdDateTime"])
		keys = append(keys, r["id"].(string)+"@"+r["lastUpdateDateTime"].(string))
		if i > 0 {
			assert.GreaterOrEqual(t, recs[i-1]["lastUpdateDateTime"], r["lastUpdateDateTime"], "newest first")
		}
	}
	want := e.sim.Keys(tenant1, "security_alerts", from, to)
	assert.Equal(t, want, reversed(keys), "Keys: id@lastUpdateDateTime per version, oldest first")
	assert.Len(t, uniq(want), 30, "keys are unique per version")
	ids := e.sim.IDs(tenant1, "security_alerts", from, to)
	assert.Len(t, ids, 30)
	assert.Len(t, uniq(ids), 10, "IDs repeats an alert's id once per version")
	for k := 0; k < 30; k += 3 {
		assert.Equal(t, []string{ids[k], ids[k], ids[k]}, ids[k:k+3], "record i is version i%%3 of alert i/3")
	}

	// Filter on createdDateTime: the brute-force answer from the full listing.
	mid := e.sim.Anchor().Add(-30 * time.Minute)
	var wantCreated []string
	for _, r := range recs {
		if c, _ := time.Parse(time.RFC3339Nano, r["createdDateTime"].(string)); !c.Before(mid) {
			wantCreated = append(wantCreated, r["id"].(string)+"@"+r["lastUpdateDateTime"].(string))
		}
	}
	require.NotEmpty(t, wantCreated)
	require.Less(t, len(wantCreated), 30)
	got := e.listRecords(alertsPath+query("$filter", "createdDateTime ge "+graphsim.FormatTime(mid), "$top", "5"), tok)
	var gotKeys []string
	for _, r := range got {
		gotKeys = append(gotKeys, r["id"].(string)+"@"+r["lastUpdateDateTime"].(string))
	}
	assert.Equal(t, wantCreated, gotKeys)

	for _, c := range []struct{ name, q, want string }{
		{"$orderby asc", query("$orderby", "lastUpdateDateTime asc"), "'$orderby' is not supported"},
		{"$orderby desc", query("$orderby", "lastUpdateDateTime desc"), "'$orderby' is not supported"},
		{"$top over 1000", query("$top", "1001"), "between 1 and 1000"},
		{"filter on another property", query("$filter", "severity eq 'high'"), "not supported"},
	} {
		t.Run("400: "+c.name, func(t *testing.T) {
			msg := requireGraphError(t, e.get(alertsPath+c.q, tok), http.StatusBadRequest, "BadRequest")
			assert.Contains(t, msg, c.want)
		})
	}
	assert.Equal(t, http.StatusOK, e.get(alertsPath+query("$top", "1000"), tok).Status)
	assert.Equal(t, http.StatusOK, e.get(alertsPath, e.token(tenant2)).Status, "an Entra ID licence is not what alerts need")
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"AuditLog.Read.All"})
	requireGraphError(t, e.get(alertsPath, e.token(tenant1)), http.StatusForbidden, "Authorization_RequestDenied")
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"SecurityAlert.ReadWrite.All"})
	assert.Equal(t, http.StatusOK, e.get(alertsPath, e.token(tenant1)).Status, "the ReadWrite permission includes reading")
	assert.Equal(t, "security", e.sim.Requests()[0].Family)
}

func TestAlertsWithoutNextLink(t *testing.T) {
	// elastic/integrations#20234: full pages, no @odata.nextLink. A client pages by time instead.
	e := start(t, smallTenants(1, map[string]graphsim.DatasetSpec{"security_alerts": {Count: 23, Span: time.Hour, Versions: 2, OmitNextLink: true}}))
	tok := e.token(tenant1)
	from, to := e.sim.Anchor().Add(-2*time.Hour), e.sim.Anchor()
	upper, op := to, "le"
	var keys []string
	for pages := 0; ; pages++ {
		require.Less(t, pages, 20)
		f := "lastUpdateDateTime ge " + graphsim.FormatTime(from) + " and lastUpdateDateTime " + op + " " + graphsim.FormatTime(upper)
		p := decodePage(t, e.get(alertsPath+query("$filter", f, "$top", "5"), tok))
		assert.Empty(t, p.NextLink, "never a nextLink")
		for _, raw := range p.Value {
			var r struct{ ID, LastUpdateDateTime string }
			require.NoError(t, json.Unmarshal(raw, &r))
			keys = append(keys, r.ID+"@"+r.LastUpdateDateTime)
			upper, _ = time.Parse(time.RFC3339Nano, r.LastUpdateDateTime)
		}
		if len(p.Value) < 5 {
			break
		}
		assert.Len(t, p.Value, 5, "a full page")
		op = "lt"
	}
	assert.Equal(t, e.sim.Keys(tenant1, "security_alerts", from, to), reversed(keys))
}

func TestRiskDetections(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"risk_detections": {Count: 120, Span: 4 * time.Hour, Versions: 2}}
	cfg := smallTenants(2, spec)
	cfg.Tenants[1].Unlicensed = true
	e := start(t, cfg)
	tok := e.token(tenant1)

	// Default page size 20, newest first.
	first := decodePage(t, e.get(risksPath, tok))
	assert.Len(t, first.Value, 20)
	assert.NotEmpty(t, first.NextLink)

	all := e.listRecords(risksPath+query("$top", "500"), tok)
	require.Len(t, all, 120)
	us6 := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)
	for _, r := range all {
		for _, f := range []string{"activityDateTime", "detectedDateTime", "lastUpdatedDateTime"} {
			assert.Regexp(t, us6, r[f], "%s has 6 fractional digits", f)
		}
		_, isString := r["additionalInfo"].(string)
		assert.True(t, isString, "additionalInfo is a string")
	}
	key := func(r map[string]any) string { return r["id"].(string) + "@" + r["lastUpdatedDateTime"].(string) }
	at := func(r map[string]any, f string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, r[f].(string))
		require.NoError(t, err)
		return v
	}
	anchor := e.sim.Anchor()
	cases := []struct {
		name   string
		filter string
		match  func(r map[string]any) bool
	}{
		{"lastUpdatedDateTime window", window("lastUpdatedDateTime", anchor.Add(-3*time.Hour), anchor.Add(-time.Hour)), func(r map[string]any) bool {
			u := at(r, "lastUpdatedDateTime")
			return !u.Before(anchor.Add(-3*time.Hour)) && !u.After(anchor.Add(-time.Hour))
		}},
		{"detectedDateTime window", window("detectedDateTime", anchor.Add(-3*time.Hour), anchor.Add(-time.Hour)), func(r map[string]any) bool {
			d := at(r, "detectedDateTime")
			return !d.Before(anchor.Add(-3*time.Hour)) && !d.After(anchor.Add(-time.Hour))
		}},
		{"activityDateTime before the span", "activityDateTime lt " + graphsim.FormatTime(anchor.Add(-5*time.Hour)), func(r map[string]any) bool {
			return at(r, "activityDateTime").Before(anchor.Add(-5 * time.Hour))
		}},
		{"activity and update combined", "activityDateTime ge " + graphsim.FormatTime(anchor.Add(-3*time.Hour)) + " and lastUpdatedDateTime le " + graphsim.FormatTime(anchor.Add(-30*time.Minute)),
			func(r map[string]any) bool {
				return !at(r, "activityDateTime").Before(anchor.Add(-3*time.Hour)) && !at(r, "lastUpdatedDateTime").After(anchor.Add(-30*time.Minute))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, r := range all {
				if c.match(r) {
					want = append(want, key(r))
				}
			}
			require.NotEmpty(t, want)
			require.Less(t, len(want), len(all))
			var got []string
			for _, r := range e.listRecords(risksPath+query("$filter", c.filter, "$top", "9"), tok) {
				got = append(got, key(r))
			}
			assert.Equal(t, want, got)
		})
	}

	asc := e.listRecords(risksPath+query("$orderby", "lastUpdatedDateTime asc", "$top", "50"), tok)
	var ascKeys []string
	for _, r := range asc {
		ascKeys = append(ascKeys, key(r))
	}
	assert.Equal(t, e.sim.Keys(tenant1, "risk_detections", anchor.Add(-5*time.Hour), anchor), ascKeys)

	// An injected detection is found by its own activityDateTime.
	long := anchor.Add(-47 * time.Hour)
	require.NoError(t, e.sim.Inject(tenant1, "risk_detections", time.Time{}, map[string]any{
		"id": "injected-risk", "lastUpdatedDateTime": "2024-01-01T00:00:00.000000Z", "activityDateTime": graphsim.FormatTime(long),
	}))
	require.NoError(t, e.sim.Inject(tenant1, "risk_detections", time.Time{}, map[string]any{
		"id": "injected-risk", "lastUpdatedDateTime": graphsim.FormatTime(anchor.Add(-time.Minute)), "activityDateTime": graphsim.FormatTime(long),
	}))
	got := idsOfRecords(e.listRecords(risksPath+query("$filter", window("activityDateTime", long, long), "$top", "100"), tok))
	assert.Equal(t, []string{"injected-risk"}, got, "only the copy updated after the activity")

	for _, c := range []struct{ name, q, want string }{
		{"$top over 500", query("$top", "501"), "between 1 and 500"},
		{"$orderby on activityDateTime", query("$orderby", "activityDateTime"), "only supported on 'lastUpdatedDateTime'"},
		{"filter on riskLevel", query("$filter", "riskLevel eq 'high'"), "not supported"},
	} {
		t.Run("400: "+c.name, func(t *testing.T) {
			msg := requireGraphError(t, e.get(risksPath+c.q, tok), http.StatusBadRequest, "BadRequest")
			assert.Contains(t, msg, c.want)
		})
	}
	requireGraphError(t, e.get(risksPath, e.token(tenant2)), http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	for _, r := range e.sim.Requests() {
		assert.Equal(t, "identity_protection", r.Family)
		assert.Equal(t, "risk_detections", r.Dataset)
	}
}

func uniq(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

var snapshotPaths = map[string]string{
	"role_assignments":            assignmentsPath,
	"role_eligibility_schedules":  eligibilityPath,
	"conditional_access_policies": policiesPath,
	"mfa_coverage":                mfaPath,
}

func TestSnapshotPaging(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{
		"role_assignments": {Count: 230}, "role_eligibility_schedules": {Count: 101},
		"conditional_access_policies": {Count: 12}, "mfa_coverage": {Count: 250},
	}
	e := start(t, smallTenants(1, spec))
	tok := e.token(tenant1)
	for dataset, path := range snapshotPaths {
		t.Run(dataset, func(t *testing.T) {
			want := e.sim.Items(tenant1, dataset)
			require.Len(t, want, spec[dataset].Count)
			ids, pages := e.listAll(path, tok)
			assert.Equal(t, want, ids, "the whole collection, in order")
			for i, p := range pages {
				assert.Equal(t, e.sim.URL()+"/v1.0/$metadata#"+strings.TrimPrefix(path, "/v1.0/"), p.Context)
				if i < len(pages)-1 {
					assert.Len(t, p.Value, 100, "default page size")
				}
			}
			assert.Len(t, pages, (len(want)+99)/100)
			ids, pages = e.listAll(path+"?$top=7", tok)
			assert.Equal(t, want, ids)
			assert.Len(t, pages, (len(want)+6)/7)
			assert.Equal(t, http.StatusOK, e.get(path+"?$top=999", tok).Status)
			for _, c := range []struct{ q, want string }{
				{"?$top=1000", "between 1 and 999"},
				{"?$filter=" + url.QueryEscape("createdDateTime ge 2024-01-01T00:00:00Z"), "'$filter' is not supported"},
				{"?$orderby=id", "'$orderby' is not supported"},
				{"?$skiptoken=nope", "invalid $skiptoken"},
				{"?$expand=manager", map[bool]string{true: "navigation property named 'manager'", false: "'$expand' is not supported"}[strings.Contains(path, "role")]},
			} {
				msg := requireGraphError(t, e.get(path+c.q, tok), http.StatusBadRequest, "BadRequest")
				assert.Contains(t, msg, c.want, c.q)
			}
		})
	}
}

func TestSnapshotExpand(t *testing.T) {
	e := start(t, smallTenants(1, map[string]graphsim.DatasetSpec{"role_assignments": {Count: 5}, "role_eligibility_schedules": {Count: 4}}))
	tok := e.token(tenant1)
	for _, path := range []string{assignmentsPath, eligibilityPath} {
		for _, c := range []struct {
			expand  string
			context string
			keys    []string
		}{
			{"", "", nil},
			{"principal,roleDefinition", "(principal(),roleDefinition())", []string{"principal", "roleDefinition"}},
			{"roleDefinition, principal", "(roleDefinition(),principal())", []string{"principal", "roleDefinition"}},
			{"principal", "(principal())", []string{"principal"}},
			{"RoleDefinition", "(roleDefinition())", []string{"roleDefinition"}},
		} {
			t.Run(path+" $expand="+c.expand, func(t *testing.T) {
				q := ""
				if c.expand != "" {
					q = query("$expand", c.expand)
				}
				r := e.get(path+q, tok)
				p := decodePage(t, r)
				assert.True(t, strings.HasSuffix(p.Context, strings.TrimPrefix(path, "/v1.0/")+c.context), p.Context)
				require.NotEmpty(t, p.Value)
				for _, raw := range p.Value {
					var m map[string]json.RawMessage
					require.NoError(t, json.Unmarshal(raw, &m))
					for _, nav := range []string{"principal", "roleDefinition"} {
						if slices.Contains(c.keys, nav) {
							assert.Contains(t, m, nav)
							assert.NotEqual(t, "null", string(m[nav]))
						} else {
							assert.NotContains(t, m, nav, "without $expand the navigation property is absent")
						}
					}
				}
			})
		}
	}
}

func TestSnapshotMutations(t *testing.T) {
	e := start(t, smallTenants(2, map[string]graphsim.DatasetSpec{"role_assignments": {Count: 6}, "conditional_access_policies": {Count: 5}}))
	tok := e.token(tenant1)
	items := func(dataset string) []map[string]any {
		return e.listRecords(snapshotPaths[dataset]+query("$expand", map[string]string{"role_assignments": "principal,roleDefinition"}[dataset]), tok)
	}
	if items := e.sim.Items(tenant1, "conditional_access_policies"); assert.Len(t, items, 5) {
		// Modify in place.
		p := items
		obj := map[string]any{"id": p[2], "displayName": "Renamed", "state": "disabled"}
		require.NoError(t, e.sim.SetItem(tenant1, "conditional_access_policies", obj))
		got := e.listRecords(policiesPath, tok)
		assert.Equal(t, p, idsOfRecords(got), "same position")
		assert.Equal(t, "Renamed", got[2]["displayName"])
		// Add at the end, remove one.
		require.NoError(t, e.sim.SetItem(tenant1, "conditional_access_policies", map[string]any{"id": "new-policy", "displayName": "New", "state": "enabled"}))
		require.NoError(t, e.sim.RemoveItem(tenant1, "conditional_access_policies", p[0]))
		assert.Equal(t, append(slices.Clone(p[1:]), "new-policy"), e.sim.Items(tenant1, "conditional_access_policies"))
		assert.Equal(t, e.sim.Items(tenant1, "conditional_access_policies"), idsOfRecords(e.listRecords(policiesPath, tok)))
		// The other tenant is untouched.
		assert.Len(t, e.sim.Items(tenant2, "conditional_access_policies"), 5)
		assert.NotContains(t, e.sim.Items(tenant2, "conditional_access_policies"), "new-policy")
	}

	// Role assignments: $expand resolves a new item's principalId and roleDefinitionId, or serves what was given.
	users := e.listRecords(assignmentsPath+query("$expand", "principal"), tok)
	principal := users[3]["principal"].(map[string]any)
	require.NoError(t, e.sim.SetItem(tenant1, "role_assignments", map[string]any{
		"id": "resolved", "principalId": principal["id"], "roleDefinitionId": "5d6b6bb7-de71-4623-b4af-96380a352509", "directoryScopeId": "/"}))
	require.NoError(t, e.sim.SetItem(tenant1, "role_assignments", map[string]any{
		"id": "unknown-principal", "principalId": "00000000-0000-0000-0000-000000000000", "roleDefinitionId": "nope", "directoryScopeId": "/"}))
	require.NoError(t, e.sim.SetItem(tenant1, "role_assignments", map[string]any{
		"id": "explicit", "principalId": "sp-1", "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/",
		"principal": map[string]any{"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp-1", "displayName": "Automation"}}))
	byID := map[string]map[string]any{}
	for _, r := range items("role_assignments") {
		byID[r["id"].(string)] = r
	}
	assert.Equal(t, principal["userPrincipalName"], byID["resolved"]["principal"].(map[string]any)["userPrincipalName"])
	assert.Equal(t, "Security Reader", byID["resolved"]["roleDefinition"].(map[string]any)["displayName"])
	assert.Nil(t, byID["unknown-principal"]["principal"])
	assert.Nil(t, byID["unknown-principal"]["roleDefinition"])
	assert.Equal(t, "Automation", byID["explicit"]["principal"].(map[string]any)["displayName"])
	assert.Equal(t, "Global Administrator", byID["explicit"]["roleDefinition"].(map[string]any)["displayName"])
	for _, r := range e.listRecords(assignmentsPath, tok) {
		assert.NotContains(t, r, "principal", "an explicit principal is served only with $expand")
	}

	// A page boundary survives a removal before it: nothing lost, nothing repeated.
	all := e.sim.Items(tenant1, "role_assignments")
	p1 := decodePage(t, e.get(assignmentsPath+"?$top=3", tok))
	require.NoError(t, e.sim.RemoveItem(tenant1, "role_assignments", all[0]))
	rest, _ := e.listAll(p1.NextLink, tok)
	assert.Equal(t, all[3:], rest)

	for _, c := range []struct {
		name string
		err  error
	}{
		{"no id", e.sim.SetItem(tenant1, "role_assignments", map[string]any{"principalId": "x"})},
		{"numeric id", e.sim.SetItem(tenant1, "role_assignments", map[string]any{"id": 7})},
		{"event stream", e.sim.SetItem(tenant1, "signins", map[string]any{"id": "x"})},
		{"unknown tenant", e.sim.SetItem(graphsimtest.TenantID(9), "role_assignments", map[string]any{"id": "x"})},
		{"unknown dataset", e.sim.SetItem(tenant1, "roles", map[string]any{"id": "x"})},
		{"remove unknown id", e.sim.RemoveItem(tenant1, "role_assignments", "missing")},
		{"remove from a stream", e.sim.RemoveItem(tenant1, "directory_audits", "x")},
	} {
		assert.Error(t, c.err, c.name)
	}
	assert.Nil(t, e.sim.Items(tenant1, "signins"))
	assert.Nil(t, e.sim.Items(graphsimtest.TenantID(9), "role_assignments"))
	assert.Nil(t, e.sim.IDs(tenant1, "role_assignments", time.Time{}, time.Now()), "IDs is for event streams")
	assert.Empty(t, e.sim.Items(tenant1, "mfa_coverage"), "a dataset left out is empty")
}

func TestSnapshotConsistency(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{
		"role_assignments": {Count: 40}, "role_eligibility_schedules": {Count: 15},
		"conditional_access_policies": {Count: 10}, "mfa_coverage": {Count: 300},
		"signins": {Count: 200, Span: time.Hour},
	}
	e := start(t, smallTenants(1, spec))
	tok := e.token(tenant1)
	mfa := map[string]map[string]any{}
	for _, r := range e.listRecords(mfaPath+"?$top=999", tok) {
		mfa[r["id"].(string)] = r
	}
	require.Len(t, mfa, 300, "mfa_coverage grows the user pool to its count")

	privileged := map[string]bool{}
	holders := map[string]bool{}
	for _, r := range e.listRecords(assignmentsPath+query("$expand", "principal,roleDefinition"), tok) {
		pid := r["principalId"].(string)
		require.Contains(t, mfa, pid, "principals are users of the pool")
		assert.Equal(t, mfa[pid]["userPrincipalName"], r["principal"].(map[string]any)["userPrincipalName"])
		holders[pid] = true
		if r["roleDefinition"].(map[string]any)["displayName"] == "Global Administrator" {
			privileged[pid] = true
		}
	}
	admins, unregistered := 0, 0
	for id, d := range mfa {
		assert.Equal(t, holders[id], d["isAdmin"], "isAdmin says whether %s holds a role", id)
		if d["isAdmin"] == true {
			admins++
			if d["isMfaRegistered"] == false {
				unregistered++
			}
		}
		assert.Equal(t, d["isMfaRegistered"], d["isMfaCapable"])
	}
	assert.Positive(t, unregistered, "a privileged role without MFA exists")
	assert.Less(t, unregistered, admins/2, "but only a few")
	assert.GreaterOrEqual(t, len(privileged), 2, "the admin and the break-glass account")
	for _, r := range e.listRecords(eligibilityPath, tok) {
		assert.Contains(t, mfa, r["principalId"])
	}

	policies := e.listRecords(policiesPath, tok)
	states := map[string]int{}
	byID := map[string]map[string]any{}
	for _, p := range policies {
		states[p["state"].(string)]++
		byID[p["id"].(string)] = p
	}
	assert.Len(t, states, 3, "%v", states)
	// The policies sign-ins report are among them, by id and name.
	for _, s := range e.listRecords(signInsPath+"?$top=50", tok)[:5] {
		for _, applied := range s["appliedConditionalAccessPolicies"].([]any) {
			a := applied.(map[string]any)
			require.Contains(t, byID, a["id"])
			assert.Equal(t, a["displayName"], byID[a["id"].(string)]["displayName"])
		}
	}
	// The MFA policy exempts an admin who has no MFA: the break-glass account.
	mfaPolicy := byID["8f45d9e0-6c7b-4b7e-9b4c-2a6f0c1b7d11"]
	excluded := mfaPolicy["conditions"].(map[string]any)["users"].(map[string]any)["excludeUsers"].([]any)
	require.Len(t, excluded, 1)
	assert.Equal(t, true, mfa[excluded[0].(string)]["isAdmin"])
	assert.Equal(t, false, mfa[excluded[0].(string)]["isMfaRegistered"])
}

func TestSnapshotLicencesAndRoles(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"role_assignments": {Count: 3}, "role_eligibility_schedules": {Count: 3},
		"conditional_access_policies": {Count: 3}, "mfa_coverage": {Count: 3}}
	cfg := smallTenants(2, spec)
	cfg.Tenants[1].Unlicensed = true
	e := start(t, cfg)
	unlicensed := e.token(tenant2)
	for dataset, path := range snapshotPaths {
		if dataset == "role_assignments" {
			assert.Equal(t, http.StatusOK, e.get(path, unlicensed).Status, "role assignments need no premium licence")
			continue
		}
		requireGraphError(t, e.get(path, unlicensed), http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	}
	cases := []struct {
		roles []string
		want  map[string]int
	}{
		{[]string{"RoleManagement.Read.Directory"}, map[string]int{"role_assignments": 200, "role_eligibility_schedules": 200, "conditional_access_policies": 403, "mfa_coverage": 403}},
		{[]string{"Directory.Read.All"}, map[string]int{"role_assignments": 200, "role_eligibility_schedules": 403, "conditional_access_policies": 403, "mfa_coverage": 403}},
		{[]string{"RoleEligibilitySchedule.Read.Directory", "Policy.Read.All", "AuditLog.Read.All"},
			map[string]int{"role_assignments": 403, "role_eligibility_schedules": 200, "conditional_access_policies": 200, "mfa_coverage": 200}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.roles, ","), func(t *testing.T) {
			e.sim.SetRoles(tenant1, graphsimtest.ClientID, c.roles)
			tok := e.token(tenant1)
			for dataset, want := range c.want {
				assert.Equal(t, want, e.get(snapshotPaths[dataset], tok).Status, dataset)
			}
		})
	}
	families := map[string]string{}
	for _, r := range e.sim.Requests() {
		families[r.Dataset] = r.Family
	}
	assert.Equal(t, map[string]string{"role_assignments": "directory", "role_eligibility_schedules": "directory",
		"conditional_access_policies": "identity_protection", "mfa_coverage": "reports"}, families)
}

func TestDatasetsAreDeterministic(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{}
	for k, v := range allDatasets {
		spec[k] = v
	}
	for _, k := range []string{"signins", "signins_non_interactive", "signins_service_principal", "signins_managed_identity", "directory_audits"} {
		spec[k] = graphsim.DatasetSpec{Count: 40, Span: time.Hour}
	}
	cfg := smallTenants(1, spec)
	cfg.Seed = 99
	cfg.Anchor = time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)
	a, b := start(t, cfg), start(t, cfg)
	cfg.Seed = 100
	c := start(t, cfg)
	paths := []string{signInsPath, auditsPath, alertsPath, risksPath, assignmentsPath + query("$expand", "principal,roleDefinition"),
		eligibilityPath, policiesPath, mfaPath}
	for _, kind := range []string{"nonInteractiveUser", "servicePrincipal", "managedIdentity"} {
		paths = append(paths, betaSignInsPath+query("$filter", "signInEventTypes/any(t: t eq '"+kind+"')"))
	}
	values := func(e *env, path string) string {
		var p page
		require.NoError(t, json.Unmarshal(e.get(path, e.token(tenant1)).Body, &p))
		raw, err := json.Marshal(p.Value)
		require.NoError(t, err)
		return string(raw)
	}
	for _, path := range paths {
		va := values(a, path)
		assert.Equal(t, va, values(b, path), "same seed, same records: %s", path)
		assert.NotEqual(t, va, values(c, path), "another seed, other records: %s", path)
	}
}

func TestFaultOrder(t *testing.T) {
	e := start(t, smallTenants(1, withData))
	tok := e.token(tenant1)
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, nil)
	denied := e.token(tenant1)

	// A status fault answers before the permission check.
	e.sim.FailNext(graphsim.Fault{Kind: "status", Status: 503})
	requireGraphError(t, e.get(signInsPath, denied), http.StatusServiceUnavailable, "serviceNotAvailable")
	// A body fault needs a 200 to damage: refused requests leave it queued, in its place.
	e.sim.FailNext(graphsim.Fault{Kind: "truncate"}, graphsim.Fault{Kind: "status", Status: 500, Path: "directoryAudits"})
	requireGraphError(t, e.get(signInsPath, denied), http.StatusForbidden, "Authorization_RequestDenied")
	requireGraphError(t, e.get(signInsPath+"?$top=0", tok), http.StatusBadRequest, "BadRequest")
	r := e.get(signInsPath, tok)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.False(t, json.Valid(r.Body), "the truncate fault applied to the first request that succeeded")
	requireGraphError(t, e.get(auditsPath, tok), http.StatusInternalServerError, "generalException")
	assert.Equal(t, int64(3), e.sim.Stats().Faults, "faults count when applied")
}

func TestIdentityProtectionLimitIsTenantWide(t *testing.T) {
	const other = "99999999-0000-4000-8000-000000000099"
	cfg := smallTenants(1, map[string]graphsim.DatasetSpec{"risk_detections": {Count: 3}})
	cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps, graphsim.App{ClientID: other, Secret: "other-secret", Roles: graphsimtest.AllRoles})
	cfg.RateLimits.Enforce = true
	e := start(t, cfg)
	tokA := e.token(tenant1)
	status, body := e.rawToken(tenant1, other, "other-secret", graphsimtest.Scope)
	require.Equal(t, http.StatusOK, status)
	tokB := body["access_token"].(string)

	ra, err := e.do(risksPath, tokA, nil)
	require.NoError(t, err)
	rb, err := e.do(risksPath, tokB, nil)
	require.NoError(t, err)
	log := e.sim.Requests()
	require.Len(t, log, 2)
	assert.Equal(t, http.StatusOK, ra.Status)
	if log[1].At.Sub(log[0].At) < time.Second { // the second app's request fell in the first one's second
		requireGraphError(t, rb, http.StatusTooManyRequests, "TooManyRequests")
		assert.Empty(t, rb.Header.Get("Retry-After"), "identity protection sends no Retry-After")
		assert.Equal(t, int64(1), e.sim.Stats().Throttled)
	} else {
		assert.Equal(t, http.StatusOK, rb.Status)
	}
}

func TestDefaultLimits(t *testing.T) {
	l := graphsim.DefaultLimits()
	assert.Equal(t, graphsim.Limit{TenantRequests: 5, AppRequests: 122, Window: 10 * time.Second}, l["reports"])
	assert.Equal(t, graphsim.Limit{TenantRequests: 1, Window: time.Second, OmitRetryAfter: true, TenantWide: true}, l["identity_protection"])
	assert.Equal(t, graphsim.Limit{TenantRequests: 150, Window: time.Minute}, l["security"])
	assert.Equal(t, graphsim.Limit{TenantRequests: 100, Window: 10 * time.Second}, l["directory"])
	assert.Len(t, l, 4)
}

func TestDatasetConfigValidation(t *testing.T) {
	cert := graphsimtest.NewClientCertificate(t, "x")
	tenant := func(ds map[string]graphsim.DatasetSpec) graphsim.Config {
		return graphsim.Config{Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, ds)}}
	}
	withApp := func(app graphsim.App) graphsim.Config {
		c := tenant(nil)
		c.Tenants[0].Apps = append(c.Tenants[0].Apps, app)
		return c
	}
	withMI := func(mis ...graphsim.ManagedIdentity) graphsim.Config {
		c := tenant(nil)
		c.ManagedIdentities = mis
		return c
	}
	cases := []struct {
		name    string
		cfg     graphsim.Config
		wantErr string // "" = valid
	}{
		{"versions on alerts", tenant(map[string]graphsim.DatasetSpec{"security_alerts": {Count: 9, Versions: 3}}), ""},
		{"versions on sign-ins", tenant(map[string]graphsim.DatasetSpec{"signins": {Count: 9, Versions: 3}}), "versions applies to"},
		{"versions with ties", tenant(map[string]graphsim.DatasetSpec{"risk_detections": {Count: 9, Versions: 3, PerTimestamp: 2}}), "requires per_timestamp 1"},
		{"negative count", tenant(map[string]graphsim.DatasetSpec{"directory_audits": {Count: -1}}), "must not be negative"},
		{"late fraction over 1", tenant(map[string]graphsim.DatasetSpec{"signins": {Count: 1, LateFraction: 2}}), "at most 1"},
		{"mfa_coverage too large", tenant(map[string]graphsim.DatasetSpec{"mfa_coverage": {Count: 100_001}}), "exceeds"},
		{"more role assignments than pairs", tenant(map[string]graphsim.DatasetSpec{"role_assignments": {Count: 200*13 + 1}}), "exceeds"},
		{"role assignments fill a grown pool", tenant(map[string]graphsim.DatasetSpec{"role_assignments": {Count: 200*13 + 1}, "mfa_coverage": {Count: 201}}), ""},
		{"certificate", withApp(graphsim.App{ClientID: "c", Certificate: cert.CertPEM}), ""},
		{"bad certificate", withApp(graphsim.App{ClientID: "c", Certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}), "certificate"},
		{"not PEM", withApp(graphsim.App{ClientID: "c", Certificate: "hello"}), "no PEM CERTIFICATE block"},
		{"managed identities", withMI(graphsim.ManagedIdentity{ClientID: "a", TenantID: tenant1, SystemAssigned: true}, graphsim.ManagedIdentity{ClientID: "b", TenantID: tenant1}), ""},
		{"two system-assigned", withMI(graphsim.ManagedIdentity{ClientID: "a", TenantID: tenant1, SystemAssigned: true}, graphsim.ManagedIdentity{ClientID: "b", TenantID: tenant1, SystemAssigned: true}), "at most one system-assigned"},
		{"identity in an unknown tenant", withMI(graphsim.ManagedIdentity{ClientID: "a", TenantID: tenant2}), "is not one of the tenants"},
		{"identity without client id", withMI(graphsim.ManagedIdentity{TenantID: tenant1}), "client_id is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := graphsim.Start(c.cfg)
			if err == nil {
				_ = s.Close()
			}
			if c.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

func TestDemoConfig(t *testing.T) {
	cfg, err := graphsim.LoadConfig("cmd/graphsim/demo.yaml")
	require.NoError(t, err)
	require.Len(t, cfg.Tenants, 2)
	contoso, fabrikam := cfg.Tenants[0], cfg.Tenants[1]
	assert.Equal(t, "contoso", contoso.Name)
	assert.Equal(t, "fabrikam", fabrikam.Name)
	assert.True(t, fabrikam.Unlicensed)
	assert.False(t, contoso.Unlicensed)
	datasets := []string{"signins", "signins_non_interactive", "signins_service_principal", "signins_managed_identity", "directory_audits",
		"security_alerts", "risk_detections", "role_assignments", "role_eligibility_schedules", "conditional_access_policies", "mfa_coverage",
		"security_incidents", "intune_audit_events", "risky_users"}
	for _, tn := range cfg.Tenants {
		for _, d := range datasets {
			assert.Positive(t, tn.Datasets[d].Count, "%s has %s", tn.Name, d)
		}
	}
	for _, r := range graphsimtest.AllRoles {
		assert.Contains(t, contoso.Apps[0].Roles, r, "contoso grants every role")
	}
	assert.NotContains(t, fabrikam.Apps[0].Roles, "SecurityAlert.Read.All")
	cfg.Addr = ""
	e := start(t, cfg)
	for i, tn := range cfg.Tenants {
		status, body := e.rawToken(tn.ID, tn.Apps[0].ClientID, tn.Apps[0].Secret, graphsimtest.Scope)
		require.Equal(t, http.StatusOK, status, "%v", body)
		tok := body["access_token"].(string)
		want := map[string]int{alertsPath: 200, risksPath: 200, eligibilityPath: 200}
		if i == 1 {
			want = map[string]int{alertsPath: 403, risksPath: 403, eligibilityPath: 403}
		}
		for path, status := range want {
			assert.Equal(t, status, e.get(path+"?$top=1", tok).Status, "%s %s", tn.Name, path)
		}
	}
}
