package o365receiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// TestOneTenantIsWhatTheListSays: the per-tenant lookups (one tenant among thousands for the readiness
// routes) answer what the whole lists do for that tenant.
func TestOneTenantIsWhatTheListSays(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"signins": {Count: 3, Span: time.Hour}, "directory_audits": {Count: 2, Span: time.Hour}}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 19, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, spec), graphsimtest.Tenant(2, spec), graphsimtest.Tenant(3, spec),
	}})
	cfg := simConfig(sim, 1, 2, 3)
	cfg.Tenants[1].Datasets = map[string]DatasetConfig{"directory_audits": {}}
	r := startReceiver(t, cfg, new(consumertest.LogsSink))
	require.Eventually(t, func() bool {
		for _, st := range r.Streams() {
			if st.LastSuccess.IsZero() {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond)
	for _, tk := range r.tasks { // statuses stay still while they are compared
		r.sched.stop(tk.current)
		<-tk.current.done
	}
	streams := r.Streams()
	for _, want := range r.Tenants() {
		got, ok := r.Tenant(want.Name)
		require.True(t, ok, want.Name)
		require.Equal(t, want, got)
		var wantStreams []StreamStatus
		for _, st := range streams {
			if st.Tenant == want.Name {
				wantStreams = append(wantStreams, st)
			}
		}
		require.Equal(t, wantStreams, r.TenantStreams(want.Name))
	}
	require.Len(t, r.TenantStreams("tenant2"), 1, "the tenant's own streams only")
	_, ok := r.Tenant("tenant4")
	require.False(t, ok)
	require.Empty(t, r.TenantStreams("tenant4"))
}
