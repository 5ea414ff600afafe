package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// shippedConfigPath is the configuration `make run` uses and the README tells users to start from.
const shippedConfigPath = "../../collector-config.yaml"

// Scenario 1c, crash, with the shipped pipelines. Like TestCrashKill9, a backfill is killed with SIGKILL
// 20 times and restarted on the same storage, but the collector runs collector-config.yaml as shipped —
// its extensions, receiver settings, processors, exporters and pipelines — with only endpoints, paths and
// the tenant replaced to point it at the simulator and the test's directory (shippedCrashConfig). The
// test breaks when the shipped file regresses: a processor that acknowledges before the exporters wrote
// (`batch`), a file exporter that truncates its file at start. Each run is killed after a random share of
// what is left for it, so that all 20 kills fall inside the backfill.
//
// Method: deliveries are observed in the exporters' own output, the files of the shipped `file`
// exporters, read after each kill: the bytes a run added are that run's deliveries (a file that a run
// truncated counts from its start, so what the truncation destroyed still counts as delivered here,
// and is reported apart as "gone from the file"). A kill may tear the object being written: a torn
// object is skipped and counted (at most one per kill). The o365_export documents written at the last,
// clean stop are summed: its journal makes its acceptance durable, and its dedup keys survive the kills,
// so they must count every sign-in exactly once although the page in flight at a kill is delivered
// again.
//
// What is checked: no id lost in any file; every duplicate is a record of the last object a killed run
// wrote (the page in flight at the kill), hence duplicates <= kills × page size; the files hold every id
// at the end; the o365_export documents count every sign-in once.
func TestCrashKill9ShippedConfig(t *testing.T) {
	const pageSize = 1000 // the receiver's default page_size; the shipped file does not change it
	records, kills := pick(20_000, 100_000), 20
	rng := crashRNG(t, 0x9e3779b97f4a7c15)

	tenant := graphsimtest.TenantID(1)
	// 23 h of history: inside the shipped `initial_lookback` (24h) whenever the first poll runs.
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 92, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 23 * time.Hour}}),
	}})
	want := truth("signins", sim.IDs(tenant, "signins", sim.Anchor().Add(-24*time.Hour), sim.Anchor()))
	require.Len(t, want, records)
	dir := t.TempDir()
	cfg, outs, pollInterval := shippedCrashConfig(t, dir, sim, tenant)
	cfgPath := proctest.WriteFile(t, filepath.Join(dir, "config.yaml"), cfg)
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}
	var raw *fileOutput // the receiver's records as fetched: the pipeline whose records carry every id
	for _, o := range outs {
		if raw == nil || strings.Contains(o.name, "raw") {
			raw = o
		}
	}

	start, killed := time.Now(), 0
	for run := 0; run <= kills; run++ {
		if run == kills {
			// The last run's poll must log "Caught up": its window must be longer than a poll interval
			// (plus lookback), so it starts at least poll_interval after the newest record.
			time.Sleep(time.Until(sim.Anchor().Add(pollInterval + time.Second)))
		}
		p := proctest.StartCollector(t, env, "--config", cfgPath)
		if run == kills {
			p.WaitReady(t)
			deadline := time.Now().Add(pick(5*time.Minute, 15*time.Minute))
			// Until the run caught up: every page it fetched is then delivered and committed.
			for raw.collect(t, run, false); !strings.Contains(p.Out.String(), `"msg":"Caught up"`); raw.collect(t, run, false) {
				require.True(t, p.Running(), "the last run exited by itself:\n%s", proctest.Tail(p.Out.String(), 8<<10))
				require.True(t, time.Now().Before(deadline), "after the last start, %d of %d records are in %s", raw.led.unique(), records, raw.name)
				time.Sleep(100 * time.Millisecond)
			}
			p.Stop(t)
			require.Equal(t, 0, p.ExitCode(), "the last run exits cleanly")
			for _, o := range outs {
				o.collect(t, run, true)
			}
			break
		}
		// Killed while it delivers: after a random share of what is left for it (what is left, spread over
		// the kills left), and at least one record of its own.
		share := max(1, (records-raw.led.unique())/(kills-run))
		target := raw.delivered + 1 + rng.IntN(share)
		deadline := time.Now().Add(5 * time.Minute)
		caughtUp := runUntil(t, p, run, deadline, target, func() int { return raw.progress(t) })
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		killCollector(t, p, run)
		for _, o := range outs {
			o.collect(t, run, true)
		}
		raw.delivered = raw.progress(t)
		killed++
		if caughtUp {
			t.Logf("run %d caught up before %d records were in %s: no further kills", run, target, raw.name)
			run = kills - 1
		}
	}
	took := time.Since(start)
	assert.Equal(t, kills, killed, "every run but the last is killed while it delivers")

	exported := exportedRecords(t, filepath.Join(dir, "export"), "signins")
	for _, o := range outs {
		res := o.led.compare(want)
		k := analyseKills(o.led, kills, nil) // epochs are runs: the last, clean one is `kills`
		gone := o.missingAtEnd(t, want)
		t.Logf("%s: %d records delivered for %d ids, %d lost, %d duplicated (%d kills caused duplicates), %d outside the page in flight at a kill, %d torn objects, %d ids gone from the file at the end (%d truncations)",
			o.name, o.led.deliveries(), records, res.lost, res.duplicated, k.killsWithDuplicates, k.violations, o.torn, gone, o.truncations)
		report(t, row{Scenario: "1c crash, shipped collector-config.yaml pipelines (" + o.name + ")", Runs: killed + 1, Lost: res.lost,
			Duplicated: res.duplicated, Violations: k.violations + gone,
			Note: fmt.Sprintf("%d sign-ins, %d kills, %d caused duplicates (<= %d each); %d ids gone from the file at the end; %d torn objects; o365_export documents count %d; %s",
				records, killed, k.killsWithDuplicates, pageSize, gone, o.torn, exported, took.Round(time.Second))})
		assert.Zero(t, res.lost, "%s: ids the receiver committed that never reached the file, e.g. %v", o.name, res.lostSample)
		assert.Zero(t, gone, "%s: ids written once but no longer in the file at the end", o.name)
		assert.Zero(t, k.violations, "%s: deliveries repeated that were not the last object written before a kill: %v", o.name, k.examples)
		assert.LessOrEqual(t, res.duplicated, kills*pageSize, "%s: duplicates <= kills × page_size", o.name)
		assert.LessOrEqual(t, o.torn, kills, "%s: at most one torn object per kill", o.name)
	}
	t.Logf("o365_export documents count %d sign-ins of %d after %d kills", exported, records, killed)
	assert.Equal(t, records, exported, "the o365_export documents count every sign-in exactly once")
}

