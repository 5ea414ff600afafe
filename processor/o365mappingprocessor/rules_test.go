package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

var t0 = time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC)

type place struct {
	city, country string
	lat, lon      float64
}

var (
	seattle = place{"Seattle", "US", 47.6062, -122.3321}
	tacoma  = place{"Tacoma", "US", 47.2529, -122.4443}
	newYork = place{"New York", "US", 40.7128, -74.0060}
	london  = place{"London", "GB", 51.5074, -0.1278}
)

// si is a sign-in of user from ip at t0+at; code 0 is a success.
func si(tb testing.TB, id, user, ip string, at time.Duration, code int, p place) string {
	status := map[string]any{"errorCode": code, "failureReason": "Other.", "additionalDetails": nil}
	if code == 50126 {
		status["failureReason"] = "Error validating credentials due to invalid username or password."
	}
	return edit(tb, sample(tb, "signin"), map[string]any{
		"id": id, "createdDateTime": t0.Add(at).Format("2006-01-02T15:04:05.0000000Z"),
		"userPrincipalName": user, "userId": "uid-" + user, "ipAddress": ip, "status": status,
		"location": map[string]any{"city": p.city, "state": "", "countryOrRegion": p.country,
			"geoCoordinates": map[string]any{"latitude": p.lat, "longitude": p.lon, "altitude": nil}},
	})
}

// failures returns n failed sign-ins of user from ip, one a minute from t0+from, ids prefix-0...
func failures(tb testing.TB, prefix, user, ip string, from time.Duration, n, code int) []string {
	var out []string
	for i := range n {
		out = append(out, si(tb, fmt.Sprintf("%s-%d", prefix, i), user, ip, from+time.Duration(i)*time.Minute, code, seattle))
	}
	return out
}

func roleAssignment(tb testing.TB, id, userID, roleTemplate, roleName string) string {
	return edit(tb, sample(tb, "role_assignment"), map[string]any{
		"id": id, "principalId": userID, "roleDefinitionId": roleTemplate,
		"principal.id": userID, "principal.userPrincipalName": userID + "@contoso.com",
		"roleDefinition.id": roleTemplate, "roleDefinition.templateId": roleTemplate, "roleDefinition.displayName": roleName,
	})
}

func mfaRegistration(tb testing.TB, userID string, registered bool) string {
	return edit(tb, sample(tb, "mfa_registration"), map[string]any{
		"id": userID, "userPrincipalName": userID + "@contoso.com", "isMfaRegistered": registered,
	})
}

func caPolicy(tb testing.TB, id, state string, at time.Duration) string {
	return edit(tb, sample(tb, "conditional_access_policy"), map[string]any{
		"id": id, "state": state, "modifiedDateTime": t0.Add(at).Format(time.RFC3339Nano),
	})
}

func caAudit(tb testing.TB, id, activity, policyID, oldState, newState string, at time.Duration) string {
	op := "Update"
	if activity == "Delete conditional access policy" {
		op = "Delete"
	}
	props := []any{}
	if newState != "" {
		old, _ := json.Marshal(map[string]any{"id": policyID, "state": oldState})
		nw, _ := json.Marshal(map[string]any{"id": policyID, "state": newState})
		props = append(props, map[string]any{"displayName": "ConditionalAccessPolicy", "oldValue": string(old), "newValue": string(nw)})
	}
	return edit(tb, sample(tb, "directory_audit"), map[string]any{
		"id": id, "category": "Policy", "activityDisplayName": activity, "operationType": op, "loggedByService": "Conditional Access",
		"activityDateTime": t0.Add(at).Format("2006-01-02T15:04:05.0000000Z"),
		"targetResources":  []any{map[string]any{"id": policyID, "displayName": "Require MFA", "type": "Policy", "modifiedProperties": props}},
	})
}

// batch is one receiver page of a dataset; changes sets o365.change by record index.
type batch struct {
	dataset string
	objects []string
	changes map[int]string
}

func signins(objs ...string) batch { return batch{dataset: a.DatasetSignIns, objects: objs} }

func (b batch) logs(tb testing.TB) plog.Logs {
	ld := receiverLogs(tb, b.dataset, page(b.objects...))
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i, c := range b.changes {
		lrs.At(i).Attributes().PutStr(a.Change, c)
	}
	return ld
}

