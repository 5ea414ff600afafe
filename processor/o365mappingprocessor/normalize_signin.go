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
	// typeSignInUnknown: Graph gave no status.errorCode (documentation examples carry `"status": {}`).
	typeSignInUnknown = "signin.unknown"
)

// signIn holds what normalization reads from a microsoft.graph.signIn (v1.0, and the beta properties
// of non-interactive, service principal and managed identity sign-ins). Strings alias the body's.
type signIn struct {
	upn, userID, displayName                     string
	appID, appName, ip, clientApp, correlationID string
	caStatus, riskLevel, riskState, riskDetail   string
	resourceName, resourceID, userAgent          string
	spID, spName, authRequirement                string
	riskAggregated, userType, crossTenant        string
	homeTenant, resourceTenant, tokenIssuer      string
	credentialType, deviceName, statusDetails    string
	asn                                          int64
	hasASN                                       bool
	interactive, hasInteractive                  bool
	errorCode                                    int64
	hasErrorCode                                 bool
	failureReason                                string
	os, browser, deviceID, trustType             string
	compliant, hasCompliant, managed, hasManaged bool
	hasDevice                                    bool
	geo                                          geo
	riskEventTypes, riskEventTypesV1             pcommon.Value
	caPolicies, authDetails                      pcommon.Value
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
		case "riskLevelDuringSignIn", "riskLevelDuringsignIn": // the second spelling is in beta examples
			s.riskLevel = str(v)
		case "riskLevelAggregated":
			s.riskAggregated = str(v)
		case "riskEventTypes": // older; riskEventTypes_v2 replaces it
			s.riskEventTypesV1 = v
		case "userType":
			s.userType = str(v)
		case "crossTenantAccessType":
			s.crossTenant = str(v)
		case "homeTenantId":
			s.homeTenant = str(v)
		case "resourceTenantId":
			s.resourceTenant = str(v)
		case "tokenIssuerType":
			s.tokenIssuer = str(v)
		case "clientCredentialType": // beta, service principal and managed identity sign-ins
			s.credentialType = str(v)
		case "autonomousSystemNumber":
			s.asn, s.hasASN = integer(v)
		case "appliedConditionalAccessPolicies":
			s.caPolicies = v
		case "authenticationDetails":
			s.authDetails = v
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
					case "additionalDetails":
						s.statusDetails = str(v)
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
					case "isCompliant": // null = not reported, not "non-compliant"
						s.compliant, s.hasCompliant = boolean(v)
					case "isManaged":
						s.managed, s.hasManaged = boolean(v)
					case "displayName":
						s.deviceName = str(v)
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

// normalizeSignIn: result from status.errorCode (0 = success; none = unknown), the user, the client
// address and location, the application, the device, conditional access and authentication steps.
func normalizeSignIn(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError) {
	var s signIn
	s.read(body)
	if s.upn == "" && s.userID == "" && s.spID == "" {
		return "", missing("userPrincipalName")
	}
	n.pseudonymizeBody(s.upnV, s.userIDV, s.displayNameV)

	attrs := lr.Attributes()
	attrs.EnsureCapacity(attrs.Len() + 48)
	typ, result := typeSignInUnknown, ""
	switch {
	case !s.hasErrorCode:
	case s.errorCode == 0:
		typ, result = typeSignInSuccess, a.ResultSuccess
	default:
		typ, result = typeSignInFailure, a.ResultFailure
	}
	writeCommon(attrs, typ, a.LogTypeSignIn, "Sign-in")
	putStr(attrs, a.Result, result)
	if result == a.ResultFailure {
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
	if s.hasErrorCode {
		attrs.PutInt(a.SignInErrorCode, s.errorCode)
	}
	putStr(attrs, a.SignInStatusAdditionalDetails, clip(s.statusDetails))
	putStr(attrs, a.UserType, s.userType)
	putStr(attrs, a.SignInCrossTenantAccessType, noneIsEmpty(s.crossTenant))
	putStr(attrs, a.SignInHomeTenantID, s.homeTenant)
	putStr(attrs, a.SignInResourceTenantID, s.resourceTenant)
	putStr(attrs, a.SignInTokenIssuerType, s.tokenIssuer)
	putStr(attrs, a.SignInClientCredentialType, noneIsEmpty(s.credentialType))
	if s.hasASN {
		attrs.PutInt(a.NetworkASNumber, s.asn)
	}
	writeConditionalAccess(attrs, s.caPolicies)
	writeAuthenticationDetails(attrs, s.authDetails)
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
		if n.pseudo == nil { // device names are often the user's ("Megan's iPhone")
			putStr(attrs, a.DeviceName, s.deviceName)
		}
		if s.hasCompliant {
			attrs.PutBool(a.DeviceCompliant, s.compliant)
		}
		if s.hasManaged {
			attrs.PutBool(a.DeviceManaged, s.managed)
		}
		putStr(attrs, a.DeviceTrustType, s.trustType)
	}
	putStr(attrs, a.RiskLevel, noneIsEmpty(s.riskLevel))
	putStr(attrs, a.RiskLevelAggregated, noneIsEmpty(s.riskAggregated))
	putStr(attrs, a.RiskState, noneIsEmpty(s.riskState))
	putStr(attrs, a.RiskDetail, noneIsEmpty(s.riskDetail))
	if types, ok := sliceOf(s.riskEventTypes); ok && types.Len() > 0 {
		putStrings(attrs, a.RiskEventTypes, s.riskEventTypes)
	} else {
		putStrings(attrs, a.RiskEventTypes, s.riskEventTypesV1)
	}

	if n.ocsf {
		e := ocsfEvent{class: ocsfClassAuthentication, activityID: 1, activity: "Logon", statusID: statusSuccess,
			severityID: sevInformational, product: "Microsoft Entra ID"}
		switch result {
		case a.ResultFailure:
			e.statusID = statusFailure
		case "":
			e.statusID = statusUnknown
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
		if result == a.ResultFailure {
			attrs.PutStr("ocsf.status_code", itoa(s.errorCode))
			putStr(attrs, "ocsf.status_detail", s.failureReason)
		}
	}
	return typ, nil
}

// writeConditionalAccess writes the conditional access policies that applied to a sign-in (Graph lists
// every policy of the tenant, most of them notApplied or notEnabled: noise, and a cost per sign-in):
// their names and results (aligned) and the names of those whose result is failure.
func writeConditionalAccess(attrs pcommon.Map, v pcommon.Value) {
	var names, results pcommon.Slice
	var failed strList
	maps(v, func(m pcommon.Map) bool {
		result := str(get(m, "result"))
		if result == "notApplied" || result == "notEnabled" {
			return false
		}
		if names == (pcommon.Slice{}) {
			names, results = attrs.PutEmptySlice(a.SignInCAPolicies), attrs.PutEmptySlice(a.SignInCAResults)
		}
		name := str(get(m, "displayName"))
		if name == "" {
			name = str(get(m, "id"))
		}
		names.AppendEmpty().SetStr(name)
		results.AppendEmpty().SetStr(result)
		if result == "failure" {
			failed.add(attrs, a.SignInCAFailedPolicies, name)
		}
		return true
	})
}

// writeAuthenticationDetails writes a sign-in's authentication steps: method, requirement (primary,
// MFA) and outcome, aligned.
func writeAuthenticationDetails(attrs pcommon.Map, v pcommon.Value) {
	var methods, steps, succeeded pcommon.Slice
	maps(v, func(m pcommon.Map) bool {
		if methods == (pcommon.Slice{}) {
			methods, steps = attrs.PutEmptySlice(a.SignInAuthMethods), attrs.PutEmptySlice(a.SignInAuthSteps)
			succeeded = attrs.PutEmptySlice(a.SignInAuthSucceeded)
		}
		methods.AppendEmpty().SetStr(str(get(m, "authenticationMethod")))
		steps.AppendEmpty().SetStr(str(get(m, "authenticationStepRequirement")))
		ok, _ := boolean(get(m, "succeeded"))
		succeeded.AppendEmpty().SetBool(ok)
		return true
	})
}
