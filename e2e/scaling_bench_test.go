package e2e

import (
	"bufio"
	"fmt"
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

// BenchmarkDistributionTenantScaling runs one otelcol-o365 process for 10, 50, 200 and 1000 tenants
// (four small datasets each) against a simulator in its own process, and reports, once every stream
// has completed its first poll: resident memory, goroutines, memory per tenant, and the CPU seconds
// one further poll cycle costs. Rate limits are lifted so the collector's own cost is measured (one
// app registration really gets 122 requests per 10 s across all its tenants). `-benchtime 1x`.
func BenchmarkDistributionTenantScaling(b *testing.B) {
	simBin := filepath.Join(b.TempDir(), "graphsim")
	build := exec.Command("go", "build", "-o", simBin, "./internal/graphsim/cmd/graphsim")
	build.Dir = ".."
	out, err := build.CombinedOutput()
	require.NoError(b, err, "%s", out)
	for _, n := range []int{10, 50, 200, 1000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			for b.Loop() {
				res := runScaling(b, simBin, n)
				b.ReportMetric(res.rssMiB, "rss_MiB")
				b.ReportMetric(res.rssMiB*1024/float64(n), "KiB/tenant")
				b.ReportMetric(float64(res.goroutines), "goroutines")
				b.ReportMetric(res.cycleCPU.Seconds(), "cpu_s/cycle")
			}
		})
	}
}

type scalingResult struct {
	rssMiB     float64
	goroutines int
	cycleCPU   time.Duration
}

const scalingPollInterval = 20 * time.Second

func runScaling(b *testing.B, simBin string, tenants int) scalingResult {
	dir := b.TempDir()
	specs := map[string]graphsim.DatasetSpec{
		"signins": {Count: 20, Span: time.Hour}, "directory_audits": {Count: 10, Span: time.Hour},
		"role_assignments": {Count: 5}, "mfa_coverage": {Count: 20},
	}
	cfg := graphsim.Config{Addr: "127.0.0.1:0", Seed: 71}
	var tenantYAML strings.Builder
	for n := 1; n <= tenants; n++ {
		cfg.Tenants = append(cfg.Tenants, graphsimtest.Tenant(n, specs))
		tenantYAML.WriteString(simTenantYAML(n))
		tenantYAML.WriteString(`
        datasets: { signins: { kinds: [interactive] }, directory_audits: {}, role_assignments: {}, mfa_coverage: {} }`)
	}
	raw, err := yaml.Marshal(cfg)
	require.NoError(b, err)
	simCfg := filepath.Join(dir, "sim.yaml")
	require.NoError(b, os.WriteFile(simCfg, raw, 0o600))
	ca := filepath.Join(dir, "ca.pem")
	sim := proctest.Start(b, nil, simBin, "-config", simCfg, "-ca-out", ca)
	defer sim.Kill(b)
	simURL := waitForSimURL(b, sim.Out)

	metricsPort, pprofPort := proctest.FreePort(b), proctest.FreePort(b)
	config := fmt.Sprintf(`
extensions:
  pprof:
    endpoint: 127.0.0.1:%[6]d
receivers:
  o365:
    poll_interval: %[5]s
    graph_endpoint: %[1]s
    authority_host: %[1]s/
    rate_limits:
      reports:   { tenant_requests: 10000, app_requests: 100000, window: 1s }
      directory: { tenant_requests: 10000, app_requests: 100000, window: 1s }
    http:
      tls:
        ca_file: %[2]s
    tenants:%[3]s
exporters:
  debug:
    verbosity: basic
service:
  extensions: [pprof]
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
`, simURL, ca, tenantYAML.String(), metricsPort, scalingPollInterval, pprofPort)
	cfgPath := proctest.WriteFile(b, filepath.Join(dir, "config.yaml"), config)
	col := proctest.StartCollector(b, []string{"E2E_SECRET=" + graphsimtest.Secret}, "--config", cfgPath)
	defer col.Stop(b)

	// Every tenant's first poll: 20 + 10 sign-ins and audits, 5 roles, 20 MFA users + 1 summary.
	want := tenants * (20 + 10 + 5 + 20 + 1)
	deadline := time.Now().Add(10 * time.Minute)
	for acceptedRecords(metricsPort) < want {
		if time.Now().After(deadline) {
			b.Fatalf("first poll cycle did not complete (%d of %d records); collector output:\n%s", acceptedRecords(metricsPort), want, proctest.Tail(col.Out.String(), 16<<10))
		}
		time.Sleep(200 * time.Millisecond)
	}
	rss := col.RSS()
	goroutines := goroutineCount(b, pprofPort)
	cpu0 := col.CPU(b)
	time.Sleep(scalingPollInterval) // one more cycle: every stream polls once more
	cpu := col.CPU(b) - cpu0
	return scalingResult{rssMiB: float64(rss) / (1 << 20), goroutines: goroutines, cycleCPU: cpu}
}

var simURLPattern = regexp.MustCompile(`serving Graph and the token endpoint on (https://\S+)`)

func waitForSimURL(b *testing.B, out *proctest.Buffer) string {
	for range 100 {
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
