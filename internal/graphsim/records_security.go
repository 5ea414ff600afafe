package graphsim

import (
	"encoding/json"
	"fmt"
	"time"
)

// Security alerts (GET /v1.0/security/alerts_v2, microsoft.graph.security.alert) and risk detections
// (GET /v1.0/identityProtection/riskDetections, microsoft.graph.riskDetection). Both are versioned
// streams: with DatasetSpec.Versions = V, record i is version i%V of item i/V — the same id republished
// with a later time field as the item progresses (an alert is assigned, commented, resolved; a risk is
// remediated or dismissed), the way Graph republishes them.

// alert is the v1.0 microsoft.graph.security.alert resource.
type alert struct {
	ODataType             string          `json:"@odata.type"`
	ID                    string          `json:"id"`
	ProviderAlertID       string          `json:"providerAlertId"`
	IncidentID            string          `json:"incidentId"`
	Status                string          `json:"status"`
	Severity              string          `json:"severity"`
	Classification        *string         `json:"classification"`
	Determination         *string         `json:"determination"`
	ServiceSource         string          `json:"serviceSource"`
	DetectionSource       string          `json:"detectionSource"`
	ProductName           string          `json:"productName"`
	DetectorID            string          `json:"detectorId"`
	TenantID              string          `json:"tenantId"`
	Title                 string          `json:"title"`
	Description           string          `json:"description"`
	RecommendedActions    string          `json:"recommendedActions"`
	Category              string          `json:"category"`
	AssignedTo            *string         `json:"assignedTo"`
	AlertWebURL           string          `json:"alertWebUrl"`
	IncidentWebURL        string          `json:"incidentWebUrl"`
	ActorDisplayName      *string         `json:"actorDisplayName"`
	ThreatDisplayName     *string         `json:"threatDisplayName"`
	ThreatFamilyName      *string         `json:"threatFamilyName"`
	MitreTechniques       []string        `json:"mitreTechniques"`
	CreatedDateTime       string          `json:"createdDateTime"`
	LastUpdateDateTime    string          `json:"lastUpdateDateTime"`
	ResolvedDateTime      *string         `json:"resolvedDateTime"`
	FirstActivityDateTime string          `json:"firstActivityDateTime"`
	LastActivityDateTime  string          `json:"lastActivityDateTime"`
	AlertPolicyID         *string         `json:"alertPolicyId"`
	InvestigationState    string          `json:"investigationState"`
	SystemTags            []string        `json:"systemTags"`
	AdditionalData        map[string]any  `json:"additionalData"`
	Comments              []alertComment  `json:"comments"`
	Evidence              []alertEvidence `json:"evidence"`
}

type alertComment struct {
	Comment              string `json:"comment"`
	CreatedByDisplayName string `json:"createdByDisplayName"`
	CreatedDateTime      string `json:"createdDateTime"`
}

// alertEvidence covers the evidence kinds generated: userEvidence, ipEvidence, mailboxEvidence (the
// fields of the other kinds are left out by omitempty).
type alertEvidence struct {
	ODataType                string       `json:"@odata.type"`
	CreatedDateTime          string       `json:"createdDateTime"`
	Verdict                  string       `json:"verdict"`
	RemediationStatus        string       `json:"remediationStatus"`
	RemediationStatusDetails *string      `json:"remediationStatusDetails"`
	Roles                    []string     `json:"roles"`
	DetailedRoles            []string     `json:"detailedRoles"`
	Tags                     []string     `json:"tags"`
	UserAccount              *userAccount `json:"userAccount,omitempty"`
	IPAddress                string       `json:"ipAddress,omitempty"`
	CountryLetterCode        string       `json:"countryLetterCode,omitempty"`
	DisplayName              string       `json:"displayName,omitempty"`
	PrimaryAddress           string       `json:"primaryAddress,omitempty"`
	UPN                      string       `json:"upn,omitempty"`
}

