package o365readinessextension

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// recordIDs lists the o365.record.id of every record in the sink.
func recordIDs(logs []plog.Logs) map[string]bool {
	out := map[string]bool{}
	for _, l := range logs {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			sls := l.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if id, ok := lrs.At(k).Attributes().Get("o365.record.id"); ok {
						out[id.Str()] = true
					}
				}
			}
		}
	}
	return out
}

// POST /run/{tenant} makes the receiver poll now: with a poll interval of an hour, a record injected
// after the first poll arrives only because of the request. Without credentials the request is
// refused and nothing is triggered; the requests are rate-limited per tenant.
func TestRunTriggersPollAndIsProtected(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 31, Tenants: []graphsim.Tenant{simTenant(1, false)}})
	ext, c := startExtension(t, withAdminAuth, func(cfg *Config) {
		cfg.RunRateLimit.Requests = 2
		cfg.RunRateLimit.Per = time.Hour
	})
	sink := new(consumertest.LogsSink)
	startReceiver(t, simReceiverConfig(sim, 1), sink, ext)
	_, tr := c.waitTenant("tenant1", polledOnce)
	require.True(t, tr.Ready, dump(tr))
	require.Equal(t, 65, sink.LogRecordCount(), "the first poll collected the history")

	const id = "run-now-record-1"
	require.NoError(t, sim.Inject(graphsimtest.TenantID(1), "signins", time.Time{}, map[string]any{
		"id": id, "createdDateTime": graphsim.FormatTime(time.Now().Add(-time.Second)),
	}))

	// Unauthenticated and wrongly authenticated requests are refused and trigger nothing.
	for _, token := range []string{"", "not-the-admin-token"} {
		status, h, body := c.do(http.MethodPost, "/run/tenant1?dataset=signins", token)
		assert.Equal(t, http.StatusUnauthorized, status, string(body))
		assert.Equal(t, `Bearer realm="o365_readiness"`, h.Get("WWW-Authenticate"))
		assert.JSONEq(t, `{"error":"unauthorized: this route requires credentials accepted by the `+"`admin_auth`"+` authenticator"}`, string(body))
	}
	assert.Equal(t, 65, sink.LogRecordCount(), "nothing was triggered")

	// Authenticated: the poll runs and the injected record arrives.
	asked := time.Now()
	status, _, body := c.do(http.MethodPost, "/run/tenant1?dataset=signins", adminToken)
	require.Equal(t, http.StatusAccepted, status, string(body))
	var run RunResult
	require.NoError(t, json.Unmarshal(body, &run))
	assert.Equal(t, "tenant1", run.Tenant)
	assert.Equal(t, "o365", run.Receiver)
	assert.Equal(t, "signins", run.Dataset)
	assert.Equal(t, []string{"tenant1/signins/interactive"}, run.Triggered)
	assert.False(t, run.RequestedAt.IsZero())
	require.Eventually(t, func() bool { return recordIDs(sink.AllLogs())[id] }, 30*time.Second, 10*time.Millisecond,
		"the triggered poll emitted the injected record")
	_, tr = c.waitTenant("tenant1", polledAfter("signins", asked))
	assert.Equal(t, 1, dataset(t, tr, "signins").RecordsLastPoll, "the triggered poll emitted exactly the new record")
	assert.Equal(t, 66, sink.LogRecordCount())

	// All datasets when none is given; then the per-tenant bucket (2 per hour) is empty.
	status, _, body = c.do(http.MethodPost, "/run/tenant1", adminToken)
	require.Equal(t, http.StatusAccepted, status, string(body))
	require.NoError(t, json.Unmarshal(body, &run))
	assert.Equal(t, []string{"tenant1/directory_audits", "tenant1/signins/interactive"}, run.Triggered)
	assert.Empty(t, run.Dataset)

	status, h, body := c.do(http.MethodPost, "/run/tenant1", adminToken)
	assert.Equal(t, http.StatusTooManyRequests, status, string(body))
	assert.NotEmpty(t, h.Get("Retry-After"))
	assert.Contains(t, string(body), "`run_rate_limit`")

	// Unknown tenant or dataset: 404 (o365status.ErrNotConfigured).
	status, _, body = c.do(http.MethodPost, "/run/nobody", adminToken)
	assert.Equal(t, http.StatusNotFound, status, string(body))
	status, _, body = c.do(http.MethodPost, "/run/tenant1?dataset=mailbox_contents", adminToken)
	assert.Equal(t, http.StatusNotFound, status, string(body))
	assert.Contains(t, string(body), `tenant \"tenant1\" collects no dataset \"mailbox_contents\"`)

	// GET /tenants: configuration without secrets, behind the same authenticator.
	status, _, _ = c.do(http.MethodGet, "/tenants", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	var list TenantList
	require.Equal(t, http.StatusOK, c.getJSON("/tenants", adminToken, &list))
	require.Len(t, list.Tenants, 1)
	ti := list.Tenants[0]
	assert.Equal(t, "tenant1", ti.Tenant)
	assert.Equal(t, graphsimtest.TenantID(1), ti.TenantID)
	assert.Equal(t, "public", ti.Cloud)
	assert.Equal(t, CredentialStatus{Kind: "client_secret", Configured: true}, ti.Credential)
	require.Len(t, ti.Datasets, 2)
	assert.Equal(t, DatasetInfo{
		Name: "signins", Permissions: []string{"AuditLog.Read.All"}, Licence: "Entra ID P1 or P2",
		Latency: "2 min p95, 5 min p99", CountsForReadiness: true, Streams: []string{"tenant1/signins/interactive"},
	}, ti.Datasets[0])
	assert.Equal(t, "directory_audits", ti.Datasets[1].Name)
}

