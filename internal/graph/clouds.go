// Package graph is otelcol-o365's Microsoft Graph client: token acquisition through azidentity, paged
// GET requests within Graph's documented request budgets, Retry-After and backoff handling, Graph error
// classification, and decoding of collection pages straight into pdata.
package graph

import (
	"strings"
)

// Cloud is a Microsoft cloud: where tokens come from, where Graph lives, and the resource its tokens are
// issued for. Tokens do not cross clouds.
type Cloud struct {
	AuthorityHost string
	GraphEndpoint string
	// GraphResource is the identifier of Graph in the cloud's Entra ID, the audience of its tokens. It
	// stays the same whatever URL reaches Graph (a proxy, a private endpoint, a simulator).
	GraphResource string
	// ManagementEndpoint is the Office 365 Management Activity API's host for the cloud, and
	// ManagementResource the audience of its tokens (learn.microsoft.com/office/office-365-management-api/
	// office-365-management-activity-api-reference, "Activity API operations"). GCC tenants live in the
	// public cloud's Entra ID but use manage-gcc.office.com: `management_endpoint` selects it. Microsoft
	// documents no host for China (MicrosoftDocs/office-365-management-api#249): none is assumed.
	ManagementEndpoint string
	ManagementResource string
}

// Clouds are the national clouds Graph is deployed in (GRAPH.md "Authentication";
// learn.microsoft.com/graph/deployments: a scope naming Graph must use the cloud's Graph domain).
var Clouds = map[string]Cloud{
	"public": {AuthorityHost: "https://login.microsoftonline.com/", GraphEndpoint: "https://graph.microsoft.com", GraphResource: "https://graph.microsoft.com",
		ManagementEndpoint: "https://manage.office.com", ManagementResource: "https://manage.office.com"},
	"usgov": {AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://graph.microsoft.us", GraphResource: "https://graph.microsoft.us",
		ManagementEndpoint: "https://manage.office365.us", ManagementResource: "https://manage.office365.us"},
	"usgovdod": {AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://dod-graph.microsoft.us", GraphResource: "https://dod-graph.microsoft.us",
		ManagementEndpoint: "https://manage.protection.apps.mil", ManagementResource: "https://manage.protection.apps.mil"},
	"china": {AuthorityHost: "https://login.chinacloudapi.cn/", GraphEndpoint: "https://microsoftgraph.chinacloudapi.cn", GraphResource: "https://microsoftgraph.chinacloudapi.cn"},
}

// Scope is the client-credentials scope for a resource: its identifier plus "/.default".
func Scope(resource string) string {
	return strings.TrimRight(resource, "/") + "/.default"
}

// isKnownAuthority reports whether host is one of Microsoft's own login hosts, for which MSAL's
// instance discovery works; any other host (a simulator, a private cloud) must skip it.
func isKnownAuthority(host string) bool {
	for _, c := range Clouds {
		if strings.TrimRight(c.AuthorityHost, "/") == strings.TrimRight(host, "/") {
			return true
		}
	}
	return false
}
