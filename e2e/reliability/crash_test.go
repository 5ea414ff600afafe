package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Scenario 1, crash. The built distribution backfills 200k sign-ins from the simulator with sql_storage
// (SQLite) into an OTLP sink served by this test process, and is killed with SIGKILL at random moments
// (3 times in make test, 20 in make soak), then restarted against the same storage each time.
//
// Method: the collector's `otlp_grpc` exporter runs with `sending_queue: {enabled: false}`, so the
// receiver's ConsumeLogs returns only once the sink acknowledged the page; the sink records the page's
// o365.record.id values in its ledger before it acknowledges, tagged with the run (the `x-epoch` header
// of each run's exporter). The ledger lives in the test process, which every kill spares: what the
// collector saw acknowledged is durably recorded. Each kill happens when the sink has received a random
// share of the records (uniform in 2–98 %) and at least one new record from the run, plus a random
// 0–200 ms.
//
// What is guaranteed, and checked: no id is ever lost; every duplicate is a record of the last page the
// sink acknowledged before a kill (the receiver commits a page's ids and watermark after the ack, so a
// kill between the ack and the commit re-emits that one page after the restart: at-least-once for it),
// hence duplicates <= kills × page_size; with an idempotent sink (dedup by o365.record.id, as the ledger's
// unique count does) the result is exactly the ground truth. Each restart logs where it resumes, and the
// resumed watermarks never go back.
func TestCrashKill9(t *testing.T) {
	const records, pageSize = 200_000, 1000
	kills := pick(3, 20)
	rng := crashRNG(t, 0x9e3779b97f4a7c15)
	sync := "full" // sql_storage's default; O365_CRASH_SYNC=normal measures the window with fewer fsyncs
	if v := os.Getenv("O365_CRASH_SYNC"); v != "" {
		sync = v
	}

	tenant := graphsimtest.TenantID(1)
	sim, ids := signInBackfill(t, 91, records)
	want := truth("signins", ids)
	sink := startOTLPSink(t)
	dir := t.TempDir()
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}

	thresholds := killThresholds(rng, kills, records)

	var outputs []string
	start := time.Now()
	for run := 0; run <= kills; run++ {
		cfg := proctest.WriteFile(t, filepath.Join(dir, fmt.Sprintf("config-%d.yaml", run)), crashConfig(dir, sim, tenant, sync, "", interactiveSignIns, sinkPipelineYAML(sink.addr, run, "")))
		p := proctest.StartCollector(t, env, "--config", cfg)
		if run == kills {
			sink.ledger.waitUnique(t, records, pick(5*time.Minute, 15*time.Minute))
			time.Sleep(3 * time.Second) // three more polls: nothing else may arrive
			p.Stop(t)
			require.Equal(t, 0, p.ExitCode(), "the last run exits cleanly")
			outputs = append(outputs, p.Out.String())
			break
		}
		// Each run is killed while it delivers: past its threshold, and after its own first delivery (a
		// threshold the previous run already passed would kill this one before its first poll).
		target := max(thresholds[run], sink.ledger.unique()+1)
		deadline := time.Now().Add(5 * time.Minute)
		for sink.ledger.unique() < target {
			require.True(t, p.Running(), "run %d exited by itself:\n%s", run, proctest.Tail(p.Out.String(), 8<<10))
			require.True(t, time.Now().Before(deadline), "run %d: no progress towards %d records", run, target)
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		killCollector(t, p, run)
		outputs = append(outputs, p.Out.String())
	}
	took := time.Since(start)

	// Ground truth: nothing lost, nothing unknown; with dedup by id, exactly the ground truth.
	res := sink.ledger.compare(want)
	assert.Zero(t, res.lost, "ids never delivered, e.g. %v", res.lostSample)
	assert.Zero(t, res.unknown, "records the simulator does not hold")
	assert.Equal(t, records, sink.ledger.unique(), "effectively once: deduplicated by o365.record.id, the sink holds exactly the ground truth")

	// Every duplicate is a record of a page in flight at a kill.
	k := analyseKills(sink.ledger, kills, nil)
	assert.Zero(t, k.violations, "deliveries repeated that were not the last page acknowledged before a kill: %v", k.examples)
	assert.LessOrEqual(t, res.duplicated, kills*pageSize, "duplicates <= kills × page_size")
	assert.Equal(t, res.duplicated, k.duplicates)

	// Each restart says where it resumes, and never resumes behind an earlier run.
	var last time.Time
	for run, out := range outputs {
		lines := logLines(out, "Resuming the stream from its stored position")
		if run == 0 {
			assert.NotEmpty(t, logLines(out, "No stored position for the stream"), "run 0 starts from `initial_lookback`")
			continue
		}
		if !assert.NotEmpty(t, lines, "run %d logs where it resumes", run) {
			continue
		}
		wm, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(lines[0]["watermark"]))
		assert.False(t, wm.Before(last), "run %d resumed at %s, behind an earlier run's %s", run, wm, last)
		if !wm.IsZero() {
			last = wm
		}
	}

	per := make([]string, 0, kills)
	for e := range kills {
		per = append(per, strconv.Itoa(k.perKill[e]))
	}
	t.Logf("%d runs, %d kills in %s: %d records delivered for %d ids; duplicates per kill: [%s]; %d of %d kills caused duplicates",
		kills+1, kills, took.Round(time.Second), sink.ledger.deliveries(), records, strings.Join(per, " "), k.killsWithDuplicates, kills)
	report(t, row{Scenario: "1 crash (kill -9, 200k, sql_storage sqlite, synchronous " + sync + ")", Runs: kills + 1, Lost: res.lost, Duplicated: res.duplicated,
		Violations: k.violations, Note: fmt.Sprintf("%d kills, %d caused duplicates (one page each, <= %d); effectively once by id; %s",
			kills, k.killsWithDuplicates, pageSize, took.Round(time.Second))})
}

