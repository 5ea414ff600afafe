package shipping

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// shippedConfigPath is the configuration the packages install and the image carries.
const shippedConfigPath = "packaging/config.yaml"

// stateDir is where the shipped configuration keeps everything.
const stateDir = "/var/lib/otelcol-o365"

// adminToken is the O365_ADMIN_TOKEN the tests give the shipped configuration.
const adminToken = "shipping-admin-token"

// simulator is a Graph simulator with one tenant holding two hours of sign-ins and directory audits,
// and the record ids it serves (the ground truth).
type simulator struct {
	*graphsimtest.Sim
	tenant string
	want   map[string][]string
}

func startSimulator(t *testing.T) *simulator {
	t.Helper()
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 14, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins":          {Count: 300, Span: 2 * time.Hour},
			"directory_audits": {Count: 60, Span: 2 * time.Hour},
		}),
	}})
	tenant := graphsimtest.TenantID(1)
	want := map[string][]string{}
	for _, ds := range []string{"signins", "directory_audits"} {
		want[ds] = sim.IDs(tenant, ds, sim.Anchor().Add(-3*time.Hour), sim.Anchor())
		require.NotEmpty(t, want[ds])
	}
	return &simulator{Sim: sim, tenant: tenant, want: want}
}

// env is what a user puts into /etc/otelcol-o365/otelcol-o365.env (or a Kubernetes Secret) for the
// simulator's tenant.
func (s *simulator) env() []string {
	return []string{
		"O365_TENANT_ID=" + s.tenant,
		"O365_CLIENT_ID=" + graphsimtest.ClientID,
		"O365_CLIENT_SECRET=" + graphsimtest.Secret,
		"O365_ADMIN_TOKEN=" + adminToken,
	}
}

// endpoints are the ports the shipped configuration's HTTP endpoints were moved to.
type endpoints struct{ health, readiness, events, metrics int }

// shippedConfigFor is the shipped configuration (raw: its bytes) with only what a test machine needs
// changed: the receiver reads the simulator (graph_endpoint, authority_host — a real tenant needs
// neither); the HTTP endpoints keep their `${env:O365_LISTEN_ADDRESS…}` host but listen on free ports
// (tests run side by side); and, when state is not stateDir, every path under stateDir moves under state.
// The tenant, the credentials and the listen address stay the environment's, as for a user.
func shippedConfigFor(t *testing.T, raw []byte, sim *simulator, state string) (string, endpoints) {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	section := func(m map[string]any, key string) map[string]any {
		t.Helper()
		v, ok := m[key].(map[string]any)
		require.True(t, ok, "the shipped configuration has a `%s` section", key)
		return v
	}
	o365 := section(section(cfg, "receivers"), "o365")
	o365["graph_endpoint"] = sim.URL()
	o365["authority_host"] = sim.URL() + "/"

	var ep endpoints
	move := func(m map[string]any, port *int) {
		t.Helper()
		addr, _ := m["endpoint"].(string)
		host, _, ok := strings.Cut(addr, "}:")
		require.True(t, ok && strings.HasPrefix(host, "${env:O365_LISTEN_ADDRESS"), "endpoint %q binds the address of O365_LISTEN_ADDRESS", addr)
		*port = proctest.FreePort(t)
		m["endpoint"] = fmt.Sprintf("%s}:%d", host, *port)
	}
	exts := section(cfg, "extensions")
	move(section(exts, "health_check"), &ep.health)
	move(section(exts, "o365_readiness"), &ep.readiness)
	move(section(section(section(cfg, "exporters"), "o365_events"), "server"), &ep.events)
	readers, _ := section(section(section(cfg, "service"), "telemetry"), "metrics")["readers"].([]any)
	require.Len(t, readers, 1, "the shipped configuration has one metrics reader")
	reader, _ := readers[0].(map[string]any)
	prom := section(section(section(reader, "pull"), "exporter"), "prometheus")
	require.Equal(t, "${env:O365_LISTEN_ADDRESS:-127.0.0.1}", prom["host"], "the metrics bind the address of O365_LISTEN_ADDRESS")
	ep.metrics = proctest.FreePort(t)
	prom["port"] = ep.metrics

	if state != stateDir {
		cfg = rebase(cfg, stateDir, state).(map[string]any)
	}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return string(out), ep
}

// rebase replaces the prefix from with to in every string of a decoded YAML document.
func rebase(v any, from, to string) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = rebase(e, from, to)
		}
	case []any:
		for i, e := range v {
			v[i] = rebase(e, from, to)
		}
	case string:
		if rest, ok := strings.CutPrefix(v, from); ok {
			return to + rest
		}
	}
	return v
}

// waitForRecords waits until the file exporter's file holds every id the simulator serves, then
// compares: the same ids, each once.
func waitForRecords(t *testing.T, path string, want map[string][]string, p *proctest.Proc) {
	t.Helper()
	complete := func() bool {
		got := proctest.RecordIDs(t, path)
		for ds, ids := range want {
			if len(got[ds]) < len(ids) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !complete() {
		require.True(t, p.Running(), "the collector exited:\n%s", proctest.Tail(p.Out.String(), 8<<10))
		require.True(t, time.Now().Before(deadline), "after 2 minutes %s holds %v records of %v",
			path, counts(proctest.RecordIDs(t, path)), counts(want))
		time.Sleep(200 * time.Millisecond)
	}
	got := proctest.RecordIDs(t, path)
	for ds, ids := range want {
		require.Equal(t, sorted(ids), sorted(got[ds]), "dataset %s: the ids the simulator serves, each once", ds)
	}
}

// waitForReadiness waits until GET /readiness answers 200, what a Kubernetes readiness probe asks.
func waitForReadiness(t *testing.T, port int, p *proctest.Proc) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/readiness", port)
	status := 0
	deadline := time.Now().Add(time.Minute)
	for status != http.StatusOK {
		require.True(t, p.Running(), "the collector exited:\n%s", proctest.Tail(p.Out.String(), 8<<10))
		require.True(t, time.Now().Before(deadline), "GET %s answers %d after a minute", url, status)
		time.Sleep(200 * time.Millisecond)
		if resp, err := http.Get(url); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
	}
}

// assertMetrics checks that the collector's Prometheus endpoint serves the receiver's metrics.
func assertMetrics(t *testing.T, port int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "otelcol_receiver_accepted_log_records", "the receiver's metrics")
}

func counts(m map[string][]string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

func sorted(ids []string) []string {
	out := append([]string(nil), ids...)
	sort.Strings(out)
	return out
}

// readRepoFile reads a file of the repository.
func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	require.NoError(t, err)
	return b
}
