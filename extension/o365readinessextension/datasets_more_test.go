package o365readinessextension

import (
	"net/http"
	"slices"
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

// Security incidents, Intune audit events and risky users on the readiness page: a dataset whose
// permission is granted is ready with its records; one whose permission is missing says which, and for
// which app — not "zero records".
func TestReadinessIncidentsIntuneRiskyUsers(t *testing.T) {
	tenant := graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
		"security_incidents":  {Count: 12, Span: time.Hour, Versions: 3},
		"intune_audit_events": {Count: 17, Span: time.Hour},
		"risky_users":         {Count: 5},
	})
	missing := []string{"SecurityIncident.Read.All", "IdentityRiskyUser.Read.All"}
	tenant.Apps[0].Roles = slices.DeleteFunc(slices.Clone(graphsimtest.AllRoles), func(r string) bool { return slices.Contains(missing, r) })
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 25, Tenants: []graphsim.Tenant{tenant}})
	ext, c := startExtension(t)
	rcfg := simReceiverConfig(sim, 1)
	enabled := true
	rcfg.Tenants[0].Datasets = map[string]o365receiver.DatasetConfig{
		"security_incidents": {Enabled: &enabled}, "intune_audit_events": {Enabled: &enabled}, "risky_users": {Enabled: &enabled},
	}
	startReceiver(t, rcfg, new(consumertest.LogsSink), ext)

	status, tr := c.waitTenant("tenant1", polledOnce)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	require.False(t, tr.Ready)
	require.Len(t, tr.Datasets, 3, dump(tr))

	intune := dataset(t, tr, "intune_audit_events")
	assert.True(t, intune.Ready, dump(intune))
	assert.Equal(t, 17, intune.RecordsLastPoll)
	assert.Equal(t, "Microsoft Intune", intune.Licence)
	assert.Equal(t, PermissionStatus{Required: []string{"DeviceManagementApps.Read.All"}, Granted: []string{"DeviceManagementApps.Read.All"},
		Missing: []string{}, Known: true}, intune.Permissions)

	for name, perm := range map[string]string{"security_incidents": "SecurityIncident.Read.All", "risky_users": "IdentityRiskyUser.Read.All"} {
		d := dataset(t, tr, name)
		assert.False(t, d.Ready, name)
		assert.Equal(t, []string{perm}, d.Permissions.Missing, name)
		require.NotEmpty(t, d.Reasons, name)
		assert.Contains(t, d.Reasons[0], "permission: "+perm+" is not granted", name)
		assert.Contains(t, d.Reasons[0], graphsimtest.ClientID, "the reason names the app to fix")
		assert.Equal(t, o365status.StateCoolingDown, d.State, name)
		assert.True(t, containsAny(tr.Reasons, name+": permission: "+perm+" is not granted"), tr.Reasons)
	}
	assert.Equal(t, "Microsoft Defender XDR", dataset(t, tr, "security_incidents").Licence)
	assert.Equal(t, "Entra ID P2", dataset(t, tr, "risky_users").Licence)
}