// run feeds the batches to a processor with the default rules and returns the incidents of rule.
func run(t *testing.T, rule string, batches ...batch) []plog.LogRecord {
	t.Helper()
	p, sink, _ := newTestProcessor(t, defaultConfig())
	for _, b := range batches {
		require.NoError(t, p.ConsumeLogs(context.Background(), b.logs(t)))
	}
	var out []plog.LogRecord
	for _, inc := range incidentsOf(sink.AllLogs()...) {
		if attrStr(inc, a.IncidentRule) == rule {
			out = append(out, inc)
		}
	}
	return out
}

func evidence(lr plog.LogRecord) []string {
	v, ok := lr.Attributes().Get(a.IncidentRecordIDs)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range v.Slice().AsRaw() {
		out = append(out, e.(string))
	}
	return out
}

func concat(parts ...[]string) []string { return slices.Concat(parts...) }

type ruleCase struct {
	name    string
	batches func(t *testing.T) []batch
	want    int      // incidents of the rule
	ids     []string // evidence of the first incident, when set
	ents    map[string]string
}

func runRuleCases(t *testing.T, rule string, cases []ruleCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, rule, tc.batches(t)...)
			require.Len(t, got, tc.want)
			if tc.ids != nil {
				assert.Equal(t, tc.ids, evidence(got[0]))
				assert.Equal(t, int64(len(tc.ids)), got[0].Attributes().AsRaw()[a.IncidentRecordCount])
			}
			for k, v := range tc.ents {
				ents, ok := got[0].Attributes().Get(a.IncidentEntities)
				require.True(t, ok)
				assert.Equal(t, v, ents.Map().AsRaw()[k])
				assert.Equal(t, v, attrStr(got[0], k))
			}
			for _, inc := range got {
				assert.Equal(t, a.EventIncidentCandidate, inc.EventName())
			}
		})
	}
}

func TestRuleBruteForce(t *testing.T) {
	const alice, bob = "alice@contoso.com", "bob@contoso.com"
	ids := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s-%d", prefix, i))
		}
		return out
	}
	runRuleCases(t, "brute_force", []ruleCase{
		{name: "five failures then a success fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{signins(append(failures(t, "f", alice, "203.0.113.7", 0, 5, 50126),
					si(t, "ok", alice, "203.0.113.7", 6*time.Minute, 0, seattle))...)}
			},
			ids: concat(ids("f", 5), []string{"ok"}), ents: map[string]string{a.UserName: alice}},
		{name: "across batches, with more failures than needed", want: 1,
			batches: func(t *testing.T) []batch {
				fs := failures(t, "f", alice, "203.0.113.7", 0, 7, 50126)
				return []batch{signins(fs[:4]...), signins(fs[4:]...), signins(si(t, "ok", alice, "203.0.113.7", 8*time.Minute, 0, seattle))}
			},
			ids: concat(ids("f", 7), []string{"ok"})},
		{name: "four failures then a success does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(append(failures(t, "f", alice, "ip", 0, 4, 50126), si(t, "ok", alice, "ip", 5*time.Minute, 0, seattle))...)}
			}},
		{name: "success outside the window does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(append(failures(t, "f", alice, "ip", 0, 5, 50126), si(t, "ok", alice, "ip", 20*time.Minute, 0, seattle))...)}
			}},
		{name: "MFA interrupts are not credential failures", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(append(failures(t, "f", alice, "ip", 0, 5, 50074), si(t, "ok", alice, "ip", 6*time.Minute, 0, seattle))...)}
			}},
		{name: "another user's success does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(append(failures(t, "f", alice, "ip", 0, 5, 50126), si(t, "ok", bob, "ip", 6*time.Minute, 0, seattle))...)}
			}},
		{name: "success before the failures does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(append([]string{si(t, "ok", alice, "ip", 0, 0, seattle)}, failures(t, "f", alice, "ip", time.Minute, 5, 50126)...)...)}
			}},
		{name: "failures redelivered do not count twice", want: 0,
			batches: func(t *testing.T) []batch {
				fs := failures(t, "f", alice, "ip", 0, 3, 50126)
				return []batch{signins(fs...), signins(fs...), signins(si(t, "ok", alice, "ip", 5*time.Minute, 0, seattle))}
			}},
		{name: "a second attack within the suppression window is suppressed", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{
					signins(append(failures(t, "f", alice, "ip", 0, 5, 50126), si(t, "ok", alice, "ip", 6*time.Minute, 0, seattle))...),
					signins(append(failures(t, "g", alice, "ip", 20*time.Minute, 5, 50126), si(t, "ok2", alice, "ip", 26*time.Minute, 0, seattle))...),
				}
			}},
		{name: "a second attack after the suppression window fires again", want: 2,
			batches: func(t *testing.T) []batch {
				return []batch{
					signins(append(failures(t, "f", alice, "ip", 0, 5, 50126), si(t, "ok", alice, "ip", 6*time.Minute, 0, seattle))...),
					signins(append(failures(t, "g", alice, "ip", 2*time.Hour, 5, 50126), si(t, "ok2", alice, "ip", 2*time.Hour+6*time.Minute, 0, seattle))...),
				}
			}},
	})
}

