package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// TestOwnDistribution builds, with ocb, the manifest of README "Your own distribution" — a team's
// collector that takes our o365 receiver and o365_mapping processor (from this checkout, by `path:`)
// next to stock otlp receiver and exporter, transform and filter processors — and runs it with the
// README's configuration, merged with a second file that points it at the simulator and at a backend
// (our distribution, an OTLP receiver writing a file). The backend must receive every failed sign-in
// and every directory audit exactly once, no successful sign-in (the README's filter), every record
// transformed (the README's transform, after o365_mapping), and an application's log sent to the team
// collector's OTLP receiver, transformed too.
func TestOwnDistribution(t *testing.T) {
	manifest, config := readmeSnippets(t)
	bin := buildOwnDistribution(t, manifest)

	tenant := graphsimtest.TenantID(1)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 14, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins":          {Count: 400, Span: 6 * time.Hour},
			"directory_audits": {Count: 150, Span: 6 * time.Hour},
		}),
	}})
	from, to := sim.Anchor().Add(-7*time.Hour), sim.Anchor()
	failed, succeeded := signInsByOutcome(t, sim, tenant, from, to)
	require.NotEmpty(t, failed)
	require.NotEmpty(t, succeeded, "the filter has something to drop")
	audits := sim.IDs(tenant, "directory_audits", from, to)
	require.Len(t, audits, 150)

	dir := t.TempDir()
	backendPort, otlpPort := proctest.FreePort(t), proctest.FreePort(t)
	backendFile := filepath.Join(dir, "backend.json")
	startBackend(t, dir, backendPort, backendFile)

	// The README's configuration as written, then what points it at this test's world. Lists (the
	// tenants) are replaced by the second file, maps merged.
	readmeCfg := proctest.WriteFile(t, filepath.Join(dir, "readme.yaml"), config)
	overrides := proctest.WriteFile(t, filepath.Join(dir, "test.yaml"), fmt.Sprintf(`
extensions:
  file_storage:
    directory: %[1]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
  o365:
    poll_interval: 1s
    initial_lookback: 24h
    graph_endpoint: %[3]s
    authority_host: %[3]s/
    rate_limits:
      reports: { tenant_requests: 50, app_requests: 100, window: 1s }
    http:
      tls:
        ca_file: %[4]s
    tenants:
      - name: tenant1
        tenant_id: %[5]s
        client_id: %[6]s
        client_secret: ${env:O365_SECRET_CONTOSO}
        datasets:
          signins: { kinds: [interactive] }
          directory_audits: {}
exporters:
  otlp_grpc:
    endpoint: 127.0.0.1:%[7]d
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
`, dir, otlpPort, sim.URL(), sim.CAFile, tenant, graphsimtest.ClientID, backendPort))
	team := proctest.Start(t, []string{"O365_SECRET_CONTOSO=" + graphsimtest.Secret}, bin,
		"--config", readmeCfg, "--config", overrides)
	team.WaitReady(t)
	sendAppLog(t, otlpPort)

	want := len(failed) + len(audits) + 1 // + the application's log
	var got []received
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if got = readReceived(t, backendFile); len(withoutIncidents(got)) >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // more polls: nothing else may arrive
	got = readReceived(t, backendFile)

	byDataset := map[string][]string{}
	var untransformed, uncopied, unfiltered []string
	for _, r := range got {
		key := r.dataset + "/" + r.id
		if r.attrs["team"] != "secops" {
			untransformed = append(untransformed, key)
		}
		if user, ok := r.attrs["user.name"]; ok && r.attrs["siem.user"] != user {
			uncopied = append(uncopied, key)
		}
		if r.attrs["o365.event.type"] == "signin.success" {
			unfiltered = append(unfiltered, key)
		}
		byDataset[r.dataset] = append(byDataset[r.dataset], r.id)
	}
	assert.Empty(t, untransformed, "records without transform/team's team=secops")
	assert.Empty(t, uncopied, "records whose siem.user is not o365_mapping's user.name")
	assert.Empty(t, unfiltered, "successful sign-ins that filter/siem should have dropped")
	assert.ElementsMatch(t, failed, byDataset["signins"], "every failed sign-in, once")
	assert.ElementsMatch(t, audits, byDataset["directory_audits"], "every directory audit, once")
	assert.Equal(t, []string{""}, byDataset["app"], "the application's log through the otlp receiver, once")
	t.Logf("backend received %d failed sign-ins (of %d), %d directory audits, %d incident candidates and the application's log",
		len(byDataset["signins"]), len(failed)+len(succeeded), len(byDataset["directory_audits"]), len(byDataset["incident_candidates"]))

	team.Stop(t)
	require.Equal(t, 0, team.ExitCode(), "the team's collector exits cleanly")
}

