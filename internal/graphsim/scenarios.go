package graphsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
)

// Scenarios are attacks and mistakes injected into a tenant's data, one for each of the o365_mapping
// processor's default correlation rules, over the plausible background of records.go. Each happens
// once, in the hours before the anchor, so that a collector's first backfill finds it:
//
//	brute_force                  6 failed sign-ins (bad password) of one user from one address, then a
//	                             success from it (3 h before the anchor)
//	password_spray               one address fails the passwords of 12 users in 12 minutes (5 h before)
//	privileged_user_without_mfa  a Global Administrator who has registered no MFA method
//	policy_report_only           the admin switches the "Require MFA for administrators" policy to
//	                             report-only: a directory audit (2 h before) and the policy's new state
//	impossible_travel            one user signs in from Tokyo, then 30 minutes later from São Paulo
//	                             (7 h before)
//	incident_escalation          a Defender XDR incident opened at medium (impossible travel, 4 h before)
//	                             rises to high 25 minutes later, when a forwarding-rule alert joins it
//	mailbox_forwarding           a user creates an inbox rule forwarding all mail to an outside address
//	                             (Audit.Exchange, 6 h before)
//	mass_download                a user's OneDrive sync client downloads 80 files of the Finance site in
//	                             4 minutes (Audit.SharePoint, 9 h before)
//	anonymous_link               a user creates an "Anyone" link to a file of their OneDrive: the
//	                             AnonymousLinkCreated record and the SharingSet of its link group
//	                             (Audit.SharePoint, 8 h before)
//
// The audit scenarios' blobs become available 75 minutes after their records (Microsoft gives 60–90
// minutes for Exchange and SharePoint), so a receiver sees them once it has started their subscriptions.
//
// The accounts of brute_force, impossible_travel, privileged_user_without_mfa and the audit scenarios are
// their own, outside
// the generated user pool, so nothing of the background touches them.
var scenarios = map[string]func(s *Server, td *tenantData) error{
	"brute_force":                 (*Server).scenarioBruteForce,
	"password_spray":              (*Server).scenarioPasswordSpray,
	"privileged_user_without_mfa": (*Server).scenarioPrivilegedWithoutMFA,
	"policy_report_only":          (*Server).scenarioPolicyReportOnly,
	"impossible_travel":           (*Server).scenarioImpossibleTravel,
	"incident_escalation":         (*Server).scenarioIncidentEscalation,
	"mailbox_forwarding":          (*Server).scenarioMailboxForwarding,
	"mass_download":               (*Server).scenarioMassDownload,
	"anonymous_link":              (*Server).scenarioAnonymousLink,
}