func TestRulePasswordSpray(t *testing.T) {
	spray := func(t *testing.T, n int, sameIP bool, step time.Duration) []string {
		var out []string
		for i := range n {
			ip := "198.51.100.9"
			if !sameIP {
				ip = fmt.Sprintf("198.51.100.%d", i+10)
			}
			out = append(out, si(t, fmt.Sprintf("s-%02d", i), fmt.Sprintf("user%02d@contoso.com", i), ip, time.Duration(i)*step, 50126, seattle))
		}
		return out
	}
	var tenIDs []string
	for i := range 10 {
		tenIDs = append(tenIDs, fmt.Sprintf("s-%02d", i))
	}
	runRuleCases(t, "password_spray", []ruleCase{
		{name: "ten users from one address fires", want: 1, ids: tenIDs,
			ents:    map[string]string{a.ClientAddress: "198.51.100.9"},
			batches: func(t *testing.T) []batch { return []batch{signins(spray(t, 10, true, time.Minute)...)} }},
		{name: "nine users does not fire", want: 0,
			batches: func(t *testing.T) []batch { return []batch{signins(spray(t, 9, true, time.Minute)...)} }},
		{name: "one user ten times does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(failures(t, "f", "alice@contoso.com", "198.51.100.9", 0, 10, 50126)...)}
			}},
		{name: "ten users from ten addresses does not fire", want: 0,
			batches: func(t *testing.T) []batch { return []batch{signins(spray(t, 10, false, time.Minute)...)} }},
		{name: "ten users over five hours does not fire", want: 0,
			batches: func(t *testing.T) []batch { return []batch{signins(spray(t, 10, true, 30*time.Minute)...)} }},
		{name: "twenty users fire once (suppression)", want: 1,
			batches: func(t *testing.T) []batch { return []batch{signins(spray(t, 20, true, time.Minute)...)} }},
		{name: "redelivered page does not count twice", want: 0,
			batches: func(t *testing.T) []batch {
				s := spray(t, 6, true, time.Minute)
				return []batch{signins(s...), signins(s...)}
			}},
	})
}

func TestRulePrivilegedRoleWithoutMFA(t *testing.T) {
	const globalAdmin = "62e90394-69f5-4237-9190-012177145e10"
	const reader = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b" // Directory Readers
	roles := func(objs ...string) batch { return batch{dataset: a.DatasetRoleAssignments, objects: objs} }
	mfa := func(objs ...string) batch { return batch{dataset: a.DatasetMFACoverage, objects: objs} }
	runRuleCases(t, "privileged_role_without_mfa", []ruleCase{
		{name: "global admin without MFA fires", want: 1, ids: []string{"assign-1", "u1"},
			ents: map[string]string{a.UserID: "u1"},
			batches: func(t *testing.T) []batch {
				return []batch{roles(roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator")), mfa(mfaRegistration(t, "u1", false))}
			}},
		{name: "MFA snapshot first fires too", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{mfa(mfaRegistration(t, "u1", false)), roles(roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator"))}
			}},
		{name: "registered user does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{roles(roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator")), mfa(mfaRegistration(t, "u1", true))}
			}},
		{name: "non-privileged role does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{roles(roleAssignment(t, "assign-1", "u1", reader, "Directory Readers")), mfa(mfaRegistration(t, "u1", false))}
			}},
		{name: "another user's missing MFA does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{roles(roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator")), mfa(mfaRegistration(t, "u2", false))}
			}},
		{name: "role removed before the MFA snapshot does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				ra := roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator")
				return []batch{roles(ra), {dataset: a.DatasetRoleAssignments, objects: []string{ra}, changes: map[int]string{0: a.ChangeRemoved}},
					mfa(mfaRegistration(t, "u1", false))}
			}},
		{name: "role removed as the receiver reports it (id only) does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				ra := roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator")
				return []batch{roles(ra), {dataset: a.DatasetRoleAssignments, objects: []string{`{"id":"assign-1"}`}, changes: map[int]string{0: a.ChangeRemoved}},
					mfa(mfaRegistration(t, "u1", false))}
			}},
		{name: "user registered since does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{mfa(mfaRegistration(t, "u1", false)), mfa(mfaRegistration(t, "u1", true)),
					roles(roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator"))}
			}},
		{name: "the next snapshots do not repeat it", want: 1,
			batches: func(t *testing.T) []batch {
				ra, m := roleAssignment(t, "assign-1", "u1", globalAdmin, "Global Administrator"), mfaRegistration(t, "u1", false)
				return []batch{roles(ra), mfa(m), roles(ra), mfa(m), roles(ra)}
			}},
	})
}

