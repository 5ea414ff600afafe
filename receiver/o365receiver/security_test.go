package o365receiver

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// A nextLink to another host fails the poll with the host named, and no request — no token — reaches
// that host; the stream keeps its position, so once Graph's links are its own again the next poll
// collects everything exactly once. Risk detections are paged by nextLink alone (no $orderby to split
// a window by time).
func TestForeignNextLinkIsNotFollowed(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 81, ForeignNextLinks: true, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"risk_detections": {Count: 300, Span: time.Hour}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.MaxCooldown = 300 * time.Millisecond
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"risk_detections": {}}
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, sink)

	foreign, err := url.Parse(sim.ForeignURL())
	require.NoError(t, err)
	var failed StreamStatus
	require.Eventually(t, func() bool {
		failed = r.Streams()[0]
		return failed.LastErrorKind != "" || len(sim.ForeignRequests()) > 0
	}, 30*time.Second, 5*time.Millisecond, "the poll fails or follows the link")
	require.Empty(t, sim.ForeignRequests(), "no request, so no token, reached the foreign host")
	require.Equal(t, o365status.ErrorForeignHost, failed.LastErrorKind, failed.LastError)
	require.Contains(t, failed.LastError, `host "`+foreign.Host+`"`, "the error names the foreign host")
	require.Less(t, sink.LogRecordCount(), 300, "the poll did not complete")

	require.NoError(t, sim.SetForeignNextLinks(false))
	from := sim.Anchor().Add(-2 * time.Hour)
	requireExactly(t, sink, map[string][]string{"risk_detections": sim.IDs(graphsimtest.TenantID(1), "risk_detections", from, sim.Anchor())})
	require.Empty(t, sim.ForeignRequests())
	for _, st := range r.Streams() {
		require.False(t, strings.Contains(st.LastError, foreign.Host), "recovered: %s", st.LastError)
	}
}

// Tokens are requested for the tenant's cloud's Graph resource, wherever graph_endpoint points (here a
// simulator of the US Government cloud); a cloud that does not match is refused by Entra ID with
// AADSTS500011, and graph_resource overrides the cloud's resource.
func TestTokenScopeFollowsTheCloud(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 82, Cloud: "usgov", Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"directory_audits": {Count: 20, Span: time.Hour}}),
	}})
	run := func(cloud, resource string) (*o365Receiver, *consumertest.LogsSink) {
		cfg := simConfig(sim, 1)
		cfg.GraphResource = resource
		cfg.Tenants[0].Cloud = cloud
		cfg.Tenants[0].Datasets = map[string]DatasetConfig{"directory_audits": {}}
		sink := new(consumertest.LogsSink)
		return startReceiver(t, cfg, sink), sink
	}
	ids := sim.IDs(graphsimtest.TenantID(1), "directory_audits", sim.Anchor().Add(-2*time.Hour), sim.Anchor())

	_, gov := run("usgov", "")
	requireExactly(t, gov, map[string][]string{"directory_audits": ids})

	public, _ := run("public", "")
	require.Eventually(t, func() bool { return public.Streams()[0].LastErrorKind == o365status.ErrorAuth }, 30*time.Second, 5*time.Millisecond)
	require.Contains(t, public.Streams()[0].LastError, "AADSTS500011: The resource principal named https://graph.microsoft.com was not found")

	_, overridden := run("public", "https://graph.microsoft.us")
	requireExactly(t, overridden, map[string][]string{"directory_audits": ids})
}
