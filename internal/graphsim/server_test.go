package graphsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// credential is azidentity's client-secret credential aimed at the simulator the way the receiver aims
// it: the simulator as authority host, instance discovery off, a client that trusts its certificate.
func (e *env) credential(tenant, clientID, secret string) *azidentity.ClientSecretCredential {
	e.t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.sim.URL() + "/"},
			Transport: e.client,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	require.NoError(e.t, err)
	return cred
}

func (e *env) getToken(cred azcore.TokenCredential) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graphsimtest.Scope}})
}

func TestTLSAndOpenIDConfiguration(t *testing.T) {
	e := start(t, smallTenants(1, nil))

	// A client that does not trust the generated certificate is refused.
	_, err := http.Get(e.sim.URL() + "/" + tenant1 + "/v2.0/.well-known/openid-configuration")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")

	// The CA file graphsimtest writes is the same certificate.
	pem, err := os.ReadFile(e.sim.CAFile)
	require.NoError(t, err)
	assert.Equal(t, e.sim.CACertPEM(), pem)
	require.NoError(t, e.sim.WriteCACert(filepath.Join(t.TempDir(), "ca.pem")))

	r := e.get("/"+tenant1+"/v2.0/.well-known/openid-configuration", "")
	require.Equal(t, http.StatusOK, r.Status)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &doc))
	for _, k := range []string{"token_endpoint", "authorization_endpoint", "issuer"} {
		v, _ := doc[k].(string)
		assert.True(t, strings.HasPrefix(v, e.sim.URL()+"/"+tenant1+"/"), "%s = %q is not on the authority host", k, v)
	}
	assert.Equal(t, e.sim.URL()+"/"+tenant1+"/oauth2/v2.0/token", doc["token_endpoint"])
}

func TestAzidentityClientSecretCredential(t *testing.T) {
	e := start(t, smallTenants(2, map[string]graphsim.DatasetSpec{"signins": {Count: 3}}))
	cases := []struct {
		name, tenant, clientID, secret string
		wantTenant                     string
		wantErr                        string
	}{
		{"valid", tenant1, graphsimtest.ClientID, graphsimtest.Secret, tenant1, ""},
		{"tenant by domain name", "tenant2.onmicrosoft.com", graphsimtest.ClientID, graphsimtest.Secret, tenant2, ""},
		{"wrong secret", tenant1, graphsimtest.ClientID, "not-the-secret", "", "AADSTS7000215"},
		{"unknown tenant", graphsimtest.TenantID(99), graphsimtest.ClientID, graphsimtest.Secret, "", "AADSTS90002"},
		{"unknown client", tenant1, uuid.NewString(), graphsimtest.Secret, "", "AADSTS700016"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := e.getToken(e.credential(c.tenant, c.clientID, c.secret))
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				assert.NotContains(t, err.Error(), graphsimtest.Secret, "the secret leaks into the error")
				return
			}
			require.NoError(t, err)
			assert.True(t, tok.ExpiresOn.After(time.Now().Add(50*time.Minute)), "expires %s", tok.ExpiresOn)
			cl := claims(t, tok.Token)
			assert.Equal(t, c.wantTenant, cl["tid"])
			assert.Equal(t, c.clientID, cl["appid"])
			assert.Equal(t, "https://graph.microsoft.com", cl["aud"])
			assert.Contains(t, cl["roles"], "AuditLog.Read.All")
			p := decodePage(t, e.get(signInsPath, tok.Token))
			assert.Len(t, p.Value, 3)
		})
	}
	st := e.sim.Stats()
	assert.Equal(t, int64(2), st.TokensIssued)
	assert.GreaterOrEqual(t, st.TokenRequests, int64(len(cases)))
}

