package o365mappingprocessor

import (
	"encoding/json"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// directoryAudit holds what normalization reads from a microsoft.graph.directoryAudit.
type directoryAudit struct {
	activity, category, operation, service, result, resultReason, correlationID string
	actorType                                                                   string
	upn, userID, displayName, ip                                                string
	appID, appName, appSPID, appSPName                                          string
	userAgent                                                                   string
	details                                                                     pcommon.Value // additionalDetails
	modified                                                                    [][3]string   // name, old, new
	targetCount                                                                 int
	target                                                                      auditTarget
	roleName, roleTemplateID                                                    string
	policyState, policyPreviousState                                            string
	ids                                                                         []pcommon.Value // identifier fields to pseudonymize in the body
}

type auditTarget struct {
	id, name, typ, upn string
}

func (d *directoryAudit) read(body pcommon.Map, collectIDs bool) {
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "activityDisplayName":
			d.activity = str(v)
		case "category":
			d.category = str(v)
		case "operationType":
			d.operation = str(v)
		case "loggedByService":
			d.service = str(v)
		case "result":
			d.result = str(v)
		case "resultReason":
			d.resultReason = str(v)
		case "correlationId":
			d.correlationID = str(v)
		case "initiatedBy":
			d.readInitiatedBy(v, collectIDs)
		case "targetResources":
			d.readTargets(v, collectIDs)
		case "additionalDetails":
			d.details = v
			if s, ok := sliceOf(v); ok {
				for i := 0; i < s.Len(); i++ {
					if kv, ok := mapOf(s.At(i)); ok {
						if key := get(kv, "key"); strings.EqualFold(str(key), "User-Agent") {
							val := get(kv, "value")
							d.userAgent = str(val)
						}
					}
				}
			}
		}
		return true
	})
}

func (d *directoryAudit) readInitiatedBy(v pcommon.Value, collectIDs bool) {
	m, ok := mapOf(v)
	if !ok {
		return
	}
	if u, ok := m.Get("user"); ok {
		if um, ok := mapOf(u); ok {
			d.actorType = "user"
			um.Range(func(k string, v pcommon.Value) bool {
				switch k {
				case "userPrincipalName":
					d.upn = str(v)
				case "id":
					d.userID = str(v)
				case "displayName":
					d.displayName = str(v)
				case "ipAddress":
					d.ip = str(v)
				default:
					return true
				}
				if collectIDs && k != "ipAddress" {
					d.ids = append(d.ids, v)
				}
				return true
			})
		}
	}
	if ap, ok := m.Get("app"); ok {
		if am, ok := mapOf(ap); ok {
			if d.actorType == "" {
				d.actorType = "app"
			}
			if v, ok := am.Get("appId"); ok {
				d.appID = str(v)
			}
			if v, ok := am.Get("displayName"); ok {
				d.appName = str(v)
			}
			if v, ok := am.Get("servicePrincipalId"); ok {
				d.appSPID = str(v)
			}
			if v, ok := am.Get("servicePrincipalName"); ok {
				d.appSPName = str(v)
			}
		}
	}
}

func (d *directoryAudit) readTargets(v pcommon.Value, collectIDs bool) {
	s, ok := sliceOf(v)
	if !ok {
		return
	}
	d.targetCount = s.Len()
	for i := 0; i < s.Len(); i++ {
		m, ok := mapOf(s.At(i))
		if !ok {
			continue
		}
		var t auditTarget
		var idV, nameV pcommon.Value
		m.Range(func(k string, v pcommon.Value) bool {
			switch k {
			case "id":
				t.id, idV = str(v), v
			case "displayName":
				t.name, nameV = str(v), v
			case "type":
				t.typ = str(v)
			case "userPrincipalName":
				t.upn = str(v)
				if collectIDs {
					d.ids = append(d.ids, v)
				}
			case "modifiedProperties":
				d.readModifiedProperties(v)
			}
			return true
		})
		if collectIDs && strings.EqualFold(t.typ, "User") {
			d.ids = append(d.ids, idV, nameV)
		}
		if i == 0 {
			d.target = t
		}
	}
}

// readModifiedProperties picks the role of role-management audits (Role.DisplayName, Role.TemplateId)
// and the state change of conditional access policy audits (ConditionalAccessPolicy old/new JSON).
func (d *directoryAudit) readModifiedProperties(v pcommon.Value) {
	s, ok := sliceOf(v)
	if !ok {
		return
	}
	for i := 0; i < s.Len(); i++ {
		m, ok := mapOf(s.At(i))
		if !ok {
			continue
		}
		nameV := get(m, "displayName")
		newV := get(m, "newValue")
		if len(d.modified) < maxListItems {
			d.modified = append(d.modified, [3]string{str(nameV), clip(unquote(str(get(m, "oldValue")))), clip(unquote(str(newV)))})
		}
		switch str(nameV) {
		case "Role.DisplayName":
			d.roleName = unquote(str(newV))
		case "Role.TemplateId":
			d.roleTemplateID = unquote(str(newV))
		case "ConditionalAccessPolicy":
			oldV := get(m, "oldValue")
			d.policyState = policyStateOf(str(newV))
			d.policyPreviousState = policyStateOf(str(oldV))
		}
	}
}

