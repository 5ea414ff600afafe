package o365readinessextension

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// The readiness scenarios of the issue, each against the real o365 receiver reading the Graph simulator:
// the receiver registers with the extension on its host, and every assertion reads the HTTP API.

func simTenant(n int, unlicensed bool) graphsim.Tenant {
	t := graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{
		"signins":          {Count: 40, Span: time.Hour},
		"directory_audits": {Count: 25, Span: time.Hour},
	})
	t.Unlicensed = unlicensed
	return t
}

func TestReadinessScenarios(t *testing.T) {
	noAuditLog := slices.DeleteFunc(slices.Clone(graphsimtest.AllRoles), func(r string) bool { return r == "AuditLog.Read.All" })
	const rotated = "rotated-Secret~zyxwvutsrqponmlkjihgfedcba9876543210"

	tests := []struct {
		name string
		// before the receiver starts
		arrange func(sim *graphsimtest.Sim)
		// reached when the tenant's state to check is there
		until func(TenantReadiness) bool
		check func(t *testing.T, status int, tr TenantReadiness)
	}{
		{
			name:  "ready tenant",
			until: polledOnce,
			check: func(t *testing.T, status int, tr TenantReadiness) {
				assert.Equal(t, http.StatusOK, status)
				require.True(t, tr.Ready, dump(tr))
				assert.Empty(t, tr.Reasons)
				assert.Empty(t, tr.Warnings)
				assert.Equal(t, graphsimtest.TenantID(1), tr.TenantID)
				assert.Equal(t, graphsimtest.ClientID, tr.ClientID)
				assert.Equal(t, "o365", tr.Receiver)
				assert.Equal(t, CredentialStatus{Kind: "client_secret", Configured: true}, tr.Credential)
				assert.True(t, tr.Token.Obtained)
				assert.False(t, tr.Token.Failing)
				require.NotNil(t, tr.Token.ObtainedAt)
				require.NotNil(t, tr.Token.ExpiresAt)
				assert.True(t, tr.Token.ExpiresAt.After(*tr.Token.ObtainedAt))
				// The Graph token's: no audit dataset runs, so no Management API token adds its ActivityFeed roles.
				graphRoles := slices.DeleteFunc(slices.Clone(graphsimtest.AllRoles), func(r string) bool { return strings.HasPrefix(r, "ActivityFeed.") })
				assert.ElementsMatch(t, graphRoles, tr.Token.Roles, "the roles claim of the simulator's token")
				want := map[string]int{"signins": 40, "directory_audits": 25}
				for _, d := range tr.Datasets {
					assert.True(t, d.Ready, d.Name)
					assert.True(t, d.CountsForReadiness)
					assert.Equal(t, o365status.StateOK, d.State)
					assert.Equal(t, PermissionStatus{Required: []string{"AuditLog.Read.All"}, Granted: []string{"AuditLog.Read.All"}, Missing: []string{}, Known: true}, d.Permissions)
					require.NotNil(t, d.Endpoint.Reachable)
					assert.True(t, *d.Endpoint.Reachable)
					assert.Equal(t, "last_poll", d.Endpoint.Source, "a dataset that polls fine is not probed")
					assert.Equal(t, "ok", d.LastPollResult)
					assert.Equal(t, want[d.Name], d.RecordsLastPoll, "%s: the first poll collected every record", d.Name)
					require.NotNil(t, d.WatermarkLagSeconds)
					assert.GreaterOrEqual(t, *d.WatermarkLagSeconds, 0.0)
					require.NotNil(t, d.NextPoll)
					assert.True(t, d.NextPoll.After(*d.LastPollEnd), "next poll an interval after the last")
					require.Len(t, d.Streams, 1)
					assert.Equal(t, 0, d.Streams[0].ConsecutiveFailures)
				}
				assert.Equal(t, "tenant1/signins/interactive", dataset(t, tr, "signins").Streams[0].Name)
				assert.Equal(t, "interactive", dataset(t, tr, "signins").Streams[0].Variant)
			},
		},
		{
			name: "permission missing from the token's roles",
			arrange: func(sim *graphsimtest.Sim) {
				sim.SetRoles(graphsimtest.TenantID(1), graphsimtest.ClientID, noAuditLog)
			},
			until: polledOnce,
			check: func(t *testing.T, status int, tr TenantReadiness) {
				assert.Equal(t, http.StatusServiceUnavailable, status)
				require.False(t, tr.Ready)
				assert.True(t, tr.Token.Obtained, "the token itself is fine")
				assert.NotContains(t, tr.Token.Roles, "AuditLog.Read.All")
				for _, d := range tr.Datasets {
					assert.False(t, d.Ready, d.Name)
					assert.Equal(t, []string{"AuditLog.Read.All"}, d.Permissions.Missing, d.Name)
					assert.Empty(t, d.Permissions.Granted)
					require.NotEmpty(t, d.Reasons)
					assert.Contains(t, d.Reasons[0], "permission: AuditLog.Read.All is not granted", d.Name)
					assert.Contains(t, d.Reasons[0], graphsimtest.ClientID, "the reason names the app to fix")
					assert.Equal(t, o365status.StateCoolingDown, d.State, "a 403 cools the stream down")
					assert.Equal(t, "permission", d.Streams[0].LastErrorKind)
				}
				assert.True(t, containsAny(tr.Reasons, "signins: permission: AuditLog.Read.All is not granted"), tr.Reasons)
				assert.True(t, containsAny(tr.Reasons, "directory_audits: permission: AuditLog.Read.All is not granted"), tr.Reasons)
			},
		},
		{
			name: "licence missing: sign-ins refused, directory audits fine",
			arrange: func(*graphsimtest.Sim) {
				// set through the tenant (Unlicensed) below
			},
			until: polledOnce,
			check: func(t *testing.T, status int, tr TenantReadiness) {
				assert.Equal(t, http.StatusServiceUnavailable, status)
				require.False(t, tr.Ready)
				signins := dataset(t, tr, "signins")
				assert.False(t, signins.Ready)
				require.NotEmpty(t, signins.Reasons)
				assert.Contains(t, signins.Reasons[0], "licence: the tenant lacks Entra ID P1 or P2, which signins needs")
				assert.Contains(t, signins.Reasons[0], "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Graph's own code is quoted")
				assert.Contains(t, signins.Reasons[0], "POST /run/tenant1?dataset=signins", "says how to retry after a fix")
				assert.Empty(t, signins.Permissions.Missing, "permissions are fine: it is the licence")
				require.NotNil(t, signins.Endpoint.Reachable)
				assert.False(t, *signins.Endpoint.Reachable)
				assert.Equal(t, "probe", signins.Endpoint.Source)
				assert.Equal(t, "licence", signins.Endpoint.ErrorKind)
				assert.Equal(t, http.StatusForbidden, signins.Endpoint.Status)
				assert.Equal(t, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", signins.Endpoint.Code)
				assert.Len(t, signins.Reasons, 1, "the probe's finding is not repeated: the stream says it: %v", signins.Reasons)

				audits := dataset(t, tr, "directory_audits")
				assert.True(t, audits.Ready, dump(audits))
				assert.Empty(t, audits.Reasons)
				assert.Equal(t, 25, audits.RecordsLastPoll)
				assert.Equal(t, []string{"signins: " + signins.Reasons[0]}, tr.Reasons, "only sign-ins stop the tenant")
			},
		},
		{
			name: "rotated secret: the token endpoint's error is quoted",
			arrange: func(sim *graphsimtest.Sim) {
				sim.RotateSecret(graphsimtest.TenantID(1), graphsimtest.ClientID, rotated)
			},
			until: polledOnce,
			check: func(t *testing.T, status int, tr TenantReadiness) {
				assert.Equal(t, http.StatusServiceUnavailable, status)
				require.False(t, tr.Ready)
				assert.False(t, tr.Token.Obtained)
				assert.True(t, tr.Token.Failing)
				assert.Contains(t, tr.Token.LastError, "AADSTS7000215")
				require.NotEmpty(t, tr.Reasons)
				assert.Contains(t, tr.Reasons[0], "access token: the token endpoint refused")
				assert.Contains(t, tr.Reasons[0], "AADSTS7000215: Invalid client secret provided")
				assert.Contains(t, tr.Reasons[0], "the client secret is wrong", "with what to do about it")
				for _, d := range tr.Datasets {
					assert.False(t, d.Ready)
					assert.Equal(t, tr.Reasons[0], d.Reasons[0], "%s: every dataset names the token as its first reason", d.Name)
					assert.False(t, d.Permissions.Known, "no token, no roles to compare")
					assert.Equal(t, "auth", d.Streams[0].LastErrorKind)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 21, Tenants: []graphsim.Tenant{simTenant(1, strings.HasPrefix(tt.name, "licence"))}})
			if tt.arrange != nil {
				tt.arrange(sim)
			}
			ext, c := startExtension(t)
			c.forbid(rotated)
			startReceiver(t, simReceiverConfig(sim, 1), new(consumertest.LogsSink), ext)
			status, tr := c.waitTenant("tenant1", tt.until)
			tt.check(t, status, tr)

			// The aggregate agrees with the tenant.
			var agg AggregateReadiness
			aggStatus := c.getJSON("/readiness", "", &agg)
			assert.Equal(t, tr.Ready, agg.Ready)
			assert.Equal(t, readyStatus(tr.Ready), aggStatus)
			require.Len(t, agg.Tenants, 1)
			assert.Equal(t, tr.Reasons, agg.Tenants[0].Reasons)
		})
	}
}

