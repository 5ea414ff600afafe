package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// TestDistributionCollectsExactly builds otelcol-o365 with ocb, runs it against the simulator with
// file_storage, and checks the file exporter's output holds every record exactly once.
func TestDistributionCollectsExactly(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 21, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins": {Count: 3000, Span: 12 * time.Hour, PerTimestamp: 3}, "directory_audits": {Count: 1200, Span: 12 * time.Hour},
		}),
		graphsimtest.Tenant(2, map[string]graphsim.DatasetSpec{"signins": {Count: 700, Span: 12 * time.Hour}}),
	}})
	t.Setenv("E2E_SECRET", graphsimtest.Secret)
	dir := t.TempDir()
	out := filepath.Join(dir, "records.json")
	startCollector(t, fmt.Sprintf(`
extensions:
  file_storage:
    directory: %[1]s
receivers:
  o365:
    storage: file_storage
    poll_interval: 1s
    initial_lookback: 24h
    page_size: 500
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    rate_limits:
      reports: { tenant_requests: 50, app_requests: 100, window: 1s }
    http:
      tls:
        ca_file: %[3]s
    tenants:%[4]s%[5]s
exporters:
  file:
    path: %[6]s
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [o365]
      exporters: [file]
`, dir, sim.URL(), sim.CAFile, simTenantWithDatasets(1), simTenantWithDatasets(2), out))

	from, to := sim.Anchor().Add(-13*time.Hour), sim.Anchor()
	waitForExactly(t, out, map[string][]string{
		"signins": append(sim.IDs(graphsimtest.TenantID(1), "signins", from, to),
			sim.IDs(graphsimtest.TenantID(2), "signins", from, to)...),
		"directory_audits": sim.IDs(graphsimtest.TenantID(1), "directory_audits", from, to),
	})
}
