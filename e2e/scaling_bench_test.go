package e2e

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// BenchmarkDistributionTenantScaling runs one otelcol-o365 process for thousands of tenants × (sign-ins,
// directory audits), polled every 5 min, against a simulator in its own process (small datasets: it
// generates records lazily, so 10 000 tenants cost it little). Once every stream has completed its first
// poll it reports goroutines and the latency of one tenant's readiness (GET
// /tenants/{name}/readiness, the slowest of 10); then, after one more whole poll interval, the steady
// CPU over that interval in cores and the peak resident memory (VmHWM) of the whole run, first polls
// included. Rate limits are lifted so the collector's own cost is measured (one app registration
// really gets 122 requests per 10 s across all its tenants). The sizes are O365_SCALING_TENANTS
// (comma-separated, default 1000,10000). `-benchtime 1x`.
func BenchmarkDistributionTenantScaling(b *testing.B) {
	simBin := filepath.Join(b.TempDir(), "graphsim")
	build := exec.Command("go", "build", "-o", simBin, "./internal/graphsim/cmd/graphsim")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(b, err, "%s", out)
	sizes := cmp.Or(os.Getenv("O365_SCALING_TENANTS"), "1000,10000")
	for _, size := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(size))
		require.NoError(b, err, "O365_SCALING_TENANTS")
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				res := runScaling(b, simBin, n)
				b.ReportMetric(res.peakRSSMiB, "peak_rss_MiB")
				b.ReportMetric(res.rssMiB, "rss_MiB")
				b.ReportMetric(float64(res.goroutines), "goroutines")
				b.ReportMetric(res.firstCycle.Seconds(), "first_cycle_s")
				b.ReportMetric(res.steadyCores, "steady_cores")
				b.ReportMetric(float64(res.readiness.Microseconds())/1000, "readiness_ms")
			}
		})
	}
}

type scalingResult struct {
	peakRSSMiB, rssMiB float64
	goroutines         int
	firstCycle         time.Duration // from the collector's start until every stream completed a poll
	steadyCores        float64       // CPU over one poll interval after the first cycle, in cores
	readiness          time.Duration // the slowest of 10 GET /tenants/{name}/readiness
}

const scalingPollInterval = 5 * time.Minute

func runScaling(b *testing.B, simBin string, tenants int) scalingResult {
	dir := b.TempDir()
	specs := map[string]graphsim.DatasetSpec{
		"signins": {Count: 2, Span: time.Hour}, "directory_audits": {Count: 1, Span: time.Hour},
	}
	cfg := graphsim.Config{Addr: "127.0.0.1:0", Seed: 71}
	var tenantYAML strings.Builder
	for n := 1; n <= tenants; n++ {
		cfg.Tenants = append(cfg.Tenants, graphsimtest.Tenant(n, specs))
		tenantYAML.WriteString(simTenantWithDatasets(n))
	}
	raw, err := yaml.Marshal(cfg)
	require.NoError(b, err)
	simCfg := filepath.Join(dir, "sim.yaml")
	require.NoError(b, os.WriteFile(simCfg, raw, 0o600))
	ca := filepath.Join(dir, "ca.pem")
	sim := proctest.Start(b, nil, simBin, "-config", simCfg, "-ca-out", ca)
	defer sim.Kill(b)
	simURL := waitForSimURL(b, sim.Out)

	metricsPort, pprofPort, readinessPort := proctest.FreePort(b), proctest.FreePort(b), proctest.FreePort(b)
	config := fmt.Sprintf(`
extensions:
  pprof:
    endpoint: 127.0.0.1:%[6]d
  o365_readiness:
    endpoint: 127.0.0.1:%[7]d
receivers:
  o365:
    poll_interval: %[5]s
    graph_endpoint: %[1]s
    authority_host: %[1]s/
    rate_limits:
      reports:   { tenant_requests: 10000, app_requests: 1000000, window: 1s }
      directory: { tenant_requests: 10000, app_requests: 1000000, window: 1s }
    http:
      tls:
        ca_file: %[2]s
    tenants:%[3]s
exporters:
  debug:
    verbosity: basic
service:
  extensions: [pprof, o365_readiness]
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus: { host: 127.0.0.1, port: %[4]d }
  pipelines:
    logs:
      receivers: [o365]
      exporters: [debug]
`, simURL, ca, tenantYAML.String(), metricsPort, scalingPollInterval, pprofPort, readinessPort)
	cfgPath := proctest.WriteFile(b, filepath.Join(dir, "config.yaml"), config)
	began := time.Now()
	col := proctest.StartCollector(b, []string{"E2E_SECRET=" + graphsimtest.Secret}, "--config", cfgPath)
	defer col.Stop(b)

	want := tenants * (2 + 1) // every tenant's first poll: its sign-ins and audits
	deadline := time.Now().Add(scalingPollInterval)
	for acceptedRecords(metricsPort) < want {
		if time.Now().After(deadline) {
			b.Fatalf("first poll cycle did not complete (%d of %d records); collector output:\n%s", acceptedRecords(metricsPort), want, proctest.Tail(col.Out.String(), 16<<10))
		}
		time.Sleep(200 * time.Millisecond)
	}
	res := scalingResult{firstCycle: time.Since(began), goroutines: goroutineCount(b, pprofPort)}
	res.readiness = slowestReadiness(b, readinessPort, fmt.Sprintf("tenant%d", (tenants+1)/2), 10)
	cpu0, t0 := col.CPU(b), time.Now()
	time.Sleep(scalingPollInterval) // one more cycle: every stream polls once more
	res.steadyCores = (col.CPU(b) - cpu0).Seconds() / time.Since(t0).Seconds()
	res.rssMiB = float64(col.RSS()) / (1 << 20)
	res.peakRSSMiB = float64(col.PeakRSS()) / (1 << 20)
	return res
}

// slowestReadiness is the longest of n GET /tenants/{name}/readiness on the readiness extension, each
// answered 200 (the tenant's streams have polled successfully, so no probe is sent).
func slowestReadiness(tb testing.TB, port int, tenant string, n int) time.Duration {
	var slowest time.Duration
	for range n {
		start := time.Now()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/tenants/%s/readiness", port, tenant))
		require.NoError(tb, err)
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		require.NoError(tb, err)
		require.Equal(tb, http.StatusOK, resp.StatusCode)
		slowest = max(slowest, took)
	}
	return slowest
}

var simURLPattern = regexp.MustCompile(`serving Graph and the token endpoint on (https://\S+)`)

func waitForSimURL(b *testing.B, out *proctest.Buffer) string {
	for range 600 { // a minute: reading 10 000 tenants' configuration takes seconds on a busy machine
		if m := simURLPattern.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("the simulator did not start: %s", out.String())
	return ""
}

// goroutineCount reads the total from the pprof extension's goroutine profile.
func goroutineCount(tb testing.TB, port int) int {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", port))
	require.NoError(tb, err)
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n') // "goroutine profile: total N"
	n, err := strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, " ")+1:]))
	require.NoError(tb, err, line)
	return n
}
