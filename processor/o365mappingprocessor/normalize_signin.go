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
	upn, userID, displayName                     field
	appID, appName, ip, clientApp, correlationID field
	caStatus, riskLevel, riskState, riskDetail   field
	resourceName, resourceID, userAgent          field
	spID, spName, authRequirement                field
	riskAggregated, userType, crossTenant        field
	homeTenant, resourceTenant, tokenIssuer      field
	credentialType, deviceName, statusDetails    field
	asn                                          int64
	hasASN                                       bool
	interactive, hasInteractive                  bool
	errorCode                                    int64
	hasErrorCode                                 bool
	failureReason                                field
	os, browser                                  string
	deviceID, trustType                          field
	compliant, hasCompliant, managed, hasManaged bool
	hasDevice                                    bool
	geo                                          geo
	riskEventTypes, riskEventTypesV1             pcommon.Value
	caPolicies, authDetails                      pcommon.Value
}

func (s *signIn) read(body pcommon.Map) {
	body.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "userPrincipalName":
			s.upn = strField(v)
		case "userId":
			s.userID = strField(v)
		case "userDisplayName":
			s.displayName = strField(v)
		case "appId":
			s.appID = strField(v)
		case "appDisplayName":
			s.appName = strField(v)
		case "ipAddress":
			s.ip = strField(v)
		case "clientAppUsed":
			s.clientApp = strField(v)
		case "correlationId":
			s.correlationID = strField(v)
		case "conditionalAccessStatus":
			s.caStatus = strField(v)
		case "isInteractive":
			s.interactive, s.hasInteractive = boolean(v)
		case "riskLevelDuringSignIn", "riskLevelDuringsignIn": // the second spelling is in beta examples
			s.riskLevel = strField(v)
		case "riskLevelAggregated":
			s.riskAggregated = strField(v)
		case "riskEventTypes": // older; riskEventTypes_v2 replaces it
			s.riskEventTypesV1 = v
		case "userType":
			s.userType = strField(v)
		case "crossTenantAccessType":
			s.crossTenant = strField(v)
		case "homeTenantId":
			s.homeTenant = strField(v)
		case "resourceTenantId":
			s.resourceTenant = strField(v)
		case "tokenIssuerType":
			s.tokenIssuer = strField(v)
		case "clientCredentialType": // beta, service principal and managed identity sign-ins
			s.credentialType = strField(v)
		case "autonomousSystemNumber":
			s.asn, s.hasASN = integer(v)
		case "appliedConditionalAccessPolicies":
			s.caPolicies = v
		case "authenticationDetails":
			s.authDetails = v
		case "riskState":
			s.riskState = strField(v)
		case "riskDetail":
			s.riskDetail = strField(v)
		case "riskEventTypes_v2":
			s.riskEventTypes = v
		case "resourceDisplayName":
			s.resourceName = strField(v)
		case "resourceId":
			s.resourceID = strField(v)
		case "userAgent": // beta
			s.userAgent = strField(v)
		case "servicePrincipalId": // beta, service principal and managed identity sign-ins
			s.spID = strField(v)
		case "servicePrincipalName":
			s.spName = strField(v)
		case "authenticationRequirement": // beta
			s.authRequirement = strField(v)
		case "status":
			if m, ok := mapOf(v); ok {
				m.Range(func(k string, v pcommon.Value) bool {
					switch k {
					case "errorCode":
						s.errorCode, s.hasErrorCode = integer(v)
					case "failureReason":
						s.failureReason = strField(v)
					case "additionalDetails":
						s.statusDetails = strField(v)
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
						s.deviceID = strField(v)
					case "trustType":
						s.trustType = strField(v)
					case "isCompliant": // null = not reported, not "non-compliant"
						s.compliant, s.hasCompliant = boolean(v)
					case "isManaged":
						s.managed, s.hasManaged = boolean(v)
					case "displayName":
						s.deviceName = strField(v)
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
	if s.upn.s == "" && s.userID.s == "" && s.spID.s == "" {
		return "", missing("userPrincipalName")
	}
	n.pseudonymizeBody(s.upn.v, s.userID.v, s.displayName.v)

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
		n.putField(attrs, a.ResultReason, s.failureReason)
	}
	upn, uid := s.upn.apply(n.user), s.userID.apply(n.user)
	n.putField(attrs, a.UserName, upn)
	n.putField(attrs, a.UserID, uid)
	n.putField(attrs, a.UserFullName, s.displayName.apply(n.user))
	if s.upn.s == "" && s.userID.s == "" {
		attrs.PutStr(a.ActorType, "service_principal")
		n.putField(attrs, a.PrincipalID, s.spID)
		n.putField(attrs, a.PrincipalName, s.spName)
	}
	n.putField(attrs, a.ClientAddress, s.ip)
	n.putField(attrs, a.ApplicationName, s.appName)
	n.putField(attrs, a.ApplicationID, s.appID)
	s.geo.write(n, attrs)
	n.putField(attrs, a.UserAgentOriginal, s.userAgent)
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
	n.putField(attrs, a.CorrelationID, s.correlationID)
	if s.hasErrorCode {
		attrs.PutInt(a.SignInErrorCode, s.errorCode)
	}
	n.putField(attrs, a.SignInStatusAdditionalDetails, s.statusDetails.apply(clip))
	n.putField(attrs, a.UserType, s.userType)
	n.putField(attrs, a.SignInCrossTenantAccessType, s.crossTenant.apply(noneIsEmpty))
	n.putField(attrs, a.SignInHomeTenantID, s.homeTenant)
	n.putField(attrs, a.SignInResourceTenantID, s.resourceTenant)
	n.putField(attrs, a.SignInTokenIssuerType, s.tokenIssuer)
	n.putField(attrs, a.SignInClientCredentialType, s.credentialType.apply(noneIsEmpty))
	if s.hasASN {
		attrs.PutInt(a.NetworkASNumber, s.asn)
	}
	n.writeConditionalAccess(attrs, s.caPolicies)
	n.writeAuthenticationDetails(attrs, s.authDetails)
	n.putField(attrs, a.SignInConditionalAccessStatus, s.caStatus)
	n.putField(attrs, a.SignInClientApp, s.clientApp)
	n.putField(attrs, a.SignInAuthRequirement, s.authRequirement)
	if s.hasInteractive {
		attrs.PutBool(a.SignInInteractive, s.interactive)
	}
	n.putField(attrs, a.SignInResourceName, s.resourceName)
	n.putField(attrs, a.SignInResourceID, s.resourceID)
	if s.hasDevice {
		n.putField(attrs, a.DeviceID, s.deviceID)
		if n.pseudo == nil { // device names are often the user's ("Megan's iPhone")
			n.putField(attrs, a.DeviceName, s.deviceName)
		}
		if s.hasCompliant {
			attrs.PutBool(a.DeviceCompliant, s.compliant)
		}
		if s.hasManaged {
			attrs.PutBool(a.DeviceManaged, s.managed)
		}
		n.putField(attrs, a.DeviceTrustType, s.trustType)
	}
	n.putField(attrs, a.RiskLevel, s.riskLevel.apply(noneIsEmpty))
	n.putField(attrs, a.RiskLevelAggregated, s.riskAggregated.apply(noneIsEmpty))
	n.putField(attrs, a.RiskState, s.riskState.apply(noneIsEmpty))
	n.putField(attrs, a.RiskDetail, s.riskDetail.apply(noneIsEmpty))
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
		if sev := severityFromLevel(s.riskLevel.s); sev > sevInformational {
			e.severityID = sev
		}
		e.write(attrs, lr.Timestamp(), recordID(attrs))
		putStr(attrs, "ocsf.user.name", upn.s)
		putStr(attrs, "ocsf.user.uid", uid.s)
		putStr(attrs, "ocsf.src_endpoint.ip", s.ip.s)
		putStr(attrs, "ocsf.src_endpoint.location.country", s.geo.country.s)
		putStr(attrs, "ocsf.src_endpoint.location.city", s.geo.city.s)
		putStr(attrs, "ocsf.service.name", s.resourceName.s)
		putStr(attrs, "ocsf.service.uid", s.resourceID.s)
		putStr(attrs, "ocsf.http_request.user_agent", s.userAgent.s)
		if result == a.ResultFailure {
			attrs.PutStr("ocsf.status_code", itoa(s.errorCode))
			putStr(attrs, "ocsf.status_detail", s.failureReason.s)
		}
	}
	return typ, nil
}

// writeConditionalAccess writes the conditional access policies that applied to a sign-in (Graph lists
// every policy of the tenant, most of them notApplied or notEnabled: noise, and a cost per sign-in):
// their names and results (aligned) and the names of those whose result is failure.
func (n *normalizer) writeConditionalAccess(attrs pcommon.Map, v pcommon.Value) {
	var names, results pcommon.Slice
	var failed strList
	maps(v, func(m pcommon.Map) bool {
		result := strField(get(m, "result"))
		if result.s == "notApplied" || result.s == "notEnabled" {
			return false
		}
		if names == (pcommon.Slice{}) {
			names, results = attrs.PutEmptySlice(a.SignInCAPolicies), attrs.PutEmptySlice(a.SignInCAResults)
		}
		name := strField(get(m, "displayName"))
		if name.s == "" {
			name = strField(get(m, "id"))
		}
		n.setField(names.AppendEmpty(), name)
		n.setField(results.AppendEmpty(), result)
		if result.s == "failure" {
			failed.add(attrs, a.SignInCAFailedPolicies, name.s)
		}
		return true
	})
}

// writeAuthenticationDetails writes a sign-in's authentication steps: method, requirement (primary,
// MFA) and outcome, aligned.
func (n *normalizer) writeAuthenticationDetails(attrs pcommon.Map, v pcommon.Value) {
	var methods, steps, succeeded pcommon.Slice
	maps(v, func(m pcommon.Map) bool {
		if methods == (pcommon.Slice{}) {
			methods, steps = attrs.PutEmptySlice(a.SignInAuthMethods), attrs.PutEmptySlice(a.SignInAuthSteps)
			succeeded = attrs.PutEmptySlice(a.SignInAuthSucceeded)
		}
		n.setField(methods.AppendEmpty(), strField(get(m, "authenticationMethod")))
		n.setField(steps.AppendEmpty(), strField(get(m, "authenticationStepRequirement")))
		ok, _ := boolean(get(m, "succeeded"))
		succeeded.AppendEmpty().SetBool(ok)
		return true
	})
}
