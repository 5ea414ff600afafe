package o365receiver

import (
	"sort"
	"strings"
	"time"
)

// datasetKind says how a dataset is collected.
type datasetKind int

const (
	// kindEventStream: incremental by time — [watermark − lookback, now], dedup, commit after consume.
	kindEventStream datasetKind = iota
	// kindSnapshot: fetched whole; emitted as a snapshot plus added / modified / removed change records.
	kindSnapshot
)

// dataset describes one kind of Graph data the receiver collects.
type dataset struct {
	name      string // YAML key under `datasets`, and the o365.dataset resource attribute
	kind      datasetKind
	eventName string // LogRecord EventName
	family    string // Graph throttling family, selecting the request budget
	// sources are the Graph collections read for the dataset, each with its own cursor or snapshot.
	sources        []source
	defaultEnabled bool
	maxPageSize    int

	// Event streams.
	timeField string // the record's own time: filtered, ordered by, and the watermark
	// ordered: Graph honours $orderby on timeField, so the watermark may advance page by page.
	ordered bool
	// versionField is part of a record's identity when Graph republishes a changed record under the
	// same id (alerts): one record per version.
	versionField string
	// pageByTime: Graph may end a full page without a nextLink; the query continues from the newest
	// time seen.
	pageByTime bool
	// retention bounds initial_lookback: Graph keeps no older data.
	retention time.Duration

	// Documentation (README) and readiness.
	permission string
	licence    string
	latency    string
	// unavailableIn lists clouds that do not offer the dataset.
	unavailableIn []string
}

// source is one Graph collection of a dataset.
type source struct {
	variant    string // "" for a single-source dataset; the cursor and attribute value otherwise
	apiVersion string // v1.0 or beta
	path       string
	// filter is an extra $filter clause (sign-in kinds); query holds extra parameters ($expand).
	filter     string
	query      map[string]string
	permission string // overrides the dataset's permission for this source
}

// Graph throttling families (GRAPH.md "Service limits").
const (
	familyReports            = "reports"
	familyIdentityProtection = "identity_protection"
	familySecurity           = "security"
	familyDirectory          = "directory"
)

// signInKinds maps the `kinds` names to the beta signInEventTypes values. Interactive sign-ins are
// read from v1.0 (Microsoft's stable schema); the other kinds exist only in beta.
var signInKinds = map[string]source{
	"interactive":       {variant: "interactive", apiVersion: "v1.0", path: "/auditLogs/signIns"},
	"non_interactive":   {variant: "non_interactive", apiVersion: "beta", path: "/auditLogs/signIns", filter: "signInEventTypes/any(t: t eq 'nonInteractiveUser')"},
	"service_principal": {variant: "service_principal", apiVersion: "beta", path: "/auditLogs/signIns", filter: "signInEventTypes/any(t: t eq 'servicePrincipal')"},
	"managed_identity":  {variant: "managed_identity", apiVersion: "beta", path: "/auditLogs/signIns", filter: "signInEventTypes/any(t: t eq 'managedIdentity')"},
}

var signInKindOrder = []string{"interactive", "non_interactive", "service_principal", "managed_identity"}

func signInKindNames() string { return strings.Join(signInKindOrder, ", ") }

const day = 24 * time.Hour

