package o365mappingprocessor

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// normalizeIntuneAudit reads an Intune microsoft.graph.auditEvent. The event type is
// intune_audit.<category>.<operation type>, as directory audits name theirs; the actor is the user (an IT
// pro) or the app, the target the first resource, with the resources' modified properties.
func normalizeIntuneAudit(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var (
		id, activity, category, component, operation, result, correlationID string
		upn, userID, ip, appName, appID                                     string
		targetID, targetName, targetType                                    string
		targets                                                             int
		modified                                                            [][3]string
		ids                                                                 []pcommon.Value
	)
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "id":
			id = str(v)
		case "activity":
			activity = str(v)
		case "displayName":
			if activity == "" {
				activity = str(v)
			}
		case "category":
			category = str(v)
		case "componentName":
			component = str(v)
		case "activityOperationType":
			operation = str(v)
		case "activityResult":
			result = str(v)
		case "correlationId":
			correlationID = str(v)
		case "actor":
			if m, ok := mapOf(v); ok {
				m.Range(func(k string, v pcommon.Value) bool {
					switch k {
					case "userPrincipalName":
						upn = str(v)
					case "userId":
						userID = str(v)
					case "ipAddress":
						ip = str(v)
					case "applicationDisplayName":
						appName = str(v)
					case "applicationId":
						appID = str(v)
					default:
						return true
					}
					if k == "userPrincipalName" || k == "userId" {
						ids = append(ids, v)
					}
					return true
				})
			}
		case "resources":
			s, ok := sliceOf(v)
			if !ok {
				return true
			}
			for i := 0; i < s.Len(); i++ {
				r, ok := mapOf(s.At(i))
				if !ok {
					continue
				}
				if targets++; targets == 1 {
					targetID, targetName = str(get(r, "resourceId")), str(get(r, "displayName"))
					if targetType = str(get(r, "auditResourceType")); targetType == "" {
						targetType = str(get(r, "type")) // the older name
					}
				}
				if props, ok := sliceOf(get(r, "modifiedProperties")); ok {
					for j := 0; j < props.Len() && len(modified) < maxListItems; j++ {
						if p, ok := mapOf(props.At(j)); ok {
							modified = append(modified, [3]string{str(get(p, "displayName")), clip(str(get(p, "oldValue"))), clip(str(get(p, "newValue")))})
						}
					}
				}
			}
		}
		return true
	})
	if id == "" {
		return "", missing("id")
	}
	if activity == "" {
		return "", missing("activity")
	}
	n.pseudonymizeBody(ids...)

	typ := eventType("intune_audit", category, operation)
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 20)
	writeCommon(attrs, typ, a.LogTypeIntuneAudit, activity)
	switch strings.ToLower(result) {
	case "success":
		attrs.PutStr(a.Result, a.ResultSuccess)
	case "failure", "timeout":
		attrs.PutStr(a.Result, a.ResultFailure)
		putStr(attrs, a.ResultReason, result)
	}
	putStr(attrs, a.UserName, n.user(upn))
	putStr(attrs, a.UserID, n.user(userID))
	putStr(attrs, a.ClientAddress, ip)
	putStr(attrs, a.ApplicationName, appName)
	putStr(attrs, a.ApplicationID, appID)
	if upn != "" || userID != "" {
		attrs.PutStr(a.ActorType, "user")
	} else if appID != "" {
		attrs.PutStr(a.ActorType, "app")
	}
	putStr(attrs, a.CorrelationID, correlationID)
	putStr(attrs, a.IntuneCategory, category)
	putStr(attrs, a.IntuneComponent, component)
	putStr(attrs, a.IntuneOperationType, operation)
	if targets > 0 {
		attrs.PutInt(a.TargetCount, int64(targets))
		putStr(attrs, a.TargetID, targetID)
		putStr(attrs, a.TargetName, targetName)
		putStr(attrs, a.TargetType, targetType)
	}
	// As for directory audits: with pseudonymization only the property names are written.
	writeModifiedProperties(attrs, modified, n.pseudo == nil)
	return typ, nil
}
