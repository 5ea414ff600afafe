package o365mappingprocessor

import (
	"encoding/json"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// normalizeSecurityAlert reads a microsoft.graph.security.alert (alerts_v2). The user is the first user
// evidence, the client address the first IP evidence.
func normalizeSecurityAlert(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var (
		id, title, description, severity, status, category, serviceSource, detectionSource string
		incidentID, product, webURL, created, updated                                      string
		classification, determination, incidentURL, assignedTo                             string
		subject                                                                            evidenceSubject
		techniques, evidence                                                               pcommon.Value
		ids                                                                                []pcommon.Value
	)
	collect := n.pseudo != nil && n.keepRaw
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "id":
			id = str(v)
		case "title":
			title = str(v)
		case "description":
			description = str(v)
		case "severity":
			severity = str(v)
		case "status":
			status = str(v)
		case "category":
			category = str(v)
		case "serviceSource":
			serviceSource = str(v)
		case "detectionSource":
			detectionSource = str(v)
		case "incidentId":
			incidentID = str(v)
		case "productName":
			product = str(v)
		case "alertWebUrl":
			webURL = str(v)
		case "incidentWebUrl":
			incidentURL = str(v)
		case "classification":
			classification = str(v)
		case "determination":
			determination = str(v)
		case "assignedTo":
			assignedTo = str(v)
		case "createdDateTime":
			created = str(v)
		case "lastUpdateDateTime":
			updated = str(v)
		case "mitreTechniques":
			techniques = v
		case "evidence":
			evidence = v
			ids = subject.read(v, collect, ids)
		}
		return true
	})
	if id == "" {
		return "", missing("id")
	}

	typ := eventType("security_alert", category, "")
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 24)
	activity := title
	if activity == "" {
		activity = "Security alert"
	}
	writeCommon(attrs, typ, a.LogTypeSecurityAlert, activity)
	upnP, uidP := subject.write(n, attrs)
	attrs.PutStr(a.AlertID, id)
	putStr(attrs, a.AlertTitle, title)
	putStr(attrs, a.AlertSeverity, severity)
	putStr(attrs, a.AlertStatus, status)
	putStr(attrs, a.AlertCategory, category)
	putStr(attrs, a.AlertServiceSource, serviceSource)
	putStr(attrs, a.AlertDetectionSource, detectionSource)
	putStr(attrs, a.AlertIncidentID, incidentID)
	putStrings(attrs, a.AlertMitreTechniques, techniques)
	putStr(attrs, a.AlertDescription, description)
	putStr(attrs, a.AlertClassification, classification)
	putStr(attrs, a.AlertDetermination, determination)
	putStr(attrs, a.AlertURL, webURL)
	putStr(attrs, a.AlertIncidentURL, incidentURL)
	putStr(attrs, a.AlertAssignedTo, n.user(assignedTo))
	writeEvidence(n, attrs, evidence)
	n.pseudonymizeBody(ids...) // after writeEvidence, which pseudonymizes what it reads from the body itself

	if n.ocsf {
		e := ocsfEvent{class: ocsfClassDetectionFinding, severityID: severityFromLevel(severity), product: product}
		if e.product == "" {
			e.product = "Microsoft Defender XDR"
		}
		switch {
		case status == "resolved":
			e.activityID, e.activity = 3, "Close"
		case created != "" && created == updated:
			e.activityID, e.activity = 1, "Create"
		default:
			e.activityID, e.activity = 2, "Update"
		}
		switch status {
		case "new":
			e.statusID = findingNew
		case "inProgress":
			e.statusID = findingInProgress
		case "resolved":
			e.statusID = findingResolved
		}
		e.write(attrs, lr.Timestamp(), recordID(attrs))
		attrs.PutStr("ocsf.finding_info.uid", id)
		putStr(attrs, "ocsf.finding_info.title", title)
		putStr(attrs, "ocsf.finding_info.desc", description)
		putStr(attrs, "ocsf.finding_info.src_url", webURL)
		putStr(attrs, "ocsf.user.name", upnP)
		putStr(attrs, "ocsf.user.uid", uidP)
		putStr(attrs, "ocsf.src_endpoint.ip", subject.ip)
	}
	return typ, nil
}