func TestRotateSecret(t *testing.T) {
	e := start(t, smallTenants(2, nil))
	before, err := e.getToken(e.credential(tenant1, graphsimtest.ClientID, graphsimtest.Secret))
	require.NoError(t, err)

	e.sim.RotateSecret(tenant1, graphsimtest.ClientID, "rotated-secret")
	_, err = e.getToken(e.credential(tenant1, graphsimtest.ClientID, graphsimtest.Secret))
	require.Error(t, err, "the old secret still works")
	assert.Contains(t, err.Error(), "AADSTS7000215")
	_, err = e.getToken(e.credential(tenant1, graphsimtest.ClientID, "rotated-secret"))
	require.NoError(t, err)
	// Another tenant's registration of the same client id keeps its secret.
	_, err = e.getToken(e.credential(tenant2, graphsimtest.ClientID, graphsimtest.Secret))
	require.NoError(t, err)
	// Rotating a secret does not revoke tokens already issued.
	assert.Equal(t, http.StatusOK, e.get(signInsPath, before.Token).Status)
}

func TestRevokeTokens(t *testing.T) {
	e := start(t, smallTenants(2, nil))
	cred := e.credential(tenant1, graphsimtest.ClientID, graphsimtest.Secret)
	tok, err := e.getToken(cred)
	require.NoError(t, err)
	other := e.token(tenant2)
	require.Equal(t, http.StatusOK, e.get(signInsPath, tok.Token).Status)

	e.sim.RevokeTokens(tenant1)
	msg := requireGraphError(t, e.get(signInsPath, tok.Token), http.StatusUnauthorized, "InvalidAuthenticationToken")
	assert.Contains(t, msg, "expired")
	// azidentity still holds the revoked token in its cache: the receiver has to get past that.
	cached, err := e.getToken(cred)
	require.NoError(t, err)
	assert.Equal(t, tok.Token, cached.Token)
	// Other tenants are not affected; new tokens work.
	assert.Equal(t, http.StatusOK, e.get(auditsPath, other).Status)
	assert.Equal(t, http.StatusOK, e.get(signInsPath, e.token(tenant1)).Status)
}

func TestUnauthenticatedRequests(t *testing.T) {
	e := start(t, smallTenants(1, nil))
	otherCloud := smallTenants(1, nil)
	otherCloud.Cloud = "china"
	other := start(t, otherCloud)
	// Same tenant and app, another cloud's signing key (and audience).
	foreign := other.tokenFor(tenant1, other.sim.GraphResource()+"/.default")
	shortCfg := smallTenants(1, nil)
	shortCfg.TokenTTL = time.Nanosecond // expired as soon as issued (JWT times are whole seconds)
	short := start(t, shortCfg)
	expired := short.token(tenant1)
	assert.LessOrEqual(t, int64(claims(t, expired)["exp"].(float64)), time.Now().Unix())

	cases := []struct {
		name          string
		sim           *env
		authorization string
		wantMessage   string
	}{
		{"no token", e, "", "Access token is empty."},
		{"not a bearer token", e, "Basic " + graphsimtest.Secret, "Access token is empty."},
		{"garbage", e, "Bearer not.a.jwt", "Invalid JWT token."},
		{"signed by another cloud", e, "Bearer " + foreign, "Invalid JWT token."},
		{"expired", short, "Bearer " + expired, "Access token has expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{}
			if c.authorization != "" {
				hdr["Authorization"] = c.authorization
			}
			r, err := c.sim.do(signInsPath, "", hdr)
			require.NoError(t, err)
			msg := requireGraphError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken")
			assert.Contains(t, msg, c.wantMessage)
		})
	}
}

