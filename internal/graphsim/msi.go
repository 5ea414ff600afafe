package graphsim

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// appServiceAPIVersion is the managed identity protocol version MSAL speaks to IDENTITY_ENDPOINT.
const appServiceAPIVersion = "2019-08-01"

// handleManagedIdentity serves the App Service managed identity protocol (what azidentity's
// ManagedIdentityCredential uses when IDENTITY_ENDPOINT and IDENTITY_HEADER are set):
//
//	GET /msi/token?api-version=2019-08-01&resource=<resource>[&client_id=<id>]
//	X-IDENTITY-HEADER: <IDENTITY_HEADER>
//
// and answers {"access_token","expires_on":"<unix seconds>","resource","token_type":"Bearer","client_id"}.
// Without client_id the host's system-assigned identity answers. The token carries the identity's
// tenant, client id (appid) and roles like an app's.
func (s *Server) handleManagedIdentity(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.stats.tokenRequests.Add(1)
	fail := func(status int, msg string) {
		writeJSON(w, status, map[string]any{"statusCode": status, "message": msg, "correlationId": uuid.NewString()})
	}
	if s.tokenOutage.Load() {
		fail(http.StatusServiceUnavailable, "The managed identity endpoint is temporarily unavailable.")
		return
	}
	hdr := r.Header.Get("X-IDENTITY-HEADER")
	if hdr == "" || (s.cfg.IdentityHeader != "" && hdr != s.cfg.IdentityHeader) {
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != appServiceAPIVersion {
		fail(http.StatusBadRequest, "Unsupported api-version '"+v+"'; use "+appServiceAPIVersion+".")
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		fail(http.StatusBadRequest, "The 'resource' parameter is required.")
		return
	}
	for _, sel := range []string{"object_id", "principal_id", "mi_res_id", "msi_res_id"} {
		if q.Get(sel) != "" {
			fail(http.StatusBadRequest, "The simulator selects user-assigned identities by client_id only, not by "+sel+".")
			return
		}
	}
	clientID := q.Get("client_id")
	var mi *ManagedIdentity
	for k := range s.cfg.ManagedIdentities {
		m := &s.cfg.ManagedIdentities[k]
		if (clientID == "" && m.SystemAssigned) || (clientID != "" && m.ClientID == clientID) {
			mi = m
			break
		}
	}
	if mi == nil {
		if clientID == "" {
			fail(http.StatusBadRequest, "No managed identity found: the host has no system-assigned identity.")
		} else {
			fail(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		}
		return
	}
	if !s.isGraphResource(resource) { // the endpoint relays Entra ID's refusal
		fail(http.StatusBadRequest, "AADSTS500011: "+unknownResource(resource, s.tenants[mi.TenantID]).message)
		return
	}
	tok, err := s.tokens.issue(mi.TenantID, mi.ClientID, resource, s.appRoles(mi.TenantID, mi.ClientID, mi.Roles), s.tokenGeneration(mi.TenantID), now)
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	s.stats.tokensIssued.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(now.Add(s.tokens.ttl).Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    mi.ClientID,
	})
}