// shippedCrashConfig is collector-config.yaml with its endpoints, paths and tenants pointed at the
// simulator and dir, and JSON logs without a metrics endpoint (for parallel runs). It returns the outputs
// of its `file` exporters, and fails the test for an exporter it cannot point at the test's side.
func shippedCrashConfig(t *testing.T, dir string, sim *graphsimtest.Sim, tenant string) (string, []*fileOutput, time.Duration) {
	t.Helper()
	raw, err := os.ReadFile(shippedConfigPath)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	section := func(m map[string]any, key string) map[string]any {
		t.Helper()
		v, ok := m[key].(map[string]any)
		require.True(t, ok, "the shipped configuration has a `%s` section", key)
		return v
	}
	endpoint := func() string { return fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t)) }

	for id, v := range section(cfg, "extensions") {
		ext, _ := v.(map[string]any)
		switch componentType(id) {
		case "sql_storage":
			// The shipped lease settings: a restarted process frees its killed predecessor's leases at
			// once (SQLite liveness locks), so it polls without waiting for `lease.ttl`.
			ext["path"] = filepath.Join(dir, "state.db")
		case "file_storage":
			ext["directory"] = filepath.Join(dir, "file_storage")
			require.NoError(t, os.MkdirAll(ext["directory"].(string), 0o750))
		case "health_check", "o365_readiness", "pprof":
			ext["endpoint"] = endpoint()
		}
	}
	o365 := section(section(cfg, "receivers"), "o365")
	pollInterval := 5 * time.Minute // the receiver's default
	if v, ok := o365["poll_interval"].(string); ok {
		pollInterval, err = time.ParseDuration(v)
		require.NoError(t, err)
	}
	o365["graph_endpoint"] = sim.URL()
	o365["authority_host"] = sim.URL() + "/"
	o365["http"] = map[string]any{"tls": map[string]any{"ca_file": sim.CAFile}}
	// Not an endpoint either, but the simulator is not Graph: Graph's budget (5 requests / 10 s per
	// tenant, which a restart does not reset) would make 21 runs take minutes. Delivery does not depend on it.
	o365["rate_limits"] = map[string]any{"reports": map[string]any{"tenant_requests": 10000, "app_requests": 10000, "window": "1s"}}
	o365["tenants"] = []any{map[string]any{
		"name": "tenant1", "tenant_id": tenant, "client_id": graphsimtest.ClientID,
		"client_secret": "${env:RELIABILITY_SECRET}",
		"datasets":      map[string]any{"signins": map[string]any{"kinds": []any{"interactive"}}},
	}}

	var outs []*fileOutput
	for id, v := range section(cfg, "exporters") {
		exp, _ := v.(map[string]any)
		switch componentType(id) {
		case "file":
			path := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(id)+".json")
			exp["path"] = path
			outs = append(outs, &fileOutput{name: id, path: path, led: newLedger()})
		case "o365_export":
			require.NotContains(t, exp, "http", "the test points only the directory of o365_export at its side")
			section(exp, "directory")["path"] = filepath.Join(dir, "export")
			if s, ok := exp["summary_server"].(map[string]any); ok {
				s["endpoint"] = endpoint()
			}
		case "o365_events":
			exp["path"] = filepath.Join(dir, "events.db")
			section(exp, "server")["endpoint"] = endpoint()
		case "debug":
		default:
			t.Fatalf("the shipped configuration has exporter %q, which this test cannot point at its side", id)
		}
	}
	require.NotEmpty(t, outs, "the shipped configuration has a file exporter to observe")
	sort.Slice(outs, func(i, j int) bool { return outs[i].name < outs[j].name })
	section(cfg, "service")["telemetry"] = map[string]any{
		"logs": map[string]any{"encoding": "json"}, "metrics": map[string]any{"level": "none"},
	}
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	return string(out), outs, pollInterval
}