// evidenceSubject is whom and where an alert's evidence points at: its first user (userEvidence) and
// its first address (ipEvidence).
type evidenceSubject struct {
	upn, userID, displayName, ip, country string
}

// read scans an evidence list. With collect, it appends to ids the user identifiers the body keeps (to
// pseudonymize them there too) and returns them.
func (e *evidenceSubject) read(v pcommon.Value, collect bool, ids []pcommon.Value) []pcommon.Value {
	s, ok := sliceOf(v)
	if !ok {
		return ids
	}
	for i := 0; i < s.Len(); i++ {
		ev, ok := mapOf(s.At(i))
		if !ok {
			continue
		}
		switch str(get(ev, "@odata.type")) {
		case "#microsoft.graph.security.userEvidence":
			am, ok := mapOf(get(ev, "userAccount"))
			if !ok {
				continue
			}
			am.Range(func(k string, v pcommon.Value) bool {
				switch k {
				case "userPrincipalName":
					if e.upn == "" {
						e.upn = str(v)
					}
				case "azureAdUserId":
					if e.userID == "" {
						e.userID = str(v)
					}
				case "displayName":
					if e.displayName == "" {
						e.displayName = str(v)
					}
				case "accountName", "userSid":
				default:
					return true
				}
				if collect {
					ids = append(ids, v)
				}
				return true
			})
		case "#microsoft.graph.security.ipEvidence":
			if e.ip == "" {
				e.ip, e.country = str(get(ev, "ipAddress")), str(get(ev, "countryLetterCode"))
			}
		}
	}
	return ids
}

// write puts the subject's user and address on attrs and returns the user name and id as written.
func (e *evidenceSubject) write(n *normalizer, attrs pcommon.Map) (upn, userID string) {
	upn, userID = n.user(e.upn), n.user(e.userID)
	putStr(attrs, a.UserName, upn)
	putStr(attrs, a.UserID, userID)
	putStr(attrs, a.UserFullName, n.user(e.displayName))
	putStr(attrs, a.ClientAddress, e.ip)
	putStr(attrs, a.GeoCountryISOCode, e.country)
	return upn, userID
}

// writeEvidence lists an alert's evidence by kind (users, devices, addresses, URLs, files, processes),
// distinct values in order, at most maxListItems of each.
func writeEvidence(n *normalizer, attrs pcommon.Map, v pcommon.Value) {
	list, ok := sliceOf(v)
	if !ok {
		return
	}
	var users, devices, ips, urls, files, procs strList
	for i := 0; i < list.Len(); i++ {
		ev, ok := mapOf(list.At(i))
		if !ok {
			continue
		}
		switch str(get(ev, "@odata.type")) {
		case "#microsoft.graph.security.userEvidence":
			if acct, ok := mapOf(get(ev, "userAccount")); ok {
				u := str(get(acct, "userPrincipalName"))
				if u == "" {
					u = str(get(acct, "accountName"))
				}
				if u != "" {
					users.addUnique(attrs, a.AlertEvidenceUsers, n.user(u))
				}
			}
		case "#microsoft.graph.security.deviceEvidence":
			devices.addUnique(attrs, a.AlertEvidenceDevices, str(get(ev, "deviceDnsName")))
		case "#microsoft.graph.security.ipEvidence":
			ips.addUnique(attrs, a.AlertEvidenceIPs, str(get(ev, "ipAddress")))
		case "#microsoft.graph.security.urlEvidence":
			urls.addUnique(attrs, a.AlertEvidenceURLs, clip(str(get(ev, "url"))))
		case "#microsoft.graph.security.fileEvidence":
			if fd, ok := mapOf(get(ev, "fileDetails")); ok {
				files.addUnique(attrs, a.AlertEvidenceFiles, str(get(fd, "fileName")))
			}
		case "#microsoft.graph.security.processEvidence":
			p := clip(str(get(ev, "processCommandLine")))
			if p == "" {
				if img, ok := mapOf(get(ev, "imageFile")); ok {
					p = str(get(img, "fileName"))
				}
			}
			procs.addUnique(attrs, a.AlertEvidenceProcesses, p)
		}
	}
}