// The leak check of every test (apiClient) covers each response; this test makes sure it has something
// to find: the receiver fails in every way the simulator offers (bad secret, revoked and refreshed
// tokens, 5xx and truncated pages, a missing licence) and every route is read, with and without
// credentials, and no body or header carries the secret or a JWT.
func TestNoSecretOrTokenInAnyResponse(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 32, TokenTTL: 2 * time.Second, Tenants: []graphsim.Tenant{
		simTenant(1, false), simTenant(2, true), simTenant(3, false),
	}})
	sim.FailNext(graphsim.Fault{Kind: "status", Status: 503}, graphsim.Fault{Kind: "truncate"})
	ext, c := startExtension(t, withAdminAuth, func(cfg *Config) { cfg.RunRateLimit.Requests = 100 })
	rcfg := simReceiverConfig(sim, 1, 2, 3)
	rcfg.Tenants[2].ClientSecret = "wrong-" + graphsimtest.Secret
	c.forbid(string(rcfg.Tenants[2].ClientSecret))
	startReceiver(t, rcfg, new(consumertest.LogsSink), ext)
	for _, name := range []string{"tenant1", "tenant2", "tenant3"} {
		c.waitTenant(name, polledOnce)
	}
	sim.RevokeTokens(graphsimtest.TenantID(1))
	asked := time.Now()
	for _, name := range []string{"tenant1", "tenant2", "tenant3"} {
		status, _, body := c.do(http.MethodPost, "/run/"+name, adminToken)
		require.Equal(t, http.StatusAccepted, status, string(body))
	}
	for _, name := range []string{"tenant1", "tenant2", "tenant3"} {
		_, tr := c.waitTenant(name, polledAfter("", asked))
		if name == "tenant3" {
			assert.Contains(t, tr.Reasons[0], "AADSTS7000215", "the failing tenant's reason is there to be searched")
		}
	}
	require.Greater(t, sim.Stats().TokensIssued, int64(2), "a revoked token was replaced")
	for _, path := range []string{"/", "/readiness", "/version", "/tenants", "/tenants/tenant1/readiness", "/tenants/tenant2/readiness", "/tenants/tenant3/readiness"} {
		for _, token := range []string{"", adminToken} {
			status, _, body := c.do(http.MethodGet, path, token)
			require.NotEqual(t, http.StatusInternalServerError, status, "%s: %s", path, body)
		}
	}
	// The deferred check of apiClient searches all of it; here, the secret is known to exist.
	assert.NotEmpty(t, graphsimtest.Secret)
}
