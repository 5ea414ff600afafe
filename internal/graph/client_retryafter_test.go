package graph

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configretry"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// simClient is a client of the simulator as the receiver builds one: real azidentity, real HTTPS.
func simClient(t *testing.T, sim *graphsimtest.Sim) *Client {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(sim.CACertPEM()))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = 10 * time.Millisecond
	c, err := NewClient(ClientSettings{
		HTTPClient: hc, Endpoint: sim.URL(), Scope: graphsimtest.Scope, Budget: NewBudget(0), Retry: retry,
		Credential: NewCredentialFactory(CredentialConfig{TenantID: graphsimtest.TenantID(1), ClientID: graphsimtest.ClientID,
			ClientSecret: graphsimtest.Secret, AuthorityHost: sim.URL() + "/", HTTPClient: hc}),
	})
	require.NoError(t, err)
	return c
}

// Retry-After is honoured in both forms HTTP allows, against the simulator: fractional seconds ("1.2",
// as Graph sends) and an HTTP-date. The retry arrives no earlier than Graph asked (the simulator's own
// accounting finds no violation), and the caller hears of the pause before the client waits it out.
func TestRetryAfterSecondsAndHTTPDate(t *testing.T) {
	for name, httpDate := range map[string]bool{"fractional seconds": false, "HTTP-date": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 5, RetryAfterHTTPDate: httpDate, Tenants: []graphsim.Tenant{
				graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 3, Span: time.Hour}}),
			}})
			const retryAfter = 1200 * time.Millisecond
			sim.FailNext(graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: retryAfter})
			c := simClient(t, sim)
			var pausedUntil []time.Time
			req := Request{URL: sim.URL() + "/v1.0/auditLogs/signIns", Dataset: "signins",
				BudgetKeys: []string{"tenant"}, PauseKey: "tenant",
				OnPause: func(until time.Time) { pausedUntil = append(pausedUntil, until) }}
			require.NoError(t, c.Get(context.Background(), req, func([]byte) error { return nil }))

			log := sim.Requests()
			require.Len(t, log, 2)
			require.Equal(t, http.StatusTooManyRequests, log[0].Status)
			require.Equal(t, http.StatusOK, log[1].Status)
			end := log[0].At.Add(retryAfter)
			assert.False(t, log[1].At.Before(end), "retried at %s, before the Retry-After end %s", log[1].At, end)
			assert.False(t, log[1].Violation)
			assert.Zero(t, sim.Stats().Violations)
			require.Len(t, pausedUntil, 1, "the pause was reported once")
			assert.False(t, pausedUntil[0].Before(end), "the reported end %s is not before Graph's %s", pausedUntil[0], end)
		})
	}
}
