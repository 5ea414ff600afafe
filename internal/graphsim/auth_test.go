package graphsim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

const (
	certClientID = "cccccccc-0000-4000-8000-00000000000c"
	fedClientID  = "ffffffff-0000-4000-8000-00000000000f"
)

// capture is a transport that records the token requests' forms (to replay MSAL's assertions).
type capture struct {
	inner *http.Client
	mu    sync.Mutex
	forms []url.Values
}

func (c *capture) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			c.mu.Lock()
			c.forms = append(c.forms, form)
			c.mu.Unlock()
		}
	}
	return c.inner.Do(req)
}

func (e *env) clientOptions(transport policy.Transporter) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.sim.URL() + "/"},
		Transport: transport,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

func (e *env) certCredential(t *testing.T, cert *x509.Certificate, key crypto.PrivateKey, transport policy.Transporter) *azidentity.ClientCertificateCredential {
	t.Helper()
	cred, err := azidentity.NewClientCertificateCredential(tenant1, certClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: e.clientOptions(transport), DisableInstanceDiscovery: true})
	require.NoError(t, err)
	return cred
}

// postAssertion runs the client-credentials grant with a client assertion by hand.
func (e *env) postAssertion(t *testing.T, tenant, clientID, assertionType, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {graphsimtest.Scope},
		"client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	resp, err := e.client.PostForm(e.sim.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

func thumb(raw []byte, sha256Thumb bool) string {
	if sha256Thumb {
		s := sha256.Sum256(raw)
		return base64.RawURLEncoding.EncodeToString(s[:])
	}
	s := sha1.Sum(raw) //nolint:gosec // x5t
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func TestCertificateCredential(t *testing.T) {
	registered := graphsimtest.NewClientCertificate(t, "collector")
	foreign := graphsimtest.NewClientCertificate(t, "someone else")
	expired := graphsimtest.NewExpiredClientCertificate(t, "expired")
	cfg := smallTenants(1, map[string]graphsim.DatasetSpec{"signins": {Count: 3}})
	cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps,
		graphsim.App{ClientID: certClientID, Certificate: registered.CertPEM, Roles: []string{"AuditLog.Read.All"}},
		graphsim.App{ClientID: "eeeeeeee-0000-4000-8000-00000000000e", Certificate: expired.CertPEM, Roles: []string{"AuditLog.Read.All"}},
	)
	e := start(t, cfg)

	// azidentity's real MSAL assertion (PS256, x5t#S256) is accepted; the token works on Graph.
	captured := &capture{inner: e.client}
	tok, err := e.getToken(e.certCredential(t, registered.Cert, registered.Key, captured))
	require.NoError(t, err)
	cl := claims(t, tok.Token)
	assert.Equal(t, tenant1, cl["tid"])
	assert.Equal(t, certClientID, cl["appid"])
	assert.Equal(t, []any{"AuditLog.Read.All"}, cl["roles"])
	assert.Len(t, decodePage(t, e.get(signInsPath, tok.Token)).Value, 3)

	var msal string
	for _, f := range captured.forms {
		if a := f.Get("client_assertion"); a != "" {
			msal = a
			assert.Equal(t, jwtBearer, f.Get("client_assertion_type"))
			assert.Empty(t, f.Get("client_secret"))
		}
	}
	require.NotEmpty(t, msal, "MSAL sent a client assertion")
	hdr, _, err := jwt.NewParser().ParseUnverified(msal, jwt.MapClaims{})
	require.NoError(t, err)
	assert.Equal(t, "PS256", hdr.Header["alg"])
	assert.Contains(t, hdr.Header, "x5t#S256")

	// The same assertion replayed as is passes; tampered with, it fails the signature check.
	status, body := e.postAssertion(t, tenant1, certClientID, jwtBearer, msal)
	require.Equal(t, http.StatusOK, status, "%v", body)
	parts := strings.Split(msal, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"jti":"`), []byte(`"jti":"x`), 1)) + "." + parts[2]
	status, body = e.postAssertion(t, tenant1, certClientID, jwtBearer, tampered)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, []any{float64(700027)}, body["error_codes"], "%v", body)
	assert.Contains(t, body["error_description"], "signature validation")

	// azidentity with a certificate the app does not have: AADSTS700027, surfaced by azidentity.
	_, err = e.getToken(e.certCredential(t, foreign.Cert, foreign.Key, e.client))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "AADSTS700027")

	// Hand-made assertions, one defect each.
	endpoint := e.sim.URL() + "/" + tenant1 + "/oauth2/v2.0/token"
	good := func() jwt.MapClaims {
		now := time.Now()
		return jwt.MapClaims{"aud": endpoint, "iss": certClientID, "sub": certClientID, "jti": uuid.NewString(),
			"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	}
	sign := func(method jwt.SigningMethod, header map[string]any, c jwt.MapClaims, key any) string {
		tk := jwt.NewWithClaims(method, c)
		for k, v := range header {
			tk.Header[k] = v
		}
		s, err := tk.SignedString(key)
		require.NoError(t, err)
		return s
	}
	ps256 := map[string]any{"x5t#S256": thumb(registered.Cert.Raw, true)}
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	stdThumb := sha256.Sum256(registered.Cert.Raw)
	cases := []struct {
		name       string
		clientID   string
		assertion  string
		wantStatus int
		wantCode   int // AADSTS
	}{
		{"PS256 with x5t#S256", certClientID, sign(jwt.SigningMethodPS256, ps256, good(), registered.Key), 200, 0},
		{"x5t#S256 in standard base64, as MSAL writes it", certClientID, sign(jwt.SigningMethodPS256,
			map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(stdThumb[:])}, good(), registered.Key), 200, 0},
		{"RS256 with x5t", certClientID, sign(jwt.SigningMethodRS256, map[string]any{"x5t": thumb(registered.Cert.Raw, false)}, good(), registered.Key), 200, 0},
		{"aud: the v1 endpoint", certClientID, sign(jwt.SigningMethodPS256, ps256, with("aud", e.sim.URL()+"/"+tenant1+"/oauth2/token"), registered.Key), 200, 0},
		{"aud: the endpoint by domain", certClientID, sign(jwt.SigningMethodPS256, ps256, with("aud", e.sim.URL()+"/tenant1.onmicrosoft.com/oauth2/v2.0/token"), registered.Key), 200, 0},
		{"aud as an array", certClientID, sign(jwt.SigningMethodPS256, ps256, with("aud", []string{endpoint}), registered.Key), 200, 0},
		{"no nbf, iat instead", certClientID, sign(jwt.SigningMethodPS256, ps256, with("iat", time.Now().Unix()), registered.Key), 200, 0},
		{"signed by a foreign key, registered thumbprint", certClientID, sign(jwt.SigningMethodPS256, ps256, good(), foreign.Key), 401, 700027},
		{"foreign thumbprint", certClientID, sign(jwt.SigningMethodPS256, map[string]any{"x5t#S256": thumb(foreign.Cert.Raw, true)}, good(), foreign.Key), 401, 700027},
		{"x5t of the SHA-256 kind", certClientID, sign(jwt.SigningMethodRS256, map[string]any{"x5t": thumb(registered.Cert.Raw, true)}, good(), registered.Key), 401, 700027},
		{"no thumbprint", certClientID, sign(jwt.SigningMethodPS256, nil, good(), registered.Key), 401, 700027},
		{"expired certificate", "eeeeeeee-0000-4000-8000-00000000000e", sign(jwt.SigningMethodPS256, map[string]any{"x5t#S256": thumb(expired.Cert.Raw, true)},
			func() jwt.MapClaims {
				c := good()
				c["iss"], c["sub"] = "eeeeeeee-0000-4000-8000-00000000000e", "eeeeeeee-0000-4000-8000-00000000000e"
				return c
			}(), expired.Key), 401, 700027},
		{"app without a certificate", graphsimtest.ClientID, sign(jwt.SigningMethodPS256, ps256,
			func() jwt.MapClaims {
				c := good()
				c["iss"], c["sub"] = graphsimtest.ClientID, graphsimtest.ClientID
				return c
			}(), registered.Key), 401, 700027},
		{"aud: another authority", certClientID, sign(jwt.SigningMethodPS256, ps256, with("aud", "https://login.microsoftonline.com/"+tenant1+"/oauth2/v2.0/token"), registered.Key), 401, 50027},
		{"aud: another tenant", certClientID, sign(jwt.SigningMethodPS256, ps256, with("aud", e.sim.URL()+"/"+tenant2+"/oauth2/v2.0/token"), registered.Key), 401, 50027},
		{"iss is not the client", certClientID, sign(jwt.SigningMethodPS256, ps256, with("iss", graphsimtest.ClientID), registered.Key), 401, 700021},
		{"sub is not iss", certClientID, sign(jwt.SigningMethodPS256, ps256, with("sub", graphsimtest.ClientID), registered.Key), 401, 50048},
		{"no jti", certClientID, sign(jwt.SigningMethodPS256, ps256, with("jti", nil), registered.Key), 401, 50027},
		{"no exp", certClientID, sign(jwt.SigningMethodPS256, ps256, with("exp", nil), registered.Key), 401, 50027},
		{"expired assertion", certClientID, sign(jwt.SigningMethodPS256, ps256, func() jwt.MapClaims {
			c := good()
			c["nbf"], c["exp"] = time.Now().Add(-20*time.Minute).Unix(), time.Now().Add(-11*time.Minute).Unix()
			return c
		}(), registered.Key), 401, 700024},
		{"not yet valid", certClientID, sign(jwt.SigningMethodPS256, ps256, func() jwt.MapClaims {
			c := good()
			c["nbf"], c["exp"] = time.Now().Add(time.Hour).Unix(), time.Now().Add(time.Hour+5*time.Minute).Unix()
			return c
		}(), registered.Key), 401, 700024},
		{"lives longer than 10 minutes", certClientID, sign(jwt.SigningMethodPS256, ps256, with("exp", time.Now().Add(time.Hour).Unix()), registered.Key), 401, 700024},
		{"HS256", certClientID, sign(jwt.SigningMethodHS256, ps256, good(), []byte("0123456789abcdef0123456789abcdef")), 400, 50027},
		{"not a JWT", certClientID, "not-a-jwt", 400, 50027},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.postAssertion(t, tenant1, c.clientID, jwtBearer, c.assertion)
			require.Equal(t, c.wantStatus, status, "%v", body)
			if c.wantStatus == http.StatusOK {
				assert.NotEmpty(t, body["access_token"])
				return
			}
			assert.Equal(t, []any{float64(c.wantCode)}, body["error_codes"], "%v", body)
			assert.Equal(t, map[int]string{400: "invalid_request", 401: "invalid_client"}[c.wantStatus], body["error"])
			desc := body["error_description"].(string)
			assert.True(t, strings.HasPrefix(desc, "AADSTS"+strconv.Itoa(c.wantCode)+":"), desc)
			if want := map[string]string{
				"expired certificate": "The key used is expired", "signed by a foreign key, registered thumbprint": "signature validation",
				"foreign thumbprint": "not registered", "lives longer than 10 minutes": "valid time range",
			}[c.name]; want != "" {
				assert.Contains(t, desc, want)
			}
		})
	}

	// Malformed requests.
	valid := sign(jwt.SigningMethodPS256, ps256, good(), registered.Key)
	status, body = e.postAssertion(t, tenant1, certClientID, "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", valid)
	assert.Equal(t, http.StatusBadRequest, status, "%v", body)
	status, body = e.postAssertion(t, tenant1, certClientID, jwtBearer, "")
	assert.Equal(t, http.StatusBadRequest, status, "%v", body)
	assert.Equal(t, []any{float64(900144)}, body["error_codes"])
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {certClientID}, "scope": {graphsimtest.Scope},
		"client_assertion_type": {jwtBearer}, "client_assertion": {valid}, "client_secret": {"x"}}
	resp, err := e.client.PostForm(e.sim.URL()+"/"+tenant1+"/oauth2/v2.0/token", form)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a secret and an assertion together")
	// A certificate-only app has no secret to match.
	status, _ = e.rawToken(tenant1, certClientID, "", graphsimtest.Scope)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _ = e.rawToken(tenant1, certClientID, graphsimtest.Secret, graphsimtest.Scope)
	assert.Equal(t, http.StatusUnauthorized, status)
}

func TestWorkloadIdentityCredential(t *testing.T) {
	federated := "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwczovL29pZGMuZXhhbXBsZSIsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpvdGVsOmNvbGxlY3RvciJ9.c2lnbmF0dXJl"
	cfg := smallTenants(1, map[string]graphsim.DatasetSpec{"directory_audits": {Count: 2}})
	cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps, graphsim.App{ClientID: fedClientID, FederatedToken: federated, Roles: []string{"AuditLog.Read.All"}})
	e := start(t, cfg)
	dir := t.TempDir()
	credential := func(token string) *azidentity.WorkloadIdentityCredential {
		path := filepath.Join(dir, uuid.NewString())
		require.NoError(t, os.WriteFile(path, []byte(token), 0o600))
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: e.clientOptions(e.client), ClientID: fedClientID, TenantID: tenant1, TokenFilePath: path, DisableInstanceDiscovery: true,
		})
		require.NoError(t, err)
		return cred
	}
	tok, err := e.getToken(credential(federated))
	require.NoError(t, err)
	assert.Equal(t, fedClientID, claims(t, tok.Token)["appid"])
	assert.Len(t, decodePage(t, e.get(auditsPath, tok.Token)).Value, 2)

	for name, token := range map[string]string{
		"another service account's token": strings.Replace(federated, "c2lnbmF0dXJl", "b3RoZXI", 1),
		"not a JWT":                       "garbage",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.getToken(credential(token))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "AADSTS70021")
		})
	}
	// The federated token is no secret.
	status, _ := e.rawToken(tenant1, fedClientID, federated, graphsimtest.Scope)
	assert.Equal(t, http.StatusUnauthorized, status)
}

func TestManagedIdentityCredential(t *testing.T) {
	const (
		systemID = "5a5a5a5a-0000-4000-8000-00000000005a"
		userID   = "5b5b5b5b-0000-4000-8000-00000000005b"
		header   = "identity-header-secret"
	)
	cfg := smallTenants(2, map[string]graphsim.DatasetSpec{"signins": {Count: 2}})
	cfg.IdentityHeader = header
	cfg.ManagedIdentities = []graphsim.ManagedIdentity{
		{ClientID: systemID, TenantID: tenant1, Roles: []string{"AuditLog.Read.All"}, SystemAssigned: true},
		{ClientID: userID, TenantID: tenant2, Roles: []string{"Policy.Read.All"}},
	}
	e := start(t, cfg)
	t.Setenv("IDENTITY_ENDPOINT", e.sim.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", header)

	cases := []struct {
		name                  string
		id                    azidentity.ManagedIDKind
		wantTenant, wantApp   string
		wantRoles             []any
		wantSignInsStatus     int
		wantErrorContains     string
		wantCredentialFailure bool
	}{
		{"system-assigned", nil, tenant1, systemID, []any{"AuditLog.Read.All"}, http.StatusOK, "", false},
		{"user-assigned by client id", azidentity.ClientID(userID), tenant2, userID, []any{"Policy.Read.All"}, http.StatusForbidden, "", false},
		{"unknown client id", azidentity.ClientID(uuid.NewString()), "", "", nil, 0, "No User Assigned", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ClientOptions: azcore.ClientOptions{Transport: e.client, Retry: policy.RetryOptions{MaxRetries: -1}}, ID: c.id})
			require.NoError(t, err)
			tok, err := e.getToken(cred)
			if c.wantCredentialFailure {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErrorContains)
				return
			}
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().Add(3599*time.Second), tok.ExpiresOn, time.Minute)
			cl := claims(t, tok.Token)
			assert.Equal(t, c.wantTenant, cl["tid"])
			assert.Equal(t, c.wantApp, cl["appid"])
			assert.Equal(t, c.wantRoles, cl["roles"])
			assert.Equal(t, "https://graph.microsoft.com", cl["aud"])
			assert.Equal(t, c.wantSignInsStatus, e.get(signInsPath, tok.Token).Status)
		})
	}

	// The protocol by hand.
	get := func(query, hdr string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodGet, e.sim.ManagedIdentityEndpoint()+"?"+query, nil)
		require.NoError(t, err)
		if hdr != "" {
			req.Header.Set("X-IDENTITY-HEADER", hdr)
		}
		resp, err := e.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	resource := url.QueryEscape("https://graph.microsoft.com")
	status, body := get("api-version=2019-08-01&resource="+resource, header)
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, []string{"access_token", "client_id", "expires_on", "resource", "token_type"}, sortedKeys(body))
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, systemID, body["client_id"])
	assert.Equal(t, "https://graph.microsoft.com", body["resource"])
	exp, err := strconv.ParseInt(body["expires_on"].(string), 10, 64)
	require.NoError(t, err, "expires_on is a string of unix seconds")
	assert.InDelta(t, time.Now().Add(3599*time.Second).Unix(), exp, 60)
	for name, c := range map[string]struct {
		query, header string
		want          int
	}{
		"no header":           {"api-version=2019-08-01&resource=" + resource, "", http.StatusUnauthorized},
		"wrong header":        {"api-version=2019-08-01&resource=" + resource, "nope", http.StatusUnauthorized},
		"old api-version":     {"api-version=2017-09-01&resource=" + resource, header, http.StatusBadRequest},
		"no resource":         {"api-version=2019-08-01", header, http.StatusBadRequest},
		"selected by object":  {"api-version=2019-08-01&resource=" + resource + "&object_id=" + uuid.NewString(), header, http.StatusBadRequest},
		"unknown identity":    {"api-version=2019-08-01&resource=" + resource + "&client_id=" + uuid.NewString(), header, http.StatusBadRequest},
		"user-assigned by id": {"api-version=2019-08-01&resource=" + resource + "&client_id=" + userID, header, http.StatusOK},
		"unknown resource":    {"api-version=2019-08-01&resource=" + url.QueryEscape(e.sim.URL()), header, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := get(c.query, c.header)
			assert.Equal(t, c.want, status, "%v", body)
			if status != http.StatusOK {
				assert.Contains(t, body, "message")
			}
		})
	}
	// A host without a system-assigned identity. MSAL caches managed identity tokens process-wide by
	// identity and resource, so this host simulates another cloud: its resource misses that cache.
	cfg.ManagedIdentities = cfg.ManagedIdentities[1:]
	cfg.Cloud = "china"
	e2 := start(t, cfg)
	t.Setenv("IDENTITY_ENDPOINT", e2.sim.ManagedIdentityEndpoint())
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: e2.client, Retry: policy.RetryOptions{MaxRetries: -1}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{e2.sim.GraphResource() + "/.default"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no system-assigned identity")
	// SetRoles applies to managed identities too.
	e.sim.SetRoles(tenant2, userID, []string{"AuditLog.Read.All"})
	_, body = get("api-version=2019-08-01&resource="+resource+"&client_id="+userID, header)
	assert.Equal(t, []any{"AuditLog.Read.All"}, claims(t, body["access_token"].(string))["roles"])
}

func sortedKeys(m map[string]any) []string {
	raw := make(map[string]json.RawMessage, len(m))
	for k := range m {
		raw[k] = nil
	}
	return keysOf(raw)
}

// The token endpoint knows the Graph resource of the cloud it stands in for, as Entra ID does: a scope
// for any other resource — the simulator's own URL (what a client deriving the scope from its endpoint
// asks for), another cloud's Graph — is refused with AADSTS500011 in Entra ID's error shape.
func TestTokenScopeIsTheCloudsGraph(t *testing.T) {
	e := start(t, smallTenants(1, map[string]graphsim.DatasetSpec{"signins": {Count: 1}}))
	for _, scope := range []string{graphsimtest.Scope, "https://graph.microsoft.com//.default", "00000003-0000-0000-c000-000000000000/.default"} {
		status, body := e.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, scope)
		require.Equal(t, http.StatusOK, status, "%s: %v", scope, body)
		assert.Equal(t, http.StatusOK, e.get(signInsPath, body["access_token"].(string)).Status, scope)
	}
	for _, resource := range []string{e.sim.URL(), "https://graph.microsoft.us", "https://dod-graph.microsoft.us",
		"https://microsoftgraph.chinacloudapi.cn", "https://management.azure.com"} {
		status, body := e.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, resource+"/.default")
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", resource, body)
		assert.Equal(t, "invalid_resource", body["error"])
		assert.Equal(t, []any{float64(500011)}, body["error_codes"])
		assert.Contains(t, body["error_description"], "AADSTS500011: The resource principal named "+resource+" was not found in the tenant named "+tenant1+".")
	}

	// A simulator of another cloud knows that cloud's Graph, and only it.
	cfg := smallTenants(1, map[string]graphsim.DatasetSpec{"signins": {Count: 1}})
	cfg.Cloud = "usgov"
	gov := start(t, cfg)
	assert.Equal(t, "https://graph.microsoft.us", gov.sim.GraphResource())
	status, body := gov.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, "https://graph.microsoft.us/.default")
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, http.StatusOK, gov.get(signInsPath, body["access_token"].(string)).Status)
	status, body = gov.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, graphsimtest.Scope)
	assert.Equal(t, http.StatusBadRequest, status, "tokens do not cross clouds: %v", body)

	cfg.Cloud = "mars"
	_, err := graphsim.Start(cfg)
	assert.ErrorContains(t, err, `cloud "mars" is not one of public, usgov, usgovdod, china`)
}

// Graph accepts only tokens for its own resource.
func TestGraphAudience(t *testing.T) {
	e := start(t, smallTenants(1, map[string]graphsim.DatasetSpec{"signins": {Count: 1}}))
	for aud, want := range map[string]int{
		"https://graph.microsoft.com":          http.StatusOK,
		"00000003-0000-0000-c000-000000000000": http.StatusOK,
		e.sim.URL():                            http.StatusUnauthorized,
		"https://graph.microsoft.us":           http.StatusUnauthorized,
	} {
		r := e.get(signInsPath, graphsim.IssueToken(t, e.sim.Server, tenant1, graphsimtest.ClientID, aud))
		if want == http.StatusOK {
			assert.Equal(t, http.StatusOK, r.Status, "%s: %s", aud, r.Body)
			continue
		}
		assert.Contains(t, requireGraphError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken"), "Invalid audience", aud)
	}
}

func TestDefaultTokenLifetime(t *testing.T) {
	e := start(t, smallTenants(1, nil))
	status, body := e.rawToken(tenant1, graphsimtest.ClientID, graphsimtest.Secret, graphsimtest.Scope)
	require.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 3599, body["expires_in"], "as Entra ID answers")
	cl := claims(t, body["access_token"].(string))
	assert.EqualValues(t, 3599, cl["exp"].(float64)-cl["iat"].(float64))
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestErrorLog(t *testing.T) {
	var buf syncBuffer
	cfg := smallTenants(1, nil)
	cfg.ErrorLog = log.New(&buf, "graphsim: ", 0)
	e := start(t, cfg)
	// A client that does not trust the certificate: the server's TLS handshake error goes to ErrorLog
	// (and with no ErrorLog, nowhere: not to the test's output).
	_, err := http.Get(e.sim.URL() + "/" + tenant1 + "/v2.0/.well-known/openid-configuration")
	require.Error(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !strings.Contains(buf.String(), "TLS handshake error") {
		select {
		case <-ctx.Done():
			t.Fatalf("nothing logged: %q", buf.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