var datasets = []*dataset{
	{
		name: "signins", kind: kindEventStream, eventName: "o365.signin", family: familyReports,
		sources:   []source{signInKinds["interactive"], signInKinds["non_interactive"], signInKinds["service_principal"], signInKinds["managed_identity"]},
		timeField: "createdDateTime", ordered: true, retention: 30 * day, maxPageSize: 1000, defaultEnabled: true,
		permission: "AuditLog.Read.All", licence: "Entra ID P1 or P2", latency: "2 min p95, 5 min p99",
	},
	{
		name: "directory_audits", kind: kindEventStream, eventName: "o365.directory_audit", family: familyReports,
		sources:   []source{{apiVersion: "v1.0", path: "/auditLogs/directoryAudits"}},
		timeField: "activityDateTime", ordered: true, retention: 30 * day, maxPageSize: 1000, defaultEnabled: true,
		permission: "AuditLog.Read.All", licence: "any (Entra ID Free keeps 7 days)", latency: "2 min p95, 5 min p99",
	},
	{
		name: "security_alerts", kind: kindEventStream, eventName: "o365.security_alert", family: familySecurity,
		sources:   []source{{apiVersion: "v1.0", path: "/security/alerts_v2"}},
		timeField: "lastUpdateDateTime", versionField: "lastUpdateDateTime", pageByTime: true,
		retention: 180 * day, maxPageSize: 1000, defaultEnabled: false,
		permission: "SecurityAlert.Read.All", licence: "Microsoft Defender XDR", latency: "minutes; one record per alert update",
	},
	{
		name: "risk_detections", kind: kindEventStream, eventName: "o365.risk_detection", family: familyIdentityProtection,
		sources:   []source{{apiVersion: "v1.0", path: "/identityProtection/riskDetections"}},
		timeField: "lastUpdatedDateTime", versionField: "lastUpdatedDateTime",
		retention: 90 * day, maxPageSize: 500, defaultEnabled: true,
		permission: "IdentityRiskEvent.Read.All", licence: "Entra ID P2 (P1: limited)", latency: "5–10 min real-time, up to 48 h offline",
		unavailableIn: []string{"china"},
	},
	{
		name: "role_assignments", kind: kindSnapshot, eventName: "o365.role_assignment", family: familyDirectory,
		sources: []source{
			{variant: "active", apiVersion: "v1.0", path: "/roleManagement/directory/roleAssignments", query: map[string]string{"$expand": "principal,roleDefinition"}},
			{variant: "eligible", apiVersion: "v1.0", path: "/roleManagement/directory/roleEligibilitySchedules", query: map[string]string{"$expand": "principal,roleDefinition"},
				permission: "RoleEligibilitySchedule.Read.Directory"},
		},
		maxPageSize: 999, defaultEnabled: true,
		permission: "RoleManagement.Read.Directory", licence: "any (eligible assignments: Entra ID P2 / PIM)", latency: "near real time",
	},
	{
		name: "conditional_access_policies", kind: kindSnapshot, eventName: "o365.conditional_access_policy", family: familyIdentityProtection,
		sources:     []source{{apiVersion: "v1.0", path: "/identity/conditionalAccess/policies"}},
		maxPageSize: 0, defaultEnabled: true,
		permission: "Policy.Read.All", licence: "Entra ID P1 or P2", latency: "near real time",
	},
	{
		name: "mfa_coverage", kind: kindSnapshot, eventName: "o365.mfa_registration", family: familyReports,
		sources:     []source{{apiVersion: "v1.0", path: "/reports/authenticationMethods/userRegistrationDetails"}},
		maxPageSize: 999, defaultEnabled: true,
		permission: "AuditLog.Read.All", licence: "Entra ID P1 or P2", latency: "up to a day",
	},
}

var datasetsByName = func() map[string]*dataset {
	m := map[string]*dataset{}
	for _, d := range datasets {
		m[d.name] = d
	}
	return m
}()

func datasetNames() string {
	names := make([]string, 0, len(datasets))
	for _, d := range datasets {
		names = append(names, d.name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// sourcesFor returns the sources a tenant reads for d (sign-in kinds filtered by `kinds`).
func (d *dataset) sourcesFor(dc DatasetConfig) []source {
	if d.name != "signins" || len(dc.Kinds) == 0 {
		return d.sources
	}
	var out []source
	for _, k := range signInKindOrder {
		for _, want := range dc.Kinds {
			if want == k {
				out = append(out, signInKinds[k])
			}
		}
	}
	return out
}

// availableIn reports whether the dataset exists in a cloud.
func (d *dataset) availableIn(cloud string) bool {
	for _, c := range d.unavailableIn {
		if c == cloud {
			return false
		}
	}
	return true
}

// permissions lists, sorted, the application permissions the tenant's sources of d need.
func (d *dataset) permissions(dc DatasetConfig) []string {
	set := map[string]bool{}
	for _, src := range d.sourcesFor(dc) {
		if src.permission != "" {
			set[src.permission] = true
		} else {
			set[d.permission] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
