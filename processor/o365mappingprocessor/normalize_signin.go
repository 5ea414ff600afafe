package o365mappingprocessor

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Event types of sign-ins.
const (
	typeSignInSuccess = "signin.success"
	typeSignInFailure = "signin.failure"
)

// signIn holds what normalization reads from a microsoft.graph.signIn (v1.0, and the beta properties
// of non-interactive, service principal and managed identity sign-ins). Strings alias the body's.
type signIn struct {
	upn, userID, displayName                     string
	appID, appName, ip, clientApp, correlationID string
	caStatus, riskLevel, riskState, riskDetail   string
	resourceName, resourceID, userAgent          string
	spID, spName, authRequirement                string
	interactive, hasInteractive                  bool
	errorCode                                    int64
	hasErrorCode                                 bool
	failureReason                                string
	os, browser, deviceID, trustType             string
	compliant, managed, hasDevice                bool
	geo                                          geo
	riskEventTypes                               pcommon.Value
	upnV, userIDV, displayNameV                  pcommon.Value
}

func (s *signIn) read(body pcommon.Map) {
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "userPrincipalName":
			s.upn, s.upnV = str(v), v
		case "userId":
			s.userID, s.userIDV = str(v), v
		case "userDisplayName":
			s.displayName, s.displayNameV = str(v), v
		case "appId":
			s.appID = str(v)
		case "appDisplayName":
			s.appName = str(v)
		case "ipAddress":
			s.ip = str(v)
		case "clientAppUsed":
			s.clientApp = str(v)
		case "correlationId":
			s.correlationID = str(v)
		case "conditionalAccessStatus":
			s.caStatus = str(v)
		case "isInteractive":
			s.interactive, s.hasInteractive = boolean(v)
		case "riskLevelDuringSignIn":
			s.riskLevel = str(v)
		case "riskState":
			s.riskState = str(v)
		case "riskDetail":
			s.riskDetail = str(v)
		case "riskEventTypes_v2":
			s.riskEventTypes = v
		case "resourceDisplayName":
			s.resourceName = str(v)
		case "resourceId":
			s.resourceID = str(v)
		case "userAgent": // beta
			s.userAgent = str(v)
		case "servicePrincipalId": // beta, service principal and managed identity sign-ins
			s.spID = str(v)
		case "servicePrincipalName":
			s.spName = str(v)
		case "authenticationRequirement": // beta
			s.authRequirement = str(v)
		case "status":
			if m, ok := mapOf(v); ok {
				m.Range(func(k string, v pcommon.Value) bool {
					switch k {
					case "errorCode":
						s.errorCode, s.hasErrorCode = integer(v)
					case "failureReason":
						s.failureReason = str(v)
					}
					return true
				})
			}
		case "deviceDetail":
			if m, ok := mapOf(v); ok {
				s.hasDevice = true
				m.Range(func(k string, v pcommon.Value) bool {
					switch k {
					case "operatingSystem":
						s.os = str(v)
					case "browser":
						s.browser = str(v)
					case "deviceId":
						s.deviceID = str(v)
					case "trustType":
						s.trustType = str(v)
					case "isCompliant":
						s.compliant, _ = boolean(v)
					case "isManaged":
						s.managed, _ = boolean(v)
					}
					return true
				})
			}
		case "location":
			s.geo.read(v)
		}
		return true
	})
}

