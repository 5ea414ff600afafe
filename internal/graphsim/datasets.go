package graphsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// datasetKind says how a Graph collection is served.
type datasetKind int

const (
	// kindStream: a time-ordered event stream, lazily generated, filtered on its time field.
	kindStream datasetKind = iota
	// kindSnapshot: a small collection without a usable time field, listed whole and paged with
	// $skiptoken; its items are generated once per tenant and may be changed at run time.
	kindSnapshot
)

// datasetDef describes one Graph collection the simulator serves.
type datasetDef struct {
	name    string // receiver dataset name, used in Config.Tenants[].Datasets
	kind    datasetKind
	path    string // URL path under the version segment
	family  string // throttling family (GRAPH.md "Service limits")
	roles   []string
	premium bool   // requires Entra ID P1/P2
	context string // @odata.context suffix after $metadata#
	// Page sizes: maxTop 0 = Config.MaxPageSize (which also caps a dataset's own maximum); defaultTop 0 =
	// the maximum.
	defaultTop, maxTop int

	// Event streams.
	timeField string        // the filterable time property, the stream's order
	timeUnit  time.Duration // resolution Graph renders timeField with (7, 6 or 3 fractional digits)
	orderable bool          // $orderby on timeField is supported
	skippable bool          // $skip is supported (alerts_v2 documents it)
	betaOnly  bool          // served by the beta endpoint only
	// eventType is the beta signInEventTypes value that selects this sign-in kind ("" = not a sign-in).
	eventType string
	versioned bool // DatasetSpec.Versions applies
	// altTimes are other time properties $filter accepts; each is never later than timeField.
	altTimes map[string]altTime
	// id and build compute synthetic record i of a stream; beta selects the beta shape where it differs.
	id    func(s *stream, i int64) string
	build func(s *stream, i int64, beta bool) json.RawMessage

	// Snapshots.
	expandable []string // navigation properties $expand accepts
	generate   func(td *tenantData, count int) []snapItem
	capacity   func(t Tenant) int // the largest Count the tenant's pools can fill (0 = unlimited)
}

// altTime is a time property of a stream's records other than its time field. at computes it for
// synthetic record i; maxLead bounds how much earlier than the time field it can be, so that a filter on
// it maps to a range of the stream.
type altTime struct {
	at      func(s *stream, i int64) time.Time
	maxLead func(s *stream) time.Duration
}

var (
	reportsRoles = []string{"AuditLog.Read.All"}
	signInKinds  = []struct{ name, eventType string }{
		{"signins_non_interactive", "nonInteractiveUser"},
		{"signins_service_principal", "servicePrincipal"},
		{"signins_managed_identity", "managedIdentity"},
	}
)

