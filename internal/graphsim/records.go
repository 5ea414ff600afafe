package graphsim

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// tenantData holds the per-tenant pools records draw from (users, service principals, places), derived
// from the seed, and the tenant's snapshot collections.
type tenantData struct {
	cfg    Tenant
	seed   uint64
	anchor time.Time // the simulator's anchor: snapshot timestamps are set before it
	domain string
	users  []simUser
	// userIndex finds a pool user by object id (role assignment expansion).
	userIndex map[string]int

	snapMu    sync.Mutex
	snapshots map[string]*snapshot // dataset name → items, generated on first use
}

type simUser struct {
	id, upn, displayName string
	given, surname, job  string
	home                 int // index into places
	// Background behaviour (see userPlace): a corporate and a personal device, the personal device's
	// own address, and for a few users a second city they commute to by plane.
	devices    [2]simDevice
	personalIP string
	away       int // index into places; -1: the user does not travel
	phase      time.Duration
}

// simDevice is one of a user's devices as sign-ins describe it.
type simDevice struct {
	id, name, os, browser, trust string
	compliant, managed           bool
}

var jobTitles = []string{"Retail Manager", "Marketing Director", "Developer", "IT Admin", "Sales Representative",
	"Product Manager", "Accountant", "Support Engineer", "HR Manager", "Designer"}

type place struct {
	city, state, country string
	lat, lon             float64
}

var places = []place{
	{"Seattle", "Washington", "US", 47.6062, -122.3321},
	{"New York", "New York", "US", 40.7128, -74.0060},
	{"London", "England", "GB", 51.5074, -0.1278},
	{"Berlin", "Berlin", "DE", 52.5200, 13.4050},
	{"Paris", "Ile-de-France", "FR", 48.8566, 2.3522},
	{"Sydney", "New South Wales", "AU", -33.8688, 151.2093},
	{"Tokyo", "Tokyo", "JP", 35.6762, 139.6503},
	{"Sao Paulo", "Sao Paulo", "BR", -23.5505, -46.6333},
	{"Lagos", "Lagos", "NG", 6.5244, 3.3792},
	{"Mumbai", "Maharashtra", "IN", 19.0760, 72.8777},
}

// nearby[p] is a city within a few hundred kilometres of places[p]: where a mobile network's addresses
// geolocate for a user at p (IP geolocation of mobile carriers is that coarse). Closer than any rule's
// travel threshold.
var nearby = []place{
	{"Portland", "Oregon", "US", 45.5152, -122.6784},
	{"Philadelphia", "Pennsylvania", "US", 39.9526, -75.1652},
	{"Birmingham", "England", "GB", 52.4862, -1.8904},
	{"Hamburg", "Hamburg", "DE", 53.5511, 9.9937},
	{"Lyon", "Auvergne-Rhone-Alpes", "FR", 45.7640, 4.8357},
	{"Canberra", "Australian Capital Territory", "AU", -35.2809, 149.1300},
	{"Osaka", "Osaka", "JP", 34.6937, 135.5023},
	{"Rio de Janeiro", "Rio de Janeiro", "BR", -22.9068, -43.1729},
	{"Ibadan", "Oyo", "NG", 7.3775, 3.9470},
	{"Pune", "Maharashtra", "IN", 18.5204, 73.8567},
}

type simApp struct{ id, name, resourceID, resourceName string }

var apps = []simApp{
	{"00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"},
	{"1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams", "00000003-0000-0000-c000-000000000000", "Microsoft Graph"},
	{"c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal", "797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API"},
	{"00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"},
	{"4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome", "4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome"},
}

type failure struct {
	code   int
	reason string
}

