package deploy

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// A federated token as the workload identity webhook projects it (the simulator compares it, Entra ID
// would verify it).
const federatedToken = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwczovL29pZGMuZXhhbXBsZSIsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpvdGVsY29sLW8zNjU6b3RlbGNvbC1vMzY1In0.c2lnbmF0dXJl"

// TestDeploymentsRun runs the collector configuration of each kustomization as its pods would — the
// ConfigMap's file with the container's environment: the Secret's keys (Postgres: a real database) and
// what the workload identity webhook sets — against a simulator whose tenants are the configuration's
// own (contoso: workload identity, fabrikam: client secret), with a second file that only moves what a
// pod has to this machine: the Graph endpoints, the volume's paths, the listen addresses, the
// exporter's endpoint (and Graph's request budget, for speed). No Secret value appears in their logs. The sqlite variant runs one replica, the postgres variant two sharing the
// database. Each replica's probes answer 200 on their paths, the admin route takes the Secret's token,
// and the backend receives every record of both tenants exactly once.
func TestDeploymentsRun(t *testing.T) {
	for _, v := range []struct {
		dir      string
		replicas int
	}{{"sqlite", 1}, {"postgres", 2}} {
		t.Run(v.dir, func(t *testing.T) {
			d := renderKustomization(t, filepath.Join(deployDir, "kubernetes", v.dir))
			runDeployment(t, d, v.replicas)
		})
	}
}

func runDeployment(t *testing.T, d deployment, replicas int) {
	cfg := collectorConfig{d.config}
	c := d.pod.Spec.Containers[0]
	dir := t.TempDir()

	// The Secret's values, by key: a client secret for each tenant that reads one, a Postgres DSN,
	// an admin token.
	secrets := map[string]string{}
	envOfKey := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			envOfKey[e.ValueFrom.SecretKeyRef.Key] = e.Name
		}
	}
	for key, env := range envOfKey {
		switch {
		case strings.HasSuffix(env, "_DSN"):
			secrets[key] = pgtest.DSN(t)
		default:
			secrets[key] = fmt.Sprintf("%s-%d", key, time.Now().UnixNano())
		}
	}
	env := []string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env = append(env, e.Name+"="+secrets[e.ValueFrom.SecretKeyRef.Key])
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		}
	}
	tokenFile := proctest.WriteFile(t, filepath.Join(dir, "azure-identity-token"), federatedToken)
	env = append(env, "AZURE_FEDERATED_TOKEN_FILE="+tokenFile) // what the webhook adds

	// The simulator serves the configuration's tenants, with its apps and their credentials.
	envValue := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		envValue[k] = v
	}
	var tenants []graphsim.Tenant
	for _, r := range cfg.active(t, "receivers") {
		for _, raw := range r.settings["tenants"].([]any) {
			tm := asMap(raw)
			app := graphsim.App{ClientID: stringOr(tm["client_id"], ""), Roles: graphsimtest.AllRoles}
			if _, ok := tm["workload_identity"]; ok {
				app.FederatedToken = federatedToken
			} else {
				refs := envRefs(stringOr(tm["client_secret"], ""))
				require.Len(t, refs, 1, "tenant %v: client_secret from the environment", tm["name"])
				app.Secret = envValue[refs[0]]
				require.NotEmpty(t, app.Secret, "tenant %v: %s is set from the Secret", tm["name"], refs[0])
			}
			tenants = append(tenants, graphsim.Tenant{
				ID: stringOr(tm["tenant_id"], ""), Name: stringOr(tm["name"], ""), Apps: []graphsim.App{app},
				Datasets: map[string]graphsim.DatasetSpec{
					"signins":          {Count: 120, Span: 2 * time.Hour},
					"directory_audits": {Count: 60, Span: 2 * time.Hour},
				},
			})
		}
	}
	require.Len(t, tenants, 2)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 1414, Tenants: tenants})

	backendPort := proctest.FreePort(t)
	backendFile := filepath.Join(dir, "backend.json")
	startBackend(t, dir, backendPort, backendFile)

	// Replicas on Postgres share one database: a fresh table prefix for the test.
	var tablePrefix string
	for _, e := range cfg.active(t, "extensions") {
		if e.typ == "sql_storage" && e.settings["driver"] == "postgres" {
			tablePrefix = pgtest.TablePrefix(t, pgtest.DSN(t), "deploy")
		}
	}
	cfgPath := proctest.WriteFile(t, filepath.Join(dir, "config.yaml"), d.configText)
	var pods []*pod
	for i := range replicas {
		p := &pod{dir: filepath.Join(dir, fmt.Sprintf("replica-%d", i)), ports: map[string]int{}}
		raw, err := yaml.Marshal(podOverrides(t, cfg, c, p, sim, backendPort, tablePrefix))
		require.NoError(t, err)
		overridePath := proctest.WriteFile(t, filepath.Join(p.dir, "pod.yaml"), string(raw))
		p.proc = proctest.StartCollector(t, env, "--config", cfgPath, "--config", overridePath)
		pods = append(pods, p)
	}
	for _, p := range pods {
		p.proc.WaitReady(t)
	}

	// The kubelet's view: every probe of the container answers 200 on its port and path.
	for i, p := range pods {
		for name, probe := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if probe == nil {
				continue
			}
			port, ok := containerPort(c, probe.HTTPGet.Port.String())
			require.True(t, ok)
			url := fmt.Sprintf("http://127.0.0.1:%d%s", p.ports[fmt.Sprint(port)], probe.HTTPGet.Path)
			require.Eventually(t, func() bool { return httpStatus(t, http.MethodGet, url, "") == http.StatusOK },
				time.Minute, 200*time.Millisecond, "replica %d: %s probe GET %s answers 200", i, name, url)
		}
	}
	// The admin route takes the Secret's token, and only it.
	readiness := pods[0].ports[fmt.Sprint(cfg.extension(t, "o365_readiness").listener(t).port)]
	run := fmt.Sprintf("http://127.0.0.1:%d/run/contoso", readiness)
	assert.Contains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, httpStatus(t, http.MethodPost, run, "Bearer not-the-token"),
		"POST /run without the Secret's token is refused")
	assert.Equal(t, http.StatusAccepted, httpStatus(t, http.MethodPost, run, "Bearer "+envValue["O365_ADMIN_TOKEN"]))

	// Every record of both tenants reaches the backend once, whichever replica polled its tenant.
	from, to := sim.Anchor().Add(-3*time.Hour), sim.Anchor()
	want := map[string][]string{}
	total := 0
	for _, tn := range tenants {
		for _, ds := range []string{"signins", "directory_audits"} {
			ids := sim.IDs(tn.ID, ds, from, to)
			want[tn.Name+"/"+ds] = ids
			total += len(ids)
		}
	}
	got := map[string][]string{}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		got = receivedByTenant(t, backendFile)
		if n := countWanted(got, want); n >= total {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // more polls: nothing else may arrive
	got = receivedByTenant(t, backendFile)
	for key, ids := range want {
		assert.ElementsMatch(t, ids, got[key], "%s: every record once", key)
	}
	for i, p := range pods {
		p.proc.Stop(t)
		assert.Equal(t, 0, p.proc.ExitCode(), "a replica exits cleanly")
		for key, value := range secrets {
			if !strings.HasSuffix(envOfKey[key], "_DSN") { // the local DSN holds no password
				assert.NotContains(t, p.proc.Out.String(), value, "replica %d logged the Secret's %s", i, key)
			}
		}
	}
}