func TestRolesAndLicence(t *testing.T) {
	cfg := smallTenants(2, map[string]graphsim.DatasetSpec{"signins": {Count: 2}, "directory_audits": {Count: 2}})
	cfg.Tenants[1].Unlicensed = true
	e := start(t, cfg)

	// Everything granted, licensed.
	tok := e.token(tenant1)
	assert.Len(t, decodePage(t, e.get(signInsPath, tok)).Value, 2)
	assert.Len(t, decodePage(t, e.get(auditsPath, tok)).Value, 2)

	// Unlicensed tenant: sign-ins need Entra ID P1/P2, audits do not.
	tok2 := e.token(tenant2)
	requireGraphError(t, e.get(signInsPath, tok2), http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	requireGraphError(t, e.get("/beta/auditLogs/signIns", tok2), http.StatusForbidden, "Authentication_RequestFromNonPremiumTenantOrB2CTenant")
	assert.Len(t, decodePage(t, e.get(auditsPath, tok2)).Value, 2)

	// Consent withdrawn: the roles claim of new tokens changes, and both endpoints refuse.
	e.sim.SetRoles(tenant1, graphsimtest.ClientID, []string{"Directory.Read.All"})
	reduced := e.token(tenant1)
	assert.Equal(t, []any{"Directory.Read.All"}, claims(t, reduced)["roles"])
	for _, p := range []string{signInsPath, auditsPath} {
		msg := requireGraphError(t, e.get(p, reduced), http.StatusForbidden, "Authorization_RequestDenied")
		assert.Contains(t, msg, "Insufficient privileges")
	}
	// The roles travel in the token: one issued before the change still carries them.
	assert.Equal(t, http.StatusOK, e.get(signInsPath, tok).Status)
	// Neither licence nor role is checked before the token: an unlicensed tenant without the role gets
	// the role error first.
	e.sim.SetRoles(tenant2, graphsimtest.ClientID, nil)
	requireGraphError(t, e.get(signInsPath, e.token(tenant2)), http.StatusForbidden, "Authorization_RequestDenied")
}

func TestTokenEndpoint(t *testing.T) {
	cfg := smallTenants(1, nil)
	cfg.TokenTTL = 10 * time.Minute
	e := start(t, cfg)
	scope := graphsimtest.Scope

	status, body := e.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, scope+" openid profile offline_access")
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, "Bearer", body["token_type"])
	assert.EqualValues(t, 600, body["expires_in"])
	assert.Equal(t, "https://graph.microsoft.com", claims(t, body["access_token"].(string))["aud"])

	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {graphsimtest.ClientID}, "client_secret": {graphsimtest.Secret}, "scope": {scope}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	cases := []struct {
		name       string
		form       url.Values
		outage     bool
		wantStatus int
		wantError  string
		wantCode   float64
	}{
		{"password grant", form("grant_type", "password"), false, 400, "unsupported_grant_type", 70003},
		{"no scope", form("scope", ""), false, 400, "invalid_scope", 1002012},
		{"scope without .default", form("scope", e.sim.URL()+"/AuditLog.Read.All"), false, 400, "invalid_scope", 1002012},
		{"no credential", form("client_secret", ""), false, 401, "invalid_client", 7000216},
		{"wrong secret", form("client_secret", "nope"), false, 401, "invalid_client", 7000215},
		{"unknown client", form("client_id", uuid.NewString()), false, 400, "unauthorized_client", 700016},
		{"outage", form(), true, 503, "temporarily_unavailable", 90033},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.sim.SetTokenOutage(c.outage)
			defer e.sim.SetTokenOutage(false)
			resp, err := e.client.PostForm(e.sim.URL()+"/"+tenant1+"/oauth2/v2.0/token", c.form)
			require.NoError(t, err)
			defer resp.Body.Close()
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, c.wantStatus, resp.StatusCode)
			assert.Equal(t, c.wantError, body["error"])
			assert.Equal(t, []any{c.wantCode}, body["error_codes"])
			desc, _ := body["error_description"].(string)
			assert.True(t, strings.HasPrefix(desc, "AADSTS"), desc)
			for _, k := range []string{"timestamp", "trace_id", "correlation_id", "error_uri"} {
				assert.Contains(t, body, k)
			}
			assert.NotContains(t, desc, graphsimtest.Secret)
		})
	}
	status, _ = e.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, scope)
	assert.Equal(t, http.StatusOK, status, "the outage ended")
}

