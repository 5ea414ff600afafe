package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// BenchmarkDistributionAtGraphCeiling runs the distribution — receiver, o365_mapping, o365_export and
// the file exporter or an OTLP exporter — for 25 tenants on one app registration against a simulator that enforces Graph's
// documented limits for sign-ins (5 requests per 10 s per tenant, 122 per 10 s per app): the app-wide
// ceiling of ~12k records/s binds. It reports the share of that ceiling served, records/s, and the
// collector's CPU as a share of one core over the measured minute. `-benchtime 1x`.
func BenchmarkDistributionAtGraphCeiling(b *testing.B) {
	const tenants = 25
	var specs []graphsim.Tenant
	var tenantYAML strings.Builder
	for n := 1; n <= tenants; n++ {
		specs = append(specs, graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{"signins": {Count: 400_000, Span: 24 * time.Hour}}))
		tenantYAML.WriteString(simTenantYAML(n) + `
        datasets: { signins: { kinds: [interactive] } }`)
	}
	sim := graphsimtest.Start(b, graphsim.Config{Seed: 81, Tenants: specs, RateLimits: graphsim.RateLimits{Enforce: true}})
	b.Setenv("E2E_SECRET", graphsimtest.Secret)
	// Where the normalized records go: the file exporter (JSON lines on disk), or OTLP to a second
	// collector (a backend in its own process, whose CPU is not counted) — what a deployment forwarding
	// to an OTLP backend pays — over gRPC with the exporter's default gzip, zstd or snappy, or over HTTP
	// with zstd (whose HTTP compressor defaults to zstd's fastest level; gRPC's is fixed at the default).
	otlp := func(protocol, compression string) func(b *testing.B, dir string) string {
		return func(b *testing.B, dir string) string {
			port := proctest.FreePort(b)
			backend := proctest.StartCollector(b, nil, "--config", proctest.WriteFile(b, filepath.Join(dir, "backend.yaml"), fmt.Sprintf(`
receivers:
  otlp: { protocols: { %s: { endpoint: 127.0.0.1:%d } } }
exporters:
  debug: { verbosity: basic }
service:
  telemetry: { metrics: { level: none } }
  pipelines: { logs: { receivers: [otlp], exporters: [debug] } }
`, protocol, port)))
			backend.WaitReady(b)
			if protocol == "http" {
				return fmt.Sprintf("otlp_http: { endpoint: http://127.0.0.1:%d, compression: %s }", port, compression)
			}
			return fmt.Sprintf("otlp_grpc: { endpoint: 127.0.0.1:%d, tls: { insecure: true }, compression: %s }", port, compression)
		}
	}
	// The README's production exporter: the queue persistent in sql_storage (or file_storage), batching
	// in it bounded in bytes, never giving up — what keeps "accepted" meaning written (its Guarantees).
	persistent := func(storage string) func(b *testing.B, dir string) string {
		return func(b *testing.B, dir string) string {
			e := otlp("grpc", "zstd")(b, dir)
			return strings.TrimSuffix(e, " }") + `, sending_queue: { storage: ` + storage + `, batch: { sizer: bytes, min_size: 1000000, max_size: 3000000 } }, retry_on_failure: { max_elapsed_time: 0 } }`
		}
	}
	file := func(_ *testing.B, dir string) string {
		return fmt.Sprintf("file: { path: %s/normalized.json }", dir)
	}
	// mapping is o365_mapping's configuration: the default keeps the Graph object as the body;
	// keep_raw: false forwards the normalized attributes only (the README's advice when the backend
	// does not need the object itself). env is the collector's environment: the last case is the
	// README's whole advice for forwarding at volume, the garbage collector's room included.
	for _, c := range []struct {
		name    string
		forward func(b *testing.B, dir string) string
		mapping string
		env     []string
	}{
		{"forward=file", file, "", nil},
		{"forward=otlp_gzip", otlp("grpc", "gzip"), "", nil},
		{"forward=otlp_zstd", otlp("grpc", "zstd"), "", nil},
		{"forward=otlp_zstd/keep_raw=false", otlp("grpc", "zstd"), "keep_raw: false", nil},
		{"forward=otlp_http_zstd/keep_raw=false", otlp("http", "zstd"), "keep_raw: false", nil},
		{"forward=otlp_snappy/keep_raw=false", otlp("grpc", "snappy"), "keep_raw: false", nil},
		{"forward=otlp_zstd/keep_raw=false/gogc=400", otlp("grpc", "zstd"), "keep_raw: false", volumeEnv},
		{"forward=otlp_zstd_persistent_queue/keep_raw=false/gogc=400", persistent("sql_storage"), "keep_raw: false", volumeEnv},
		{"forward=otlp_zstd_file_storage_queue/keep_raw=false/gogc=400", persistent("file_storage"), "keep_raw: false", volumeEnv},
	} {
		b.Run(c.name, func(b *testing.B) {
			// O365_CEILING_ENV="GOGC=200 GOMEMLIMIT=1GiB" adds to (and overrides) a case's environment.
			env := append(slices.Clone(c.env), strings.Fields(os.Getenv("O365_CEILING_ENV"))...)
			for b.Loop() {
				runAtCeiling(b, sim, tenantYAML.String(), c.forward, c.mapping, env)
			}
		})
	}
}

// saveProfile writes one of the collector's pprof profiles (path under /debug/pprof/) to file.
func saveProfile(port int, path, file string) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/%s", port, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("pprof answered %s", resp.Status)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o600)
}