func TestRuleConditionalAccessPolicyDisabled(t *testing.T) {
	const pol = "9ad78153-b1f8-4714-adc1-1445727ab6ea"
	policies := func(changes map[int]string, objs ...string) batch {
		return batch{dataset: a.DatasetConditionalAccessPolicies, objects: objs, changes: changes}
	}
	audits := func(objs ...string) batch { return batch{dataset: a.DatasetDirectoryAudits, objects: objs} }
	modified := map[int]string{0: a.ChangeModified}
	runRuleCases(t, "conditional_access_policy_disabled", []ruleCase{
		{name: "policy change record to disabled fires", want: 1, ids: []string{pol},
			ents: map[string]string{a.PolicyID: pol},
			batches: func(t *testing.T) []batch {
				return []batch{policies(nil, caPolicy(t, pol, "enabled", 0)), policies(modified, caPolicy(t, pol, "disabled", time.Hour))}
			}},
		{name: "policy switched to report-only fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{policies(modified, caPolicy(t, pol, "enabledForReportingButNotEnforced", time.Hour))}
			}},
		{name: "policy removed fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{policies(map[int]string{0: a.ChangeRemoved}, caPolicy(t, pol, "enabled", time.Hour))}
			}},
		{name: "audit of a disabling update fires", want: 1, ids: []string{"audit-1"},
			batches: func(t *testing.T) []batch {
				return []batch{audits(caAudit(t, "audit-1", "Update conditional access policy", pol, "enabled", "disabled", 0))}
			}},
		{name: "audit of a delete fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{audits(caAudit(t, "audit-1", "Delete conditional access policy", pol, "", "", 0))}
			}},
		{name: "audit of another update does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{audits(caAudit(t, "audit-1", "Update conditional access policy", pol, "enabled", "enabled", 0))}
			}},
		{name: "policy modified but still enabled does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{policies(modified, caPolicy(t, pol, "enabled", time.Hour))}
			}},
		{name: "a disabled policy in the snapshot does not fire", want: 0,
			batches: func(t *testing.T) []batch { return []batch{policies(nil, caPolicy(t, pol, "disabled", 0))} }},
		{name: "an already disabled policy modified again does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{policies(nil, caPolicy(t, pol, "disabled", 0)), policies(modified, caPolicy(t, pol, "disabled", time.Hour))}
			}},
		{name: "after a restart, the snapshot of the new version before its change record still fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{policies(nil, caPolicy(t, pol, "disabled", time.Hour)), policies(modified, caPolicy(t, pol, "disabled", time.Hour))}
			}},
		{name: "change record after its own snapshot in the same poll still fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{policies(nil, caPolicy(t, pol, "enabled", 0)),
					policies(map[int]string{1: a.ChangeModified}, caPolicy(t, pol, "disabled", time.Hour), caPolicy(t, pol, "disabled", time.Hour))}
			}},
		{name: "audit and change record of one change make one incident", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{audits(caAudit(t, "audit-1", "Update conditional access policy", pol, "enabled", "disabled", time.Hour)),
					policies(modified, caPolicy(t, pol, "disabled", time.Hour))}
			}},
	})
}