// collect is what a crash scenario's o365 receiver reads: receiver settings (YAML at the receiver's
// level) and the tenant's datasets (YAML under `datasets:`, one dataset a line).
type collect struct{ settings, datasets string }

// interactiveSignIns is the crash scenarios' usual load: interactive sign-ins only.
var interactiveSignIns = collect{datasets: "signins: { kinds: [interactive] }"}

// crashConfig is the configuration of a crash scenario: sql_storage (SQLite, synchronous sync) and more
// extensions, the o365 receiver backfilling what c says from the simulator's tenant, then the rest (the
// pipeline). No family's request budget binds: these scenarios are about crashes, not budgets.
func crashConfig(dir string, sim *graphsimtest.Sim, tenant, sync, extensions string, c collect, rest string) string {
	indent := func(yaml, prefix string) string {
		if yaml == "" {
			return ""
		}
		return prefix + strings.ReplaceAll(strings.TrimSpace(yaml), "\n", "\n"+prefix) + "\n"
	}
	return fmt.Sprintf(`
extensions:
  sql_storage:
    path: %[1]s/state.db
    sqlite: { synchronous: %[7]s }
    lease: { ttl: 3s, renew_interval: 1s }
%[8]sreceivers:
  o365:
    storage: sql_storage
    poll_interval: 1s
    initial_lookback: 25h
    graph_endpoint: %[2]s
    authority_host: %[2]s/
%[9]s    rate_limits:
      reports: { tenant_requests: 10000, app_requests: 10000, window: 1s }
      identity_protection: { tenant_requests: 10000, window: 1s }
      security: { tenant_requests: 10000, window: 1s }
      directory: { tenant_requests: 10000, window: 1s }
      intune: { tenant_requests: 10000, window: 1s }
    http:
      tls:
        ca_file: %[3]s
    tenants:
      - name: tenant1
        tenant_id: %[4]s
        client_id: %[5]s
        client_secret: ${env:RELIABILITY_SECRET}
        datasets:
%[10]s%[6]s`, dir, sim.URL(), sim.CAFile, tenant, graphsimtest.ClientID, rest, sync, extensions,
		indent(c.settings, "    "), indent(c.datasets, "          "))
}

