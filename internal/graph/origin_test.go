package graph

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordingServer is an HTTPS server that keeps the Authorization header of every request it receives.
type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newRecordingServer(t *testing.T, h http.HandlerFunc) *recordingServer {
	rs := &recordingServer{}
	rs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.auth = append(rs.auth, r.Header.Get("Authorization"))
		rs.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *recordingServer) requests() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.auth...)
}

// countingCredential counts token requests.
type countingCredential struct{ calls *atomic.Int32 }

func (c countingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.calls.Add(1)
	return azcore.AccessToken{Token: "token"}, nil
}

// A nextLink to another host fails before a token is obtained or a connection is made, names the host,
// and is not retried; a redirect out of the Graph endpoint is not followed either.
func TestTokenGoesOnlyToTheGraphEndpoint(t *testing.T) {
	foreign := newRecordingServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"value":[]}`)) })
	graphSrv := newRecordingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, foreign.URL+"/v1.0/auditLogs/signIns", http.StatusFound)
			return
		}
		_, _ = w.Write([]byte(`{"value":[]}`))
	})
	var tokens atomic.Int32
	c, err := NewClient(ClientSettings{
		HTTPClient: graphSrv.Client(), // trusts both: httptest servers share one certificate
		Endpoint:   graphSrv.URL, Budget: NewBudget(0), Scope: "https://graph.microsoft.com/.default",
		Credential: func() (azcore.TokenCredential, error) { return countingCredential{&tokens}, nil },
	})
	require.NoError(t, err)
	get := func(link string) error {
		return c.Get(context.Background(), Request{URL: link, Dataset: "signins"}, func([]byte) error { return nil })
	}

	err = get(foreign.URL + "/v1.0/auditLogs/signIns?$skiptoken=x")
	require.Error(t, err)
	assert.Equal(t, KindForeignHost, KindOf(err))
	assert.Contains(t, err.Error(), `host "`+foreign.Listener.Addr().String()+`"`, "the error names the foreign host")
	assert.Zero(t, tokens.Load(), "no token was even obtained")
	assert.Empty(t, foreign.requests(), "no request reached the foreign host")

	err = get(graphSrv.URL + "/redirect")
	require.Error(t, err)
	assert.Equal(t, KindForeignHost, KindOf(err), "a redirect out of the Graph endpoint is refused")
	assert.Empty(t, foreign.requests(), "the redirect was not followed")

	require.NoError(t, get(graphSrv.URL+"/v1.0/auditLogs/signIns"), "the Graph endpoint itself is fine")
	assert.Equal(t, []string{"Bearer token", "Bearer token"}, graphSrv.requests())
}

// Origins compare normalised: scheme and host case, the default port, a trailing dot on the host.
func TestOriginComparison(t *testing.T) {
	c, err := NewClient(ClientSettings{Endpoint: "https://graph.microsoft.com", Budget: NewBudget(0)})
	require.NoError(t, err)
	for _, link := range []string{
		"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=a",
		"https://graph.microsoft.com:443/v1.0/auditLogs/signIns",
		"HTTPS://Graph.Microsoft.COM/v1.0/auditLogs/signIns",
		"https://graph.microsoft.com./v1.0/auditLogs/signIns",
	} {
		assert.Nil(t, c.checkOrigin(link), link)
	}
	for link, host := range map[string]string{
		"http://graph.microsoft.com/v1.0/auditLogs/signIns":            "graph.microsoft.com",
		"https://graph.microsoft.com:8443/v1.0/auditLogs/signIns":      "graph.microsoft.com:8443",
		"https://graph.microsoft.com.evil.example/v1.0":                "graph.microsoft.com.evil.example",
		"https://graph.microsoft.com@evil.example/v1.0":                "evil.example",
		"https://evil.example/v1.0?next=https://graph.microsoft.com/x": "evil.example",
		"/v1.0/auditLogs/signIns":                                      "(none)",
	} {
		ge := c.checkOrigin(link)
		if assert.NotNil(t, ge, link) {
			assert.Equal(t, KindForeignHost, ge.Kind)
			assert.Contains(t, ge.Error(), `"`+host+`"`, link)
		}
	}
	_, err = NewClient(ClientSettings{Endpoint: "graph.microsoft.com"})
	assert.Error(t, err, "an endpoint without scheme and host has no origin")
}