var signInFailures = []failure{
	{50126, "Error validating credentials due to invalid username or password."},
	{50074, "Strong Authentication is required."},
	{50053, "Account is locked because user tried to sign in too many times with an incorrect user ID or password."},
	{53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."},
}

var caPolicies = []struct{ id, name, grant string }{
	{"8f45d9e0-6c7b-4b7e-9b4c-2a6f0c1b7d11", "Require MFA for administrators", "Mfa"},
	{"2a3c1d5e-7f90-4a1b-8c2d-3e4f5a6b7c8d", "Block legacy authentication", "Block"},
	{"c0ffee00-1234-4abc-9def-0123456789ab", "Require compliant device for Office 365", "CompliantDevice"},
	{"5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "Require MFA for Azure management", "Mfa"},
}

var devices = []struct{ os, browser string }{
	{"Windows 10", "Edge 120.0.2210"},
	{"Windows 11", "Chrome 121.0.0"},
	{"MacOs", "Safari 17.2"},
	{"Ios 17.2", "Mobile Safari"},
	{"Android 14", "Chrome Mobile 121.0.0"},
}

const (
	// usersPerTenant is the size of a tenant's user pool, unless mfa_coverage asks for more users.
	usersPerTenant = 200
	// maxUsers caps the pool (and so mfa_coverage's count): snapshot items are kept in memory.
	maxUsers = 100_000
)

// poolSize is the number of users of a tenant: every record that names a user draws from them.
func poolSize(t Tenant) int {
	return min(max(usersPerTenant, t.Datasets["mfa_coverage"].Count), maxUsers)
}

func newTenantData(t Tenant, seed uint64) *tenantData {
	name := t.Name
	if name == "" {
		name = "tenant" + t.ID[:min(8, len(t.ID))]
	}
	td := &tenantData{cfg: t, seed: seed, domain: strings.ToLower(strings.ReplaceAll(name, " ", "")) + ".onmicrosoft.com",
		snapshots: map[string]*snapshot{}}
	n := poolSize(t)
	td.users = make([]simUser, 0, n)
	td.userIndex = make(map[string]int, n)
	for u := range n {
		h := mix(seed, uint64(u)^0x75736572)
		first := []string{"Adele", "Alex", "Diego", "Grady", "Isaiah", "Johanna", "Lee", "Lidia", "Megan", "Nestor", "Patti", "Pradeep"}[h%12]
		last := []string{"Vance", "Wilber", "Siciliani", "Archie", "Langer", "Lauren", "Gu", "Holloway", "Bowen", "Wilke", "Fernandez", "Gupta"}[(h>>8)%12]
		td.users = append(td.users, simUser{
			id:          guid(seed^0x75736572, uint64(u)),
			upn:         fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), strings.ToLower(last), u, td.domain),
			displayName: first + " " + last,
			given:       first,
			surname:     last,
			job:         jobTitles[(h>>24)%uint64(len(jobTitles))],
			home:        int((h >> 16) % uint64(len(places))),
		})
		td.userIndex[td.users[u].id] = u
		td.users[u].background(seed, u)
	}
	return td
}

// Background behaviour: every user signs in from home — from the office's address on the corporate
// device, from their own mobile one (which geolocates to a nearby city) on the phone — and one user in 25 spends half of every four days in
// another city, flying there and back at a plane's speed, during which they do not sign in. So the
// simulator's ordinary traffic holds no impossible trip, no spray (an office address sees only its own
// staff) and no brute force; the scenarios (scenarios.go) add those.
const (
	travelPeriod = 96 * time.Hour
	planeKmh     = 800.0
	// travellerOneIn users travel.
	travellerOneIn = 25
)

func (u *simUser) background(seed uint64, n int) {
	h := mix(seed^0xde71ce, uint64(n))
	corp := devices[h%uint64(len(devices)-2)] // a desktop OS
	own := devices[uint64(len(devices)-2)+(h>>8)%2]
	u.devices[0] = simDevice{id: guid(seed^0xdec0, uint64(2*n)), name: fmt.Sprintf("CORP-%05d", n), os: corp.os, browser: corp.browser,
		trust: "Azure AD joined", compliant: true, managed: true}
	u.devices[1] = simDevice{id: guid(seed^0xdec0, uint64(2*n+1)), name: u.given + "'s phone", os: own.os, browser: own.browser,
		trust: "Azure AD registered"}
	u.personalIP = fmt.Sprintf("%d.%d.%d.%d", 70+(h>>16)%60, (h>>24)%256, (h>>32)%256, 1+(h>>40)%254)
	u.away = -1
	if (h>>48)%travellerOneIn == 0 {
		u.away = int((uint64(u.home) + 1 + (h>>52)%uint64(len(places)-1)) % uint64(len(places)))
		u.phase = time.Duration((h >> 8) % uint64(travelPeriod))
	}
}

