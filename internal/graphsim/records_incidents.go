package graphsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Security incidents (GET /v1.0/security/incidents[?$expand=alerts], microsoft.graph.security.incident):
// a versioned stream like alerts_v2. With DatasetSpec.Versions = V, record i is version i%V of incident
// i/V. Version v holds the incident's first v+1 alerts (all of them at the last version); its severity
// is the highest of all its alerts' from the first version on, so that no background incident rises in
// severity — the incident_escalation scenario (scenarios.go) is the one that does. Shape: the v1.0
// reference's "List incidents" examples; comments have the alertComment shape of Microsoft's model (the
// example still shows an older createdBy / createdTime).

// incident is the v1.0 microsoft.graph.security.incident resource. Alerts is last: without $expand the
// simulator cuts it off (see withoutAlerts).
type incident struct {
	ODataType          string         `json:"@odata.type"`
	ID                 string         `json:"id"`
	IncidentWebURL     string         `json:"incidentWebUrl"`
	RedirectIncidentID *string        `json:"redirectIncidentId"`
	TenantID           string         `json:"tenantId"`
	DisplayName        string         `json:"displayName"`
	CreatedDateTime    string         `json:"createdDateTime"`
	LastUpdateDateTime string         `json:"lastUpdateDateTime"`
	AssignedTo         *string        `json:"assignedTo"`
	Classification     string         `json:"classification"`
	Determination      string         `json:"determination"`
	Status             string         `json:"status"`
	Severity           string         `json:"severity"`
	CustomTags         []string       `json:"customTags"`
	Comments           []alertComment `json:"comments"`
	SystemTags         []string       `json:"systemTags"`
	Description        string         `json:"description"`
	Alerts             []alert        `json:"alerts"`
}

// severityRank orders alertSeverity values.
var severityRank = map[string]int{"unknown": 0, "informational": 1, "low": 2, "medium": 3, "high": 4}

func incidentID(s *stream, i int64) string {
	n, _ := s.item(i)
	return fmt.Sprint(100000 + mix(s.seed^0x1c1d, uint64(n))%9_900_000)
}

// incidentAlerts is the number of alerts incident n gathers (1–3).
func incidentAlerts(s *stream, n int64) int64 { return 1 + int64(mix(s.seed, uint64(n)^0x1a1e)%3) }

// incidentAlertHash is the hash of the incident's alert j: it picks the alert's template and user.
func incidentAlertHash(s *stream, n, j int64) uint64 {
	return mix(s.seed^0xa1e7, uint64(n)<<8|uint64(j))
}

func buildIncident(s *stream, i int64) incident {
	td := s.tenant
	n, v := s.item(i)
	V := s.versions()
	h := mix(s.seed, uint64(n)^0x1c1d)
	id := incidentID(s, i)
	first := s.timeAt(n * V)
	created := first.Add(-time.Duration(h%600_000) * time.Millisecond)
	updated := s.timeAt(i)
	pickedUp := updated
	if V > 1 {
		pickedUp = s.timeAt(n*V + 1)
	}
	stage := progressStage(h, v, V)

	// Alert j joins the incident with version j (a single version holds them all), a moment before it.
	total := incidentAlerts(s, n)
	have := min(v+1, total)
	if V == 1 || v == V-1 {
		have = total
	}
	inc := incident{
		ODataType: "#microsoft.graph.security.incident", ID: id, TenantID: td.cfg.ID,
		IncidentWebURL:  "https://security.microsoft.com/incidents/" + id + "?tid=" + td.cfg.ID,
		CreatedDateTime: FormatTime(created), LastUpdateDateTime: FormatTime(updated),
		Classification: "unknown", Determination: "unknown", Status: "active", Severity: "informational",
		CustomTags: []string{}, Comments: []alertComment{}, SystemTags: []string{}, Alerts: []alert{},
	}
	for j := range total {
		ah := incidentAlertHash(s, n, j)
		if sev := alertTemplates[ah%uint64(len(alertTemplates))].severity; severityRank[sev] > severityRank[inc.Severity] {
			inc.Severity = sev
		}
		if j >= have {
			continue
		}
		joined := created.Add(time.Duration(j) * time.Millisecond)
		if j > 0 && V > 1 {
			joined = s.timeAt(n*V + j).Add(-time.Millisecond)
		}
		inc.Alerts = append(inc.Alerts, makeAlert(td, ah, alertIDOf(s.seed^0x1c1d, uint64(n)<<8|uint64(j), ah), id, joined, updated, pickedUp, stage))
	}
	lead := inc.Alerts[0]
	inc.DisplayName = lead.Title + " involving one user"
	if len(inc.Alerts) > 1 {
		inc.DisplayName = fmt.Sprintf("Multi-stage incident involving %s & %s on one user reported by multiple sources",
			categoryWords(lead.Category), categoryWords(inc.Alerts[len(inc.Alerts)-1].Category))
	}
	inc.Description = lead.Description
	analyst := "secops@" + td.domain
	if stage >= 1 {
		inc.Status, inc.AssignedTo = "inProgress", &analyst
		inc.Comments = append(inc.Comments, alertComment{Comment: "Investigating with the user's manager.",
			CreatedByDisplayName: analyst, CreatedDateTime: FormatTime(pickedUp)})
	}
	if stage == 2 {
		inc.Status = "resolved"
		if lead.Classification != nil {
			inc.Classification = *lead.Classification
		}
		if lead.Determination != nil {
			inc.Determination = *lead.Determination
		}
		inc.Comments = append(inc.Comments, alertComment{Comment: "Resolved: " + inc.Classification + ".",
			CreatedByDisplayName: analyst, CreatedDateTime: FormatTime(updated)})
	}
	return inc
}

// categoryWords renders an alert category (InitialAccess) as the portal's incident names do.
func categoryWords(c string) string {
	var b []byte
	for k := 0; k < len(c); k++ {
		if k > 0 && c[k] >= 'A' && c[k] <= 'Z' {
			b = append(b, ' ')
			b = append(b, c[k]+'a'-'A')
			continue
		}
		b = append(b, c[k])
	}
	return string(b)
}

// alertsMember starts the alerts member of an incident as the simulator renders it (always the last).
var alertsMember = []byte(`,"alerts":[`)

// withoutAlerts cuts the expanded alerts off an incident: Graph returns them only with $expand=alerts.
// In a generated incident the first match is its own member (no earlier member is an object that could
// hold one); an injected one, whose members may come in any order, is decoded and encoded again.
func withoutAlerts(rec []byte) []byte {
	if k := bytes.Index(rec, alertsMember); k >= 0 && bytes.HasPrefix(rec, []byte(`{"@odata.type":"#microsoft.graph.security.incident"`)) {
		return append(append(make([]byte, 0, k+1), rec[:k]...), '}')
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(rec, &m) != nil {
		return rec
	}
	if _, ok := m["alerts"]; !ok {
		return rec
	}
	delete(m, "alerts")
	return mustJSON(m)
}