// componentType is the type part of a component id ("file" of "file/raw").
func componentType(id string) string { t, _, _ := strings.Cut(id, "/"); return t }

// fileOutput is what a file exporter wrote (OTLP JSON, one object a line), attributed to runs.
type fileOutput struct {
	name, path string
	led        *ledger
	seen       []byte // the file's content already attributed
	torn       int    // objects that do not decode (cut by a kill)
	// truncations counts the runs that found the file shorter, or different, from what the last run left.
	truncations int
	// delivered is the number of records in the file, counted cheaply (progress), at the last kill.
	delivered int
	// progressOff, progressN: the cheap count so far.
	progressOff int64
	progressN   int
}

// progress counts the records in the file (o365.record.id occurrences), for the kill moments; a
// truncated file starts over from its beginning, keeping the count.
func (o *fileOutput) progress(t *testing.T) int {
	t.Helper()
	f, err := os.Open(o.path)
	if os.IsNotExist(err) {
		return o.progressN
	}
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	if st.Size() < o.progressOff {
		o.progressOff = 0
	}
	buf := make([]byte, st.Size()-o.progressOff)
	n, err := f.ReadAt(buf, o.progressOff)
	if err != nil && err != io.EOF {
		require.NoError(t, err)
	}
	buf = buf[:n]
	if cut := bytes.LastIndexByte(buf, '}'); cut >= 0 { // count only what ends with a complete value
		buf = buf[:cut+1]
	} else {
		buf = nil
	}
	o.progressN += bytes.Count(buf, []byte(`"key":"o365.record.id"`))
	o.progressOff += int64(len(buf))
	return o.progressN
}

