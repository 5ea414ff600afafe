package o365mappingprocessor

import (
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Snapshot datasets (role assignments, conditional access policies, MFA registration): each record is one
// object of the snapshot, or a change record (o365.change = added | modified | removed). The event type is
// <dataset>.<snapshot | added | modified | removed>.

// privilegedRoleTemplates are the built-in Entra ID roles Microsoft labels PRIVILEGED
// (learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference), by template id.
var privilegedRoleTemplates = map[string]string{
	"62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
	"e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
	"7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
	"194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
	"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
	"158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
	"c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
	"b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
	"29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
	"f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
	"fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
	"729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
	"966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
	"3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
	"8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
	"be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
	"8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
	"e00e864a-17c5-4a4b-9c06-f5b95a8d5bd8": "Partner Tier2 Support",
	"4ba39ca4-527c-499a-b93d-d9b492c50246": "Partner Tier1 Support",
	"d29b2b05-8046-44ba-8758-1e26182fcf32": "Directory Synchronization Accounts",
}

var privilegedRoleNames = func() map[string]bool {
	m := map[string]bool{}
	for _, name := range privilegedRoleTemplates {
		m[strings.ToLower(name)] = true
	}
	return m
}()

// isPrivilegedRole tells a privileged built-in role by template id, else by display name.
func isPrivilegedRole(templateID, name string) bool {
	if _, ok := privilegedRoleTemplates[strings.ToLower(templateID)]; ok {
		return true
	}
	return privilegedRoleNames[strings.ToLower(name)]
}

func changeActivity(base, change string) string {
	switch change {
	case a.ChangeAdded:
		return base + " added"
	case a.ChangeModified:
		return base + " modified"
	case a.ChangeRemoved:
		return base + " removed"
	}
	return base
}

// normalizeRoleAssignment reads a unifiedRoleAssignment (or a PIM roleEligibilitySchedule) expanded with
// principal and roleDefinition.
func normalizeRoleAssignment(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var (
		principalID, roleDefID, scope, assignmentType string
		principalType, upn, displayName               string
		roleName, templateID, memberType, scopeName   string
		scheduleStart, scheduleEnd                    string
		privileged, hasPrivileged                     bool
		ids                                           []pcommon.Value
	)
	collect := n.pseudo != nil && n.keepRaw
	assignmentType = "active"
	var principalIDV pcommon.Value
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "principalId":
			principalID, principalIDV = str(v), v
		case "roleDefinitionId":
			roleDefID = str(v)
		case "directoryScopeId":
			scope = str(v)
		case "memberType":
			assignmentType = "eligible"
			memberType = str(v)
		case "scheduleInfo":
			assignmentType = "eligible"
			if m, ok := mapOf(v); ok {
				scheduleStart = str(get(m, "startDateTime"))
				if exp, ok := mapOf(get(m, "expiration")); ok {
					scheduleEnd = str(get(exp, "endDateTime"))
				}
			}
		case "directoryScope":
			if m, ok := mapOf(v); ok {
				scopeName = str(get(m, "displayName"))
			}
		case "principal":
			pm, ok := mapOf(v)
			if !ok {
				return true
			}
			var pIDs []pcommon.Value
			pm.Range(func(k string, v pcommon.Value) bool {
				switch k {
				case "@odata.type":
					principalType = strings.TrimPrefix(str(v), "#microsoft.graph.")
				case "id":
					if principalID == "" {
						principalID = str(v)
					}
					pIDs = append(pIDs, v)
				case "userPrincipalName":
					upn = str(v)
					pIDs = append(pIDs, v)
				case "displayName":
					displayName = str(v)
					pIDs = append(pIDs, v)
				case "mail", "givenName", "surname", "mobilePhone", "onPremisesSamAccountName":
					pIDs = append(pIDs, v)
				}
				return true
			})
			if collect && (principalType == "user" || principalType == "") {
				ids = append(ids, pIDs...)
			}
		case "roleDefinition":
			rm, ok := mapOf(v)
			if !ok {
				return true
			}
			rm.Range(func(k string, v pcommon.Value) bool {
				switch k {
				case "displayName":
					roleName = str(v)
				case "templateId":
					templateID = str(v)
				case "id":
					if roleDefID == "" {
						roleDefID = str(v)
					}
				case "isPrivileged": // beta
					privileged, hasPrivileged = boolean(v)
				}
				return true
			})
		}
		return true
	})
	change := changeType(lr)
	// A removed item's record carries only its id: the change is still an event (and drops join rows).
	if principalID == "" && change != a.ChangeRemoved {
		return "", missing("principalId")
	}
	if roleDefID == "" && change != a.ChangeRemoved {
		return "", missing("roleDefinitionId")
	}
	if kind := strAttr(lr.Attributes(), a.RecordKind); kind == "active" || kind == "eligible" {
		assignmentType = kind // the receiver's source beats the shape
	}
	isUser := principalType == "user" || principalType == ""
	if collect && isUser {
		ids = append(ids, principalIDV)
	}
	n.pseudonymizeBody(ids...)
	if templateID == "" {
		templateID = roleDefID // built-in roles: the definition id is the template id
	}
	if !hasPrivileged {
		privileged = isPrivilegedRole(templateID, roleName)
	}

	typ := eventType("role_assignment", change, "")
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 16)
	writeCommon(attrs, typ, a.LogTypeRoleAssignment, changeActivity("Role assignment", change))
	if isUser {
		putStr(attrs, a.UserID, n.user(principalID))
		putStr(attrs, a.UserName, n.user(upn))
		putStr(attrs, a.UserFullName, n.user(displayName))
		putStr(attrs, a.PrincipalID, n.user(principalID))
		putStr(attrs, a.PrincipalName, n.user(displayName))
	} else {
		putStr(attrs, a.PrincipalID, principalID)
		putStr(attrs, a.PrincipalName, displayName)
	}
	putStr(attrs, a.PrincipalType, principalType)
	putStr(attrs, a.RoleID, roleDefID)
	putStr(attrs, a.RoleName, roleName)
	if roleDefID != "" {
		putStr(attrs, a.RoleTemplateID, templateID)
		attrs.PutBool(a.RolePrivileged, privileged)
	}
	putStr(attrs, a.RoleScope, scope)
	putStr(attrs, a.RoleScopeName, scopeName)
	attrs.PutStr(a.RoleAssignmentType, assignmentType)
	putStr(attrs, a.RoleMemberType, memberType)
	putStr(attrs, a.RoleScheduleStart, scheduleStart)
	putStr(attrs, a.RoleScheduleEnd, scheduleEnd)
	return typ, nil
}