// unquote strips the JSON quoting Graph puts around modified property values ("\"Global Administrator\"").
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var out string
		if json.Unmarshal([]byte(s), &out) == nil {
			return out
		}
		return s[1 : len(s)-1]
	}
	return s
}

// policyStateOf reads "state" from a conditional access policy serialized in an audit's old/new value.
func policyStateOf(s string) string {
	if s == "" || !strings.Contains(s, `"state"`) {
		return ""
	}
	var p struct {
		State string `json:"state"`
	}
	if json.Unmarshal([]byte(s), &p) != nil {
		return ""
	}
	return p.State
}

// normalizeDirectoryAudit: the actor (user or app) is the seed's user; the first target resource, the
// role of role changes and the state change of conditional access policy changes are kept too.
func normalizeDirectoryAudit(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var d directoryAudit
	d.read(body, n.pseudo != nil && n.keepRaw)
	if d.activity == "" {
		return "", missing("activityDisplayName")
	}
	n.pseudonymizeBody(d.ids...)

	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 30)
	typ := eventType("directory_audit", d.category, d.operation)
	writeCommon(attrs, typ, a.LogTypeAudit, d.activity)
	result := ""
	switch d.result {
	case "success":
		result = a.ResultSuccess
	case "failure", "timeout":
		result = a.ResultFailure
	}
	putStr(attrs, a.Result, result)
	putStr(attrs, a.ResultReason, d.resultReason) // Graph writes it on successes too ("Policy updated")
	upn, uid := n.user(d.upn), n.user(d.userID)
	putStr(attrs, a.UserName, upn)
	putStr(attrs, a.UserID, uid)
	putStr(attrs, a.UserFullName, n.user(d.displayName))
	putStr(attrs, a.ActorType, d.actorType)
	putStr(attrs, a.ClientAddress, d.ip)
	putStr(attrs, a.ApplicationName, d.appName)
	putStr(attrs, a.ApplicationID, d.appID)
	if d.actorType == "app" {
		putStr(attrs, a.PrincipalID, d.appSPID)
		putStr(attrs, a.PrincipalName, d.appSPName)
		if d.appSPID != "" {
			attrs.PutStr(a.PrincipalType, "servicePrincipal")
		}
	}
	putStr(attrs, a.UserAgentOriginal, d.userAgent)
	// Values are free text that may name people: with pseudonymization only the property names and
	// detail keys are written.
	writeModifiedProperties(attrs, d.modified, n.pseudo == nil)
	if n.pseudo == nil {
		writeAdditionalDetails(attrs, d.details)
	}
	putStr(attrs, a.CorrelationID, d.correlationID)
	putStr(attrs, a.AuditCategory, d.category)
	putStr(attrs, a.AuditOperationType, d.operation)
	putStr(attrs, a.AuditService, d.service)
	targetIsUser := strings.EqualFold(d.target.typ, "User")
	if d.targetCount > 0 {
		attrs.PutInt(a.TargetCount, int64(d.targetCount))
		if targetIsUser {
			putStr(attrs, a.TargetID, n.user(d.target.id))
			putStr(attrs, a.TargetName, n.user(d.target.name))
		} else {
			putStr(attrs, a.TargetID, d.target.id)
			putStr(attrs, a.TargetName, d.target.name)
		}
		putStr(attrs, a.TargetType, d.target.typ)
		putStr(attrs, a.TargetUserName, n.user(d.target.upn))
	}
	if d.roleName != "" || d.roleTemplateID != "" {
		putStr(attrs, a.RoleName, d.roleName)
		putStr(attrs, a.RoleTemplateID, d.roleTemplateID)
		attrs.PutBool(a.RolePrivileged, isPrivilegedRole(d.roleTemplateID, d.roleName))
	}
	if strings.EqualFold(d.target.typ, "Policy") {
		putStr(attrs, a.PolicyID, d.target.id)
		putStr(attrs, a.PolicyName, d.target.name)
		putStr(attrs, a.PolicyState, d.policyState)
		putStr(attrs, a.PolicyPreviousState, d.policyPreviousState)
	}

	if n.ocsf {
		e := ocsfEvent{severityID: sevInformational, product: "Microsoft Entra ID", statusID: statusUnknown}
		switch result {
		case a.ResultSuccess:
			e.statusID = statusSuccess
		case a.ResultFailure:
			e.statusID = statusFailure
		}
		if targetIsUser {
			e.class = ocsfClassAccountChange
			e.activityID, e.activity = accountChangeActivity(d.activity)
		} else {
			e.class = ocsfClassAPIActivity
			e.activityID, e.activity = apiActivity(d.operation)
		}
		e.write(attrs, lr.Timestamp(), recordID(attrs))
		putStr(attrs, "ocsf.message", d.activity)
		putStr(attrs, "ocsf.actor.user.name", upn)
		putStr(attrs, "ocsf.actor.user.uid", uid)
		putStr(attrs, "ocsf.actor.app_name", d.appName)
		putStr(attrs, "ocsf.src_endpoint.ip", d.ip)
		if e.class == ocsfClassAccountChange {
			putStr(attrs, "ocsf.user.name", n.user(d.target.upn))
			putStr(attrs, "ocsf.user.uid", n.user(d.target.id))
		} else {
			putStr(attrs, "ocsf.api.operation", d.activity)
			putStr(attrs, "ocsf.api.service.name", d.service)
			putStr(attrs, "ocsf.resources.uid", d.target.id)
			putStr(attrs, "ocsf.resources.type", d.target.typ)
		}
	}
	return typ, nil
}