// Readiness counts only the datasets listed in `readiness.datasets`: with sign-ins unlicensed, an
// extension that counts directory audits only is ready, one that counts everything is not — both fed by
// the same receiver.
func TestReadinessDatasetsAreConfigurable(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 22, Tenants: []graphsim.Tenant{simTenant(1, true)}})
	all, cAll := startExtension(t)
	auditsOnly, cAudits := startExtension(t, func(cfg *Config) { cfg.Readiness.Datasets = []string{"directory_audits"} })
	startReceiver(t, simReceiverConfig(sim, 1), new(consumertest.LogsSink), all, auditsOnly)

	cAll.waitTenant("tenant1", polledOnce)
	var agg AggregateReadiness
	assert.Equal(t, http.StatusServiceUnavailable, cAll.getJSON("/readiness", "", &agg))
	assert.False(t, agg.Ready)
	assert.True(t, containsAny(agg.Reasons, "tenant1: signins: "), agg.Reasons)

	status, tr := cAudits.waitTenant("tenant1", polledOnce)
	assert.Equal(t, http.StatusOK, status)
	assert.True(t, tr.Ready, dump(tr))
	assert.False(t, dataset(t, tr, "signins").Ready, "sign-ins are still assessed and reported")
	assert.False(t, dataset(t, tr, "signins").CountsForReadiness)
	assert.True(t, dataset(t, tr, "directory_audits").CountsForReadiness)
	agg = AggregateReadiness{}
	assert.Equal(t, http.StatusOK, cAudits.getJSON("/readiness", "", &agg))
	assert.True(t, agg.Ready, agg.Reasons)
}

