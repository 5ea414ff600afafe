package shipping

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
)

// demoPorts are what `make run` listens on (scripts/run.sh, collector-config.yaml): the simulator, the
// collector's own metrics, health_check, o365_readiness and o365_events.
var demoPorts = []int{8443, 8888, 13133, 13134, 13136}

// TestDemoRestart runs the demo as `make run` does — scripts/run.sh with collector-config.yaml, the
// simulator and the distribution, unchanged, in a copy of the repository's layout — twice, stopping it
// with Ctrl-C (SIGINT to its process group) after the first run collected the simulated day, and after
// the second run's first polls. scripts/count-records.sh (`make count`) then counts the records of both
// runs in run/o365-raw.json: the second run appended to the first run's file, and no record is there
// twice. The same script on a file holding every line twice reports every event record as a duplicate.
func TestDemoRestart(t *testing.T) {
	tool(t, "jq", "jq")
	for _, port := range demoPorts {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		require.NoError(t, err, "port %d is taken: the demo (make run) listens there; stop what runs there", port)
		l.Close()
	}
	defer timed(t, "TestDemoRestart (two make run)")()

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "scripts"), 0o755))
	for _, f := range []string{"scripts/run.sh", "scripts/count-records.sh", "collector-config.yaml"} {
		run(t, time.Minute, "", "cp", filepath.Join(repoRoot(t), f), filepath.Join(dir, f))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "_build"), 0o755))
	require.NoError(t, os.Symlink(proctest.Distribution(t), filepath.Join(dir, "_build/otelcol-o365")))
	run(t, 5*time.Minute, repoRoot(t), "go", "build", "-o", filepath.Join(dir, "bin/graphsim"), "./internal/graphsim/cmd/graphsim")
	raw := filepath.Join(dir, "run/o365-raw.json")

	count := func(file string) recordCount {
		t.Helper()
		out := run(t, 2*time.Minute, dir, "./scripts/count-records.sh", file)
		t.Logf("scripts/count-records.sh %s:\n%s", filepath.Base(file), out)
		return parseCount(t, out)
	}

	// Run 1: the simulated day (about 12,000 event records of contoso and fabrikam, collected within
	// Graph's request budget, which the demo's simulator enforces), until it is collected: once the file
	// grows by less than a page (1000 records) over more than a poll interval (30 s), only live records
	// (about 4 a second) arrive.
	demo := startDemo(t, dir)
	demo.waitFor(t, func() bool { return total(proctest.RecordIDs(t, raw)) >= 10_000 }, 4*time.Minute, raw)
	for last := total(proctest.RecordIDs(t, raw)); ; {
		time.Sleep(35 * time.Second)
		require.True(t, demo.running(), "scripts/run.sh exited:\n%s", proctest.Tail(demo.out.String(), 8<<10))
		now := total(proctest.RecordIDs(t, raw))
		if now-last < 1000 {
			break
		}
		last = now
	}
	demo.interrupt(t)
	first := mustRead(t, raw)
	firstCount := count(raw)
	require.Zero(t, firstCount.duplicates)

	time.Sleep(3 * time.Second) // live sign-ins arrive while the demo is down, as they would in Graph

	// Run 2: resumes from the watermarks; its first polls re-read each stream's lookback window.
	demo = startDemo(t, dir)
	started := time.Now()
	demo.waitFor(t, func() bool {
		return time.Since(started) > 40*time.Second && total(proctest.RecordIDs(t, raw)) >= firstCount.records+20
	}, 3*time.Minute, raw)
	demo.interrupt(t)
	second := mustRead(t, raw)
	require.True(t, bytes.HasPrefix(second, first), "the second run appends to the first run's file")
	anchor, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "run/graphsim-anchor")))))
	require.NoError(t, err)
	if old := historyRecords(t, second[len(first):], anchor.Add(-5*time.Minute)); len(old) > 0 {
		t.Errorf("the second run emitted %d records of the simulated history again (only live records, and sign-ins that arrive up to 2 minutes late, are new), e.g. %v",
			len(old), old[:min(len(old), 5)])
	}
	c := count(raw)
	assert.Greater(t, c.records, firstCount.records, "the second run added records")
	assert.Zero(t, c.duplicates, "no record of the first run came again in the second")
	for _, ds := range []string{"signins", "directory_audits"} { // Graph never updates these
		require.Contains(t, c.datasets, ds)
		assert.Zero(t, c.datasets[ds].versions, "%s: no event came back with another time", ds)
	}
	require.Contains(t, c.datasets, "security_alerts")
	assert.Positive(t, c.datasets["security_alerts"].versions, "alert updates are counted as versions, not duplicates")
	assert.Contains(t, demo.out.String(), "simulated world since", "run.sh reuses the simulated world")

	// The count can fail: in the same lines twice, every event record is a duplicate.
	doubled := filepath.Join(dir, "doubled.json")
	require.NoError(t, os.WriteFile(doubled, append(append([]byte(nil), mustRead(t, raw)...), mustRead(t, raw)...), 0o644))
	d := count(doubled)
	assert.Equal(t, 2*c.records, d.records)
	assert.Equal(t, c.records-c.snapshot, d.duplicates)
}