// normalizeConditionalAccessPolicy reads a conditionalAccessPolicy.
func normalizeConditionalAccessPolicy(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var id, name, state, grantOperator string
	var grant, conditions, session pcommon.Value
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "id":
			id = str(v)
		case "displayName":
			name = str(v)
		case "state":
			state = str(v)
		case "grantControls":
			if m, ok := mapOf(v); ok {
				grant = get(m, "builtInControls")
				grantOperator = str(get(m, "operator"))
			}
		case "conditions":
			conditions = v
		case "sessionControls":
			session = v
		}
		return true
	})
	if id == "" {
		return "", missing("id")
	}
	change := changeType(lr)
	if state == "" && change != a.ChangeRemoved {
		return "", missing("state")
	}
	typ := eventType("conditional_access_policy", change, "")
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 10)
	writeCommon(attrs, typ, a.LogTypeConditionalAccessPolicy, changeActivity("Conditional access policy", change))
	attrs.PutStr(a.PolicyID, id)
	putStr(attrs, a.PolicyName, name)
	putStr(attrs, a.PolicyState, state)
	putStrings(attrs, a.PolicyGrantControls, grant)
	putStr(attrs, a.PolicyGrantOperator, grantOperator)
	writePolicyConditions(n, attrs, conditions)
	writeSessionControls(attrs, session)
	return typ, nil
}