// officeIP is the egress address of the office in place p.
func officeIP(seed uint64, p int) string {
	h := mix(seed^0x0ff1ce, uint64(p))
	return fmt.Sprintf("%d.%d.%d.%d", 20+(h>>8)%50, (h>>16)%256, (h>>24)%256, 1+(h>>32)%254)
}

// flightTime is how long the user's flight between home and the other city takes, with a margin.
func (u *simUser) flightTime() time.Duration {
	a, b := places[u.home], places[u.away]
	return time.Duration(haversineKm(a.lat, a.lon, b.lat, b.lon)/planeKmh*float64(time.Hour)) + 2*time.Hour
}

// userPlace is where the user is at t (ok false: on a plane).
func (u *simUser) userPlace(t time.Time) (place int, ok bool) {
	if u.away < 0 {
		return u.home, true
	}
	pos := time.Duration((t.UnixNano() + int64(u.phase)) % int64(travelPeriod))
	if pos < 0 {
		pos += travelPeriod
	}
	f, half := u.flightTime(), travelPeriod/2
	switch {
	case pos < half-f:
		return u.home, true
	case pos < half, pos >= travelPeriod-f:
		return 0, false
	}
	return u.away, true
}

func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	x := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * 6371.0088 * math.Asin(math.Min(1, math.Sqrt(x)))
}

// signIn is the v1.0 microsoft.graph.signIn resource (only properties the v1.0 model defines).
type signIn struct {
	ID                               string            `json:"id"`
	CreatedDateTime                  string            `json:"createdDateTime"`
	UserDisplayName                  string            `json:"userDisplayName"`
	UserPrincipalName                string            `json:"userPrincipalName"`
	UserID                           string            `json:"userId"`
	AppID                            string            `json:"appId"`
	AppDisplayName                   string            `json:"appDisplayName"`
	IPAddress                        string            `json:"ipAddress"`
	ClientAppUsed                    string            `json:"clientAppUsed"`
	CorrelationID                    string            `json:"correlationId"`
	ConditionalAccessStatus          string            `json:"conditionalAccessStatus"`
	IsInteractive                    bool              `json:"isInteractive"`
	RiskDetail                       string            `json:"riskDetail"`
	RiskLevelAggregated              string            `json:"riskLevelAggregated"`
	RiskLevelDuringSignIn            string            `json:"riskLevelDuringSignIn"`
	RiskState                        string            `json:"riskState"`
	RiskEventTypes                   []string          `json:"riskEventTypes"`
	RiskEventTypesV2                 []string          `json:"riskEventTypes_v2"`
	ResourceDisplayName              string            `json:"resourceDisplayName"`
	ResourceID                       string            `json:"resourceId"`
	Status                           signInStatus      `json:"status"`
	DeviceDetail                     deviceDetail      `json:"deviceDetail"`
	Location                         signInLocation    `json:"location"`
	AppliedConditionalAccessPolicies []appliedCAPolicy `json:"appliedConditionalAccessPolicies"`
}

type signInStatus struct {
	ErrorCode         int     `json:"errorCode"`
	FailureReason     *string `json:"failureReason"`
	AdditionalDetails *string `json:"additionalDetails"`
}

type deviceDetail struct {
	DeviceID        string `json:"deviceId"`
	DisplayName     string `json:"displayName"`
	OperatingSystem string `json:"operatingSystem"`
	Browser         string `json:"browser"`
	IsCompliant     bool   `json:"isCompliant"`
	IsManaged       bool   `json:"isManaged"`
	TrustType       string `json:"trustType"`
}

type signInLocation struct {
	City            string         `json:"city"`
	State           string         `json:"state"`
	CountryOrRegion string         `json:"countryOrRegion"`
	GeoCoordinates  geoCoordinates `json:"geoCoordinates"`
}

type geoCoordinates struct {
	Altitude  *float64 `json:"altitude"`
	Latitude  float64  `json:"latitude"`
	Longitude float64  `json:"longitude"`
}

