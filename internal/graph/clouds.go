// Package graph is otelcol-o365's Microsoft Graph client: token acquisition through azidentity, paged
// GET requests within Graph's documented request budgets, Retry-After and backoff handling, Graph error
// classification, and decoding of collection pages straight into pdata.
package graph

import (
	"net/url"
	"strings"
)

// Cloud is a Microsoft cloud: where tokens come from and where Graph lives. Tokens do not cross clouds.
type Cloud struct {
	AuthorityHost string
	GraphEndpoint string
}

// Clouds are the national clouds Graph is deployed in (GRAPH.md "Authentication").
var Clouds = map[string]Cloud{
	"public":   {AuthorityHost: "https://login.microsoftonline.com/", GraphEndpoint: "https://graph.microsoft.com"},
	"usgov":    {AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://graph.microsoft.us"},
	"usgovdod": {AuthorityHost: "https://login.microsoftonline.us/", GraphEndpoint: "https://dod-graph.microsoft.us"},
	"china":    {AuthorityHost: "https://login.chinacloudapi.cn/", GraphEndpoint: "https://microsoftgraph.chinacloudapi.cn"},
}

// Scope is the client-credentials scope for a Graph endpoint: its root URL plus "/.default".
func Scope(graphEndpoint string) string {
	u, err := url.Parse(graphEndpoint)
	if err != nil || u.Host == "" {
		return strings.TrimRight(graphEndpoint, "/") + "/.default"
	}
	return u.Scheme + "://" + u.Host + "/.default"
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