func TestGraphErrorShapeAndRequestIDs(t *testing.T) {
	e := start(t, smallTenants(1, nil))
	tok := e.token(tenant1)
	cases := []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"unknown segment", "/v1.0/auditLogs/provisioning", tok, 400, "BadRequest"},
		{"unknown version", "/v2.0/auditLogs/signIns", tok, 400, "BadRequest"},
		{"bad $top", signInsPath + "?$top=0", tok, 400, "BadRequest"},
		{"bad $filter", signInsPath + "?$filter=" + url.QueryEscape("userId eq 'x'"), tok, 400, "BadRequest"},
		{"bad $skiptoken", auditsPath + "?$skiptoken=zz", tok, 400, "BadRequest"},
		{"unsupported option", auditsPath + "?$select=id", tok, 400, "BadRequest"},
		{"no token", signInsPath, "", 401, "InvalidAuthenticationToken"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		for _, crid := range []string{"", uuid.NewString()} {
			t.Run(c.name+"/client-request-id "+map[bool]string{true: "sent", false: "absent"}[crid != ""], func(t *testing.T) {
				hdr := map[string]string{}
				if crid != "" {
					hdr["client-request-id"] = crid
				}
				before := time.Now().UTC().Add(-time.Second).Truncate(time.Second)
				r, err := e.do(c.path, c.token, hdr)
				require.NoError(t, err)
				after := time.Now().UTC().Add(time.Second)
				requireGraphError(t, r, c.status, c.code)
				reqID := r.Header.Get("request-id")
				require.NoError(t, uuid.Validate(reqID), "request-id %q", reqID)
				assert.False(t, seen[reqID], "request-id %s repeated", reqID)
				seen[reqID] = true
				if crid != "" {
					assert.Equal(t, crid, r.Header.Get("client-request-id"), "the client's id is echoed")
				} else {
					assert.Equal(t, reqID, r.Header.Get("client-request-id"), "without one, Graph repeats request-id")
				}
				var body struct {
					Error struct {
						InnerError struct {
							Date string `json:"date"`
						} `json:"innerError"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal(r.Body, &body))
				date, err := time.Parse("2006-01-02T15:04:05", body.Error.InnerError.Date)
				require.NoError(t, err)
				assert.False(t, date.Before(before) || date.After(after), "date %s is not the time of the request (UTC)", date)
			})
		}
	}
	// Successful responses carry the ids too.
	r, err := e.do(signInsPath, tok, map[string]string{"client-request-id": "abc-123"})
	require.NoError(t, err)
	assert.Equal(t, "abc-123", r.Header.Get("client-request-id"))
	assert.NoError(t, uuid.Validate(r.Header.Get("request-id")))
	// The log records what the client sent, not the echo.
	log := e.sim.Requests()
	require.NotEmpty(t, log)
	assert.Equal(t, "abc-123", log[len(log)-1].ClientRequestID)
	assert.Empty(t, log[0].ClientRequestID)
}

func TestGraphPagingOverHTTP(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{
		"signins":          {Count: 47, Span: time.Hour, PerTimestamp: 3},
		"directory_audits": {Count: 23, Span: time.Hour, PerTimestamp: 2},
	}
	for _, nextLinkFirst := range []bool{false, true} {
		cfg := smallTenants(2, spec)
		cfg.NextLinkFirst = nextLinkFirst
		e := start(t, cfg)
		tok := e.token(tenant1)
		from, to := e.sim.Anchor().Add(-50*time.Minute), e.sim.Anchor()
		cases := []struct {
			name, path, dataset, field string
			top                        int
			orderby                    string
			reverse                    bool
		}{
			{"signIns asc", signInsPath, "signins", "createdDateTime", 10, "createdDateTime asc", false},
			{"signIns default order (newest first)", signInsPath, "signins", "createdDateTime", 4, "", true},
			{"beta signIns desc", "/beta/auditLogs/signIns", "signins", "createdDateTime", 6, "createdDateTime desc", true},
			{"directoryAudits, path in lower case", "/v1.0/auditlogs/directoryaudits", "directory_audits", "activityDateTime", 5, "activityDateTime", false},
		}
		for _, c := range cases {
			t.Run(c.name+map[bool]string{true: ", nextLink first"}[nextLinkFirst], func(t *testing.T) {
				q := url.Values{
					"$filter": {c.field + " ge " + graphsim.FormatTime(from) + " and " + c.field + " le " + graphsim.FormatTime(to)},
					"$top":    {strconv.Itoa(c.top)},
				}
				if c.orderby != "" {
					q.Set("$orderby", c.orderby)
				}
				ids, pages := e.listAll(c.path+"?"+q.Encode(), tok)
				want := e.sim.IDs(tenant1, c.dataset, from, to)
				require.NotEmpty(t, want)
				if c.reverse {
					for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
						want[i], want[j] = want[j], want[i]
					}
				}
				assert.Equal(t, want, ids)
				assert.Len(t, pages, (len(want)+c.top-1)/c.top)
				version := strings.Split(c.path, "/")[1]
				for i, p := range pages {
					assert.LessOrEqual(t, len(p.Value), c.top)
					assert.True(t, strings.HasPrefix(p.Context, e.sim.URL()+"/"+version+"/$metadata#auditLogs/"), p.Context)
					if i == len(pages)-1 {
						assert.Empty(t, p.NextLink)
						continue
					}
					next, err := url.Parse(p.NextLink)
					require.NoError(t, err)
					assert.Equal(t, e.sim.URL(), next.Scheme+"://"+next.Host, "nextLink is absolute, on the simulator")
					for _, k := range []string{"$filter", "$top", "$orderby"} {
						assert.Equal(t, q.Get(k), next.Query().Get(k), "nextLink keeps %s", k)
					}
					assert.NotEmpty(t, next.Query().Get("$skiptoken"))
				}
				// Raw layout: nextLink before or after value, as configured.
				r := e.get(c.path+"?"+q.Encode(), tok)
				iNext, iValue := bytes.Index(r.Body, []byte(`"@odata.nextLink"`)), bytes.Index(r.Body, []byte(`"value"`))
				require.Positive(t, iNext)
				assert.Equal(t, nextLinkFirst, iNext < iValue)
				assert.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"))
			})
		}
		// Tenants are isolated: tenant 2's token lists tenant 2's records.
		ids2, _ := e.listAll(signInsPath+"?$top=1000", e.token(tenant2))
		assert.ElementsMatch(t, e.sim.IDs(tenant2, "signins", from.Add(-time.Hour), to), ids2)
		assert.NotContains(t, ids2, e.sim.IDs(tenant1, "signins", from.Add(-time.Hour), to)[0])
	}
}

func TestInjectOverHTTP(t *testing.T) {
	e := start(t, smallTenants(1, map[string]graphsim.DatasetSpec{"signins": {Count: 5, Span: time.Hour}}))
	tok := e.token(tenant1)
	at := e.sim.Anchor().Add(-30 * time.Minute)
	require.NoError(t, e.sim.Inject(tenant1, "signins", time.Time{}, map[string]any{
		"id": "injected-1", "createdDateTime": graphsim.FormatTime(at), "userDisplayName": "Injected",
	}))
	require.NoError(t, e.sim.Inject(tenant1, "signins", time.Now().Add(time.Hour), map[string]any{
		"id": "injected-later", "createdDateTime": graphsim.FormatTime(at),
	}))
	ids, _ := e.listAll(signInsPath, tok)
	assert.Contains(t, ids, "injected-1")
	assert.NotContains(t, ids, "injected-later", "visible only from visibleAt")
	assert.Len(t, ids, 6)
	assert.Contains(t, e.sim.IDs(tenant1, "signins", at, at), "injected-later")

	for _, bad := range []struct {
		tenant, dataset string
		obj             map[string]any
	}{
		{graphsimtest.TenantID(9), "signins", map[string]any{"id": "x", "createdDateTime": graphsim.FormatTime(at)}},
		{tenant1, "riskDetections", map[string]any{"id": "x", "createdDateTime": graphsim.FormatTime(at)}},
		{tenant1, "signins", map[string]any{"createdDateTime": graphsim.FormatTime(at)}},
		{tenant1, "signins", map[string]any{"id": "x", "activityDateTime": graphsim.FormatTime(at)}},
		{tenant1, "signins", map[string]any{"id": "x", "createdDateTime": "yesterday"}},
	} {
		assert.Error(t, e.sim.Inject(bad.tenant, bad.dataset, time.Time{}, bad.obj), "%v", bad)
	}
	assert.Nil(t, e.sim.IDs(graphsimtest.TenantID(9), "signins", at, at))
}

func TestConfigValidationAndLoading(t *testing.T) {
	valid := graphsimtest.Tenant(1, nil)
	cases := []struct {
		name    string
		cfg     graphsim.Config
		wantErr string
	}{
		{"missing tenant id", graphsim.Config{Tenants: []graphsim.Tenant{{Name: "x"}}}, "tenants[0].id is required"},
		{"duplicate tenant", graphsim.Config{Tenants: []graphsim.Tenant{valid, valid}}, "is duplicated"},
		{"unknown dataset", graphsim.Config{Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"alerts": {}})}}, `unknown dataset "alerts"`},
		{"fault kind", graphsim.Config{Faults: []graphsim.Fault{{Kind: "explode"}}}, "not one of status, truncate, reset"},
		{"fault status", graphsim.Config{Faults: []graphsim.Fault{{Kind: "status", Status: 302}}}, "must be an HTTP error status"},
		{"bad address", graphsim.Config{Addr: "127.0.0.1:notaport"}, "notaport"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := graphsim.Start(c.cfg)
			if err == nil {
				_ = s.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}

	cfg, err := graphsim.LoadConfig(filepath.Join("cmd", "graphsim", "demo.yaml"))
	require.NoError(t, err)
	require.Len(t, cfg.Tenants, 2)
	assert.Equal(t, 5000, cfg.Tenants[0].Datasets["signins"].Count)
	assert.True(t, cfg.RateLimits.Enforce)
	cfg.Addr = "" // any free port
	e := start(t, cfg)
	status, body := e.rawToken(cfg.Tenants[1].ID, cfg.Tenants[1].Apps[0].ClientID, cfg.Tenants[1].Apps[0].Secret, graphsimtest.Scope)
	require.Equal(t, http.StatusOK, status, "%v", body)

	_, err = graphsim.LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Error(t, err)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("tenants: {not: a list}\n"), 0o600))
	_, err = graphsim.LoadConfig(bad)
	assert.ErrorContains(t, err, "bad.yaml")
}

func TestStartLeavesTheConfigAlone(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"signins": {Count: 5}, "directory_audits": {Count: 2, Span: time.Minute}}
	want := map[string]graphsim.DatasetSpec{"signins": {Count: 5}, "directory_audits": {Count: 2, Span: time.Minute}}
	cfg := smallTenants(2, spec) // both tenants share the one map
	type started struct {
		s   *graphsim.Server
		err error
	}
	done := make(chan started, 2)
	for range 2 {
		go func() {
			s, err := graphsim.Start(cfg)
			done <- started{s, err}
		}()
	}
	var sims []*graphsim.Server
	for range 2 {
		r := <-done
		require.NoError(t, r.err)
		t.Cleanup(func() { _ = r.s.Close() })
		sims = append(sims, r.s)
	}
	assert.Equal(t, want, spec, "Start filled its defaults into the caller's map")
	assert.Equal(t, want, cfg.Tenants[1].Datasets)
	// The defaults still apply inside: 5 records over the default hour.
	for _, s := range sims {
		ids := s.IDs(tenant1, "signins", s.Anchor().Add(-time.Hour), s.Anchor())
		assert.Len(t, ids, 5)
	}
}

func TestIssuedTokens(t *testing.T) {
	e := start(t, smallTenants(2, withData))
	assert.Empty(t, e.sim.IssuedTokens())
	a, b := e.token(tenant1), e.token(tenant2)
	assert.Equal(t, []string{a, b}, e.sim.IssuedTokens(), "every token issued, in order")
}