// volumeEnv is the garbage collector's room the README advises for forwarding at volume: a heap up to
// five times the live one (GOGC=400), bounded by GOMEMLIMIT.
var volumeEnv = []string{"GOGC=400", "GOMEMLIMIT=2GiB"}

// runAtCeiling runs the collector for 30 s of warm-up and a measured minute, and reports.
func runAtCeiling(b *testing.B, sim *graphsimtest.Sim, tenantYAML string, forward func(*testing.B, string) string, mapping string, env []string) {
	dir := b.TempDir()
	metricsPort, pprofPort := proctest.FreePort(b), proctest.FreePort(b)
	exporter := forward(b, dir)
	exporterID := strings.SplitN(exporter, ":", 2)[0]
	cfg := fmt.Sprintf(`
extensions:
  sql_storage:
    path: %[1]s/state.db
  file_storage:
    directory: %[1]s
  pprof:
    endpoint: 127.0.0.1:%[8]d
receivers:
  o365:
    storage: sql_storage
    poll_interval: 1h
    initial_lookback: 25h
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    http:
      tls:
        ca_file: %[3]s
    tenants:%[4]s
processors:
  o365_mapping: {%[9]s}
exporters:
  %[6]s
  o365_export:
    directory: { path: %[1]s/export }
service:
  extensions: [sql_storage, file_storage, pprof]
  telemetry:
    logs: { level: warn }
    metrics:
      level: basic
      readers:
        - pull: { exporter: { prometheus: { host: 127.0.0.1, port: %[5]d } } }
  pipelines:
    logs:
      receivers: [o365]
      processors: [o365_mapping]
      exporters: [%[7]s, o365_export]
`, dir, sim.URL(), sim.CAFile, tenantYAML, metricsPort, exporter, exporterID, pprofPort, mapping)
	cfgPath := proctest.WriteFile(b, filepath.Join(dir, "config.yaml"), cfg)
	// The simulator's windows still hold the previous run's requests, which a new collector cannot
	// know of: let them pass, as they would between two collectors sharing an app registration.
	time.Sleep(11 * time.Second)
	st0 := sim.Stats()
	// env is the collector's alone: this process runs the simulator, whose own GC is left as it is.
	col := proctest.StartCollector(b, env, "--config", cfgPath)

	time.Sleep(30 * time.Second) // tokens, the first bursts of every tenant
	start, cpu0 := time.Now(), col.CPU(b)
	// O365_CEILING_CPUPROFILE=<file>: the collector's CPU profile of the measured minute (pprof
	// extension), to tell where its share of a core goes.
	// O365_CEILING_ALLOCPROFILE=<file>: the allocations since the start, at the start of the minute
	// (<file>.base) and at its end; `go tool pprof -base <file>.base <file>` is the minute's.
	allocs := os.Getenv("O365_CEILING_ALLOCPROFILE")
	if allocs != "" {
		if err := saveProfile(pprofPort, "allocs", allocs+".base"); err != nil {
			b.Fatal(err)
		}
	}
	if f := os.Getenv("O365_CEILING_CPUPROFILE"); f != "" {
		if err := saveProfile(pprofPort, "profile?seconds=60", f); err != nil {
			b.Fatal(err)
		}
	} else {
		time.Sleep(60 * time.Second)
	}
	if allocs != "" {
		if err := saveProfile(pprofPort, "allocs", allocs); err != nil {
			b.Fatal(err)
		}
	}
	// O365_CEILING_HEAPPROFILE=<file>: what is live at the end of the minute (after a GC).
	if f := os.Getenv("O365_CEILING_HEAPPROFILE"); f != "" {
		if err := saveProfile(pprofPort, "heap?gc=1", f); err != nil {
			b.Fatal(err)
		}
	}
	end, cpu := time.Now(), col.CPU(b)-cpu0
	peakRSS, rss := col.PeakRSS(), col.RSS()
	col.Stop(b)

	served, requests := 0, 0
	for _, req := range sim.Requests() {
		if req.Status == http.StatusOK && !req.At.Before(start) && req.At.Before(end) {
			served += req.Records
			requests++
		}
	}
	// O365_CEILING_REQUEST_LOG=<file>: the simulator's request log (arrival, tenant, status) as JSON,
	// to tell which window a 429 overran and by how much.
	if f := os.Getenv("O365_CEILING_REQUEST_LOG"); f != "" {
		data, err := json.Marshal(sim.Requests())
		if err == nil {
			err = os.WriteFile(f, data, 0o600)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	wall := end.Sub(start).Seconds()
	st := sim.Stats()
	b.ReportMetric(float64(requests)/wall/12.2*100, "app_budget_%")
	b.ReportMetric(float64(served)/wall, "records/s")
	b.ReportMetric(cpu.Seconds()/wall*100, "cpu_%_of_one_core")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak_rss_MiB") // over the whole run, the first catch-up included
	b.ReportMetric(float64(rss)/(1<<20), "rss_end_MiB")
	// The client keeps its own sliding windows of write times, rate_limit_margin wider than Graph's (and
	// wider still after a 429 they had room for); the simulator counts arrivals. On a 2-core machine
	// also running the simulator, a request can reach it more than the margin after it was written, so
	// an occasional 429 is possible — it is reported, and honoured. The simulator's early_arrivals also counts requests that were already on
	// the wire when a 429 was sent; the reliability suite's throttling storm (scenario 2) tells those
	// from requests sent after the client knew, and requires 0 of the latter.
	b.ReportMetric(float64(st.Throttled-st0.Throttled), "throttled")
	b.ReportMetric(float64(st.Violations-st0.Violations), "early_arrivals")
	b.ReportMetric(float64(st.GraphRequests-st0.GraphRequests), "requests")
}