var datasetDefs = func() []*datasetDef {
	defs := []*datasetDef{
		{
			name: "signins", kind: kindStream, path: "/auditLogs/signIns", family: "reports",
			roles: reportsRoles, premium: true, context: "auditLogs/signIns",
			timeField: "createdDateTime", timeUnit: 100 * time.Nanosecond, orderable: true, eventType: "interactiveUser",
			id: func(s *stream, i int64) string { return guid(s.seed, uint64(i)) },
			build: func(s *stream, i int64, beta bool) json.RawMessage {
				if beta {
					return mustJSON(buildBetaSignIn(s, i))
				}
				return mustJSON(buildSignIn(s.tenant, s.seed, i, s.timeAt(i)))
			},
		},
	}
	for _, k := range signInKinds {
		defs = append(defs, &datasetDef{
			name: k.name, kind: kindStream, path: "/auditLogs/signIns", family: "reports",
			roles: reportsRoles, premium: true, context: "auditLogs/signIns",
			timeField: "createdDateTime", timeUnit: 100 * time.Nanosecond, orderable: true,
			betaOnly: true, eventType: k.eventType,
			id:    func(s *stream, i int64) string { return guid(s.seed, uint64(i)) },
			build: func(s *stream, i int64, _ bool) json.RawMessage { return mustJSON(buildBetaSignIn(s, i)) },
		})
	}
	defs = append(defs,
		&datasetDef{
			name: "directory_audits", kind: kindStream, path: "/auditLogs/directoryAudits", family: "reports",
			roles: reportsRoles, context: "auditLogs/directoryAudits",
			timeField: "activityDateTime", timeUnit: 100 * time.Nanosecond, orderable: true,
			id: directoryAuditID,
			build: func(s *stream, i int64, _ bool) json.RawMessage {
				return mustJSON(buildDirectoryAudit(s.tenant, s.seed, i, s.timeAt(i)))
			},
		},
		&datasetDef{
			// Microsoft Defender XDR alerts: licensed by Defender, not by Entra ID P1/P2.
			name: "security_alerts", kind: kindStream, path: "/security/alerts_v2", family: "security",
			roles: []string{"SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"}, context: "security/alerts_v2",
			maxTop: 1000, timeField: "lastUpdateDateTime", timeUnit: time.Millisecond, versioned: true, skippable: true,
			altTimes: map[string]altTime{"createdDateTime": {at: alertCreatedAt, maxLead: alertMaxLead}},
			id:       alertID,
			build:    func(s *stream, i int64, _ bool) json.RawMessage { return mustJSON(buildAlert(s, i)) },
		},
		&datasetDef{
			name: "risk_detections", kind: kindStream, path: "/identityProtection/riskDetections", family: "identity_protection",
			roles: []string{"IdentityRiskEvent.Read.All", "IdentityRiskEvent.ReadWrite.All"}, premium: true,
			context: "identityProtection/riskDetections", defaultTop: 20, maxTop: 500,
			timeField: "lastUpdatedDateTime", timeUnit: time.Microsecond, orderable: true, versioned: true,
			altTimes: map[string]altTime{
				"activityDateTime": {at: riskActivityAt, maxLead: riskMaxLead},
				"detectedDateTime": {at: riskDetectedAt, maxLead: riskMaxLead},
			},
			id:    riskID,
			build: func(s *stream, i int64, _ bool) json.RawMessage { return mustJSON(buildRiskDetection(s, i)) },
		},
		&datasetDef{
			// Defender XDR incidents, licensed like alerts; $expand=alerts adds each incident's alerts.
			name: "security_incidents", kind: kindStream, path: "/security/incidents", family: "security",
			roles: []string{"SecurityIncident.Read.All", "SecurityIncident.ReadWrite.All"}, context: "security/incidents",
			timeField: "lastUpdateDateTime", timeUnit: 100 * time.Nanosecond, versioned: true, skippable: true,
			expandable: []string{"alerts"},
			id:         incidentID,
			build:      func(s *stream, i int64, _ bool) json.RawMessage { return mustJSON(buildIncident(s, i)) },
		},
		&datasetDef{
			// Intune's audit log: needs an Intune licence, not Entra ID P1/P2.
			name: "intune_audit_events", kind: kindStream, path: "/deviceManagement/auditEvents", family: "intune",
			roles: []string{"DeviceManagementApps.Read.All", "DeviceManagementApps.ReadWrite.All"}, context: "deviceManagement/auditEvents",
			timeField: "activityDateTime", timeUnit: 100 * time.Nanosecond,
			id:    func(s *stream, i int64) string { return guid(s.seed, uint64(i)) },
			build: func(s *stream, i int64, _ bool) json.RawMessage { return mustJSON(buildIntuneAudit(s, i)) },
		},
		&datasetDef{
			name: "role_assignments", kind: kindSnapshot, path: "/roleManagement/directory/roleAssignments", family: "directory",
			roles: []string{"RoleManagement.Read.Directory", "Directory.Read.All", "RoleManagement.Read.All",
				"RoleManagement.ReadWrite.Directory", "Directory.ReadWrite.All"},
			context: "roleManagement/directory/roleAssignments", defaultTop: 100, maxTop: 999,
			expandable: []string{"principal", "roleDefinition"},
			generate:   genRoleAssignments,
			capacity:   func(t Tenant) int { return poolSize(t) * len(roleDefinitions) },
		},
		&datasetDef{
			// PIM: Entra ID P2.
			name: "role_eligibility_schedules", kind: kindSnapshot, path: "/roleManagement/directory/roleEligibilitySchedules", family: "directory",
			roles: []string{"RoleEligibilitySchedule.Read.Directory", "RoleManagement.Read.Directory", "RoleManagement.Read.All",
				"RoleEligibilitySchedule.ReadWrite.Directory", "RoleManagement.ReadWrite.Directory"},
			premium: true, context: "roleManagement/directory/roleEligibilitySchedules", defaultTop: 100, maxTop: 999,
			expandable: []string{"principal", "roleDefinition"},
			generate:   genRoleEligibilitySchedules,
			capacity:   func(t Tenant) int { return poolSize(t) * len(privilegedRoles()) },
		},
		&datasetDef{
			name: "conditional_access_policies", kind: kindSnapshot, path: "/identity/conditionalAccess/policies", family: "identity_protection",
			roles: []string{"Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"}, premium: true,
			context: "identity/conditionalAccess/policies", defaultTop: 100, maxTop: 999,
			generate: genConditionalAccessPolicies,
		},
		&datasetDef{
			name: "mfa_coverage", kind: kindSnapshot, path: "/reports/authenticationMethods/userRegistrationDetails", family: "reports",
			roles: reportsRoles, premium: true,
			context: "reports/authenticationMethods/userRegistrationDetails", defaultTop: 100, maxTop: 999,
			generate: genUserRegistrationDetails,
			capacity: func(Tenant) int { return maxUsers },
		},
		&datasetDef{
			// Entra ID P2 (the simulator's `unlicensed` tenant has neither P1 nor P2).
			name: "risky_users", kind: kindSnapshot, path: "/identityProtection/riskyUsers", family: "identity_protection",
			roles: []string{"IdentityRiskyUser.Read.All", "IdentityRiskyUser.ReadWrite.All"}, premium: true,
			context: "identityProtection/riskyUsers", maxTop: 500,
			generate: genRiskyUsers,
			capacity: func(t Tenant) int { return poolSize(t) / 3 },
		},
	)
	return defs
}()