// normalizeSignIn: result from status.errorCode (0 = success), the user, the client address and
// location, the application and the device.
func normalizeSignIn(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var s signIn
	s.read(body)
	if !s.hasErrorCode {
		return "", missing("status.errorCode")
	}
	if s.upn == "" && s.userID == "" && s.spID == "" {
		return "", missing("userPrincipalName")
	}
	n.pseudonymizeBody(s.upnV, s.userIDV, s.displayNameV)

	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 36)
	typ, result := typeSignInSuccess, a.ResultSuccess
	if s.errorCode != 0 {
		typ, result = typeSignInFailure, a.ResultFailure
	}
	writeCommon(attrs, typ, a.LogTypeSignIn, "Sign-in")
	attrs.PutStr(a.Result, result)
	if s.errorCode != 0 {
		putStr(attrs, a.ResultReason, s.failureReason)
	}
	upn, uid := n.user(s.upn), n.user(s.userID)
	putStr(attrs, a.UserName, upn)
	putStr(attrs, a.UserID, uid)
	putStr(attrs, a.UserFullName, n.user(s.displayName))
	if s.upn == "" && s.userID == "" {
		attrs.PutStr(a.ActorType, "service_principal")
		putStr(attrs, a.PrincipalID, s.spID)
		putStr(attrs, a.PrincipalName, s.spName)
	}
	putStr(attrs, a.ClientAddress, s.ip)
	putStr(attrs, a.ApplicationName, s.appName)
	putStr(attrs, a.ApplicationID, s.appID)
	s.geo.write(attrs)
	putStr(attrs, a.UserAgentOriginal, s.userAgent)
	if s.browser != "" {
		name, version := splitVersion(s.browser)
		attrs.PutStr(a.UserAgentName, name)
		putStr(attrs, a.UserAgentVersion, version)
	}
	if s.os != "" {
		name, version := splitVersion(s.os)
		attrs.PutStr(a.UserAgentOSName, name)
		putStr(attrs, a.UserAgentOSVersion, version)
	}
	putStr(attrs, a.CorrelationID, s.correlationID)
	attrs.PutInt(a.SignInErrorCode, s.errorCode)
	putStr(attrs, a.SignInConditionalAccessStatus, s.caStatus)
	putStr(attrs, a.SignInClientApp, s.clientApp)
	putStr(attrs, a.SignInAuthRequirement, s.authRequirement)
	if s.hasInteractive {
		attrs.PutBool(a.SignInInteractive, s.interactive)
	}
	putStr(attrs, a.SignInResourceName, s.resourceName)
	putStr(attrs, a.SignInResourceID, s.resourceID)
	if s.hasDevice {
		putStr(attrs, a.DeviceID, s.deviceID)
		attrs.PutBool(a.DeviceCompliant, s.compliant)
		attrs.PutBool(a.DeviceManaged, s.managed)
		putStr(attrs, a.DeviceTrustType, s.trustType)
	}
	if s.riskLevel != "" && s.riskLevel != "none" {
		attrs.PutStr(a.RiskLevel, s.riskLevel)
	}
	if s.riskState != "" && s.riskState != "none" {
		attrs.PutStr(a.RiskState, s.riskState)
	}
	if s.riskDetail != "" && s.riskDetail != "none" {
		attrs.PutStr(a.RiskDetail, s.riskDetail)
	}
	putStrings(attrs, a.RiskEventTypes, s.riskEventTypes)

	if n.ocsf {
		e := ocsfEvent{class: ocsfClassAuthentication, activityID: 1, activity: "Logon", statusID: statusSuccess,
			severityID: sevInformational, product: "Microsoft Entra ID"}
		if s.errorCode != 0 {
			e.statusID = statusFailure
		}
		if sev := severityFromLevel(s.riskLevel); sev > sevInformational {
			e.severityID = sev
		}
		e.write(attrs, lr.Timestamp(), recordID(attrs))
		putStr(attrs, "ocsf.user.name", upn)
		putStr(attrs, "ocsf.user.uid", uid)
		putStr(attrs, "ocsf.src_endpoint.ip", s.ip)
		putStr(attrs, "ocsf.src_endpoint.location.country", s.geo.country)
		putStr(attrs, "ocsf.src_endpoint.location.city", s.geo.city)
		putStr(attrs, "ocsf.service.name", s.resourceName)
		putStr(attrs, "ocsf.service.uid", s.resourceID)
		putStr(attrs, "ocsf.http_request.user_agent", s.userAgent)
		if s.errorCode != 0 {
			attrs.PutStr("ocsf.status_code", itoa(s.errorCode))
			putStr(attrs, "ocsf.status_detail", s.failureReason)
		}
	}
	return typ, nil
}