// writePolicyConditions summarizes a policy's conditions: the users (users, groups and roles),
// applications and locations it includes and excludes, at most maxListItems each. User object ids are
// pseudonymized like every user identifier; keywords (All, None, GuestsOrExternalUsers) are not ids.
func writePolicyConditions(n *normalizer, attrs pcommon.Map, v pcommon.Value) {
	c, ok := mapOf(v)
	if !ok {
		return
	}
	lists := func(section string, key string, fields ...string) {
		m, ok := mapOf(get(c, section))
		if !ok {
			return
		}
		var l strList
		for _, f := range fields {
			if s, ok := sliceOf(get(m, f)); ok {
				for i := 0; i < s.Len(); i++ {
					v := str(s.At(i))
					if (f == "includeUsers" || f == "excludeUsers") && !policyUserKeywords[v] {
						v = n.user(v)
					}
					l.addUnique(attrs, key, v)
				}
			}
		}
	}
	lists("users", a.PolicyUsersInclude, "includeUsers", "includeGroups", "includeRoles")
	lists("users", a.PolicyUsersExclude, "excludeUsers", "excludeGroups", "excludeRoles")
	lists("applications", a.PolicyApplicationsInclude, "includeApplications")
	lists("applications", a.PolicyApplicationsExclude, "excludeApplications")
	lists("locations", a.PolicyLocationsInclude, "includeLocations")
	lists("locations", a.PolicyLocationsExclude, "excludeLocations")
}

// policyUserKeywords are the values of includeUsers / excludeUsers that are not user ids.
var policyUserKeywords = map[string]bool{"All": true, "None": true, "GuestsOrExternalUsers": true}

// writeSessionControls lists the session controls a policy sets (those not null or false), sorted.
func writeSessionControls(attrs pcommon.Map, v pcommon.Value) {
	m, ok := mapOf(v)
	if !ok {
		return
	}
	var set []string
	m.Range(func(k string, v pcommon.Value) bool {
		switch typeOf(v) {
		case pcommon.ValueTypeEmpty:
		case pcommon.ValueTypeBool:
			if v.Bool() {
				set = append(set, k)
			}
		case pcommon.ValueTypeMap:
			if en, ok := boolean(get(v.Map(), "isEnabled")); !ok || en {
				set = append(set, k)
			}
		default:
			set = append(set, k)
		}
		return true
	})
	sort.Strings(set)
	var l strList
	for _, k := range set {
		l.add(attrs, a.PolicySessionControls, k)
	}
}

// normalizeMFARegistration reads a userRegistrationDetails.
func normalizeMFARegistration(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var (
		u                                  userObject
		registered, hasRegistered          bool
		capable, hasCapable, admin, hasAdm bool
		sspr, hasSSPR, pwless, hasPwless   bool
		userType                           string
		registeredV, methods               pcommon.Value
	)
	body.Range(func(k string, v pcommon.Value) bool {
		if u.read(k, v) {
			return true
		}
		switch k {
		case "isMfaRegistered":
			registered, hasRegistered = boolean(v)
			registeredV = v
		case "isSsprRegistered":
			sspr, hasSSPR = boolean(v)
		case "isPasswordlessCapable":
			pwless, hasPwless = boolean(v)
		case "userType":
			userType = str(v)
		case "isMfaCapable":
			capable, hasCapable = boolean(v)
		case "isAdmin":
			admin, hasAdm = boolean(v)
		case "methodsRegistered":
			methods = v
		}
		return true
	})
	if u.id == "" {
		return "", missing("id")
	}
	change := changeType(lr)
	if !hasRegistered && change != a.ChangeRemoved {
		if t := typeOf(registeredV); t != pcommon.ValueTypeEmpty {
			return "", invalid("isMfaRegistered", "a boolean") // documentation placeholders: "Boolean"
		}
		return "", missing("isMfaRegistered")
	}
	typ := eventType("mfa_registration", change, "")
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 12)
	writeCommon(attrs, typ, a.LogTypeMFARegistration, changeActivity("MFA registration", change))
	u.write(n, attrs)
	if hasRegistered {
		attrs.PutBool(a.MFARegistered, registered)
	}
	if hasCapable {
		attrs.PutBool(a.MFACapable, capable)
	}
	if hasAdm {
		attrs.PutBool(a.UserIsAdmin, admin)
	}
	if hasSSPR {
		attrs.PutBool(a.MFASSPRRegistered, sspr)
	}
	if hasPwless {
		attrs.PutBool(a.MFAPasswordlessCapable, pwless)
	}
	putStr(attrs, a.UserType, userType)
	putStrings(attrs, a.MFAMethods, methods)
	return typ, nil
}