// accountChangeActivity classifies a user-account audit into an OCSF Account Change activity.
func accountChangeActivity(activity string) (int, string) {
	s := strings.ToLower(activity)
	switch {
	case strings.Contains(s, "password") && strings.Contains(s, "reset"):
		return 4, "Password Reset"
	case strings.Contains(s, "password"):
		return 3, "Password Change"
	case strings.HasPrefix(s, "add user"):
		return 1, "Create"
	case strings.HasPrefix(s, "enable account"):
		return 2, "Enable"
	case strings.HasPrefix(s, "disable account"):
		return 5, "Disable"
	case strings.HasPrefix(s, "delete user"), strings.HasPrefix(s, "hard delete user"):
		return 6, "Delete"
	case strings.HasPrefix(s, "add member to role"), strings.HasPrefix(s, "add eligible member to role"):
		return 7, "Attach Policy"
	case strings.HasPrefix(s, "remove member from role"), strings.HasPrefix(s, "remove eligible member from role"):
		return 8, "Detach Policy"
	case strings.Contains(s, "registered security info"):
		return 10, "MFA Factor Enable"
	case strings.Contains(s, "deleted security info"):
		return 11, "MFA Factor Disable"
	}
	return 99, "Other"
}

// apiActivity classifies an audit's operationType into an OCSF API Activity activity.
func apiActivity(operation string) (int, string) {
	switch strings.ToLower(operation) {
	case "add", "create":
		return 1, "Create"
	case "update", "assign", "unassign":
		return 3, "Update"
	case "delete":
		return 4, "Delete"
	}
	return 99, "Other"
}

// writeModifiedProperties writes the modified properties of an audit's targets: names, old and new values
// in the same order (values unquoted and clipped; at most maxListItems).
func writeModifiedProperties(attrs pcommon.Map, props [][3]string, values bool) {
	if len(props) == 0 {
		return
	}
	names := attrs.PutEmptySlice(a.AuditModifiedProperties)
	names.EnsureCapacity(len(props))
	for _, p := range props {
		names.AppendEmpty().SetStr(p[0])
	}
	if !values {
		return
	}
	olds := attrs.PutEmptySlice(a.AuditOldValues)
	news := attrs.PutEmptySlice(a.AuditNewValues)
	olds.EnsureCapacity(len(props))
	news.EnsureCapacity(len(props))
	for _, p := range props {
		olds.AppendEmpty().SetStr(p[1])
		news.AppendEmpty().SetStr(p[2])
	}
}

// writeAdditionalDetails writes an audit's additionalDetails key/value list as a map attribute (at most
// maxListItems keys, values clipped).
func writeAdditionalDetails(attrs pcommon.Map, v pcommon.Value) {
	list, ok := sliceOf(v)
	if !ok || list.Len() == 0 {
		return
	}
	var out pcommon.Map
	for i := 0; i < list.Len(); i++ {
		kv, ok := mapOf(list.At(i))
		if !ok {
			continue
		}
		k := str(get(kv, "key"))
		if k == "" {
			continue
		}
		if out == (pcommon.Map{}) {
			out = attrs.PutEmptyMap(a.AuditAdditionalDetails)
		}
		if out.Len() >= maxListItems {
			break
		}
		out.PutStr(k, clip(str(get(kv, "value"))))
	}
}
