package graphsim

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Beta sign-ins: the four kinds of the beta signIn resource (interactive, non-interactive, service
// principal, managed identity), selected by $filter=signInEventTypes/any(t: t eq '<kind>').
//
// Fidelity: Microsoft's beta Go SDK (msgraph-beta-sdk-go) cannot be fetched in this environment, so the
// fidelity check of fidelity_test.go covers the v1.0 shapes only. These records follow the beta resource
// documentation (microsoft-graph-docs-contrib api-reference/beta/resources/signin.md): the v1.0
// properties plus the beta ones a SIEM reads, with documented enum values only.

// betaSignIn is the beta microsoft.graph.signIn. The embedded v1.0 signIn supplies the shared
// properties (encoding/json flattens it).
type betaSignIn struct {
	signIn
	SignInEventTypes                     []string                `json:"signInEventTypes"`
	AuthenticationRequirement            string                  `json:"authenticationRequirement"`
	AuthenticationProtocol               string                  `json:"authenticationProtocol"`
	AuthenticationMethodsUsed            []string                `json:"authenticationMethodsUsed"`
	AuthenticationDetails                []authenticationDetail  `json:"authenticationDetails"`
	AuthenticationProcessingDetails      []keyValue              `json:"authenticationProcessingDetails"`
	ClientCredentialType                 string                  `json:"clientCredentialType"`
	CrossTenantAccessType                string                  `json:"crossTenantAccessType"`
	IncomingTokenType                    string                  `json:"incomingTokenType"`
	TokenIssuerType                      string                  `json:"tokenIssuerType"`
	TokenIssuerName                      string                  `json:"tokenIssuerName"`
	UserType                             *string                 `json:"userType"`
	HomeTenantID                         *string                 `json:"homeTenantId"`
	ResourceTenantID                     string                  `json:"resourceTenantId"`
	ResourceServicePrincipalID           string                  `json:"resourceServicePrincipalId"`
	ServicePrincipalID                   string                  `json:"servicePrincipalId"`
	ServicePrincipalName                 string                  `json:"servicePrincipalName"`
	ServicePrincipalCredentialKeyID      *string                 `json:"servicePrincipalCredentialKeyId"`
	ServicePrincipalCredentialThumbprint *string                 `json:"servicePrincipalCredentialThumbprint"`
	FederatedCredentialID                *string                 `json:"federatedCredentialId"`
	ManagedServiceIdentity               managedServiceIdentity  `json:"managedServiceIdentity"`
	UniqueTokenIdentifier                string                  `json:"uniqueTokenIdentifier"`
	SignInIdentifier                     *string                 `json:"signInIdentifier"`
	SignInIdentifierType                 *string                 `json:"signInIdentifierType"`
	UserAgent                            string                  `json:"userAgent"`
	SessionID                            *string                 `json:"sessionId"`
	OriginalRequestID                    string                  `json:"originalRequestId"`
	ProcessingTimeInMilliseconds         int                     `json:"processingTimeInMilliseconds"`
	AutonomousSystemNumber               int                     `json:"autonomousSystemNumber"`
	IsTenantRestricted                   bool                    `json:"isTenantRestricted"`
	IsThroughGlobalSecureAccess          bool                    `json:"isThroughGlobalSecureAccess"`
	FlaggedForReview                     bool                    `json:"flaggedForReview"`
	NetworkLocationDetails               []networkLocationDetail `json:"networkLocationDetails"`
}

type authenticationDetail struct {
	AuthenticationMethod           string `json:"authenticationMethod"`
	AuthenticationMethodDetail     string `json:"authenticationMethodDetail"`
	AuthenticationStepDateTime     string `json:"authenticationStepDateTime"`
	AuthenticationStepRequirement  string `json:"authenticationStepRequirement"`
	AuthenticationStepResultDetail string `json:"authenticationStepResultDetail"`
	Succeeded                      bool   `json:"succeeded"`
}

// managedServiceIdentity is the beta managedIdentity complex type.
type managedServiceIdentity struct {
	MsiType              string  `json:"msiType"` // none, userAssigned, systemAssigned
	AssociatedResourceID *string `json:"associatedResourceId"`
	FederatedTokenID     *string `json:"federatedTokenId"`
	FederatedTokenIssuer *string `json:"federatedTokenIssuer"`
}

type networkLocationDetail struct {
	NetworkType  string   `json:"networkType"`
	NetworkNames []string `json:"networkNames"`
}

// simServicePrincipal is an app (or managed identity) of the tenant that signs in by itself.
type simServicePrincipal struct {
	appID, objectID, name string
	// managed identities: msiType and the Azure resource the identity belongs to
	msiType, resourceID string
}

var (
	spNames = []string{"SIEM connector", "Backup automation", "HR provisioning", "Terraform CI", "Ticketing integration"}
	miHosts = []struct{ name, msiType, provider string }{
		{"vm-web-01", "systemAssigned", "Microsoft.Compute/virtualMachines"},
		{"id-aks-workload", "userAssigned", "Microsoft.ManagedIdentity/userAssignedIdentities"},
		{"func-ingest", "systemAssigned", "Microsoft.Web/sites"},
		{"logic-approvals", "systemAssigned", "Microsoft.Logic/workflows"},
	}
	// workloadResources are what service principals and managed identities sign in to.
	workloadResources = []struct{ id, name string }{
		{"00000003-0000-0000-c000-000000000000", "Microsoft Graph"},
		{"cfa8b339-82a2-471a-a3c9-0fc0be7a4093", "Azure Key Vault"},
		{"797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API"},
		{"e406a681-f3d4-42a8-90b6-c2b029497af1", "Azure Storage"},
	}
	spCredentialTypes = []string{"clientSecret", "certificate", "clientAssertion", "federatedIdentityCredential"}
	// Non-interactive sign-ins fail when a refresh token or session no longer holds.
	nonInteractiveFailures = []failure{
		{50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed."},
		{70043, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access."},
		{50132, "Session information is not sufficient for single-sign-on."},
	}
	servicePrincipalFailures = []failure{
		{7000215, "Invalid client secret is provided."},
		{7000222, "The provided client secret keys are expired."},
		{700027, "Client assertion failed signature validation."},
	}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Windows-AzureAD-Authentication-Provider/1.0",
	}
)

// servicePrincipals are the tenant's apps that sign in with their own credentials: the configured app
// registrations (the collector itself among them) and a few invented ones.
func (td *tenantData) servicePrincipals() []simServicePrincipal {
	var out []simServicePrincipal
	for k, app := range td.cfg.Apps {
		out = append(out, simServicePrincipal{appID: app.ClientID, objectID: guid(td.seed^0x5e7, uint64(k)), name: "otelcol-o365 collector"})
	}
	for k, name := range spNames {
		out = append(out, simServicePrincipal{appID: guid(td.seed^0xa99, uint64(k)), objectID: guid(td.seed^0x5e7, uint64(100+k)), name: name})
	}
	return out
}

// managedIdentities are the tenant's Azure resources with a managed identity.
func (td *tenantData) managedIdentities() []simServicePrincipal {
	sub := guid(td.seed^0x5b, 0)
	out := make([]simServicePrincipal, 0, len(miHosts))
	for k, h := range miHosts {
		out = append(out, simServicePrincipal{
			appID: guid(td.seed^0x3a1, uint64(k)), objectID: guid(td.seed^0x3a2, uint64(k)), name: h.name, msiType: h.msiType,
			resourceID: fmt.Sprintf("/subscriptions/%s/resourcegroups/rg-prod/providers/%s/%s", sub, h.provider, h.name),
		})
	}
	return out
}

func strPtr(s string) *string { return &s }

// buildBetaSignIn renders synthetic record i of a sign-in stream in the beta shape of its kind.
func buildBetaSignIn(s *stream, i int64) betaSignIn {
	at := s.timeAt(i)
	h := mix(s.seed, uint64(i)^0xbe7a)
	td := s.tenant
	switch s.def.eventType {
	case "servicePrincipal", "managedIdentity":
		return buildWorkloadSignIn(s, i, at, h)
	}
	base := buildSignIn(td, s.seed, i, at)
	b := betaSignIn{
		signIn:                          base,
		SignInEventTypes:                []string{s.def.eventType},
		AuthenticationRequirement:       "singleFactorAuthentication",
		AuthenticationProtocol:          "none",
		AuthenticationProcessingDetails: []keyValue{{Key: "Legacy TLS (TLS 1.0, 1.1, 3DES)", Value: "False"}},
		ClientCredentialType:            "none",
		CrossTenantAccessType:           "none",
		IncomingTokenType:               "none",
		TokenIssuerType:                 "AzureAD",
		UserType:                        strPtr("member"),
		HomeTenantID:                    strPtr(td.cfg.ID),
		ResourceTenantID:                td.cfg.ID,
		ResourceServicePrincipalID:      guid(td.seed^0x7e5, uint64(h%5)),
		ManagedServiceIdentity:          managedServiceIdentity{MsiType: "none"},
		UniqueTokenIdentifier:           tokenIdentifier(s.seed, i),
		SignInIdentifier:                strPtr(base.UserPrincipalName),
		SignInIdentifierType:            strPtr("userPrincipalName"),
		UserAgent:                       userAgents[(h>>4)%uint64(len(userAgents))],
		SessionID:                       strPtr(guid(s.seed^0x5e55, uint64(i)/4)),
		OriginalRequestID:               guid(s.seed^0x0e1, uint64(i)),
		ProcessingTimeInMilliseconds:    int(40 + (h>>8)%400),
		AutonomousSystemNumber:          int(3000 + (h>>20)%60000),
		NetworkLocationDetails:          []networkLocationDetail{},
	}
	if s.def.eventType == "interactiveUser" {
		b.AuthenticationMethodsUsed = []string{"Password"}
		b.AuthenticationDetails = []authenticationDetail{{
			AuthenticationMethod: "Password", AuthenticationMethodDetail: "Password in the cloud",
			AuthenticationStepDateTime: FormatTime(at), AuthenticationStepRequirement: "Primary authentication",
			AuthenticationStepResultDetail: "Correct password", Succeeded: base.Status.ErrorCode == 0 || base.Status.ErrorCode == 50074,
		}}
		if base.Status.ErrorCode == 0 && (h>>30)%2 == 0 {
			b.AuthenticationRequirement = "multiFactorAuthentication"
			b.AuthenticationMethodsUsed = append(b.AuthenticationMethodsUsed, "Mobile app notification")
			b.AuthenticationDetails = append(b.AuthenticationDetails, authenticationDetail{
				AuthenticationMethod: "Mobile app notification", AuthenticationMethodDetail: "",
				AuthenticationStepDateTime: FormatTime(at), AuthenticationStepRequirement: "Multifactor authentication",
				AuthenticationStepResultDetail: "MFA completed in Azure AD", Succeeded: true,
			})
		}
		return b
	}
	// Non-interactive: a client redeeming a refresh token or session on the user's behalf.
	b.IsInteractive = false
	b.ClientAppUsed = "Mobile Apps and Desktop clients"
	b.AuthenticationMethodsUsed = []string{}
	b.AuthenticationDetails = []authenticationDetail{{
		AuthenticationMethod: "Previously satisfied", AuthenticationStepDateTime: FormatTime(at),
		AuthenticationStepRequirement: "Primary authentication", AuthenticationStepResultDetail: "First factor requirement satisfied by claim in the token",
		Succeeded: true,
	}}
	if (h>>12)%3 == 0 {
		b.IncomingTokenType = "primaryRefreshToken"
	}
	if base.Status.ErrorCode != 0 { // re-draw the failure among the ones refresh tokens meet
		f := nonInteractiveFailures[(h>>40)%uint64(len(nonInteractiveFailures))]
		b.Status = signInStatus{ErrorCode: f.code, FailureReason: &f.reason}
		b.ConditionalAccessStatus = "notApplied"
		b.AuthenticationDetails[0].Succeeded = false
		for k := range b.AppliedConditionalAccessPolicies {
			b.AppliedConditionalAccessPolicies[k].Result = "notApplied"
		}
	}
	return b
}

// buildWorkloadSignIn is a service principal's or managed identity's own sign-in: no user, no device.
func buildWorkloadSignIn(s *stream, i int64, at time.Time, h uint64) betaSignIn {
	td := s.tenant
	mi := s.def.eventType == "managedIdentity"
	pool := td.servicePrincipals()
	if mi {
		pool = td.managedIdentities()
	}
	sp := pool[h%uint64(len(pool))]
	res := workloadResources[(h>>8)%uint64(len(workloadResources))]
	loc := places[(h>>16)%uint64(len(places))]
	b := betaSignIn{
		signIn: signIn{
			ID:                               guid(s.seed, uint64(i)),
			CreatedDateTime:                  FormatTime(at),
			AppID:                            sp.appID,
			AppDisplayName:                   sp.name,
			IPAddress:                        fmt.Sprintf("%d.%d.%d.%d", []int{20, 40, 52, 104}[(h>>24)%4], (h>>32)%256, (h>>40)%256, 1+(h>>48)%254),
			CorrelationID:                    guid(s.seed^0xc0, uint64(i)),
			ConditionalAccessStatus:          "notApplied",
			RiskDetail:                       "none",
			RiskLevelAggregated:              "none",
			RiskLevelDuringSignIn:            "none",
			RiskState:                        "none",
			RiskEventTypes:                   []string{},
			RiskEventTypesV2:                 []string{},
			ResourceDisplayName:              res.name,
			ResourceID:                       res.id,
			DeviceDetail:                     deviceDetail{},
			Location:                         signInLocation{City: loc.city, State: loc.state, CountryOrRegion: loc.country, GeoCoordinates: geoCoordinates{Latitude: loc.lat, Longitude: loc.lon}},
			AppliedConditionalAccessPolicies: []appliedCAPolicy{},
		},
		SignInEventTypes:                []string{s.def.eventType},
		AuthenticationRequirement:       "singleFactorAuthentication",
		AuthenticationProtocol:          "none",
		AuthenticationMethodsUsed:       []string{},
		AuthenticationDetails:           []authenticationDetail{},
		AuthenticationProcessingDetails: []keyValue{},
		CrossTenantAccessType:           "none",
		IncomingTokenType:               "none",
		TokenIssuerType:                 "AzureAD",
		ResourceTenantID:                td.cfg.ID,
		ResourceServicePrincipalID:      guid(td.seed^0x7e5, (h>>8)%uint64(len(workloadResources))),
		ServicePrincipalID:              sp.objectID,
		ServicePrincipalName:            sp.name,
		ManagedServiceIdentity:          managedServiceIdentity{MsiType: "none"},
		UniqueTokenIdentifier:           tokenIdentifier(s.seed, i),
		OriginalRequestID:               guid(s.seed^0x0e1, uint64(i)),
		ProcessingTimeInMilliseconds:    int(5 + (h>>8)%120),
		NetworkLocationDetails:          []networkLocationDetail{},
	}
	if mi {
		// Managed identities sign in from inside Azure: no client IP, no credential to speak of.
		b.IPAddress = ""
		b.Location = signInLocation{}
		b.ClientCredentialType = "managedIdentity"
		b.ManagedServiceIdentity = managedServiceIdentity{MsiType: sp.msiType, AssociatedResourceID: strPtr(sp.resourceID)}
		return b
	}
	b.ClientCredentialType = spCredentialTypes[(h>>56)%uint64(len(spCredentialTypes))]
	switch b.ClientCredentialType {
	case "clientSecret":
		b.ServicePrincipalCredentialKeyID = strPtr(guid(td.seed^0x6e7, h%7))
	case "certificate", "clientAssertion":
		b.ServicePrincipalCredentialKeyID = strPtr(guid(td.seed^0x6e7, h%7))
		b.ServicePrincipalCredentialThumbprint = strPtr(strings.ToUpper(fmt.Sprintf("%016x%016x%08x", mix(td.seed, h%7), mix(td.seed, h%7+1), uint32(h))))
	case "federatedIdentityCredential":
		b.FederatedCredentialID = strPtr(guid(td.seed^0xfed, h%3))
	}
	if (h>>60)%8 == 0 { // ~12 % failures: a rotated secret, an expired one, a bad assertion
		f := servicePrincipalFailures[(h>>44)%uint64(len(servicePrincipalFailures))]
		b.Status = signInStatus{ErrorCode: f.code, FailureReason: &f.reason}
	}
	return b
}

// tokenIdentifier mimics uniqueTokenIdentifier: 16 random bytes, base64url.
func tokenIdentifier(seed uint64, i int64) string {
	var raw [16]byte
	a, b := mix(seed^0x701, uint64(i)), mix(seed^0x702, uint64(i))
	for k := range 8 {
		raw[k] = byte(a >> (8 * k))
		raw[8+k] = byte(b >> (8 * k))
	}
	return base64.RawURLEncoding.EncodeToString(raw[:])
}
