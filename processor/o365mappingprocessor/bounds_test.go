package o365mappingprocessor

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// TestListsAndValuesAreBounded feeds objects whose lists hold 40 items and whose free-text values are
// 1000 bytes long, and checks the bounds the README states ("Normalized attributes": at most 16 list
// entries or map keys, free text cut at 256 bytes): every list and map attribute of the records is
// within them, the lists named here are cut at exactly the bound, and the README's figures are the
// code's.
func TestListsAndValuesAreBounded(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	figure := func(re string) int {
		m := regexp.MustCompile(re).FindSubmatch(readme)
		require.NotNil(t, m, "README states no bound matching %s", re)
		n, err := strconv.Atoi(string(m[1]))
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, maxListItems, figure(`holds at most \*\*(\d+)\*\* entries`))
	assert.Equal(t, maxListItems, figure(`a map\s+attribute at most (\d+) keys`))
	assert.Equal(t, maxValueLen, figure(`are cut at \*\*(\d+) bytes\*\*`))

	const n = 40
	long := strings.Repeat("é", 500) // 1000 bytes; a cut must fall on a rune boundary
	items := func(f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	ids := func(prefix string) []any { return items(func(i int) any { return fmt.Sprintf("%s-%02d", prefix, i) }) }

	signin := edit(t, sample(t, "signin"), map[string]any{
		"status.additionalDetails": long,
		"appliedConditionalAccessPolicies": items(func(i int) any {
			return map[string]any{"id": fmt.Sprint(i), "displayName": fmt.Sprintf("policy %02d", i), "result": "failure"}
		}),
		"authenticationDetails": items(func(i int) any {
			return map[string]any{"authenticationMethod": "Password", "authenticationStepRequirement": "Primary authentication", "succeeded": i%2 == 0}
		}),
		"riskEventTypes_v2": ids("risk"),
	})
	audit := edit(t, sample(t, "directory_audit"), map[string]any{
		"targetResources": []any{map[string]any{"id": "t1", "displayName": "target", "type": "User",
			"modifiedProperties": items(func(i int) any {
				return map[string]any{"displayName": fmt.Sprintf("Prop%02d", i), "oldValue": long, "newValue": long}
			})}},
		"additionalDetails": items(func(i int) any { return map[string]any{"key": fmt.Sprintf("k%02d", i), "value": long} }),
	})
	evidence := func(kind string, f func(i int) map[string]any) []any {
		return items(func(i int) any {
			ev := f(i)
			ev["@odata.type"] = "#microsoft.graph.security." + kind
			return ev
		})
	}
	var allEvidence []any
	allEvidence = append(allEvidence, evidence("userEvidence", func(i int) map[string]any {
		return map[string]any{"userAccount": map[string]any{"userPrincipalName": fmt.Sprintf("u%02d@contoso.com", i)}}
	})...)
	allEvidence = append(allEvidence, evidence("deviceEvidence", func(i int) map[string]any {
		return map[string]any{"deviceDnsName": fmt.Sprintf("host%02d", i)}
	})...)
	allEvidence = append(allEvidence, evidence("ipEvidence", func(i int) map[string]any {
		return map[string]any{"ipAddress": fmt.Sprintf("198.51.100.%d", i)}
	})...)
	allEvidence = append(allEvidence, evidence("urlEvidence", func(i int) map[string]any {
		return map[string]any{"url": fmt.Sprintf("https://example.com/%02d/%s", i, long)}
	})...)
	allEvidence = append(allEvidence, evidence("fileEvidence", func(i int) map[string]any {
		return map[string]any{"fileDetails": map[string]any{"fileName": fmt.Sprintf("f%02d.exe", i)}}
	})...)
	allEvidence = append(allEvidence, evidence("processEvidence", func(i int) map[string]any {
		return map[string]any{"processCommandLine": fmt.Sprintf("cmd %02d %s", i, long)}
	})...)
	alert := edit(t, sample(t, "security_alert"), map[string]any{"evidence": allEvidence, "mitreTechniques": ids("T1")})
	policy := edit(t, sample(t, "conditional_access_policy"), map[string]any{
		"conditions.users.includeUsers": ids("user"), "conditions.users.excludeGroups": ids("group"),
		"conditions.applications.includeApplications": ids("app"), "conditions.locations.excludeLocations": ids("loc"),
		"grantControls.builtInControls": ids("control"),
	})
	mfa := edit(t, sample(t, "mfa_registration"), map[string]any{"methodsRegistered": ids("method")})

	cut := map[string][]string{ // attributes cut at maxListItems, by dataset
		a.DatasetSignIns: {a.SignInCAPolicies, a.SignInCAResults, a.SignInCAFailedPolicies,
			a.SignInAuthMethods, a.SignInAuthSteps, a.SignInAuthSucceeded, a.RiskEventTypes},
		a.DatasetDirectoryAudits: {a.AuditModifiedProperties, a.AuditOldValues, a.AuditNewValues,
			a.AuditAdditionalDetails},
		a.DatasetSecurityAlerts: {a.AlertEvidenceUsers, a.AlertEvidenceDevices, a.AlertEvidenceIPs, a.AlertEvidenceURLs,
			a.AlertEvidenceFiles, a.AlertEvidenceProcesses, a.AlertMitreTechniques},
		a.DatasetConditionalAccessPolicies: {a.PolicyUsersInclude, a.PolicyUsersExclude, a.PolicyApplicationsInclude,
			a.PolicyLocationsExclude, a.PolicyGrantControls},
		a.DatasetMFACoverage: {a.MFAMethods},
	}
	objects := map[string]string{a.DatasetSignIns: signin, a.DatasetDirectoryAudits: audit, a.DatasetSecurityAlerts: alert,
		a.DatasetConditionalAccessPolicies: policy, a.DatasetMFACoverage: mfa}
	for ds, obj := range objects {
		t.Run(ds, func(t *testing.T) {
			p, sink, _ := newTestProcessor(t, defaultConfig())
			require.NoError(t, p.ConsumeLogs(context.Background(), receiverLogs(t, ds, page(obj))))
			recs := allRecords(sink.AllLogs()[0])
			require.Len(t, recs, 1)
			attrs := recs[0].Attributes()
			require.Empty(t, attrStr(recs[0], a.NormalizationError))
			for _, k := range cut[ds] {
				v, ok := attrs.Get(k)
				if !assert.True(t, ok, "%s not written", k) {
					continue
				}
				switch v.Type() {
				case pcommon.ValueTypeSlice:
					assert.Equal(t, maxListItems, v.Slice().Len(), k)
				case pcommon.ValueTypeMap:
					assert.Equal(t, maxListItems, v.Map().Len(), k)
				default:
					t.Errorf("%s is a %s, not a list", k, v.Type())
				}
			}
			for k, v := range attrs.All() {
				var values []pcommon.Value
				switch v.Type() {
				case pcommon.ValueTypeSlice:
					assert.LessOrEqual(t, v.Slice().Len(), maxListItems, k)
					for i := 0; i < v.Slice().Len(); i++ {
						values = append(values, v.Slice().At(i))
					}
				case pcommon.ValueTypeMap:
					assert.LessOrEqual(t, v.Map().Len(), maxListItems, k)
					for _, mv := range v.Map().All() {
						values = append(values, mv)
					}
				default:
					values = append(values, v)
				}
				for _, s := range values {
					if s.Type() == pcommon.ValueTypeStr {
						assert.LessOrEqual(t, len(s.Str()), maxValueLen, "%s: %.40q…", k, s.Str())
						assert.True(t, strings.ToValidUTF8(s.Str(), "") == s.Str(), "%s: cut inside a rune", k)
					}
				}
			}
		})
	}
}