type appliedCAPolicy struct {
	ID                      string   `json:"id"`
	DisplayName             string   `json:"displayName"`
	EnforcedGrantControls   []string `json:"enforcedGrantControls"`
	EnforcedSessionControls []string `json:"enforcedSessionControls"`
	Result                  string   `json:"result"`
}

func buildSignIn(td *tenantData, seed uint64, i int64, at time.Time) signIn {
	h := mix(seed, uint64(i)^0x5167)
	n := h % uint64(len(td.users))
	u := &td.users[n]
	where, ok := u.userPlace(at)
	for k := uint64(1); !ok && k < uint64(len(td.users)); k++ { // on a plane: someone else signs in
		u = &td.users[(n+k)%uint64(len(td.users))]
		where, ok = u.userPlace(at)
	}
	app := apps[(h>>8)%uint64(len(apps))]
	dev := u.devices[(h>>12)%3/2] // the corporate device two times in three
	ip := u.personalIP
	if dev.managed && where == u.home {
		ip = officeIP(seed, u.home)
	}
	loc := places[where]
	if !dev.managed {
		loc = nearby[where] // the phone's mobile address
	}
	s := signIn{
		ID:                      guid(seed, uint64(i)),
		CreatedDateTime:         FormatTime(at),
		UserDisplayName:         u.displayName,
		UserPrincipalName:       u.upn,
		UserID:                  u.id,
		AppID:                   app.id,
		AppDisplayName:          app.name,
		IPAddress:               ip,
		ClientAppUsed:           "Browser",
		CorrelationID:           guid(seed^0xc0, uint64(i)),
		ConditionalAccessStatus: "success",
		IsInteractive:           true,
		RiskDetail:              "none",
		RiskLevelAggregated:     "none",
		RiskLevelDuringSignIn:   "none",
		RiskState:               "none",
		RiskEventTypes:          []string{},
		RiskEventTypesV2:        []string{},
		ResourceDisplayName:     app.resourceName,
		ResourceID:              app.resourceID,
		Status:                  signInStatus{},
		DeviceDetail: deviceDetail{DeviceID: dev.id, DisplayName: dev.name, OperatingSystem: dev.os, Browser: dev.browser,
			IsCompliant: dev.compliant, IsManaged: dev.managed, TrustType: dev.trust},
		Location: signInLocation{City: loc.city, State: loc.state, CountryOrRegion: loc.country,
			GeoCoordinates: geoCoordinates{Latitude: loc.lat, Longitude: loc.lon}},
	}
	if (h>>56)%10 == 0 { // ~10 % failures
		f := signInFailures[(h>>58)%uint64(len(signInFailures))]
		s.Status.ErrorCode = f.code
		s.Status.FailureReason = &f.reason
		if f.code == 53003 {
			s.ConditionalAccessStatus = "failure"
		}
	} else {
		details := "MFA requirement satisfied by claim in the token"
		s.Status.AdditionalDetails = &details
	}
	for p, pol := range caPolicies {
		result := "notApplied"
		if (h>>uint(p*3))%3 == 0 {
			result = "success"
		}
		if s.ConditionalAccessStatus == "failure" && p == 1 {
			result = "failure"
		}
		s.AppliedConditionalAccessPolicies = append(s.AppliedConditionalAccessPolicies, appliedCAPolicy{
			ID: pol.id, DisplayName: pol.name, EnforcedGrantControls: []string{pol.grant},
			EnforcedSessionControls: []string{}, Result: result,
		})
	}
	return s
}

// directoryAudit is the v1.0 microsoft.graph.directoryAudit resource.
type directoryAudit struct {
	ID                  string           `json:"id"`
	Category            string           `json:"category"`
	CorrelationID       string           `json:"correlationId"`
	Result              string           `json:"result"`
	ResultReason        string           `json:"resultReason"`
	ActivityDisplayName string           `json:"activityDisplayName"`
	ActivityDateTime    string           `json:"activityDateTime"`
	LoggedByService     string           `json:"loggedByService"`
	OperationType       string           `json:"operationType"`
	InitiatedBy         auditActivityBy  `json:"initiatedBy"`
	TargetResources     []targetResource `json:"targetResources"`
	AdditionalDetails   []keyValue       `json:"additionalDetails"`
}

