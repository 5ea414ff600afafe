// Package o365attr names the attributes and values the `o365` receiver and the `o365_mapping` processor
// put on log records, so that consumers (the `o365_export` exporter, tests) share one spelling.
//
// The table with the meaning of each attribute is in processor/o365mappingprocessor/README.md
// ("Normalized attributes"); it is a contract: keys are only ever added, never renamed.
package o365attr

// Resource attributes (set by the receiver; the processor's incident ResourceLogs carries them too).
const (
	CloudProvider = "cloud.provider" // always "azure"
	TenantID      = "azure.tenant.id"
	TenantName    = "o365.tenant.name"
	Dataset       = "o365.dataset"
)

// Datasets (values of the o365.dataset resource attribute).
const (
	DatasetSignIns                   = "signins"
	DatasetDirectoryAudits           = "directory_audits"
	DatasetRoleAssignments           = "role_assignments"
	DatasetConditionalAccessPolicies = "conditional_access_policies"
	DatasetMFACoverage               = "mfa_coverage"
	DatasetSecurityAlerts            = "security_alerts"
	DatasetRiskDetections            = "risk_detections"
	DatasetSecurityIncidents         = "security_incidents"
	DatasetIntuneAuditEvents         = "intune_audit_events"
	DatasetRiskyUsers                = "risky_users"
	// Office 365 Management Activity API content types.
	DatasetAuditAzureAD    = "audit_azure_ad"
	DatasetAuditExchange   = "audit_exchange"
	DatasetAuditSharePoint = "audit_sharepoint"
	DatasetAuditGeneral    = "audit_general"
	DatasetDLP             = "dlp"
	// DatasetIncidentCandidates is the dataset of the processor's own IncidentCandidate records.
	DatasetIncidentCandidates = "incident_candidates"
)

// Log record EventName values.
const (
	EventSignIn                  = "o365.signin"
	EventDirectoryAudit          = "o365.directory_audit"
	EventRoleAssignment          = "o365.role_assignment"
	EventConditionalAccessPolicy = "o365.conditional_access_policy"
	EventMFARegistration         = "o365.mfa_registration"
	EventMFACoverageSummary      = "o365.mfa_coverage_summary"
	EventSecurityAlert           = "o365.security_alert"
	EventRiskDetection           = "o365.risk_detection"
	EventSecurityIncident        = "o365.security_incident"
	EventIntuneAudit             = "o365.intune_audit"
	EventRiskyUser               = "o365.risky_user"
	EventAuditAzureAD            = "o365.audit_azure_ad"
	EventAuditExchange           = "o365.audit_exchange"
	EventAuditSharePoint         = "o365.audit_sharepoint"
	EventAuditGeneral            = "o365.audit_general"
	EventDLP                     = "o365.dlp"
	EventIncidentCandidate       = "o365.incident_candidate"
)

// Attributes set by the receiver on every record.
const (
	RecordID = "o365.record.id"
	// Change is set on every record of a snapshot dataset: how the item differs from the previous
	// snapshot.
	Change = "o365.change"
	// SnapshotTime identifies the snapshot a record belongs to (RFC 3339).
	SnapshotTime = "o365.snapshot.time"
	// RecordKind names the collection of datasets read from several: the sign-in kind (interactive,
	// non_interactive, service_principal, managed_identity) or the role assignment kind (active, eligible).
	RecordKind = "o365.record.kind"
)

// Values of o365.change.
const (
	ChangeBaseline  = "baseline" // the first snapshot: nothing to compare with
	ChangeAdded     = "added"
	ChangeModified  = "modified"
	ChangeUnchanged = "unchanged"
	ChangeRemoved   = "removed"
)