func TestRuleImpossibleTravel(t *testing.T) {
	const alice = "alice@contoso.com"
	runRuleCases(t, "impossible_travel", []ruleCase{
		{name: "Seattle then London an hour later fires", want: 1, ids: []string{"a", "b"},
			ents: map[string]string{a.UserName: alice},
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "a", alice, "ip1", 0, 0, seattle), si(t, "b", alice, "ip2", time.Hour, 0, london))}
			}},
		{name: "out of order fires too", want: 1, ids: []string{"a", "b"},
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "b", alice, "ip2", time.Hour, 0, london)), signins(si(t, "a", alice, "ip1", 0, 0, seattle))}
			}},
		{name: "Seattle then New York ten hours later does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "a", alice, "ip1", 0, 0, seattle), si(t, "b", alice, "ip2", 10*time.Hour, 0, newYork))}
			}},
		{name: "nearby places minutes apart do not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "a", alice, "ip1", 0, 0, seattle), si(t, "b", alice, "ip2", 5*time.Minute, 0, tacoma))}
			}},
		{name: "failed sign-ins do not count", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "a", alice, "ip1", 0, 0, seattle), si(t, "b", alice, "ip2", time.Hour, 50126, london))}
			}},
		{name: "two users do not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "a", alice, "ip1", 0, 0, seattle), si(t, "b", "bob@contoso.com", "ip2", time.Hour, 0, london))}
			}},
		{name: "more than a window apart does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{signins(si(t, "a", alice, "ip1", 0, 0, seattle), si(t, "b", alice, "ip2", 30*time.Hour, 0, london))}
			}},
		{name: "the same sign-in redelivered does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				s := si(t, "a", alice, "ip1", 0, 0, seattle)
				return []batch{signins(s), signins(s)}
			}},
	})
}

// TestImpossibleTravelDetails checks the distance and speed the incident carries.
func TestImpossibleTravelDetails(t *testing.T) {
	got := run(t, "impossible_travel", signins(si(t, "a", "alice@contoso.com", "ip1", 0, 0, seattle), si(t, "b", "alice@contoso.com", "ip2", time.Hour, 0, london)))
	require.Len(t, got, 1)
	raw := got[0].Attributes().AsRaw()
	assert.InDelta(t, 7725, raw["o365.incident.distance_km"], 30)
	assert.InDelta(t, 7725, raw["o365.incident.speed_kmh"], 30)
	assert.Equal(t, t0.Format(time.RFC3339Nano), raw[a.IncidentWindowStart])
	assert.Equal(t, t0.Add(time.Hour).Format(time.RFC3339Nano), raw[a.IncidentWindowEnd])
	assert.Equal(t, "medium", got[0].SeverityText())
	assert.Equal(t, plog.SeverityNumberWarn, got[0].SeverityNumber())
	ctx := raw[a.IncidentContext].(map[string]any)
	assert.Equal(t, "GB", ctx[a.GeoCountryISOCode])
}

// TestIncidentResource checks that incidents travel in their own ResourceLogs with the tenant's resource,
// and that a batch delivered again (a receiver retrying after a refusal) keeps exactly one incident.
func TestIncidentResource(t *testing.T) {
	p, sink, _ := newTestProcessor(t, defaultConfig())
	ld := signins(append(failures(t, "f", "alice@contoso.com", "ip", 0, 5, 50126), si(t, "ok", "alice@contoso.com", "ip", 6*time.Minute, 0, seattle))...).logs(t)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	require.NoError(t, p.ConsumeLogs(context.Background(), ld)) // the same batch object again
	for _, out := range sink.AllLogs() {
		require.Equal(t, 2, out.ResourceLogs().Len())
		res := out.ResourceLogs().At(1).Resource().Attributes().AsRaw()
		assert.Equal(t, map[string]any{a.CloudProvider: "azure", a.TenantID: testTenantID, a.TenantName: testTenantName,
			a.Dataset: a.DatasetIncidentCandidates}, res)
		assert.Len(t, incidentsOf(out), 1)
		for _, lr := range allRecords(out) {
			assert.Empty(t, attrStr(lr, a.NormalizationError))
		}
	}
	// A fresh copy of the records (a re-fetch after a restart of the receiver) makes no new incident.
	require.NoError(t, p.ConsumeLogs(context.Background(), signins(append(failures(t, "f", "alice@contoso.com", "ip", 0, 5, 50126), si(t, "ok", "alice@contoso.com", "ip", 6*time.Minute, 0, seattle))...).logs(t)))
	assert.Empty(t, incidentsOf(sink.AllLogs()[2]))
}
