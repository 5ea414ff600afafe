package o365mappingprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// normalizeSecurityIncident reads a microsoft.graph.security.incident (Defender XDR), with its alerts
// when the receiver expanded them. The event type is security_incident.<status>; the user and address
// are the first ones its alerts' evidence names, and the alerts' evidence is listed as for an alert.
// o365.security_incident.previous_severity is filled later, from the version seen before (correlation).
func normalizeSecurityIncident(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var (
		id, name, severity, status, classification, determination, assignedTo, webURL string
		tags, systemTags                                                              pcommon.Value
		assignedV, comments                                                           pcommon.Value
		alerts                                                                        pcommon.Slice
		hasAlerts                                                                     bool
	)
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "id":
			id = str(v)
		case "displayName":
			name = str(v)
		case "severity":
			severity = str(v)
		case "status":
			status = str(v)
		case "classification":
			classification = str(v)
		case "determination":
			determination = str(v)
		case "assignedTo":
			assignedTo, assignedV = str(v), v
		case "comments":
			comments = v
		case "incidentWebUrl":
			webURL = str(v)
		case "customTags", "tags": // `tags` in an older reference example
			tags = v
		case "systemTags":
			systemTags = v
		case "alerts":
			alerts, hasAlerts = sliceOf(v)
		}
		return true
	})
	if id == "" {
		return "", missing("id")
	}
	if status == "" {
		return "", missing("status")
	}

	var subject evidenceSubject
	var ids []pcommon.Value
	collect := n.pseudo != nil && n.keepRaw
	if collect { // who works the incident and its alerts, and who commented, are people too
		ids = appendAuthors(append(ids, assignedV), comments)
	}
	evidence := pcommon.NewValueSlice()
	var alertIDs strList
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 24)
	if hasAlerts {
		for i := 0; i < alerts.Len(); i++ {
			al, ok := mapOf(alerts.At(i))
			if !ok {
				continue
			}
			alertIDs.add(attrs, a.SecurityIncidentAlertIDs, str(get(al, "id")))
			if collect {
				ids = appendAuthors(append(ids, get(al, "assignedTo")), get(al, "comments"))
			}
			ev := get(al, "evidence")
			ids = subject.read(ev, collect, ids)
			if s, ok := sliceOf(ev); ok {
				for j := 0; j < s.Len(); j++ {
					s.At(j).CopyTo(evidence.Slice().AppendEmpty())
				}
			}
		}
		attrs.PutInt(a.SecurityIncidentAlertCount, int64(alerts.Len()))
	}
	n.pseudonymizeBody(ids...)

	// Graph's enums are camelCase (the reference's first example once showed them capitalized).
	typ := eventType("security_incident", lowerFirst(status), "")
	activity := name
	if activity == "" {
		activity = "Security incident"
	}
	writeCommon(attrs, typ, a.LogTypeSecurityIncident, activity)
	subject.write(n, attrs)
	attrs.PutStr(a.SecurityIncidentID, id)
	putStr(attrs, a.SecurityIncidentName, name)
	putStr(attrs, a.SecurityIncidentSeverity, lowerFirst(severity))
	putStr(attrs, a.SecurityIncidentStatus, lowerFirst(status))
	putStr(attrs, a.SecurityIncidentClassification, lowerFirst(classification))
	putStr(attrs, a.SecurityIncidentDetermination, lowerFirst(determination))
	putStr(attrs, a.SecurityIncidentAssignedTo, n.user(assignedTo))
	putStr(attrs, a.SecurityIncidentURL, webURL)
	var tagList strList
	for _, v := range []pcommon.Value{tags, systemTags} {
		if s, ok := sliceOf(v); ok {
			for i := 0; i < s.Len(); i++ {
				tagList.addUnique(attrs, a.SecurityIncidentTags, str(s.At(i)))
			}
		}
	}
	writeEvidence(n, attrs, evidence)
	return typ, nil
}

// appendAuthors appends the authors of a comment list (alertComment; createdBy in an older shape).
func appendAuthors(ids []pcommon.Value, comments pcommon.Value) []pcommon.Value {
	list, ok := sliceOf(comments)
	if !ok {
		return ids
	}
	for i := 0; i < list.Len(); i++ {
		if c, ok := mapOf(list.At(i)); ok {
			ids = append(ids, get(c, "createdByDisplayName"), get(c, "createdBy"))
		}
	}
	return ids
}

// lowerFirst turns a capitalized enum value (Active, TruePositive) into Graph's camelCase.
func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}