// Normalized attributes common to every dataset (the seed's normalized event).
const (
	// EventType is the normalized event type that mapping.yml keys on, e.g. "signin.failure".
	EventType = "o365.event.type"
	// LogType is the seed's log_type: sign_in_log, audit_log, role_assignment, ...
	LogType = "o365.log_type"
	// Source is always SourceMicrosoft365.
	Source   = "o365.source"
	Activity = "o365.activity"
	// Result is "success" or "failure" (sign-ins, directory audits).
	Result       = "o365.result"
	ResultReason = "o365.result.reason"
	// Workload is the Microsoft 365 service of a unified audit record (Exchange, SharePoint, …).
	Workload = "o365.workload"
	// An inbox rule (New-InboxRule, Set-InboxRule) that forwards or redirects mail to another domain
	// than the user's and the organisation's: the domains, and true.
	MailboxRuleExternalDomains  = "o365.mailbox_rule.external_domains"
	MailboxRuleForwardsExternal = "o365.mailbox_rule.forwards_external"
	// SharePoint and OneDrive audit records (file and sharing operations): the object (the file, folder
	// or site URL) and where it lives. Metadata only: no file content is read.
	ObjectID             = "o365.object.id"
	SharePointSiteURL    = "o365.sharepoint.site_url"
	SharePointItemType   = "o365.sharepoint.item_type"
	SharePointEventSrc   = "o365.sharepoint.event_source"
	FileName             = "file.name"      // semconv
	FileExtension        = "file.extension" // semconv
	FileDirectory        = "file.directory" // semconv
	SharingTargetType    = "o365.sharing.target_type"
	SharingAnonymousLink = "o365.sharing.anonymous_link"

	UserName     = "user.name"      // user principal name (semconv)
	UserID       = "user.id"        // Entra object id (semconv)
	UserFullName = "user.full_name" // display name (semconv)

	ClientAddress = "client.address" // source IP (semconv)

	ApplicationName = "o365.application.name"
	ApplicationID   = "o365.application.id"

	GeoCountryISOCode = "geo.country.iso_code"
	GeoLocalityName   = "geo.locality.name"
	GeoLocationLat    = "geo.location.lat"
	GeoLocationLon    = "geo.location.lon"
	GeoRegionName     = "o365.geo.region.name" // Graph gives a state name, not an ISO code

	UserAgentOriginal  = "user_agent.original"
	UserAgentName      = "user_agent.name"
	UserAgentVersion   = "user_agent.version"
	UserAgentOSName    = "user_agent.os.name"
	UserAgentOSVersion = "user_agent.os.version"

	CorrelationID = "o365.correlation.id"

	// NormalizationError says why a record could not be normalized; such a record passes unchanged.
	NormalizationError = "o365.normalization.error"
)

// Mapping result (mapping.yml).
const (
	Domain  = "o365.domain"
	Control = "o365.control"
	Metric  = "o365.metric"
)

// Sign-ins.
const (
	SignInErrorCode               = "o365.signin.error_code"
	SignInConditionalAccessStatus = "o365.signin.conditional_access_status"
	SignInClientApp               = "o365.signin.client_app"
	SignInAuthRequirement         = "o365.signin.authentication_requirement"
	SignInInteractive             = "o365.signin.interactive"
	SignInResourceName            = "o365.signin.resource.name"
	SignInResourceID              = "o365.signin.resource.id"
	DeviceID                      = "o365.device.id"
	DeviceCompliant               = "o365.device.compliant"
	DeviceManaged                 = "o365.device.managed"
	DeviceTrustType               = "o365.device.trust_type"
	RiskLevel                     = "o365.risk.level"
	RiskState                     = "o365.risk.state"
	RiskDetail                    = "o365.risk.detail"
	RiskEventTypes                = "o365.risk.event_types"
	// Added with SIEM field coverage (issue 13).
	RiskLevelAggregated           = "o365.risk.level_aggregated"
	UserType                      = "o365.user.type" // member, guest (sign-ins, MFA registration)
	SignInCrossTenantAccessType   = "o365.signin.cross_tenant_access_type"
	SignInHomeTenantID            = "o365.signin.home_tenant_id"
	SignInResourceTenantID        = "o365.signin.resource_tenant_id"
	SignInTokenIssuerType         = "o365.signin.token_issuer_type"
	SignInClientCredentialType    = "o365.signin.client_credential_type"
	SignInStatusAdditionalDetails = "o365.signin.status.additional_details"
	SignInCAPolicies              = "o365.signin.conditional_access.policies"        // applied policy names
	SignInCAResults               = "o365.signin.conditional_access.results"         // their results, same order
	SignInCAFailedPolicies        = "o365.signin.conditional_access.failed_policies" // names whose result is failure
	SignInAuthMethods             = "o365.signin.authentication.methods"             // one per authentication step
	SignInAuthSteps               = "o365.signin.authentication.steps"               // the step's requirement
	SignInAuthSucceeded           = "o365.signin.authentication.succeeded"           // the step's outcome
	NetworkASNumber               = "o365.network.as_number"
	DeviceName                    = "o365.device.name"
)