// normalizeRiskDetection reads a riskDetection (Entra ID Protection).
func normalizeRiskDetection(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var (
		id, riskType, riskState, riskLevel, riskDetail, source, timing, ip, additionalInfo string
		upn, userID, displayName, correlationID, olderType, activity, detected             string
		upnV, userIDV, displayNameV                                                        pcommon.Value
		g                                                                                  geo
	)
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "id":
			id = str(v)
		case "riskEventType":
			riskType = str(v)
		case "riskType": // the older name of riskEventType (beta, 2019)
			olderType = str(v)
		case "activity":
			activity = str(v)
		case "detectedDateTime":
			detected = str(v)
		case "riskState":
			riskState = str(v)
		case "riskLevel":
			riskLevel = str(v)
		case "riskDetail":
			riskDetail = str(v)
		case "source":
			source = str(v)
		case "detectionTimingType":
			timing = str(v)
		case "ipAddress":
			ip = str(v)
		case "correlationId":
			correlationID = str(v)
		case "userPrincipalName":
			upn, upnV = str(v), v
		case "userId":
			userID, userIDV = str(v), v
		case "userDisplayName":
			displayName, displayNameV = str(v), v
		case "additionalInfo":
			additionalInfo = str(v)
		case "location":
			g.read(v)
		}
		return true
	})
	if id == "" {
		return "", missing("id")
	}
	if riskType == "" {
		riskType = olderType
	}
	if riskType == "" {
		return "", missing("riskEventType")
	}
	n.pseudonymizeBody(upnV, userIDV, displayNameV)

	typ := eventType("risk_detection", riskType, "")
	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 24)
	writeCommon(attrs, typ, a.LogTypeRiskDetection, "Risk detection")
	upnP, uidP := n.user(upn), n.user(userID)
	putStr(attrs, a.UserName, upnP)
	putStr(attrs, a.UserID, uidP)
	putStr(attrs, a.UserFullName, n.user(displayName))
	putStr(attrs, a.ClientAddress, ip)
	g.write(n, attrs)
	putStr(attrs, a.UserAgentOriginal, userAgentFromAdditionalInfo(additionalInfo))
	putStr(attrs, a.CorrelationID, correlationID)
	attrs.PutStr(a.RiskEventType, riskType)
	putStr(attrs, a.RiskLevel, noneIsEmpty(riskLevel))
	putStr(attrs, a.RiskState, noneIsEmpty(riskState))
	putStr(attrs, a.RiskDetail, noneIsEmpty(riskDetail))
	putStr(attrs, a.RiskDetectionTiming, noneIsEmpty(timing))
	putStr(attrs, a.RiskSource, source)
	putStr(attrs, a.RiskActivity, activity)
	if t, ok := parseTime(pcommon.NewValueStr(detected)); ok {
		attrs.PutStr(a.RiskDetectedTime, t.UTC().Format(time.RFC3339Nano))
	}

	if n.ocsf {
		e := ocsfEvent{class: ocsfClassDetectionFinding, activityID: 1, activity: "Create",
			severityID: severityFromLevel(riskLevel), product: "Microsoft Entra ID Protection"}
		switch riskState {
		case "atRisk", "confirmedCompromised":
			e.statusID = findingNew
		case "remediated", "dismissed", "confirmedSafe":
			e.statusID = findingResolved
		}
		e.write(attrs, lr.Timestamp(), recordID(attrs))
		attrs.PutStr("ocsf.finding_info.uid", id)
		attrs.PutStr("ocsf.finding_info.title", riskType)
		putStr(attrs, "ocsf.user.name", upnP)
		putStr(attrs, "ocsf.user.uid", uidP)
		putStr(attrs, "ocsf.src_endpoint.ip", ip)
		putStr(attrs, "ocsf.src_endpoint.location.country", g.country.s)
	}
	return typ, nil
}

// userAgentFromAdditionalInfo reads the userAgent of a risk detection's additionalInfo, a JSON string
// such as `[{"Key":"userAgent","Value":"Mozilla/5.0 ..."}]`.
func userAgentFromAdditionalInfo(s string) string {
	if !strings.Contains(s, "userAgent") {
		return ""
	}
	var kvs []struct {
		Key   string `json:"Key"`
		Value any    `json:"Value"`
	}
	if json.Unmarshal([]byte(s), &kvs) != nil {
		return ""
	}
	for _, kv := range kvs {
		if strings.EqualFold(kv.Key, "userAgent") {
			if v, ok := kv.Value.(string); ok {
				return v
			}
		}
	}
	return ""
}
