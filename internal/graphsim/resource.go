package graphsim

import (
	"net/http"
	"strings"
)

// graphResources are the identifiers of Microsoft Graph in each cloud's Entra ID: the resource a token
// is requested for (scope "<resource>/.default") and the audience Graph accepts
// (learn.microsoft.com/graph/deployments; GRAPH.md "Token audience"). The simulator keeps its own
// table, read from the docs independently of the client's, so a wrong entry there shows in tests.
var graphResources = map[string]string{
	"public":   "https://graph.microsoft.com",
	"usgov":    "https://graph.microsoft.us",
	"usgovdod": "https://dod-graph.microsoft.us",
	"china":    "https://microsoftgraph.chinacloudapi.cn",
}

// graphAppID is Microsoft Graph's application id, the same in every cloud; Entra ID accepts it in place
// of the resource URL.
const graphAppID = "00000003-0000-0000-c000-000000000000"

// GraphResource is the Graph resource of the cloud the simulator stands in for (Config.Cloud).
func (s *Server) GraphResource() string { return graphResources[s.cfg.Cloud] }

// isGraphResource reports whether resource (from a scope or an audience) names this cloud's Graph.
// Entra ID knows no other resource here: not the simulator's own URL, not another cloud's Graph.
func (s *Server) isGraphResource(resource string) bool {
	resource = strings.TrimRight(resource, "/")
	return strings.EqualFold(resource, s.GraphResource()) || strings.EqualFold(resource, graphAppID)
}

// unknownResource is Entra ID's answer to a token request for a resource it does not know (AADSTS500011).
func unknownResource(resource string, td *tenantData) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: "invalid_resource", aadsts: 500011, message: "The resource principal named " + resource +
		" was not found in the tenant named " + td.cfg.ID + ". This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."}
}