// Directory audits.
const (
	AuditCategory      = "o365.audit.category"
	AuditOperationType = "o365.audit.operation_type"
	AuditService       = "o365.audit.service"
	ActorType          = "o365.actor.type" // user or app
	TargetID           = "o365.target.id"
	TargetName         = "o365.target.name"
	TargetType         = "o365.target.type"
	TargetUserName     = "o365.target.user.name"
	TargetCount        = "o365.target.count"
	// modifiedProperties of the targets: names, and old and new values in the same order.
	AuditModifiedProperties = "o365.audit.modified_properties"
	AuditOldValues          = "o365.audit.modified_properties.old_values"
	AuditNewValues          = "o365.audit.modified_properties.new_values"
	// AuditAdditionalDetails is a map attribute: additionalDetails key → value.
	AuditAdditionalDetails = "o365.audit.additional_details"
)

// Roles (role assignments; role-management audits).
const (
	PrincipalID    = "o365.principal.id"
	PrincipalName  = "o365.principal.name" // non-user principals (groups, service principals)
	PrincipalType  = "o365.principal.type" // user, group, servicePrincipal
	RoleID         = "o365.role.id"
	RoleName       = "o365.role.name"
	RoleTemplateID = "o365.role.template_id"
	RolePrivileged = "o365.role.privileged"
	RoleScope      = "o365.role.scope"
	// RoleAssignmentType is "active" or "eligible" (PIM).
	RoleAssignmentType = "o365.role.assignment_type"
	RoleMemberType     = "o365.role.member_type" // PIM: Direct, Group, Inherited
	RoleScheduleStart  = "o365.role.schedule.start"
	RoleScheduleEnd    = "o365.role.schedule.end"
	RoleScopeName      = "o365.role.scope.name"
)

// Conditional access policies (policy records; policy audits).
const (
	PolicyID                  = "o365.policy.id"
	PolicyName                = "o365.policy.name"
	PolicyState               = "o365.policy.state"
	PolicyPreviousState       = "o365.policy.previous_state"
	PolicyGrantControls       = "o365.policy.grant_controls"
	PolicyGrantOperator       = "o365.policy.grant_operator"
	PolicySessionControls     = "o365.policy.session_controls"
	PolicyUsersInclude        = "o365.policy.users.include"
	PolicyUsersExclude        = "o365.policy.users.exclude"
	PolicyApplicationsInclude = "o365.policy.applications.include"
	PolicyApplicationsExclude = "o365.policy.applications.exclude"
	PolicyLocationsInclude    = "o365.policy.locations.include"
	PolicyLocationsExclude    = "o365.policy.locations.exclude"
)

// MFA registration.
const (
	MFARegistered          = "o365.mfa.registered"
	MFACapable             = "o365.mfa.capable"
	MFAMethods             = "o365.mfa.methods"
	UserIsAdmin            = "o365.user.is_admin"
	MFASSPRRegistered      = "o365.mfa.sspr_registered"
	MFAPasswordlessCapable = "o365.mfa.passwordless_capable"
	// MFACoveragePrefix prefixes the numeric fields of the coverage summary record.
	MFACoveragePrefix = "o365.mfa_coverage."
)

// Security alerts.
const (
	AlertID                = "o365.alert.id"
	AlertTitle             = "o365.alert.title"
	AlertSeverity          = "o365.alert.severity"
	AlertStatus            = "o365.alert.status"
	AlertCategory          = "o365.alert.category"
	AlertServiceSource     = "o365.alert.service_source"
	AlertDetectionSource   = "o365.alert.detection_source"
	AlertIncidentID        = "o365.alert.incident_id"
	AlertMitreTechniques   = "o365.alert.mitre_techniques"
	AlertDescription       = "o365.alert.description"
	AlertClassification    = "o365.alert.classification"
	AlertDetermination     = "o365.alert.determination"
	AlertURL               = "o365.alert.url"
	AlertIncidentURL       = "o365.alert.incident_url"
	AlertAssignedTo        = "o365.alert.assigned_to"
	AlertEvidenceUsers     = "o365.alert.evidence.users"
	AlertEvidenceDevices   = "o365.alert.evidence.devices"
	AlertEvidenceIPs       = "o365.alert.evidence.ip_addresses"
	AlertEvidenceURLs      = "o365.alert.evidence.urls"
	AlertEvidenceFiles     = "o365.alert.evidence.files"
	AlertEvidenceProcesses = "o365.alert.evidence.processes"
)