// A secret replaced while the collector runs: the cached token keeps working until Graph rejects it
// (here: revoked); then the receiver asks for a new one, the token endpoint refuses, and readiness says
// why — though a token had been obtained before.
func TestReadinessSecretRotatedWhileRunning(t *testing.T) {
	const rotated = "rotated-Secret~while-running-0123456789abcdefghij"
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 23, Tenants: []graphsim.Tenant{simTenant(1, false)}})
	ext, c := startExtension(t, withAdminAuth)
	c.forbid(rotated)
	startReceiver(t, simReceiverConfig(sim, 1), new(consumertest.LogsSink), ext)
	_, tr := c.waitTenant("tenant1", polledOnce)
	require.True(t, tr.Ready, dump(tr))
	require.False(t, tr.Token.Failing)

	sim.RotateSecret(graphsimtest.TenantID(1), graphsimtest.ClientID, rotated)
	sim.RevokeTokens(graphsimtest.TenantID(1))
	asked := time.Now()
	status, _, body := c.do(http.MethodPost, "/run/tenant1", adminToken)
	require.Equal(t, http.StatusAccepted, status, string(body))

	status, tr = c.waitTenant("tenant1", polledAfter("", asked))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.False(t, tr.Ready)
	assert.True(t, tr.Token.Obtained, "a token had been obtained")
	require.NotNil(t, tr.Token.LastErrorAt)
	assert.True(t, tr.Token.LastErrorAt.After(*tr.Token.ObtainedAt), "the failure is newer than the token")
	assert.True(t, tr.Token.Failing, "so the token is reported failing")
	require.NotEmpty(t, tr.Reasons)
	assert.Contains(t, tr.Reasons[0], "AADSTS7000215")
	for _, d := range tr.Datasets {
		assert.Equal(t, "failed", d.LastPollResult, d.Name)
		assert.Equal(t, "auth", d.Streams[0].LastErrorKind, d.Name)
		assert.True(t, containsAny(d.Reasons, "authentication: no usable access token"), d.Reasons)
	}
}