// collect attributes the bytes the file gained since the last call to run: what follows the content
// already seen, or the whole file when it no longer starts with that content (truncated at start). With
// all, everything is taken (the writer is gone); otherwise only complete lines (the writer may be
// writing the last one).
func (o *fileOutput) collect(t *testing.T, run int, all bool) {
	t.Helper()
	cur := o.read(t)
	prefix := o.seen
	if !bytes.HasPrefix(cur, prefix) {
		o.truncations++
		prefix = nil
	}
	seg := cur[len(prefix):]
	if !all {
		if nl := bytes.LastIndexByte(seg, '\n'); nl >= 0 {
			seg = seg[:nl+1]
		} else {
			seg = nil
		}
	}
	o.seen = cur[:len(prefix)+len(seg)]
	for _, obj := range splitObjects(seg) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(obj)
		if err != nil {
			o.torn++
			continue
		}
		o.led.add(run, signinKeys(keysOf(ld)))
	}
}

// read returns what the exporter wrote: the files `rotation` moved aside (named after the file and the
// time they were moved, so in order by name), then the file itself.
func (o *fileOutput) read(t *testing.T) []byte {
	t.Helper()
	ext := filepath.Ext(o.path)
	backups, err := filepath.Glob(strings.TrimSuffix(o.path, ext) + "-*" + ext)
	require.NoError(t, err)
	sort.Strings(backups)
	var out []byte
	for _, f := range append(backups, o.path) {
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		out = append(out, b...)
	}
	return out
}

// missingAtEnd is the number of wanted ids that the file no longer holds at the end.
func (o *fileOutput) missingAtEnd(t *testing.T, want []string) int {
	t.Helper()
	cur := o.read(t)
	have := map[string]bool{}
	for _, obj := range splitObjects(cur) {
		if ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(obj); err == nil {
			for _, k := range keysOf(ld) {
				have[k] = true
			}
		}
	}
	n := 0
	for _, k := range want {
		if !have[k] {
			n++
		}
	}
	return n
}

// signinKeys keeps the sign-ins (a normalized pipeline adds incident candidates).
func signinKeys(keys []string) []string {
	out := keys[:0]
	for _, k := range keys {
		if strings.HasPrefix(k, "signins|") {
			out = append(out, k)
		}
	}
	return out
}

// objectStart begins every object the file exporter writes (OTLP JSON logs).
var objectStart = []byte(`{"resourceLogs":`)

// splitObjects cuts file exporter output into its JSON objects. Objects are separated by newlines, but
// a kill can tear one, or keep its newline from being written, so the output is cut wherever an object
// starts; a torn object then stays a fragment that does not decode.
func splitObjects(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, objectStart)
		if i < 0 {
			break
		}
		b = b[i:]
		next := bytes.Index(b[1:], objectStart)
		end := len(b)
		if next >= 0 {
			end = next + 1
		}
		if obj := bytes.TrimSpace(b[:end]); len(obj) > 0 {
			out = append(out, obj)
		}
		b = b[end:]
	}
	return out
}

// exportedRecords sums records.by_dataset[dataset] over the o365_export documents under dir, and checks
// that each document's records.total is the sum of its records.by_dataset.
func exportedRecords(t *testing.T, dir, dataset string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	require.NoError(t, err)
	total := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc struct {
			Records struct {
				Total     int            `json:"total"`
				ByDataset map[string]int `json:"by_dataset"`
			} `json:"records"`
		}
		require.NoError(t, json.Unmarshal(raw, &doc), f)
		sum := 0
		for _, n := range doc.Records.ByDataset {
			sum += n
		}
		assert.Equal(t, doc.Records.Total, sum, "%s: records.total is the sum of records.by_dataset", f)
		total += doc.Records.ByDataset[dataset]
	}
	return total
}