// Security incidents (Defender XDR).
const (
	SecurityIncidentID             = "o365.security_incident.id"
	SecurityIncidentName           = "o365.security_incident.name"
	SecurityIncidentSeverity       = "o365.security_incident.severity"
	SecurityIncidentStatus         = "o365.security_incident.status"
	SecurityIncidentClassification = "o365.security_incident.classification"
	SecurityIncidentDetermination  = "o365.security_incident.determination"
	SecurityIncidentAssignedTo     = "o365.security_incident.assigned_to"
	SecurityIncidentURL            = "o365.security_incident.url"
	SecurityIncidentTags           = "o365.security_incident.tags"
	SecurityIncidentAlertCount     = "o365.security_incident.alert_count"
	SecurityIncidentAlertIDs       = "o365.security_incident.alert_ids"
	// SecurityIncidentPreviousSeverity is the severity of the incident's nearest earlier version the
	// processor saw (absent when it saw none).
	SecurityIncidentPreviousSeverity = "o365.security_incident.previous_severity"
	// SecurityIncidentRoseToHigh is true on the record that completes a rise of the incident to high
	// severity: a version below high, then a later one at high, in whichever order they arrive.
	SecurityIncidentRoseToHigh = "o365.security_incident.rose_to_high"
)

// Intune audit events (the actor is user.* or o365.application.*, the result o365.result).
const (
	IntuneCategory      = "o365.intune.category"
	IntuneComponent     = "o365.intune.component"
	IntuneOperationType = "o365.intune.operation_type"
)

// Risk detections.
const (
	RiskEventType       = "o365.risk.event_type"
	RiskDetectionTiming = "o365.risk.detection_timing"
	RiskSource          = "o365.risk.source"
	RiskActivity        = "o365.risk.activity"
	RiskDetectedTime    = "o365.risk.detected_time"
)

// IncidentCandidate records (EventName o365.incident_candidate, dataset incident_candidates).
const (
	IncidentID          = "o365.incident.id"
	IncidentRule        = "o365.incident.rule"
	IncidentDescription = "o365.incident.description"
	IncidentSeverity    = "o365.incident.severity"
	IncidentWindowStart = "o365.incident.window.start"
	IncidentWindowEnd   = "o365.incident.window.end"
	// IncidentEntities is a map attribute: group-by attribute → value (e.g. user.name → alice@…).
	IncidentEntities = "o365.incident.entities"
	// IncidentContext is a map attribute of extra attributes copied from the triggering record.
	IncidentContext = "o365.incident.context"
	// IncidentRecordIDs is a sorted string slice of the o365.record.id values of the evidence.
	IncidentRecordIDs   = "o365.incident.evidence.record_ids"
	IncidentRecordCount = "o365.incident.evidence.count"
	// Rule-specific details: distinct entities counted (password spray), and the distance and speed of
	// impossible travel.
	IncidentDistinctCount = "o365.incident.distinct_count"
	IncidentDistanceKm    = "o365.incident.distance_km"
	IncidentSpeedKmh      = "o365.incident.speed_kmh"
)

// Values of o365.log_type.
const (
	LogTypeSignIn                  = "sign_in_log"
	LogTypeAudit                   = "audit_log"
	LogTypeRoleAssignment          = "role_assignment"
	LogTypeConditionalAccessPolicy = "conditional_access_policy"
	LogTypeMFARegistration         = "mfa_registration"
	LogTypeMFACoverage             = "mfa_coverage"
	LogTypeSecurityAlert           = "security_alert"
	LogTypeRiskDetection           = "risk_detection"
	LogTypeSecurityIncident        = "security_incident"
	LogTypeIntuneAudit             = "intune_audit"
	LogTypeRiskyUser               = "risky_user"
	LogTypeUnifiedAudit            = "unified_audit_log"
	LogTypeDLP                     = "dlp_event"
	LogTypeIncidentCandidate       = "incident_candidate"
)

// Other fixed values.
const (
	SourceMicrosoft365 = "Microsoft365"
	ResultSuccess      = "success"
	ResultFailure      = "failure"
)