// pod is one replica run here: its volume's directory and its listen ports by container port.
type pod struct {
	dir   string
	ports map[string]int
	proc  *proctest.Proc
}

// podOverrides is the second configuration file of a replica: the volume's paths under its
// directory, its servers on free loopback ports, the receiver pointed at the simulator and the OTLP
// exporter at the backend, the shared database's tables under the test's prefix, and a request budget
// for the simulator's speed. Nothing else of the shipped configuration changes.
func podOverrides(t *testing.T, cfg collectorConfig, c corev1.Container, p *pod, sim *graphsimtest.Sim, backendPort int, tablePrefix string) map[string]any {
	t.Helper()
	extensions := map[string]any{}
	for _, e := range cfg.active(t, "extensions") {
		if _, listens := defaultEndpoints[e.typ]; listens {
			free := proctest.FreePort(t)
			p.ports[fmt.Sprint(e.listener(t).port)] = free
			extensions[e.id] = map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", free)}
		}
	}
	for _, w := range cfg.writtenPaths(t) {
		m := mountOf(c, w.path)
		require.NotNil(t, m)
		key := map[string]string{"sql_storage": "path", "file_storage": "directory"}[strings.Split(w.component, "/")[0]]
		require.NotEmpty(t, key, "%s: a path this test can move", w.component)
		extensions[w.component] = map[string]any{key: filepath.Join(p.dir, strings.TrimPrefix(w.path, m.MountPath))}
	}
	for _, e := range cfg.active(t, "extensions") {
		if e.typ == "sql_storage" && e.settings["driver"] == "postgres" {
			extensions[e.id] = map[string]any{"table_prefix": tablePrefix}
		}
	}
	receivers := map[string]any{}
	for _, r := range cfg.active(t, "receivers") {
		receivers[r.id] = map[string]any{
			"graph_endpoint": sim.URL(), "authority_host": sim.URL() + "/", "poll_interval": "1s",
			"http": map[string]any{"tls": map[string]any{"ca_file": sim.CAFile}},
			// Graph's budget (5 requests per 10 s per tenant) would spread a tenant's first poll of
			// its nine streams over 20 s; the simulator enforces none.
			"rate_limits": map[string]any{"reports": map[string]any{"tenant_requests": 50, "app_requests": 100, "window": "1s"}},
		}
	}
	exporters := map[string]any{}
	for _, e := range cfg.active(t, "exporters") {
		exporters[e.id] = map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", backendPort), "tls": map[string]any{"insecure": true}}
	}
	return map[string]any{
		"extensions": extensions, "receivers": receivers, "exporters": exporters,
		// The pods' internal telemetry would all listen on localhost:8888 here.
		"service": map[string]any{"telemetry": map[string]any{"metrics": map[string]any{"level": "none"}}},
	}
}

func httpStatus(t *testing.T, method, url, auth string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// startBackend runs our distribution as the OTLP backend: an otlp receiver writing a file.
func startBackend(t *testing.T, dir string, port int, file string) {
	t.Helper()
	cfg := proctest.WriteFile(t, filepath.Join(dir, "backend.yaml"), fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: %s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file]
`, port, file))
	proctest.StartCollector(t, nil, "--config", cfg).WaitReady(t)
}

// receivedByTenant groups the backend's record ids by tenant/dataset.
func receivedByTenant(t *testing.T, path string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range readReceived(t, path) {
		out[r.tenant+"/"+r.dataset] = append(out[r.tenant+"/"+r.dataset], r.id)
	}
	return out
}

func countWanted(got, want map[string][]string) int {
	n := 0
	for key := range want {
		n += len(got[key])
	}
	return n
}
