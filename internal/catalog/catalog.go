// Package catalog is the one home of the facts about each dataset otelcol-o365 collects from Microsoft
// Graph: its Graph collections, time field, kind, throttling family, permissions, licence, documented
// latency and the lookback that fits it. The receiver collects from it, the processor numbers and
// recognises datasets by it, and the extensions describe datasets from it; none restates a fact.
//
// Sources: ../../../shared/GRAPH.md (Microsoft's documentation, cited there per fact).
package catalog

import (
	"slices"
	"sort"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Kind says how a dataset is collected.
type Kind int

const (
	// EventStream: incremental by time — [position − lookback, now], dedup, commit after consume.
	EventStream Kind = iota
	// Snapshot: fetched whole; emitted as a snapshot plus added / modified / removed change records.
	Snapshot
	// ActivityFeed: an Office 365 Management Activity API content type — content blobs listed by the time
	// they became available ([position − lookback, now] in windows of at most 24 h), each fetched and
	// its audit records emitted; dedup by blob and record id, commit after consume.
	ActivityFeed
)

func (k Kind) String() string {
	switch k {
	case Snapshot:
		return "snapshot"
	case ActivityFeed:
		return "activity_feed"
	}
	return "event_stream"
}

// Graph throttling families (GRAPH.md "Service limits"): each has its own request budget.
const (
	FamilyReports            = "reports"
	FamilyIdentityProtection = "identity_protection"
	FamilySecurity           = "security"
	FamilyDirectory          = "directory"
	FamilyIntune             = "intune"
	// FamilyManagement is the Office 365 Management Activity API, a service apart from Graph.
	FamilyManagement = "management_activity"
)

// Limit is a family's documented request budget: TenantRequests per Window per app in one tenant, and
// AppRequests (0 = none documented) per Window per app across tenants.
type Limit struct {
	TenantRequests int
	AppRequests    int
	Window         time.Duration
}

// Limits are Graph's documented limits by family (learn.microsoft.com/graph/throttling-limits).
var Limits = map[string]Limit{
	FamilyReports: {TenantRequests: 5, AppRequests: 122, Window: 10 * time.Second},
	// 1 request / s per tenant across all apps; Graph sends no Retry-After for this family.
	FamilyIdentityProtection: {TenantRequests: 1, Window: time.Second},
	FamilySecurity:           {TenantRequests: 150, Window: time.Minute},
	// Directory reads are metered in resource units (3,500+ per 10 s per app and tenant); a list page
	// costs a few, so this stays far inside the smallest tenant's allowance.
	FamilyDirectory: {TenantRequests: 100, Window: 10 * time.Second},
	// Graph lists Intune's limits per Intune service; the smallest we found quoted (devices: 2,000
	// requests per 20 s per app per tenant) is far above this, which an audit poll never nears.
	FamilyIntune: {TenantRequests: 100, Window: 20 * time.Second},
	// The Management Activity API's baseline: 2,000 requests per minute per tenant (its reference, "API
	// throttling": the quota moved from the publisher to the tenant; E5 tenants get about twice as much).
	FamilyManagement: {TenantRequests: 2000, Window: time.Minute},
}

// Dataset describes one kind of Graph data.
type Dataset struct {
	Name      string // YAML key under `datasets`, and the o365.dataset resource attribute
	Kind      Kind
	EventName string // LogRecord EventName of its records
	Family    string // Graph throttling family
	// Sources are the Graph collections read for the dataset, each with its own cursor or snapshot.
	Sources        []Source
	DefaultEnabled bool
	MaxPageSize    int // Graph's documented $top maximum (0 = the API takes no $top)

	// EventTimeField is the body field that holds the time the record describes ("" = none): where the
	// processor takes a record's Timestamp from when the receiver set none. It differs from TimeField
	// where Graph filters on a later update time (risk detections: activityDateTime vs.
	// lastUpdatedDateTime), and snapshots have it though they have no cursor.
	EventTimeField string

	// Event streams.
	TimeField string // the receiver's cursor: filtered, ordered by, and the position
	// OrderBy: Graph documents $orderby on TimeField. It is asked for, never trusted: each page's order
	// is checked before the receiver relies on it.
	OrderBy bool
	// VersionField is part of a record's identity when Graph republishes a changed record under the
	// same id (alerts): one record per version.
	VersionField string
	// PageByTime: Graph may end a full page without a nextLink (elastic/integrations#20234); the query
	// continues past the page's time boundary.
	PageByTime bool
	// Retention bounds initial_lookback: Graph keeps no older data.
	Retention time.Duration
	// Lookback is the default of how late a record may become visible in Graph and still be collected:
	// a margin over Microsoft's documented latency for the dataset (Latency).
	Lookback time.Duration

	// What Graph requires, for documentation and readiness.
	Permission string
	Licence    string
	Latency    string
	// UnavailableIn lists clouds that do not offer the dataset.
	UnavailableIn []string

	// ContentType is the Management Activity API content type of an ActivityFeed dataset.
	ContentType string
}

// Source is one Graph collection of a dataset.
type Source struct {
	Variant    string // "" for a single-source dataset; the cursor and o365.record.kind value otherwise
	APIVersion string // v1.0 or beta
	Path       string
	// Filter is an extra $filter clause (sign-in kinds); Query holds extra parameters ($expand).
	Filter     string
	Query      map[string]string
	Permission string // overrides the dataset's permission for this source
}

// Sign-in kinds: interactive sign-ins are read from v1.0 (Microsoft's stable schema); the other kinds
// exist only in beta, selected by signInEventTypes.
var (
	SignInsInteractive      = Source{Variant: "interactive", APIVersion: "v1.0", Path: "/auditLogs/signIns"}
	SignInsNonInteractive   = Source{Variant: "non_interactive", APIVersion: "beta", Path: "/auditLogs/signIns", Filter: "signInEventTypes/any(t: t eq 'nonInteractiveUser')"}
	SignInsServicePrincipal = Source{Variant: "service_principal", APIVersion: "beta", Path: "/auditLogs/signIns", Filter: "signInEventTypes/any(t: t eq 'servicePrincipal')"}
	SignInsManagedIdentity  = Source{Variant: "managed_identity", APIVersion: "beta", Path: "/auditLogs/signIns", Filter: "signInEventTypes/any(t: t eq 'managedIdentity')"}
)

const day = 24 * time.Hour

// Datasets, in the order the receiver starts them and the documentation lists them.
var (
	SignIns = &Dataset{
		Name: o365attr.DatasetSignIns, Kind: EventStream, EventName: o365attr.EventSignIn, Family: FamilyReports,
		Sources:   []Source{SignInsInteractive, SignInsNonInteractive, SignInsServicePrincipal, SignInsManagedIdentity},
		TimeField: "createdDateTime", EventTimeField: "createdDateTime", OrderBy: true, Retention: 30 * day, MaxPageSize: 1000, DefaultEnabled: true,
		// 6 × the documented p99; each poll re-reads it, so it costs budget (receiver README).
		Lookback:   30 * time.Minute,
		Permission: "AuditLog.Read.All", Licence: "Entra ID P1 or P2", Latency: "2 min p95, 5 min p99",
	}
	DirectoryAudits = &Dataset{
		Name: o365attr.DatasetDirectoryAudits, Kind: EventStream, EventName: o365attr.EventDirectoryAudit, Family: FamilyReports,
		Sources:   []Source{{APIVersion: "v1.0", Path: "/auditLogs/directoryAudits"}},
		TimeField: "activityDateTime", EventTimeField: "activityDateTime", OrderBy: true, Retention: 30 * day, MaxPageSize: 1000, DefaultEnabled: true,
		Lookback:   30 * time.Minute,
		Permission: "AuditLog.Read.All", Licence: "any (Entra ID Free keeps 7 days)", Latency: "2 min p95, 5 min p99",
	}
	SecurityAlerts = &Dataset{
		Name: o365attr.DatasetSecurityAlerts, Kind: EventStream, EventName: o365attr.EventSecurityAlert, Family: FamilySecurity,
		Sources:   []Source{{APIVersion: "v1.0", Path: "/security/alerts_v2"}},
		TimeField: "lastUpdateDateTime", EventTimeField: "lastUpdateDateTime", VersionField: "lastUpdateDateTime", PageByTime: true,
		Retention: 180 * day, MaxPageSize: 1000, DefaultEnabled: false,
		// No latency is documented for alerts_v2; the lateness the receiver measures tells whether it fits.
		Lookback:   time.Hour,
		Permission: "SecurityAlert.Read.All", Licence: "Microsoft Defender XDR", Latency: "not documented; one record per alert update",
	}
	RiskDetections = &Dataset{
		Name: o365attr.DatasetRiskDetections, Kind: EventStream, EventName: o365attr.EventRiskDetection, Family: FamilyIdentityProtection,
		Sources:   []Source{{APIVersion: "v1.0", Path: "/identityProtection/riskDetections"}},
		TimeField: "lastUpdatedDateTime", EventTimeField: "activityDateTime", VersionField: "lastUpdatedDateTime",
		Retention: 90 * day, MaxPageSize: 500, DefaultEnabled: true,
		// Offline detections appear up to 48 h later: 48 h is 80 % of 60 h, where the receiver warns.
		Lookback:   60 * time.Hour,
		Permission: "IdentityRiskEvent.Read.All", Licence: "Entra ID P2 (P1: limited)", Latency: "5–10 min real-time, up to 48 h offline",
		UnavailableIn: []string{"china"},
	}
	// SecurityIncidents are Defender XDR incidents with their alerts expanded. Graph republishes an incident
	// under its id whenever it changes (severity, status, assignment, a new alert), like alerts_v2.
	SecurityIncidents = &Dataset{
		Name: o365attr.DatasetSecurityIncidents, Kind: EventStream, EventName: o365attr.EventSecurityIncident, Family: FamilySecurity,
		Sources:   []Source{{APIVersion: "v1.0", Path: "/security/incidents", Query: map[string]string{"$expand": "alerts"}}},
		TimeField: "lastUpdateDateTime", EventTimeField: "lastUpdateDateTime", VersionField: "lastUpdateDateTime", PageByTime: true,
		// Graph documents no $top maximum for incidents; each carries its alerts, so pages stay small.
		Retention: 180 * day, MaxPageSize: 50, DefaultEnabled: false,
		// As alerts_v2 (the incidents' own source): no latency documented; the measured lateness tells.
		Lookback:   time.Hour,
		Permission: "SecurityIncident.Read.All", Licence: "Microsoft Defender XDR", Latency: "not documented; one record per incident update",
	}
	// IntuneAuditEvents are Intune's own audit log (who changed which device policy, app or setting).
	IntuneAuditEvents = &Dataset{
		Name: o365attr.DatasetIntuneAuditEvents, Kind: EventStream, EventName: o365attr.EventIntuneAudit, Family: FamilyIntune,
		Sources: []Source{{APIVersion: "v1.0", Path: "/deviceManagement/auditEvents"}},
		// Off by default: a tenant without an Intune licence would only report it as missing.
		TimeField: "activityDateTime", EventTimeField: "activityDateTime", DefaultEnabled: false,
		// Graph documents neither $orderby, $top nor a retention for auditEvents: none is asked for or bounded.
		// No latency is documented; the directory audits' 30 min margin, checked by the measured lateness.
		Lookback: 30 * time.Minute,
		// Documented least-privileged permission: the Intune apps scope, not DeviceManagementConfiguration.
		Permission: "DeviceManagementApps.Read.All", Licence: "Microsoft Intune", Latency: "not documented",
	}
	RoleAssignments = &Dataset{
		Name: o365attr.DatasetRoleAssignments, Kind: Snapshot, EventName: o365attr.EventRoleAssignment, Family: FamilyDirectory,
		Sources: []Source{
			{Variant: "active", APIVersion: "v1.0", Path: "/roleManagement/directory/roleAssignments", Query: map[string]string{"$expand": "principal,roleDefinition"}},
			{Variant: "eligible", APIVersion: "v1.0", Path: "/roleManagement/directory/roleEligibilitySchedules", Query: map[string]string{"$expand": "principal,roleDefinition"},
				Permission: "RoleEligibilitySchedule.Read.Directory"},
		},
		MaxPageSize: 999, DefaultEnabled: true,
		Permission: "RoleManagement.Read.Directory", Licence: "any (eligible assignments: Entra ID P2 / PIM)", Latency: "near real time",
	}
	ConditionalAccessPolicies = &Dataset{
		Name: o365attr.DatasetConditionalAccessPolicies, Kind: Snapshot, EventName: o365attr.EventConditionalAccessPolicy,
		Family: FamilyIdentityProtection, EventTimeField: "modifiedDateTime",
		Sources: []Source{{APIVersion: "v1.0", Path: "/identity/conditionalAccess/policies"}}, DefaultEnabled: true,
		Permission: "Policy.Read.All", Licence: "Entra ID P1 or P2", Latency: "near real time",
	}
	MFACoverage = &Dataset{
		Name: o365attr.DatasetMFACoverage, Kind: Snapshot, EventName: o365attr.EventMFARegistration, Family: FamilyReports,
		Sources:     []Source{{APIVersion: "v1.0", Path: "/reports/authenticationMethods/userRegistrationDetails"}},
		MaxPageSize: 999, DefaultEnabled: true, EventTimeField: "lastUpdatedDateTime",
		Permission: "AuditLog.Read.All", Licence: "Entra ID P1 or P2", Latency: "up to a day",
	}
	// RiskyUsers is Identity Protection's current risk of each user at risk: a change of riskLevel or
	// riskState changes the item, so it shows as a `modified` change record. Off by default: it needs
	// Entra ID P2 outright, and a P1 tenant (which the default datasets fit) would only report it missing.
	RiskyUsers = &Dataset{
		Name: o365attr.DatasetRiskyUsers, Kind: Snapshot, EventName: o365attr.EventRiskyUser, Family: FamilyIdentityProtection,
		Sources:     []Source{{APIVersion: "v1.0", Path: "/identityProtection/riskyUsers"}},
		MaxPageSize: 500, DefaultEnabled: false, EventTimeField: "riskLastUpdatedDateTime",
		Permission: "IdentityRiskyUser.Read.All", Licence: "Entra ID P2", Latency: "not documented; follows its risk detections",
		UnavailableIn: []string{"china"},
	}
)

// ActivityFeedSource is where every ActivityFeed dataset is read: {management endpoint}/api/v1.0/{tenant
// id}/activity/feed, the content type selecting the feed.
var ActivityFeedSource = Source{APIVersion: "api/v1.0", Path: "/activity/feed"}

// activityFeed describes one Management Activity API content type. Blobs are listed by when they became
// available (contentCreated), and Microsoft documents no bound on how long after that a blob is listed,
// only that the first blobs of a new subscription take up to 12 h and that records within and across
// blobs are out of order (the API reference, "Working with the Office 365 Management Activity API").
// The lookback is 24 h: twice that one documented figure, and the longest window one list request may
// cover (AF20030), so re-listing it costs one request per poll (plus NextPageUri pages); blobs already
// collected are skipped by their contentId without being fetched again. Content stays 7 days.
func activityFeed(name, event, contentType string, defaultEnabled bool, permission string) *Dataset {
	return &Dataset{
		Name: name, Kind: ActivityFeed, EventName: event, Family: FamilyManagement, ContentType: contentType,
		Sources:   []Source{ActivityFeedSource},
		TimeField: "contentCreated", EventTimeField: "CreationTime", Retention: 7 * day, DefaultEnabled: defaultEnabled,
		Lookback:   24 * time.Hour,
		Permission: permission, Licence: "unified audit logging turned on (any Microsoft 365 plan)",
		Latency: "not guaranteed; first blobs up to 12 h after the subscription starts",
	}
}

// Management Activity API datasets: off by default (each needs the Management API's own permission and
// a subscription, which the receiver starts). DLP records carry the sensitive data matched: off unless
// enabled, with its own permission.
var (
	AuditAzureAD    = activityFeed(o365attr.DatasetAuditAzureAD, o365attr.EventAuditAzureAD, "Audit.AzureActiveDirectory", false, "ActivityFeed.Read")
	AuditExchange   = activityFeed(o365attr.DatasetAuditExchange, o365attr.EventAuditExchange, "Audit.Exchange", false, "ActivityFeed.Read")
	AuditSharePoint = activityFeed(o365attr.DatasetAuditSharePoint, o365attr.EventAuditSharePoint, "Audit.SharePoint", false, "ActivityFeed.Read")
	AuditGeneral    = activityFeed(o365attr.DatasetAuditGeneral, o365attr.EventAuditGeneral, "Audit.General", false, "ActivityFeed.Read")
	DLP             = activityFeed(o365attr.DatasetDLP, o365attr.EventDLP, "DLP.All", false, "ActivityFeed.ReadDlp")
)

var all = []*Dataset{SignIns, DirectoryAudits, SecurityAlerts, RiskDetections, RoleAssignments, ConditionalAccessPolicies, MFACoverage,
	SecurityIncidents, IntuneAuditEvents, RiskyUsers, AuditAzureAD, AuditExchange, AuditSharePoint, AuditGeneral, DLP}

// All lists every dataset, in catalog order (the order of Index).
func All() []*Dataset { return all }

// Index is the dataset's position in All: a stable number for per-dataset counters.
func (d *Dataset) Index() int { return slices.Index(all, d) }

var byName = func() map[string]*Dataset {
	m := map[string]*Dataset{}
	for _, d := range all {
		m[d.Name] = d
	}
	return m
}()

// ByName returns the dataset called name.
func ByName(name string) (*Dataset, bool) {
	d, ok := byName[name]
	return d, ok
}

// Names lists the dataset names, sorted.
func Names() []string {
	out := make([]string, 0, len(all))
	for _, d := range all {
		out = append(out, d.Name)
	}
	sort.Strings(out)
	return out
}

// Source returns the dataset's source with the given variant.
func (d *Dataset) Source(variant string) (Source, bool) {
	for _, s := range d.Sources {
		if s.Variant == variant {
			return s, true
		}
	}
	return Source{}, false
}

// Variants lists the names of the dataset's sources (nil for a single-source dataset).
func (d *Dataset) Variants() []string {
	var out []string
	for _, s := range d.Sources {
		if s.Variant != "" {
			out = append(out, s.Variant)
		}
	}
	return out
}

// AvailableIn reports whether the dataset exists in a cloud.
func (d *Dataset) AvailableIn(cloud string) bool { return !slices.Contains(d.UnavailableIn, cloud) }

// Permissions lists, sorted, the application permissions the given sources of d need.
func (d *Dataset) Permissions(sources []Source) []string {
	set := map[string]bool{}
	for _, src := range sources {
		if src.Permission != "" {
			set[src.Permission] = true
		} else {
			set[d.Permission] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
