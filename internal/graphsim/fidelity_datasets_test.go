package graphsim_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/security"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
)

// The datasets added after sign-ins and audits, against Microsoft's models: several pages of each, large
// enough that every generator branch appears, with zero unknown keys and zero unknown enum values.

const (
	alertsPath      = "/v1.0/security/alerts_v2"
	risksPath       = "/v1.0/identityProtection/riskDetections"
	assignmentsPath = "/v1.0/roleManagement/directory/roleAssignments"
	eligibilityPath = "/v1.0/roleManagement/directory/roleEligibilitySchedules"
	policiesPath    = "/v1.0/identity/conditionalAccess/policies"
	mfaPath         = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
)

var allDatasets = map[string]graphsim.DatasetSpec{
	"security_alerts":             {Count: 150, Span: 6 * time.Hour, Versions: 3},
	"risk_detections":             {Count: 240, Span: 6 * time.Hour, Versions: 2},
	"role_assignments":            {Count: 60},
	"role_eligibility_schedules":  {Count: 40},
	"conditional_access_policies": {Count: 20},
	"mfa_coverage":                {Count: 250},
}

// anyValues widens a page's typed values.
func anyValues[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// fidelityPages fetches path to the end and checks every page of kind.
func (e *env) fidelityPages(t *testing.T, kind, path, token string) []any {
	t.Helper()
	var items []any
	bodies := e.fetchPages(path, token)
	require.Greater(t, len(bodies), 1, "several pages of %s", kind)
	for _, body := range bodies {
		p := checkFidelityPage(t, kind, body)
		require.NotNil(t, p)
		switch c := p.(type) {
		case security.AlertCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.RiskDetectionCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.UnifiedRoleAssignmentCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.UnifiedRoleEligibilityScheduleCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.ConditionalAccessPolicyCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.UserRegistrationDetailsCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case security.IncidentCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.AuditEventCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		case models.RiskyUserCollectionResponseable:
			items = append(items, anyValues(c.GetValue())...)
		default:
			t.Fatalf("unexpected page type %T", p)
		}
	}
	return items
}

func TestSimulatorDatasetPagesFidelity(t *testing.T) {
	cfg := smallTenants(1, allDatasets)
	cfg.Seed = 7
	e := start(t, cfg)
	tok := e.token(tenant1)

	t.Run("alerts", func(t *testing.T) {
		statuses, sources, classes, evidence := map[security.AlertStatus]int{}, map[security.ServiceSource]int{}, map[security.AlertClassification]int{}, map[string]int{}
		byID := map[string][]security.Alertable{}
		for _, it := range e.fidelityPages(t, "alert", alertsPath+"?$top=40", tok) {
			a := it.(security.Alertable)
			statuses[*a.GetStatus()]++
			sources[*a.GetServiceSource()]++
			classes[*a.GetClassification()]++
			for _, ev := range a.GetEvidence() {
				evidence[strings.TrimPrefix(*ev.GetOdataType(), "#microsoft.graph.security.")]++
			}
			if *a.GetStatus() == security.RESOLVED_ALERTSTATUS {
				assert.NotNil(t, a.GetResolvedDateTime())
			} else {
				assert.Nil(t, a.GetResolvedDateTime())
			}
			assert.Equal(t, tenant1, *a.GetTenantId())
			byID[*a.GetId()] = append(byID[*a.GetId()], a)
		}
		assert.Len(t, statuses, 3, "new, inProgress, resolved: %v", statuses)
		assert.Len(t, sources, 5, "every service source: %v", sources)
		assert.GreaterOrEqual(t, len(classes), 3, "unknown and verdicts: %v", classes)
		for _, k := range []string{"userEvidence", "ipEvidence", "mailboxEvidence"} {
			assert.Positive(t, evidence[k], k)
		}
		assert.Len(t, byID, 50, "150 records of 3 versions")
		for id, versions := range byID {
			require.Len(t, versions, 3, id)
			// Listed newest first: the last version first; one creation time for every version.
			assert.Equal(t, security.RESOLVED_ALERTSTATUS, *versions[0].GetStatus())
			assert.Equal(t, security.NEW_ALERTSTATUS, *versions[2].GetStatus())
			for k := 1; k < 3; k++ {
				assert.True(t, versions[k-1].GetLastUpdateDateTime().After(*versions[k].GetLastUpdateDateTime()))
				assert.Equal(t, *versions[0].GetCreatedDateTime(), *versions[k].GetCreatedDateTime())
			}
			assert.False(t, versions[2].GetCreatedDateTime().After(*versions[2].GetLastUpdateDateTime()))
		}
	})

	t.Run("risk detections", func(t *testing.T) {
		states, timings, activities, events := map[models.RiskState]int{}, map[models.RiskDetectionTimingType]int{}, map[models.ActivityType]int{}, map[string]int{}
		for _, it := range e.fidelityPages(t, "riskDetection", risksPath+"?$top=100", tok) {
			r := it.(models.RiskDetectionable)
			states[*r.GetRiskState()]++
			timings[*r.GetDetectionTimingType()]++
			activities[*r.GetActivity()]++
			events[*r.GetRiskEventType()]++
			assert.False(t, r.GetActivityDateTime().After(*r.GetDetectedDateTime()))
			assert.False(t, r.GetDetectedDateTime().After(*r.GetLastUpdatedDateTime()))
			var info []map[string]any
			require.NoError(t, json.Unmarshal([]byte(*r.GetAdditionalInfo()), &info), "additionalInfo is a JSON document in a string")
			assert.NotEmpty(t, info)
			if *r.GetActivity() == models.SIGNIN_ACTIVITYTYPE {
				assert.NotNil(t, r.GetLocation())
			}
		}
		assert.Len(t, states, 4, "atRisk, remediated, dismissed, confirmedCompromised: %v", states)
		assert.Len(t, timings, 3, "%v", timings)
		assert.Len(t, activities, 2, "%v", activities)
		assert.Len(t, events, 8, "%v", events)
	})

	for _, c := range []struct{ name, path string }{{"role assignments", assignmentsPath}, {"eligibility schedules", eligibilityPath}} {
		kind := map[string]string{assignmentsPath: "unifiedRoleAssignment", eligibilityPath: "unifiedRoleEligibilitySchedule"}[c.path]
		t.Run(c.name+" expanded", func(t *testing.T) {
			roles := map[string]int{}
			for _, it := range e.fidelityPages(t, kind, c.path+"?$expand=principal,roleDefinition&$top=15", tok) {
				var principal models.DirectoryObjectable
				var role models.UnifiedRoleDefinitionable
				switch x := it.(type) {
				case models.UnifiedRoleAssignmentable:
					principal, role = x.GetPrincipal(), x.GetRoleDefinition()
					assert.Equal(t, *x.GetPrincipalId(), *principal.GetId())
				case models.UnifiedRoleEligibilityScheduleable:
					principal, role = x.GetPrincipal(), x.GetRoleDefinition()
					assert.Equal(t, *x.GetPrincipalId(), *principal.GetId())
				}
				user, ok := principal.(models.Userable)
				require.True(t, ok, "the principal parses as a user: %T", principal)
				assert.True(t, strings.HasSuffix(*user.GetUserPrincipalName(), "@tenant1.onmicrosoft.com"))
				roles[*role.GetDisplayName()]++
			}
			assert.GreaterOrEqual(t, len(roles), 5, "%v", roles)
		})
		t.Run(c.name+" plain", func(t *testing.T) {
			for _, it := range e.fidelityPages(t, kind, c.path+"?$top=25", tok) {
				switch x := it.(type) {
				case models.UnifiedRoleAssignmentable:
					assert.Nil(t, x.GetPrincipal())
					assert.Nil(t, x.GetRoleDefinition())
				case models.UnifiedRoleEligibilityScheduleable:
					assert.Nil(t, x.GetPrincipal())
					assert.Nil(t, x.GetRoleDefinition())
				}
			}
		})
	}

	t.Run("eligibility schedule branches", func(t *testing.T) {
		expirations, nullCreated, zeroModified := map[models.ExpirationPatternType]int{}, 0, 0
		for _, it := range e.fidelityPages(t, "unifiedRoleEligibilitySchedule", eligibilityPath+"?$top=10", tok) {
			s := it.(models.UnifiedRoleEligibilityScheduleable)
			expirations[*s.GetScheduleInfo().GetExpiration().GetTypeEscaped()]++
			if s.GetCreatedDateTime() == nil {
				nullCreated++
			}
			if m := s.GetModifiedDateTime(); m != nil && m.Year() == 1 {
				zeroModified++
			}
		}
		assert.Len(t, expirations, 2, "%v", expirations)
		assert.Positive(t, nullCreated, "createdDateTime may be null")
		assert.Positive(t, zeroModified, "modifiedDateTime may be 0001-01-01T08:00:00Z")
	})

	t.Run("conditional access policies", func(t *testing.T) {
		states, sessions, grants, blocks := map[models.ConditionalAccessPolicyState]int{}, 0, 0, 0
		for _, it := range e.fidelityPages(t, "conditionalAccessPolicy", policiesPath+"?$top=7", tok) {
			p := it.(models.ConditionalAccessPolicyable)
			states[*p.GetState()]++
			if p.GetSessionControls() != nil {
				sessions++
			}
			if g := p.GetGrantControls(); g != nil {
				grants++
				for _, c := range g.GetBuiltInControls() {
					if c == models.BLOCK_CONDITIONALACCESSGRANTCONTROL {
						blocks++
					}
				}
			}
		}
		assert.Len(t, states, 3, "%v", states)
		assert.Positive(t, sessions)
		assert.Positive(t, grants)
		assert.Positive(t, blocks)
	})

	t.Run("user registration details", func(t *testing.T) {
		var admins, adminsWithoutMFA, registered, total int
		preferred := map[models.UserDefaultAuthenticationMethod]int{}
		for _, it := range e.fidelityPages(t, "userRegistrationDetails", mfaPath, tok) {
			d := it.(models.UserRegistrationDetailsable)
			total++
			preferred[*d.GetUserPreferredMethodForSecondaryAuthentication()]++
			if *d.GetIsMfaRegistered() {
				registered++
				assert.NotEmpty(t, d.GetMethodsRegistered())
			}
			if *d.GetIsAdmin() {
				admins++
				if !*d.GetIsMfaRegistered() {
					adminsWithoutMFA++
				}
			}
		}
		assert.Equal(t, 250, total)
		assert.Positive(t, adminsWithoutMFA)
		assert.Less(t, adminsWithoutMFA, admins)
		assert.Positive(t, registered)
		assert.Less(t, registered, total)
		assert.Len(t, preferred, 4, "push, sms, oath, none: %v", preferred)
	})
}