// ScenarioNames lists the scenarios, sorted.
func ScenarioNames() []string {
	out := make([]string, 0, len(scenarios))
	for k := range scenarios {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// scenarioNeeds lists the datasets each scenario writes to: they must be served for the tenant.
var scenarioNeeds = map[string][]string{
	"privileged_user_without_mfa": {"role_assignments", "mfa_coverage"},
	"policy_report_only":          {"conditional_access_policies"},
}

func validateScenarios(t Tenant) error {
	for _, name := range t.Scenarios {
		if _, ok := scenarios[name]; !ok {
			return fmt.Errorf("unknown scenario %q (one of %v)", name, ScenarioNames())
		}
		for _, ds := range scenarioNeeds[name] {
			if t.Datasets[ds].Count == 0 {
				return fmt.Errorf("scenario %s needs a %s count", name, ds)
			}
		}
	}
	return nil
}

func (s *Server) injectScenarios(t Tenant) error {
	td := s.tenants[t.ID]
	for _, name := range t.Scenarios {
		if err := scenarios[name](s, td); err != nil {
			return fmt.Errorf("tenant %s, scenario %s: %w", t.ID, name, err)
		}
	}
	return nil
}

// scenarioUser is an account of a scenario, outside the user pool.
func (td *tenantData) scenarioUser(n int, given, surname string, home int) simUser {
	u := simUser{id: guid(td.seed^0x5ce7a210, uint64(n)), given: given, surname: surname, displayName: given + " " + surname,
		upn: fmt.Sprintf("%s.%s@%s", lower(given), lower(surname), td.domain), home: home, job: "Finance Manager"}
	u.background(td.seed^0x5ce7a210, n)
	return u
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// scenarioSignIn is a sign-in of u at at from ip in place p, failed with f (nil: a success), shaped as
// the background's.
func (s *Server) scenarioSignIn(td *tenantData, k int, u simUser, at time.Time, ip string, p place, f *failure) (map[string]any, error) {
	si := buildSignIn(td, td.seed^0x5ce7, int64(k), at)
	si.ID = guid(td.seed^0x5ce75167, uint64(k))
	si.CreatedDateTime = FormatTime(at)
	si.UserPrincipalName, si.UserID, si.UserDisplayName = u.upn, u.id, u.displayName
	si.IPAddress = ip
	si.Location = signInLocation{City: p.city, State: p.state, CountryOrRegion: p.country,
		GeoCoordinates: geoCoordinates{Latitude: p.lat, Longitude: p.lon}}
	dev := u.devices[1]
	si.DeviceDetail = deviceDetail{OperatingSystem: dev.os, Browser: dev.browser} // an unknown device
	si.Status = signInStatus{}
	si.ConditionalAccessStatus = "success"
	if f != nil {
		si.Status.ErrorCode, si.Status.FailureReason = f.code, &f.reason
		si.ConditionalAccessStatus = "notApplied"
	} else {
		details := "MFA requirement satisfied by claim in the token"
		si.Status.AdditionalDetails = &details
	}
	return toMap(si)
}

func toMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

var badPassword = &signInFailures[0] // 50126

func (s *Server) scenarioBruteForce(td *tenantData) error {
	victim := td.scenarioUser(1, "Isabella", "Rossi", 0)
	start := s.anchor.Add(-3 * time.Hour)
	const attacker = "198.51.100.77"
	var objs []map[string]any
	for k := range 7 {
		f := badPassword
		if k == 6 {
			f = nil // the password the attacker finally guessed
		}
		o, err := s.scenarioSignIn(td, 100+k, victim, start.Add(time.Duration(k)*40*time.Second), attacker, places[victim.home], f)
		if err != nil {
			return err
		}
		objs = append(objs, o)
	}
	return s.Inject(td.cfg.ID, "signins", time.Time{}, objs...)
}

func (s *Server) scenarioPasswordSpray(td *tenantData) error {
	start := s.anchor.Add(-5 * time.Hour)
	const attacker = "203.0.113.66"
	var objs []map[string]any
	for k := range 12 {
		u := td.users[(10+7*k)%len(td.users)]
		o, err := s.scenarioSignIn(td, 200+k, u, start.Add(time.Duration(k)*time.Minute), attacker, places[7], badPassword)
		if err != nil {
			return err
		}
		objs = append(objs, o)
	}
	return s.Inject(td.cfg.ID, "signins", time.Time{}, objs...)
}

func (s *Server) scenarioImpossibleTravel(td *tenantData) error {
	traveller := td.scenarioUser(3, "Kenji", "Watanabe", 6)
	at := s.anchor.Add(-7 * time.Hour)
	tokyo, err := s.scenarioSignIn(td, 300, traveller, at, officeIP(td.seed, 6), places[6], nil)
	if err != nil {
		return err
	}
	saoPaulo, err := s.scenarioSignIn(td, 301, traveller, at.Add(30*time.Minute), "200.160.2.3", places[7], nil)
	if err != nil {
		return err
	}
	return s.Inject(td.cfg.ID, "signins", time.Time{}, tokyo, saoPaulo)
}

func (s *Server) scenarioPrivilegedWithoutMFA(td *tenantData) error {
	admin := td.scenarioUser(2, "Omar", "Haddad", 2)
	globalAdmin := roleDefinitions[0]
	assignment := unifiedRoleAssignment{ID: assignmentKey(globalAdmin.id, admin.id, "-1"), PrincipalID: admin.id,
		RoleDefinitionID: globalAdmin.id, DirectoryScopeID: "/"}
	ra, err := toMap(assignment)
	if err != nil {
		return err
	}
	if ra["principal"], err = toMap(principalOf(td, admin)); err != nil {
		return err
	}
	if err := s.SetItem(td.cfg.ID, "role_assignments", ra); err != nil {
		return err
	}
	reg, err := toMap(userRegistrationDetails{ID: admin.id, UserPrincipalName: admin.upn, UserDisplayName: admin.displayName,
		UserType: "member", IsAdmin: true, IsSsprEnabled: true, MethodsRegistered: []string{}, SystemPreferredAuthenticationMethods: []string{},
		UserPreferredMethodForSecondaryAuthentication: "none", LastUpdatedDateTime: FormatTime(s.anchor.Add(-20 * time.Hour))})
	if err != nil {
		return err
	}
	return s.SetItem(td.cfg.ID, "mfa_coverage", reg)
}

func (s *Server) scenarioPolicyReportOnly(td *tenantData) error {
	pol := caPolicies[0] // Require MFA for administrators, enabled
	def := datasetsByName["conditional_access_policies"]
	sn := td.snapshot(def)
	sn.mu.RLock()
	k := slices.IndexFunc(sn.items, func(it snapItem) bool { return it.id == pol.id })
	var raw json.RawMessage
	if k >= 0 {
		raw = sn.items[k].raw
	}
	sn.mu.RUnlock()
	if raw == nil {
		return fmt.Errorf("the tenant has no policy %s", pol.id)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	at := s.anchor.Add(-2 * time.Hour)
	oldState, _ := json.Marshal(map[string]any{"id": pol.id, "displayName": pol.name, "state": p["state"]})
	p["state"], p["modifiedDateTime"] = "enabledForReportingButNotEnforced", FormatTime(at)
	newState, _ := json.Marshal(map[string]any{"id": pol.id, "displayName": pol.name, "state": p["state"]})
	if err := s.SetItem(td.cfg.ID, "conditional_access_policies", p); err != nil {
		return err
	}
	admin := td.users[0]
	name := pol.name
	audit := directoryAudit{
		ID: directoryAuditID(&stream{seed: td.seed ^ 0x5ce7ca}, 1), Category: "Policy",
		CorrelationID: guid(td.seed^0x5ce7c0, 1), Result: "success", ActivityDisplayName: "Update conditional access policy",
		ActivityDateTime: FormatTime(at), LoggedByService: "Conditional Access", OperationType: "Update",
		InitiatedBy: auditActivityBy{User: &userIdentity{ID: admin.id, UserPrincipalName: admin.upn, IPAddress: officeIP(td.seed, admin.home)}},
		TargetResources: []targetResource{{ID: pol.id, DisplayName: &name, Type: "Policy", ModifiedProperties: []modifiedProperty{
			{DisplayName: "ConditionalAccessPolicy", OldValue: string(oldState), NewValue: string(newState)}}}},
		AdditionalDetails: []keyValue{{Key: "User-Agent", Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}},
	}
	o, err := toMap(audit)
	if err != nil {
		return err
	}
	return s.Inject(td.cfg.ID, "directory_audits", time.Time{}, o)
}

// scenarioIncidentEscalation publishes two versions of one incident: at medium with its impossible
// travel alert, then at high once a suspicious inbox forwarding rule alert of the same user joins it.
func (s *Server) scenarioIncidentEscalation(td *tenantData) error {
	// Alert hashes that pick the templates (h % 6): impossible travel (medium), inbox forwarding rule
	// (high); both pick the user by h>>8, which +4 leaves alone here (low byte 0x87).
	travel := uint64(6*0x5ce71c1 + 1)
	forwarding := travel + 4
	opened := s.anchor.Add(-4 * time.Hour)
	raised := opened.Add(25 * time.Minute)
	id := "88000001"
	first := makeAlert(td, travel, alertIDOf(td.seed^0x5ce7, 1, travel), id, opened, opened, opened, 0)
	second := makeAlert(td, forwarding, alertIDOf(td.seed^0x5ce7, 2, forwarding), id, raised.Add(-time.Minute), raised, raised, 0)
	version := func(at time.Time, severity string, alerts ...alert) (map[string]any, error) {
		return toMap(incident{ODataType: "#microsoft.graph.security.incident", ID: id, TenantID: td.cfg.ID,
			IncidentWebURL:  "https://security.microsoft.com/incidents/" + id + "?tid=" + td.cfg.ID,
			DisplayName:     "Multi-stage incident involving Initial access & Exfiltration on one user reported by multiple sources",
			CreatedDateTime: FormatTime(opened), LastUpdateDateTime: FormatTime(at), Classification: "unknown", Determination: "unknown",
			Status: "active", Severity: severity, CustomTags: []string{}, Comments: []alertComment{}, SystemTags: []string{},
			Description: first.Description, Alerts: alerts})
	}
	medium, err := version(opened, "medium", first)
	if err != nil {
		return err
	}
	high, err := version(raised, "high", first, second)
	if err != nil {
		return err
	}
	return s.Inject(td.cfg.ID, "security_incidents", time.Time{}, medium, high)
}

// auditAvailability is how long after its records a scenario's blob becomes available.
const auditAvailability = 75 * time.Minute

// addAuditScenario publishes records as one blob of contentType, available auditAvailability after the
// last of them (last).
func (s *Server) addAuditScenario(td *tenantData, contentType string, last time.Time, records ...map[string]any) {
	s.AddAuditBlob(td.cfg.ID, AuditBlob{ContentType: contentType, Created: last.Add(auditAvailability), Records: records})
}

func (s *Server) scenarioMailboxForwarding(td *tenantData) error {
	u := td.scenarioUser(4, "Lucas", "Moreau", 1)
	at := s.anchor.Add(-6 * time.Hour)
	rule := newInboxRule(td, guid(td.seed^0x5ce7f0, 1), u, at, "198.51.100.23", "Archive",
		"ForwardTo", "lucas.moreau.archive@mailbox-relay.example", "StopProcessingRules", "True")
	s.addAuditScenario(td, "Audit.Exchange", at, rule)
	return nil
}

func (s *Server) scenarioMassDownload(td *tenantData) error {
	u := td.scenarioUser(5, "Priya", "Nair", 3)
	start := s.anchor.Add(-9 * time.Hour)
	ip := officeIP(td.seed, u.home)
	site := teamSite(td, "Finance")
	var recs []map[string]any
	var at time.Time
	for k := range 80 {
		at = start.Add(time.Duration(k) * 3 * time.Second)
		it := spItem{site: site, folder: "Shared Documents/Forecasts", name: fmt.Sprintf("Forecast %s %02d.xlsx", []string{"EMEA", "APAC", "AMER", "LATAM"}[k%4], k/4+1)}
		recs = append(recs, sharePointRecord(td, guid(td.seed^0x5ce7d0, uint64(k)), recordTypeSharePointFileOp, "FileSyncDownloadedFull", u, at, ip, userAgentSyncDesk, it))
	}
	s.addAuditScenario(td, "Audit.SharePoint", at, recs...)
	return nil
}

func (s *Server) scenarioAnonymousLink(td *tenantData) error {
	u := td.scenarioUser(6, "Sofia", "Lindqvist", 4)
	at := s.anchor.Add(-8 * time.Hour)
	ip := officeIP(td.seed, u.home)
	it := spItem{site: oneDrive(td, u), folder: "Documents", name: "Customer list 2026.xlsx"}
	created := sharePointRecord(td, guid(td.seed^0x5ce7a0, 1), recordTypeSharePointShare, "AnonymousLinkCreated", u, at, ip, userAgentEdge, it)
	set := sharePointRecord(td, guid(td.seed^0x5ce7a0, 2), recordTypeSharePointShare, "SharingSet", u, at.Add(time.Second), ip, userAgentEdge, it)
	set["TargetUserOrGroupType"] = "SharePointGroup"
	set["TargetUserOrGroupName"] = anyoneLinkGroup(it, guid(td.seed^0x5ce7a0, 3))
	s.addAuditScenario(td, "Audit.SharePoint", at.Add(time.Second), created, set)
	return nil
}
