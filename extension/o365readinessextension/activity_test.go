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
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver"
)

// The unified audit log on the readiness page: with ActivityFeed.Read the receiver starts the
// subscription and the dataset is ready, its permission read from the Management API token; without it,
// the page names the missing permission and the subscription the app may not start — not "zero records".
func TestReadinessAuditFeed(t *testing.T) {
	for _, granted := range []bool{true, false} {
		t.Run(map[bool]string{true: "granted", false: "missing"}[granted], func(t *testing.T) {
			tenant := graphsimtest.Tenant(1, nil)
			if !granted {
				tenant.Apps[0].Roles = slices.DeleteFunc(slices.Clone(graphsimtest.AllRoles), func(r string) bool { return strings.HasPrefix(r, "ActivityFeed.") })
			}
			sim := graphsimtest.Start(t, graphsim.Config{Seed: 26, Tenants: []graphsim.Tenant{tenant}})
			sim.AddAuditBlob(graphsimtest.TenantID(1), graphsim.AuditBlob{ContentType: "Audit.Exchange", Created: time.Now().Add(-time.Hour),
				Records: []map[string]any{{"Id": "r1", "CreationTime": "2026-01-01T00:00:00", "Operation": "MailItemsAccessed", "Workload": "Exchange"}}})
			ext, c := startExtension(t)
			rcfg := simReceiverConfig(sim, 1)
			rcfg.ManagementEndpoint = sim.URL()
			enabled := true
			rcfg.Tenants[0].Datasets = map[string]o365receiver.DatasetConfig{"audit_exchange": {Enabled: &enabled}}
			startReceiver(t, rcfg, new(consumertest.LogsSink), ext)

			status, tr := c.waitTenant("tenant1", polledOnce)
			d := dataset(t, tr, "audit_exchange")
			if granted {
				assert.Equal(t, http.StatusOK, status, dump(tr))
				assert.True(t, d.Ready, dump(d))
				assert.Equal(t, 1, d.RecordsLastPoll)
				assert.Equal(t, []string{"ActivityFeed.Read"}, d.Permissions.Granted)
				assert.Equal(t, "enabled", sim.Subscription(graphsimtest.TenantID(1), "Audit.Exchange"))
				return
			}
			assert.Equal(t, http.StatusServiceUnavailable, status)
			assert.False(t, d.Ready)
			assert.Equal(t, []string{"ActivityFeed.Read"}, d.Permissions.Missing)
			require.NotEmpty(t, d.Reasons)
			assert.Contains(t, d.Reasons[0], "permission: ActivityFeed.Read is not granted")
			assert.True(t, containsAny(d.Reasons, "subscription to Audit.Exchange is not started and this app may not start it"), d.Reasons)
			assert.Empty(t, sim.Subscription(graphsimtest.TenantID(1), "Audit.Exchange"))
		})
	}
}

// A tenant whose unified audit logging is off: the audit dataset is not ready, and the page says why
// and what to run — not a bad request, not a missing subscription the receiver will start.
func TestReadinessAuditingDisabled(t *testing.T) {
	tenant := graphsimtest.Tenant(1, nil)
	tenant.AuditingDisabled = true
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 27, Tenants: []graphsim.Tenant{tenant}})
	// Probes are reused briefly here: a probe that ran before the first poll tried to start the
	// subscription only saw it not started.
	ext, c := startExtension(t, func(cfg *Config) { cfg.Probe.Interval = 50 * time.Millisecond })
	rcfg := simReceiverConfig(sim, 1)
	rcfg.ManagementEndpoint = sim.URL()
	enabled := true
	rcfg.Tenants[0].Datasets = map[string]o365receiver.DatasetConfig{"audit_exchange": {Enabled: &enabled}}
	startReceiver(t, rcfg, new(consumertest.LogsSink), ext)

	status, tr := c.waitTenant("tenant1", func(tr TenantReadiness) bool {
		return polledOnce(tr) && dataset(t, tr, "audit_exchange").Endpoint.ErrorKind == o365status.ErrorAuditingDisabled
	})
	d := dataset(t, tr, "audit_exchange")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, o365status.ErrorAuditingDisabled, d.Streams[0].LastErrorKind)
	assert.False(t, d.Ready, dump(d))
	assert.Empty(t, d.Permissions.Missing, "the permission is granted")
	require.NotEmpty(t, d.Reasons)
	assert.True(t, containsAny(d.Reasons, "auditing: the tenant's unified audit logging is turned off"), d.Reasons)
	assert.True(t, containsAny(d.Reasons, "Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true"), d.Reasons)
	for _, r := range d.Reasons {
		assert.NotContains(t, r, "the receiver starts it on its next poll", "the probe agrees with the stream")
		assert.NotContains(t, r, "rejected the request (4xx)")
	}
	assert.Empty(t, sim.Subscription(graphsimtest.TenantID(1), "Audit.Exchange"))
}