// readmeSnippets are the two YAML blocks of README.md's "### Your own distribution": the ocb manifest
// and the collector configuration.
func readmeSnippets(t *testing.T) (manifest, config string) {
	t.Helper()
	readme := string(readFile(t, filepath.Join(repoRoot, "README.md")))
	_, section, ok := strings.Cut(readme, "\n### Your own distribution\n")
	require.True(t, ok, "README.md has a section \"### Your own distribution\"")
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	require.Len(t, blocks, 2, "the section shows the manifest and the configuration")
	return blocks[0][1], blocks[1][1]
}

// buildOwnDistribution builds the manifest with ocb v0.161.0 (as `make build` does, sharing its module
// and build caches), with every `path:` pointing at this checkout, and returns the binary.
func buildOwnDistribution(t *testing.T, manifest string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(manifest), &m))
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	local := 0
	for _, kind := range []string{"receivers", "processors", "exporters", "extensions", "connectors"} {
		list, _ := m[kind].([]any)
		for _, c := range list {
			if cm := c.(map[string]any); cm["path"] != nil {
				cm["path"] = root
				local++
			}
		}
	}
	require.Equal(t, 2, local, "the receiver and the processor come from this checkout")
	out := t.TempDir()
	dist := m["dist"].(map[string]any)
	dist["output_path"] = out
	raw, err := yaml.Marshal(m)
	require.NoError(t, err)
	path := proctest.WriteFile(t, filepath.Join(out, "manifest.yaml"), string(raw))

	start := time.Now()
	cmd := exec.Command("go", "run", "go.opentelemetry.io/collector/cmd/builder@v0.161.0", "--config", path)
	cmd.Dir = out
	log, err := cmd.CombinedOutput()
	require.NoError(t, err, "ocb:\n%s", log)
	t.Logf("ocb built %s in %s", dist["name"], time.Since(start).Round(time.Second))
	return filepath.Join(out, dist["name"].(string))
}

// signInsByOutcome reads the tenant's interactive sign-ins in [from, to] from the simulator and splits
// their ids by status.errorCode (0 = success, what o365_mapping calls signin.success).
func signInsByOutcome(t *testing.T, sim *graphsimtest.Sim, tenant string, from, to time.Time) (failed, succeeded []string) {
	t.Helper()
	q := url.Values{
		"$filter":  {fmt.Sprintf("createdDateTime ge %s and createdDateTime le %s", graphsim.FormatTime(from), graphsim.FormatTime(to))},
		"$orderby": {"createdDateTime asc"},
		"$top":     {"500"},
	}
	for _, raw := range graphsimtest.NewClient(t, sim, tenant).Objects(t, "v1.0", "/auditLogs/signIns", q) {
		var s struct {
			ID     string `json:"id"`
			Status struct {
				ErrorCode *int `json:"errorCode"`
			} `json:"status"`
		}
		require.NoError(t, json.Unmarshal(raw, &s))
		require.NotNil(t, s.Status.ErrorCode, "sign-in %s has a status", s.ID)
		if *s.Status.ErrorCode == 0 {
			succeeded = append(succeeded, s.ID)
		} else {
			failed = append(failed, s.ID)
		}
	}
	return failed, succeeded
}

// sendAppLog sends one log record over OTLP/gRPC, as an application would, with resource attribute
// o365.dataset=app so that the backend's records can be told apart.
func sendAppLog(t *testing.T, port int) {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("o365.dataset", "app")
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("order placed")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(logs))
	require.NoError(t, err)
}

// received is one log record in the backend's file.
type received struct {
	tenant, dataset, id string
	attrs               map[string]any
}

// readReceived parses the backend file exporter's OTLP JSON lines; a line still being written is
// skipped (the caller reads again).
func readReceived(t *testing.T, path string) []received {
	t.Helper()
	var out []received
	proctest.EachRecord(t, path, true, func(res pcommon.Map, lr plog.LogRecord) {
		ds, _ := res.Get("o365.dataset")
		tenant, _ := res.Get("o365.tenant.name")
		id, _ := lr.Attributes().Get("o365.record.id")
		out = append(out, received{tenant: tenant.Str(), dataset: ds.Str(), id: id.Str(), attrs: lr.Attributes().AsRaw()})
	})
	return out
}

func withoutIncidents(rs []received) []received {
	var out []received
	for _, r := range rs {
		if r.dataset != "incident_candidates" {
			out = append(out, r)
		}
	}
	return out
}