var datasetsByName = func() map[string]*datasetDef {
	m := map[string]*datasetDef{}
	for _, d := range datasetDefs {
		m[d.name] = d
	}
	return m
}()

// Graph paths are case-insensitive; route by their lower-case form. Sign-in kinds share a path.
var datasetsByPath = func() map[string][]*datasetDef {
	m := map[string][]*datasetDef{}
	for _, d := range datasetDefs {
		m[strings.ToLower(d.path)] = append(m[strings.ToLower(d.path)], d)
	}
	return m
}()

// validate checks a tenant's spec of the dataset.
func (d *datasetDef) validate(spec DatasetSpec, t Tenant) error {
	var errs []error
	if spec.Count < 0 || spec.RatePerSecond < 0 || spec.LateFraction < 0 || spec.LateFraction > 1 {
		errs = append(errs, errors.New("count, rate_per_second and late_fraction must not be negative (late_fraction at most 1)"))
	}
	switch d.kind {
	case kindStream:
		if spec.Versions > 1 && !d.versioned {
			errs = append(errs, errors.New("versions applies to security_alerts, security_incidents and risk_detections only"))
		}
		if spec.Versions > 1 && spec.PerTimestamp > 1 {
			errs = append(errs, errors.New("versions > 1 requires per_timestamp 1: two versions of an item never share a time"))
		}
	case kindSnapshot:
		if d.capacity != nil && spec.Count > d.capacity(t) {
			errs = append(errs, fmt.Errorf("count %d exceeds what the tenant's pools can fill (%d)", spec.Count, d.capacity(t)))
		}
	}
	return errors.Join(errs...)
}

// pageSizes returns the default and the largest $top of the dataset under the configured cap.
func (d *datasetDef) pageSizes(capTop int) (def, maxTop int) {
	maxTop = capTop
	if d.maxTop > 0 && d.maxTop < maxTop {
		maxTop = d.maxTop
	}
	def = maxTop
	if d.defaultTop > 0 && d.defaultTop < def {
		def = d.defaultTop
	}
	return def, maxTop
}

func (d *datasetDef) hasRole(roles []string) bool {
	for _, want := range d.roles {
		for _, r := range roles {
			if r == want {
				return true
			}
		}
	}
	return false
}

// formatTime renders t at the dataset's resolution.
func (d *datasetDef) formatTime(t time.Time) string { return formatTimeUnit(t, d.timeUnit) }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own fixed record types are marshaled here
	}
	return b
}

// FormatTime renders t as Graph does for sign-ins and audits: UTC with 7 fractional digits.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// formatTimeUnit renders t in UTC with the fractional digits of unit: 100 ns → 7, 1 µs → 6, 1 ms → 3,
// 1 s → none (GRAPH.md: the number of digits differs per API).
func formatTimeUnit(t time.Time, unit time.Duration) string {
	switch unit {
	case time.Microsecond:
		return t.UTC().Format("2006-01-02T15:04:05.000000Z")
	case time.Millisecond:
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	case time.Second:
		return t.UTC().Format("2006-01-02T15:04:05Z")
	default:
		return FormatTime(t)
	}
}

// guid is a deterministic RFC 4122-shaped id from (seed, n).
func guid(seed, n uint64) string {
	a, b := mix(seed, n), mix(seed^0xabcdef, n)
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", uint32(a>>32), uint16(a>>16), uint16(a)&0x0fff,
		(uint16(b>>48)&0x3fff)|0x8000, b&0xffffffffffff)
}

// directoryAuditID mimics Graph's opaque, non-GUID audit ids.
func directoryAuditID(s *stream, i int64) string {
	return fmt.Sprintf("Directory_%s_%s_%d", guid(s.seed, uint64(i)), strings.ToUpper(letters(mix(s.seed, uint64(i)^0x77), 5)), 10000000+i)
}

func letters(x uint64, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + x%26)
		x /= 26
	}
	return string(b)
}