type auditActivityBy struct {
	User *userIdentity `json:"user"`
	App  *appIdentity  `json:"app"`
}

type userIdentity struct {
	ID                string  `json:"id"`
	DisplayName       *string `json:"displayName"`
	UserPrincipalName string  `json:"userPrincipalName"`
	IPAddress         string  `json:"ipAddress"`
}

type appIdentity struct {
	AppID                string  `json:"appId"`
	DisplayName          string  `json:"displayName"`
	ServicePrincipalID   string  `json:"servicePrincipalId"`
	ServicePrincipalName *string `json:"servicePrincipalName"`
}

type targetResource struct {
	ID                 string             `json:"id"`
	DisplayName        *string            `json:"displayName"`
	Type               string             `json:"type"`
	UserPrincipalName  *string            `json:"userPrincipalName"`
	ModifiedProperties []modifiedProperty `json:"modifiedProperties"`
}

type modifiedProperty struct {
	DisplayName string `json:"displayName"`
	OldValue    string `json:"oldValue"`
	NewValue    string `json:"newValue"`
}

type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

var auditActivities = []struct{ name, category, service, op, target string }{
	{"Add user", "UserManagement", "Core Directory", "Add", "User"},
	{"Update user", "UserManagement", "Core Directory", "Update", "User"},
	{"Reset user password", "UserManagement", "Core Directory", "Update", "User"},
	{"Add member to role", "RoleManagement", "Core Directory", "Assign", "User"},
	{"Remove member from role", "RoleManagement", "Core Directory", "Unassign", "User"},
	{"Update conditional access policy", "Policy", "Conditional Access", "Update", "Policy"},
	{"Consent to application", "ApplicationManagement", "Core Directory", "Assign", "ServicePrincipal"},
}

func buildDirectoryAudit(td *tenantData, seed uint64, i int64, at time.Time) directoryAudit {
	h := mix(seed, uint64(i)^0xa0d1)
	act := auditActivities[h%uint64(len(auditActivities))]
	actor := td.users[(h>>8)%uint64(len(td.users))]
	target := td.users[(h>>20)%uint64(len(td.users))]
	d := directoryAudit{
		ID:                  directoryAuditID(&stream{seed: seed}, i),
		Category:            act.category,
		CorrelationID:       guid(seed^0xc0, uint64(i)),
		Result:              "success",
		ActivityDisplayName: act.name,
		ActivityDateTime:    FormatTime(at),
		LoggedByService:     act.service,
		OperationType:       act.op,
		InitiatedBy: auditActivityBy{User: &userIdentity{
			ID: actor.id, UserPrincipalName: actor.upn,
			IPAddress: fmt.Sprintf("10.%d.%d.%d", (h>>32)%256, (h>>40)%256, 1+(h>>48)%254),
		}},
		AdditionalDetails: []keyValue{{Key: "User-Agent", Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}},
	}
	if (h>>56)%20 == 0 {
		d.Result = "failure"
		d.ResultReason = "Microsoft.Online.Workflows.ObjectAlreadyExistsException"
	}
	if act.target == "Policy" { // an edit of one of the tenant's policies that keeps its state
		t := caTemplates[(h>>20)%uint64(len(caPolicies))]
		name := t.name
		state, _ := json.Marshal(map[string]any{"id": t.id, "displayName": t.name, "state": t.state})
		d.TargetResources = []targetResource{{ID: t.id, DisplayName: &name, Type: "Policy", ModifiedProperties: []modifiedProperty{
			{DisplayName: "ConditionalAccessPolicy", OldValue: string(state), NewValue: string(state)}}}}
		return d
	}
	name := target.displayName
	upn := target.upn
	tr := targetResource{ID: target.id, DisplayName: &name, Type: act.target, UserPrincipalName: &upn,
		ModifiedProperties: []modifiedProperty{}}
	if act.op == "Update" || act.op == "Assign" {
		tr.ModifiedProperties = append(tr.ModifiedProperties, modifiedProperty{
			DisplayName: "AccountEnabled", OldValue: "[false]", NewValue: "[true]"})
	}
	d.TargetResources = []targetResource{tr}
	return d
}