type userAccount struct {
	AccountName       string `json:"accountName"`
	DomainName        string `json:"domainName"`
	UserSid           string `json:"userSid"`
	AzureAdUserID     string `json:"azureAdUserId"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
}

type alertTemplate struct {
	prefix, title, description, actions, category string
	serviceSource, detectionSource, product       string
	severity                                      string
	mitre                                         []string
	threat                                        string // "" = none
	mailbox                                       bool   // evidence includes the user's mailbox
}

var alertTemplates = []alertTemplate{
	{"da", "Suspicious execution of hidden file", "A hidden file has been launched. This activity could indicate a compromised host.",
		"Collect artifacts and determine scope.", "DefenseEvasion", "microsoftDefenderForEndpoint", "antivirus",
		"Microsoft Defender for Endpoint", "medium", []string{"T1564.001"}, "Trojan:Win32/Wacatac.B!ml", false},
	{"ca", "Impossible travel activity", "The user signed in from two distant locations within a time shorter than the travel between them.",
		"Confirm with the user and reset the password if the activity is not theirs.", "InitialAccess", "microsoftDefenderForCloudApps",
		"cloudAppSecurity", "Microsoft Defender for Cloud Apps", "medium", []string{"T1078"}, "", false},
	{"ad", "Anonymous IP address", "Sign-in from an anonymous IP address (for example, Tor browser or an anonymizer VPN).",
		"Require multifactor authentication for risky sign-ins.", "InitialAccess", "azureAdIdentityProtection",
		"azureAdIdentityProtection", "Azure Active Directory Identity Protection", "low", []string{"T1090.003"}, "", false},
	{"aa", "Password spray attack", "An actor tried a few common passwords against many accounts.",
		"Enforce multifactor authentication and block legacy authentication.", "CredentialAccess", "microsoftDefenderForIdentity",
		"microsoftDefenderForIdentity", "Microsoft Defender for Identity", "high", []string{"T1110.003"}, "", false},
	{"fa", "Email messages containing malicious URL removed after delivery", "Emails with a malicious URL were delivered and later removed (ZAP).",
		"Review the recipients' activity after delivery.", "InitialAccess", "microsoftDefenderForOffice365",
		"microsoftDefenderForOffice365", "Microsoft Defender for Office 365", "informational", []string{"T1566.002"}, "", true},
	{"fa", "Suspicious inbox forwarding rule", "A forwarding rule to an external address was created on a mailbox.",
		"Remove the rule and check the mailbox for exfiltration.", "Exfiltration", "microsoftDefenderForOffice365",
		"microsoftDefenderForOffice365", "Microsoft Defender for Office 365", "high", []string{"T1114.003"}, "", true},
}

// alertItem is the alert (not the version) record i belongs to, and the version index.
func (s *stream) item(i int64) (int64, int64) { return i / s.versions(), i % s.versions() }

func alertID(s *stream, i int64) string {
	a, _ := s.item(i)
	return alertIDOf(s.seed, uint64(a), mix(s.seed, uint64(a)^0xa1e7))
}

// alertIDOf is the id of alert n with hash h: the service's prefix, a tick count and a number.
func alertIDOf(seed, n, h uint64) string {
	t := alertTemplates[h%uint64(len(alertTemplates))]
	return fmt.Sprintf("%s%018d_%09d", t.prefix, 637000000000000000+mix(seed^0x1d, n)%1e15, (h>>20)%1e9)
}

// alertCreatedAt is when the alert of record i was created: up to 10 minutes before its first version.
func alertCreatedAt(s *stream, i int64) time.Time {
	a, _ := s.item(i)
	lead := time.Duration(mix(s.seed, uint64(a)^0xc4ea)%600_000) * time.Millisecond
	return s.timeAt(a * s.versions()).Add(-lead)
}

func alertMaxLead(s *stream) time.Duration {
	return time.Duration(s.versions())*s.maxStep() + 10*time.Minute
}

func buildAlert(s *stream, i int64) alert {
	a, v := s.item(i)
	h := mix(s.seed, uint64(a)^0xa1e7)
	updated := s.timeAt(i)
	// The analyst picked the alert up when its second version was published (at once for one version).
	pickedUp := updated
	if V := s.versions(); V > 1 {
		pickedUp = s.timeAt(a*s.versions() + 1)
	}
	return makeAlert(s.tenant, h, alertID(s, i), fmt.Sprint(10000+(h>>24)%90000), alertCreatedAt(s, i), updated, pickedUp,
		progressStage(h, v, s.versions()))
}

// progressStage is how far an item with V versions has progressed at version v: new (0) → in progress
// (1) → resolved (2) over the versions; a single-version item is at any stage, by its hash.
func progressStage(h uint64, v, V int64) int {
	switch {
	case V <= 1:
		return int((h >> 40) % 3)
	case v == 0:
		return 0
	case v == V-1:
		return 2
	}
	return 1
}

// makeAlert builds the alert with hash h (its template, user and verdict) at a stage of its progress.
func makeAlert(td *tenantData, h uint64, id, incident string, created, updated, pickedUp time.Time, stage int) alert {
	t := alertTemplates[h%uint64(len(alertTemplates))]
	u := td.users[(h>>8)%uint64(len(td.users))]
	ms := func(t time.Time) string { return formatTimeUnit(t, time.Millisecond) }
	al := alert{
		ODataType: "#microsoft.graph.security.alert", ID: id, ProviderAlertID: id, IncidentID: incident,
		Status: "new", Severity: t.severity, Classification: strPtr("unknown"), Determination: strPtr("unknown"),
		ServiceSource: t.serviceSource, DetectionSource: t.detectionSource, ProductName: t.product,
		DetectorID: guid(0xde7ec7, uint64(h%uint64(len(alertTemplates)))), TenantID: td.cfg.ID,
		Title: t.title, Description: t.description, RecommendedActions: t.actions, Category: t.category,
		AlertWebURL:           "https://security.microsoft.com/alerts/" + id + "?tid=" + td.cfg.ID,
		IncidentWebURL:        "https://security.microsoft.com/incidents/" + incident + "?tid=" + td.cfg.ID,
		MitreTechniques:       t.mitre,
		CreatedDateTime:       ms(created),
		LastUpdateDateTime:    ms(updated),
		FirstActivityDateTime: ms(created.Add(-time.Duration(5+(h>>48)%55) * time.Minute)),
		LastActivityDateTime:  ms(created.Add(-time.Duration(1+(h>>52)%4) * time.Minute)),
		InvestigationState:    "queued",
		SystemTags:            []string{},
		AdditionalData:        map[string]any{"IsPreview": false, "AlertSource": t.product},
		Comments:              []alertComment{},
	}
	if t.threat != "" {
		al.ThreatDisplayName, al.ThreatFamilyName = strPtr(t.threat), strPtr("Wacatac")
	}
	analyst := "secops@" + td.domain
	if stage >= 1 {
		al.Status, al.AssignedTo, al.InvestigationState = "inProgress", &analyst, "running"
		al.Comments = append(al.Comments, alertComment{Comment: "Investigating with the user's manager.",
			CreatedByDisplayName: analyst, CreatedDateTime: FormatTime(pickedUp)})
	}
	if stage == 2 {
		verdicts := []struct{ class, det, inv string }{
			{"truePositive", "compromisedAccount", "successfullyRemediated"},
			{"falsePositive", "notMalicious", "benign"},
			{"informationalExpectedActivity", "securityTesting", "benign"},
		}
		vd := verdicts[(h>>44)%uint64(len(verdicts))]
		al.Status, al.Classification, al.Determination, al.InvestigationState = "resolved", &vd.class, &vd.det, vd.inv
		al.ResolvedDateTime = strPtr(ms(updated))
		al.Comments = append(al.Comments, alertComment{Comment: "Resolved: " + vd.class + ".",
			CreatedByDisplayName: analyst, CreatedDateTime: FormatTime(updated)})
	}
	account := userAccount{
		AccountName: u.upn[:indexByte(u.upn, '@')], DomainName: td.domain, AzureAdUserID: u.id, UserPrincipalName: u.upn, DisplayName: u.displayName,
		UserSid: fmt.Sprintf("S-1-5-21-%d-%d-%d-%d", 1000000000+td.seed%1e9, 1000000000+(td.seed>>30)%1e9, 1000000000+(td.seed>>20)%1e9, 1000+(h>>8)%len64(td.users)),
	}
	ev := alertEvidence{CreatedDateTime: ms(created), Verdict: "unknown", RemediationStatus: "none",
		Roles: []string{}, DetailedRoles: []string{}, Tags: []string{}}
	user := ev
	user.ODataType, user.UserAccount = "#microsoft.graph.security.userEvidence", &account
	if t.category == "InitialAccess" || t.category == "CredentialAccess" {
		user.Roles = []string{"compromised"}
	}
	ip := ev
	ip.ODataType, ip.Verdict, ip.Roles = "#microsoft.graph.security.ipEvidence", "suspicious", []string{"attacker"}
	loc := places[(h>>32)%uint64(len(places))]
	ip.IPAddress, ip.CountryLetterCode = fmt.Sprintf("%d.%d.%d.%d", 45+(h>>12)%150, (h>>18)%256, (h>>26)%256, 1+(h>>34)%254), loc.country
	al.Evidence = []alertEvidence{user, ip}
	if t.mailbox {
		mb := ev
		mb.ODataType, mb.DisplayName, mb.PrimaryAddress, mb.UPN, mb.UserAccount = "#microsoft.graph.security.mailboxEvidence", u.displayName, u.upn, u.upn, &account
		al.Evidence = append(al.Evidence, mb)
	}
	return al
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}

func len64[T any](s []T) uint64 { return uint64(len(s)) }

// riskDetection is the v1.0 microsoft.graph.riskDetection resource.
type riskDetection struct {
	ID                  string          `json:"id"`
	RequestID           string          `json:"requestId"`
	CorrelationID       string          `json:"correlationId"`
	RiskEventType       string          `json:"riskEventType"`
	RiskState           string          `json:"riskState"`
	RiskLevel           string          `json:"riskLevel"`
	RiskDetail          string          `json:"riskDetail"`
	Source              string          `json:"source"`
	DetectionTimingType string          `json:"detectionTimingType"`
	Activity            string          `json:"activity"`
	TokenIssuerType     string          `json:"tokenIssuerType"`
	IPAddress           string          `json:"ipAddress"`
	ActivityDateTime    string          `json:"activityDateTime"`
	DetectedDateTime    string          `json:"detectedDateTime"`
	LastUpdatedDateTime string          `json:"lastUpdatedDateTime"`
	UserID              string          `json:"userId"`
	UserDisplayName     string          `json:"userDisplayName"`
	UserPrincipalName   string          `json:"userPrincipalName"`
	AdditionalInfo      string          `json:"additionalInfo"` // a JSON document in a string (GRAPH.md)
	Location            *signInLocation `json:"location"`
}

type riskTemplate struct {
	eventType, activity, source, timing, level string
}

var riskTemplates = []riskTemplate{
	{"unfamiliarFeatures", "signin", "IdentityProtection", "realtime", "medium"},
	{"anonymizedIPAddress", "signin", "IdentityProtection", "realtime", "medium"},
	{"unlikelyTravel", "signin", "IdentityProtection", "offline", "medium"},
	{"maliciousIPAddress", "signin", "IdentityProtection", "offline", "high"},
	{"passwordSpray", "signin", "IdentityProtection", "offline", "high"},
	{"mcasImpossibleTravel", "signin", "MicrosoftCloudAppSecurity", "nearRealtime", "low"},
	{"leakedCredentials", "user", "IdentityProtection", "offline", "high"},
	{"investigationsThreatIntelligence", "user", "IdentityProtection", "nearRealtime", "high"},
}

// riskLeadMax bounds how long before its detection a risky activity happened (offline detections).
const riskLeadMax = 48 * time.Hour

func riskID(s *stream, i int64) string {
	r, _ := s.item(i)
	return fmt.Sprintf("%016x%016x%016x%016x", mix(s.seed, uint64(r)^1), mix(s.seed, uint64(r)^2), mix(s.seed, uint64(r)^3), mix(s.seed, uint64(r)^4))
}

func riskTemplateOf(s *stream, r int64) (riskTemplate, uint64) {
	h := mix(s.seed, uint64(r)^0x415c)
	return riskTemplates[h%uint64(len(riskTemplates))], h
}

// riskDetectedAt is the detection time of record i's risk: the time of its first version.
func riskDetectedAt(s *stream, i int64) time.Time {
	r, _ := s.item(i)
	return s.timeAt(r * s.versions())
}

// riskActivityAt is when the risky activity happened: minutes (real-time detections) to hours (offline,
// up to 48 h) before its detection.
func riskActivityAt(s *stream, i int64) time.Time {
	r, _ := s.item(i)
	t, h := riskTemplateOf(s, r)
	var lead time.Duration
	switch t.timing {
	case "realtime":
		lead = time.Minute + time.Duration((h>>8)%uint64(9*time.Minute/time.Microsecond))*time.Microsecond
	case "nearRealtime":
		lead = 10*time.Minute + time.Duration((h>>8)%uint64(50*time.Minute/time.Microsecond))*time.Microsecond
	default:
		lead = time.Hour + time.Duration((h>>8)%uint64((riskLeadMax-time.Hour)/time.Microsecond))*time.Microsecond
	}
	return riskDetectedAt(s, i).Add(-lead)
}

func riskMaxLead(s *stream) time.Duration {
	return time.Duration(s.versions())*s.maxStep() + riskLeadMax
}

func buildRiskDetection(s *stream, i int64) riskDetection {
	td := s.tenant
	r, v := s.item(i)
	t, h := riskTemplateOf(s, r)
	u := td.users[(h>>16)%uint64(len(td.users))]
	us := func(t time.Time) string { return formatTimeUnit(t, time.Microsecond) }
	d := riskDetection{
		ID: riskID(s, i), RiskEventType: t.eventType, RiskState: "atRisk", RiskLevel: t.level, RiskDetail: "none",
		Source: t.source, DetectionTimingType: t.timing, Activity: t.activity, TokenIssuerType: "AzureAD",
		ActivityDateTime: us(riskActivityAt(s, i)), DetectedDateTime: us(riskDetectedAt(s, i)), LastUpdatedDateTime: us(s.timeAt(i)),
		UserID: u.id, UserDisplayName: u.displayName, UserPrincipalName: u.upn,
	}
	// The final version of a multi-version risk (or a single-version one, by its hash) is closed.
	final := -1
	if V := s.versions(); V > 1 && v == V-1 {
		final = int((h >> 40) % 3)
	} else if V == 1 && (h>>40)%4 != 0 {
		final = int((h >> 42) % 3)
	}
	switch final {
	case 0:
		d.RiskState, d.RiskDetail = "remediated", "userPerformedSecuredPasswordChange"
	case 1:
		d.RiskState, d.RiskDetail = "dismissed", "adminDismissedAllRiskForUser"
	case 2:
		d.RiskState, d.RiskDetail = "confirmedCompromised", "adminConfirmedUserCompromised"
	}
	info := []map[string]any{}
	if t.activity == "signin" {
		loc := places[u.home]
		if t.eventType != "unfamiliarFeatures" {
			loc = places[(h>>24)%uint64(len(places))]
		}
		d.RequestID = guid(s.seed^0x4e9, uint64(r))
		d.CorrelationID = guid(s.seed^0xc0e, uint64(r))
		d.IPAddress = fmt.Sprintf("%d.%d.%d.%d", 80+(h>>28)%100, (h>>36)%256, (h>>44)%256, 1+(h>>52)%254)
		d.Location = &signInLocation{City: loc.city, State: loc.state, CountryOrRegion: loc.country,
			GeoCoordinates: geoCoordinates{Latitude: loc.lat, Longitude: loc.lon}}
		info = append(info, map[string]any{"Key": "userAgent", "Value": userAgents[(h>>6)%uint64(len(userAgents))]})
		if t.source == "MicrosoftCloudAppSecurity" {
			info = append(info, map[string]any{"Key": "alertUrl", "Value": "https://security.microsoft.com/alerts/ca" + d.ID[:24]})
		}
	} else {
		info = append(info, map[string]any{"Key": "riskReasons", "Value": []string{"Credentials found in a leak"}})
	}
	raw, _ := json.Marshal(info)
	d.AdditionalInfo = string(raw)
	return d
}