// maxSummaryFields bounds the attributes copied from an MFA coverage summary.
const maxSummaryFields = 64

// normalizeMFACoverageSummary copies the numeric and boolean top-level fields of the receiver's coverage
// summary record as o365.mfa_coverage.<snake_case field>.
func normalizeMFACoverageSummary(_ *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	const typ = "mfa_coverage.summary"
	attrs := lr.Attributes()
	writeCommon(attrs, typ, a.LogTypeMFACoverage, "MFA coverage summary")
	copied := 0
	body.Range(func(k string, v pcommon.Value) bool {
		if copied >= maxSummaryFields {
			return false
		}
		key := a.MFACoveragePrefix + segment(k)
		switch v.Type() {
		case pcommon.ValueTypeInt:
			attrs.PutInt(key, v.Int())
		case pcommon.ValueTypeDouble:
			if f, ok := num(v); ok {
				attrs.PutDouble(key, f)
			}
		case pcommon.ValueTypeBool:
			attrs.PutBool(key, v.Bool())
		default:
			return true
		}
		copied++
		return true
	})
	return typ, nil
}

// normalizeRiskyUser reads a riskyUser of Identity Protection: the user's current risk. The event type
// is risky_user.<snapshot | added | modified | removed>; a change of risk level or state is `modified`.
func normalizeRiskyUser(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var u userObject
	var level, state, detail string
	body.Range(func(k string, v pcommon.Value) bool {
		if u.read(k, v) {
			return true
		}
		switch k {
		case "riskLevel":
			level = str(v)
		case "riskState":
			state = str(v)
		case "riskDetail":
			detail = str(v)
		}
		return true
	})
	if u.id == "" {
		return "", missing("id")
	}
	change := changeType(lr)
	if state == "" && change != a.ChangeRemoved {
		return "", missing("riskState")
	}
	typ := eventType("risky_user", change, "")
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 10)
	writeCommon(attrs, typ, a.LogTypeRiskyUser, changeActivity("Risky user", change))
	u.write(n, attrs)
	putStr(attrs, a.RiskLevel, noneIsEmpty(level))
	putStr(attrs, a.RiskState, noneIsEmpty(state))
	putStr(attrs, a.RiskDetail, noneIsEmpty(detail))
	return typ, nil
}

// userObject is the user a per-user object is about (MFA registration, risky users): its id is the
// user's object id, with userPrincipalName and userDisplayName beside it.
type userObject struct {
	id, upn, displayName    string
	idV, upnV, displayNameV pcommon.Value
}

// read takes the field k if it is one of the user's; it reports whether it was.
func (u *userObject) read(k string, v pcommon.Value) bool {
	switch k {
	case "id":
		u.id, u.idV = str(v), v
	case "userPrincipalName":
		u.upn, u.upnV = str(v), v
	case "userDisplayName":
		u.displayName, u.displayNameV = str(v), v
	default:
		return false
	}
	return true
}

// write pseudonymizes the user's fields of a kept body and puts user.id, user.name and user.full_name.
func (u *userObject) write(n *normalizer, attrs pcommon.Map) {
	n.pseudonymizeBody(u.idV, u.upnV, u.displayNameV)
	attrs.PutStr(a.UserID, n.user(u.id))
	putStr(attrs, a.UserName, n.user(u.upn))
	putStr(attrs, a.UserFullName, n.user(u.displayName))
}