// historyRecords lists the event records of file exporter output whose time is before cutoff.
func historyRecords(t *testing.T, out []byte, cutoff time.Time) []string {
	t.Helper()
	var old []string
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
		require.NoError(t, err)
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			ds, _ := rl.Resource().Attributes().Get("o365.dataset")
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if _, snapshot := lr.Attributes().Get("o365.snapshot.time"); snapshot || !lr.Timestamp().AsTime().Before(cutoff) {
						continue
					}
					id, _ := lr.Attributes().Get("o365.record.id")
					old = append(old, fmt.Sprintf("%s %s at %s", ds.Str(), id.Str(), lr.Timestamp().AsTime().Format(time.RFC3339)))
				}
			}
		}
	}
	return old
}

// recordCount is what scripts/count-records.sh prints.
type recordCount struct {
	datasets                      map[string]datasetCount
	records, duplicates, snapshot int
}

type datasetCount struct{ records, duplicates, versions int }

func parseCount(t *testing.T, out string) recordCount {
	t.Helper()
	atoi := func(s string) int { n, err := strconv.Atoi(s); require.NoError(t, err); return n }
	c := recordCount{datasets: map[string]datasetCount{}}
	row := regexp.MustCompile(`(?m)^([a-z_]+) +(\d+) +(\d+) +(\d+)$`)
	for _, m := range row.FindAllStringSubmatch(out, -1) {
		c.datasets[m[1]] = datasetCount{atoi(m[2]), atoi(m[3]), atoi(m[4])}
	}
	snap := regexp.MustCompile(`(?m)^snapshot items +(\d+) +- +-$`).FindStringSubmatch(out)
	tot := regexp.MustCompile(`(?m)^total +(\d+) +(\d+)$`).FindStringSubmatch(out)
	require.True(t, snap != nil && tot != nil && len(c.datasets) > 0, "count-records.sh prints a row per dataset, snapshot items and a total:\n%s", out)
	c.snapshot, c.records, c.duplicates = atoi(snap[1]), atoi(tot[1]), atoi(tot[2])
	return c
}

func total(m map[string][]string) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// demoProc is scripts/run.sh in its own process group, as a terminal runs it.
type demoProc struct {
	cmd  *exec.Cmd
	out  *proctest.Buffer
	done chan struct{}
}

func startDemo(t *testing.T, dir string) *demoProc {
	t.Helper()
	d := &demoProc{cmd: exec.Command("./scripts/run.sh"), out: &proctest.Buffer{}, done: make(chan struct{})}
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, d.cmd.Start())
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.done
		}
		if t.Failed() {
			t.Logf("scripts/run.sh output, last 16 KiB:\n%s", proctest.Tail(d.out.String(), 16<<10))
		}
	})
	return d
}

func (d *demoProc) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

func (d *demoProc) waitFor(t *testing.T, cond func() bool, within time.Duration, raw string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		require.True(t, d.running(), "scripts/run.sh exited:\n%s", proctest.Tail(d.out.String(), 8<<10))
		require.True(t, time.Now().Before(deadline), "after %s %s holds %v", within, raw, counts(proctest.RecordIDs(t, raw)))
		time.Sleep(500 * time.Millisecond)
	}
}

// interrupt is Ctrl-C: SIGINT to the process group (the script, the simulator, the collector); the
// collector drains and commits, the script stops the simulator.
func (d *demoProc) interrupt(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT))
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		t.Fatalf("scripts/run.sh still runs a minute after Ctrl-C:\n%s", proctest.Tail(d.out.String(), 8<<10))
	}
	assert.Contains(t, d.out.String(), "Shutdown complete", "the collector stopped cleanly")
}