// A throttled dataset: one 429 whose Retry-After exceeds the receiver's retry budget fails the poll.
// Readiness reports it as a warning (the stream retries at its next poll) with the watermark lag; after
// three consecutive throttled polls the stream cools down and the tenant is not ready.
func TestReadinessThrottledDataset(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 24, Tenants: []graphsim.Tenant{simTenant(1, false)}})
	ext, c := startExtension(t, withAdminAuth, func(cfg *Config) { cfg.RunRateLimit.Requests = 10 })
	rcfg := simReceiverConfig(sim, 1)
	rcfg.RetryOnFailure.MaxElapsedTime = 50 * time.Millisecond // a Retry-After of 1 s is beyond it: give up
	startReceiver(t, rcfg, new(consumertest.LogsSink), ext)
	_, tr := c.waitTenant("tenant1", polledOnce)
	require.True(t, tr.Ready, dump(tr))

	throttleNextPoll := func() TenantReadiness {
		t.Helper()
		sim.FailNext(graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Path: "directoryAudits"})
		asked := time.Now()
		status, _, body := c.do(http.MethodPost, "/run/tenant1?dataset=directory_audits", adminToken)
		require.Equal(t, http.StatusAccepted, status, string(body))
		_, tr := c.waitTenant("tenant1", polledAfter("directory_audits", asked))
		return tr
	}

	// One throttled poll: a warning, still ready.
	tr = throttleNextPoll()
	audits := dataset(t, tr, "directory_audits")
	require.Equal(t, "throttled", audits.Streams[0].LastErrorKind, dump(audits))
	assert.Equal(t, o365status.StateFailing, audits.State)
	assert.Equal(t, "failed", audits.LastPollResult)
	assert.True(t, audits.Ready, "one throttled poll does not stop readiness: %s", dump(audits))
	assert.True(t, tr.Ready)
	require.NotEmpty(t, audits.Warnings)
	assert.Contains(t, audits.Warnings[0], "throttled by Graph (429 / Retry-After)")
	assert.Contains(t, audits.Warnings[0], "TooManyRequests")
	assert.True(t, containsAny(tr.Warnings, "directory_audits: tenant1/directory_audits: last poll failed"), tr.Warnings)
	require.NotNil(t, audits.WatermarkLagSeconds, "the lag is reported")
	assert.Greater(t, *audits.WatermarkLagSeconds, 0.0)
	assert.True(t, dataset(t, tr, "signins").Ready)

	// Two more: the stream cools down, and the tenant is not ready, saying why.
	throttleNextPoll()
	tr = throttleNextPoll()
	audits = dataset(t, tr, "directory_audits")
	assert.Equal(t, o365status.StateCoolingDown, audits.State)
	assert.Equal(t, 3, audits.Streams[0].ConsecutiveFailures)
	assert.False(t, audits.Ready)
	assert.False(t, tr.Ready)
	require.NotEmpty(t, audits.Reasons)
	assert.Contains(t, audits.Reasons[0], "throttled by Graph")
	assert.Contains(t, audits.Reasons[0], "cooling down after 3 failed polls in a row, next retry at")
	var agg AggregateReadiness
	assert.Equal(t, http.StatusServiceUnavailable, c.getJSON("/readiness", "", &agg))
	assert.Zero(t, sim.Stats().Violations, "no request (poll or probe) arrived before a Retry-After elapsed")
}
