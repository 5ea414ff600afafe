package graphsim_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

var (
	tenant1 = graphsimtest.TenantID(1)
	tenant2 = graphsimtest.TenantID(2)
)

const (
	signInsPath = "/v1.0/auditLogs/signIns"
	auditsPath  = "/v1.0/auditLogs/directoryAudits"
)

// env is a started simulator and a client that trusts its certificate.
type env struct {
	t      *testing.T
	sim    *graphsimtest.Sim
	client *http.Client
}

func start(t *testing.T, cfg graphsim.Config) *env {
	t.Helper()
	sim := graphsimtest.Start(t, cfg)
	return &env{t: t, sim: sim, client: trustingClient(t, sim.CACertPEM())}
}

// smallTenants is a config of n tenants (graphsimtest's app, all roles) with a few records each.
func smallTenants(n int, spec map[string]graphsim.DatasetSpec) graphsim.Config {
	var cfg graphsim.Config
	for i := 1; i <= n; i++ {
		cfg.Tenants = append(cfg.Tenants, graphsimtest.Tenant(i, spec))
	}
	return cfg
}

func trustingClient(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM), "the simulator's PEM holds no certificate")
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// rawToken runs the client-credentials grant by hand.
func (e *env) rawToken(tenant, clientID, secret, scope string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	resp, err := e.client.PostForm(e.sim.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// token is a fresh access token of graphsimtest's app in tenant.
func (e *env) token(tenant string) string {
	e.t.Helper()
	return e.tokenFor(tenant, graphsimtest.Scope)
}

// tokenFor is a fresh access token of graphsimtest's app in tenant for scope.
func (e *env) tokenFor(tenant, scope string) string {
	e.t.Helper()
	status, body := e.rawToken(tenant, graphsimtest.ClientID, graphsimtest.Secret, scope)
	require.Equal(e.t, http.StatusOK, status, "token: %v", body)
	tok, _ := body["access_token"].(string)
	require.NotEmpty(e.t, tok)
	return tok
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do GETs path (relative to the simulator, or an absolute URL) with a bearer token and extra headers;
// transport and body errors are returned.
func (e *env) do(path, token string, headers map[string]string) (response, error) {
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = e.sim.URL() + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}

func (e *env) get(path, token string) response {
	e.t.Helper()
	r, err := e.do(path, token, nil)
	require.NoError(e.t, err)
	return r
}

type page struct {
	Context  string            `json:"@odata.context"`
	NextLink string            `json:"@odata.nextLink"`
	Value    []json.RawMessage `json:"value"`
}

func decodePage(t *testing.T, r response) page {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var p page
	require.NoError(t, json.Unmarshal(r.Body, &p), "%s", r.Body)
	return p
}

// listAll follows @odata.nextLink from path to the end and returns the ids and the pages seen.
func (e *env) listAll(path, token string) ([]string, []page) {
	e.t.Helper()
	var ids []string
	var pages []page
	for next := path; next != ""; {
		p := decodePage(e.t, e.get(next, token))
		for _, raw := range p.Value {
			var rec struct {
				ID string `json:"id"`
			}
			require.NoError(e.t, json.Unmarshal(raw, &rec))
			ids = append(ids, rec.ID)
		}
		pages = append(pages, p)
		require.Less(e.t, len(pages), 10_000)
		next = p.NextLink
	}
	return ids, pages
}

var graphErrorDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$`)

func keysOf(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// requireGraphError checks a Graph error response against concepts/errors.md and returns its message.
func requireGraphError(t *testing.T, r response, status int, code string) string {
	t.Helper()
	require.Equal(t, status, r.Status, "%s", r.Body)
	assert.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"), r.Header.Get("Content-Type"))
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.Body, &top), "%s", r.Body)
	require.Equal(t, []string{"error"}, keysOf(top))
	var errObj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(top["error"], &errObj))
	require.Equal(t, []string{"code", "innerError", "message"}, keysOf(errObj), "%s", r.Body)
	var gotCode, message string
	require.NoError(t, json.Unmarshal(errObj["code"], &gotCode))
	require.NoError(t, json.Unmarshal(errObj["message"], &message))
	assert.Equal(t, code, gotCode)
	assert.NotEmpty(t, message)
	var innerRaw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(errObj["innerError"], &innerRaw))
	require.Equal(t, []string{"client-request-id", "date", "request-id"}, keysOf(innerRaw), "%s", r.Body)
	var inner map[string]string
	require.NoError(t, json.Unmarshal(errObj["innerError"], &inner), "innerError members are strings")
	assert.Regexp(t, graphErrorDate, inner["date"], "date has no fraction and no Z")
	_, err := time.Parse("2006-01-02T15:04:05", inner["date"])
	assert.NoError(t, err)
	assert.Equal(t, r.Header.Get("request-id"), inner["request-id"])
	assert.Equal(t, r.Header.Get("client-request-id"), inner["client-request-id"])
	return message
}

// claims decodes the payload of a JWT without verifying it.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(raw, &c))
	return c
}

func retryAfter(t *testing.T, h http.Header) time.Duration {
	t.Helper()
	v := h.Get("Retry-After")
	require.NotEmpty(t, v, "Retry-After")
	var secs float64
	require.NoError(t, json.Unmarshal([]byte(v), &secs), "Retry-After %q is not a number of seconds", v)
	return time.Duration(secs * float64(time.Second))
}
