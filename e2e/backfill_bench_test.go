package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// BenchmarkDistributionBackfill runs the built distribution against a simulator holding 1M sign-ins
// (no latency, no rate limit: the collector's own cost) into the file exporter, and reports wall time,
// records/s, peak RSS and CPU seconds per 100k records of the collector process. Run with
// `-benchtime 1x` (make bench does): one backfill is one measurement. O365_BENCH_RECORDS overrides the
// size, O365_BENCH_CONCURRENCY the receiver's max_concurrent_requests (default: the receiver's default),
// O365_BENCH_GOMEMLIMIT sets GOMEMLIMIT for the collector process only, and O365_BENCH_CPUPROFILE=<file>
// saves the collector's CPU profile of 30 s of the backfill (from 5 s in).
func BenchmarkDistributionBackfill(b *testing.B) {
	records := 1_000_000
	if v := os.Getenv("O365_BENCH_RECORDS"); v != "" {
		records, _ = strconv.Atoi(v)
	}
	sim := graphsimtest.Start(b, graphsim.Config{Seed: 41, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 24 * time.Hour}}),
	}})
	b.Setenv("E2E_SECRET", graphsimtest.Secret)
	for b.Loop() {
		res := runBackfill(b, sim, records)
		b.ReportMetric(res.wall.Seconds(), "wall_s")
		b.ReportMetric(float64(records)/res.wall.Seconds(), "records/s")
		b.ReportMetric(float64(res.maxRSS)/(1<<20), "peak_rss_MiB")
		b.ReportMetric(res.cpu.Seconds()/float64(records)*100_000, "cpu_s/100k")
	}
}

type backfillResult struct {
	wall   time.Duration
	cpu    time.Duration
	maxRSS int64 // bytes
}

func runBackfill(b *testing.B, sim *graphsimtest.Sim, records int) backfillResult {
	dir := b.TempDir()
	out := filepath.Join(dir, "records.json")
	metricsPort, pprofPort := proctest.FreePort(b), proctest.FreePort(b)
	cfg := fmt.Sprintf(`
extensions:
  sql_storage:
    path: %[1]s/state.db
  pprof:
    endpoint: 127.0.0.1:%[8]d
receivers:
  o365:
    storage: sql_storage
    poll_interval: 1h
    initial_lookback: 25h
%[7]s
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    rate_limits:
      reports: { tenant_requests: 10000, app_requests: 10000, window: 1s }
    http:
      tls:
        ca_file: %[3]s
    tenants:%[4]s
        datasets:
          signins: { kinds: [interactive] }
exporters:
  file:
    path: %[5]s
service:
  extensions: [sql_storage, pprof]
  telemetry:
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[6]d
  pipelines:
    logs:
      receivers: [o365]
      exporters: [file]
`, dir, sim.URL(), sim.CAFile, simTenantYAML(1), out, metricsPort, concurrencyKey(), pprofPort)
	cfgPath := proctest.WriteFile(b, filepath.Join(dir, "config.yaml"), cfg)

	start := time.Now()
	var env []string
	if v := os.Getenv("O365_BENCH_GOMEMLIMIT"); v != "" {
		env = append(env, "GOMEMLIMIT="+v)
	}
	col := proctest.StartCollector(b, env, "--config", cfgPath)
	profiled := make(chan error, 1)
	if f := os.Getenv("O365_BENCH_CPUPROFILE"); f != "" {
		go func() {
			time.Sleep(5 * time.Second)
			profiled <- saveProfile(pprofPort, "profile?seconds=30", f)
		}()
	} else {
		profiled <- nil
	}
	deadline := time.Now().Add(30 * time.Minute)
	for acceptedRecords(metricsPort) < records {
		if time.Now().After(deadline) {
			b.Fatalf("backfill did not finish; output:\n%s", proctest.Tail(col.Out.String(), 16<<10))
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(start)
	if err := <-profiled; err != nil {
		b.Fatal(err)
	}
	col.Stop(b)
	usage := col.Cmd.ProcessState.SysUsage().(*syscall.Rusage)
	require.Equal(b, records, countRecords(b, out), "every record exactly once in the file")
	return backfillResult{
		wall:   wall,
		cpu:    time.Duration(usage.Utime.Nano() + usage.Stime.Nano()),
		maxRSS: usage.Maxrss * 1024,
	}
}

// acceptedRecords reads otelcol_receiver_accepted_log_records from the collector's Prometheus endpoint.
func acceptedRecords(port int) int {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	total := 0.0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "otelcol_receiver_accepted_log_records") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return int(total)
}

// countRecords counts the records in a file exporter's output without decoding it.
func countRecords(tb testing.TB, path string) int {
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	key := []byte(`"o365.record.id"`)
	var carry []byte
	for {
		k, err := f.Read(buf)
		chunk := append(carry, buf[:k]...)
		n += bytes.Count(chunk, key)
		if len(chunk) >= len(key) {
			carry = append([]byte(nil), chunk[len(chunk)-len(key)+1:]...)
		}
		if err == io.EOF {
			return n
		}
		require.NoError(tb, err)
	}
}

// concurrencyKey sets max_concurrent_requests from O365_BENCH_CONCURRENCY, or leaves the receiver's
// default.
func concurrencyKey() string {
	if v, err := strconv.Atoi(os.Getenv("O365_BENCH_CONCURRENCY")); err == nil {
		return fmt.Sprintf("    max_concurrent_requests: %d", v)
	}
	return ""
}
