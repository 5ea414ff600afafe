package graphsim

import "time"

// Risky users (GET /v1.0/identityProtection/riskyUsers, microsoft.graph.riskyUser): a snapshot of the
// tenant's users Identity Protection has ever flagged, with their current risk. Shape: the v1.0
// riskyUser resource; tests change a user's risk with SetItem, as an admin's dismissal or a new
// detection does.

// riskyUser is the v1.0 microsoft.graph.riskyUser resource.
type riskyUser struct {
	ID                      string `json:"id"`
	IsDeleted               bool   `json:"isDeleted"`
	IsProcessing            bool   `json:"isProcessing"`
	RiskLastUpdatedDateTime string `json:"riskLastUpdatedDateTime"`
	RiskLevel               string `json:"riskLevel"`
	RiskState               string `json:"riskState"`
	RiskDetail              string `json:"riskDetail"`
	UserDisplayName         string `json:"userDisplayName"`
	UserPrincipalName       string `json:"userPrincipalName"`
}

// riskyUserStates are the combinations Identity Protection reports: at risk at a level, or closed by
// remediation, dismissal or confirmation (level none once closed safe, high once confirmed compromised).
var riskyUserStates = []struct{ level, state, detail string }{
	{"high", "atRisk", "none"},
	{"medium", "atRisk", "none"},
	{"low", "atRisk", "none"},
	{"none", "remediated", "userPerformedSecuredPasswordChange"},
	{"none", "dismissed", "adminDismissedAllRiskForUser"},
	{"high", "confirmedCompromised", "adminConfirmedUserCompromised"},
	{"none", "remediated", "userPassedMFADrivenByRiskBasedPolicy"},
}

// genRiskyUsers flags count users of the pool, every third one (the pool's first users are admins).
func genRiskyUsers(td *tenantData, count int) []snapItem {
	out := make([]snapItem, 0, count)
	for k := 0; len(out) < count && 2+3*k < len(td.users); k++ {
		u := td.users[2+3*k]
		h := mix(td.seed^0x415e, uint64(k))
		st := riskyUserStates[h%uint64(len(riskyUserStates))]
		updated := td.anchor.Add(-time.Duration((h>>8)%uint64(30*24*time.Hour/time.Microsecond)) * time.Microsecond)
		out = append(out, snapItem{id: u.id, raw: mustJSON(riskyUser{
			ID: u.id, RiskLastUpdatedDateTime: formatTimeUnit(updated, time.Microsecond),
			RiskLevel: st.level, RiskState: st.state, RiskDetail: st.detail,
			UserDisplayName: u.displayName, UserPrincipalName: u.upn,
		})})
	}
	return out
}