// killAnalysis attributes every repeated delivery to a kill.
type killAnalysis struct {
	duplicates          int
	perKill             map[int]int // epoch of the kill → records of its last page delivered again later
	killsWithDuplicates int
	violations          int
	examples            []string
}

// analyseKills checks that each delivery of a key but its last is in the last batch its epoch (a killed
// run) delivered of the key's stream, in distinct epochs: the page in flight at the kill, and only that
// page. streamOf names a key's stream (each has its own page in flight); nil: all keys are one stream.
func analyseKills(l *ledger, kills int, streamOf func(key string) string) killAnalysis {
	if streamOf == nil {
		streamOf = func(string) string { return "" }
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	type last struct {
		epoch  int
		stream string
	}
	lastOf := map[last]int{} // epoch and stream → index of its last batch
	for i, b := range l.batches {
		for _, k := range b.keys {
			lastOf[last{b.epoch, streamOf(k)}] = i
		}
	}
	type delivery struct{ epoch, batch int }
	seen := map[string][]delivery{}
	for i, b := range l.batches {
		for _, k := range b.keys {
			seen[k] = append(seen[k], delivery{b.epoch, i})
		}
	}
	a := killAnalysis{perKill: map[int]int{}}
	for k, ds := range seen {
		for i := 0; i < len(ds)-1; i++ {
			a.duplicates++
			d := ds[i]
			ok := d.epoch >= 0 && d.epoch < kills && lastOf[last{d.epoch, streamOf(k)}] == d.batch && ds[i+1].epoch > d.epoch
			if !ok {
				a.violations++
				if len(a.examples) < 5 {
					a.examples = append(a.examples, fmt.Sprintf("%s: epochs %v", k, ds))
				}
				continue
			}
			a.perKill[d.epoch]++
		}
	}
	for _, n := range a.perKill {
		if n > 0 {
			a.killsWithDuplicates++
		}
	}
	return a
}

// logLines returns the collector's JSON log lines whose message contains msg.
func logLines(output, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, msg) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			if s, _ := m["msg"].(string); strings.Contains(s, msg) {
				out = append(out, m)
			}
		}
	}
	return out
}

// crashRNG draws a crash scenario's kill moments: seeded from the clock, or from O365_CRASH_SEED to
// reproduce a run's; stream tells the scenarios' sequences apart.
func crashRNG(t testing.TB, stream uint64) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("O365_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("kill moments seeded with %d (O365_CRASH_SEED=%d reproduces them)", seed, seed)
	return rand.New(rand.NewPCG(seed, stream))
}

// killThresholds are the progress (records delivered) at which the kills come, ascending: uniform in
// 2–98 % of records.
func killThresholds(rng *rand.Rand, kills, records int) []int {
	thresholds := make([]int, kills)
	for i := range thresholds {
		thresholds[i] = records/50 + rng.IntN(records*96/100)
	}
	sort.Ints(thresholds)
	return thresholds
}

// killCollector kills run's collector with SIGKILL and checks that it died of it.
// runUntil waits while run p is alive until progress reaches target, or the run has caught up first
// (records an earlier kill lost are never fetched again, so target may be out of reach: the caller
// kills such a run and makes it the last one killed). It reports whether the run caught up.
func runUntil(t testing.TB, p *proctest.Proc, run int, deadline time.Time, target int, progress func() int) bool {
	t.Helper()
	for progress() < target {
		require.True(t, p.Running(), "run %d exited by itself:\n%s", run, proctest.Tail(p.Out.String(), 8<<10))
		require.True(t, time.Now().Before(deadline), "run %d: no progress towards %d records", run, target)
		if strings.Contains(p.Out.String(), `"msg":"Caught up"`) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func killCollector(t testing.TB, p *proctest.Proc, run int) {
	t.Helper()
	p.Kill(t)
	status := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, status.Signaled() && status.Signal() == syscall.SIGKILL, "run %d died of SIGKILL, not %v", run, status)
}
