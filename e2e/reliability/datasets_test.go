package reliability

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Scenario 12, every dataset through kills and faults. One tenant collects every dataset of the
// catalog (sign-ins of all four kinds, directory audits, alerts and incidents in three versions each,
// risk detections in two, Intune audit events, and the snapshots role assignments with eligibility
// schedules, conditional access policies, MFA coverage and risky users; the five unified audit log
// content types as content blobs of the Management Activity API) through the built distribution
// with sql_storage (SQLite) into the OTLP sink, while the simulator answers 10 % of Graph requests with
// a fault (2 % each: 429 with Retry-After 1 s, 500, 503, connection reset, truncated JSON). The
// collector is killed with SIGKILL 3 times during the backfill (10 in make soak), at a random share of
// the records, the first time as soon as the MFA coverage baseline is under way (a kill mid-snapshot),
// and restarted on the same storage each time; the last run stops cleanly.
//
// Ledger keys are stream|id: the stream is dataset/kind (sign-in kind, role assignment kind), the id is
// o365.record.id with the version's time field for versioned datasets (the receiver's identity for
// them), so every version counts. A snapshot's key is its baseline record: each item must have one,
// and every later record of it must say `unchanged`, since nothing changes in the simulator (an
// `added`, `modified` or `removed` is a false change). What is checked: no key lost, none unknown;
// every duplicate is a record of the last page its stream delivered before a kill (each stream has its
// own page in flight); one MFA coverage summary at least; no false change.
func TestEveryDatasetCrashAndFaults(t *testing.T) {
	const pageSize = 100
	scale := pick(1, 5)
	kills := pick(3, 10)
	rng := crashRNG(t, 0xc2b2ae3d27d4eb4f)

	// Each simulator dataset, the stream it arrives as, and its size.
	type source struct {
		stream string // dataset/kind, as the records carry them
		spec   graphsim.DatasetSpec
	}
	span := 6 * time.Hour
	sources := map[string]source{
		"signins":                     {"signins/interactive", graphsim.DatasetSpec{Count: 3000 * scale, Span: span, PerTimestamp: 2}},
		"signins_non_interactive":     {"signins/non_interactive", graphsim.DatasetSpec{Count: 3000 * scale, Span: span}},
		"signins_service_principal":   {"signins/service_principal", graphsim.DatasetSpec{Count: 800 * scale, Span: span}},
		"signins_managed_identity":    {"signins/managed_identity", graphsim.DatasetSpec{Count: 800 * scale, Span: span}},
		"directory_audits":            {"directory_audits/", graphsim.DatasetSpec{Count: 2000 * scale, Span: span}},
		"security_alerts":             {"security_alerts/", graphsim.DatasetSpec{Count: 900 * scale, Span: span, Versions: 3}},
		"security_incidents":          {"security_incidents/", graphsim.DatasetSpec{Count: 300 * scale, Span: span, Versions: 3}},
		"risk_detections":             {"risk_detections/", graphsim.DatasetSpec{Count: 600 * scale, Span: span, Versions: 2}},
		"intune_audit_events":         {"intune_audit_events/", graphsim.DatasetSpec{Count: 800 * scale, Span: span}},
		"role_assignments":            {"role_assignments/active", graphsim.DatasetSpec{Count: 200 * scale}},
		"role_eligibility_schedules":  {"role_assignments/eligible", graphsim.DatasetSpec{Count: 60 * scale}},
		"conditional_access_policies": {"conditional_access_policies/", graphsim.DatasetSpec{Count: 40}},
		"mfa_coverage":                {"mfa_coverage/", graphsim.DatasetSpec{Count: 2000 * scale}},
		"risky_users":                 {"risky_users/", graphsim.DatasetSpec{Count: 300 * scale}},
	}
	// Every dataset and kind of the catalog is in the load, and the configuration enables each: a
	// dataset added to the catalog fails here until the scenario collects it.
	covered := map[string]bool{}
	for _, s := range sources {
		covered[s.stream] = true
	}
	// The unified audit log's content types (Management Activity API) are fed as content blobs: each
	// blob carries pageSize records, blobs are added out of contentCreated order, and a few records
	// come again in a second blob — the receiver emits each once.
	auditBlobs := map[string][][]map[string]any{}
	for _, d := range catalog.All() {
		if d.Kind != catalog.ActivityFeed {
			continue
		}
		covered[d.Name+"/"] = true
		for b := range 6 * scale {
			var recs []map[string]any
			for i := range pageSize {
				recs = append(recs, map[string]any{"Id": fmt.Sprintf("%s-%d-%d", d.Name, b, i), "CreationTime": "2026-01-01T00:00:00",
					"Operation": "MailItemsAccessed", "Workload": "Exchange", "RecordType": 50})
			}
			if b > 0 {
				recs = append(recs, auditBlobs[d.ContentType][b-1][0])
			}
			auditBlobs[d.ContentType] = append(auditBlobs[d.ContentType], recs)
		}
	}

	var datasets []string
	for _, d := range catalog.All() {
		for _, src := range d.Sources {
			require.True(t, covered[d.Name+"/"+src.Variant], "the scenario collects %s/%s", d.Name, src.Variant)
		}
		line := d.Name + ": { enabled: true }"
		if d.Kind == catalog.Snapshot { // one read a run: a restart reads it again (or finishes it)
			line = d.Name + ": { enabled: true, poll_interval: 1h }"
		}
		datasets = append(datasets, line)
	}

	tenant := graphsimtest.TenantID(1)
	specs := map[string]graphsim.DatasetSpec{}
	for name, s := range sources {
		specs[name] = s.spec
	}
	faults := []graphsim.Fault{{Kind: "status", Status: 429, RetryAfter: time.Second}, {Kind: "status", Status: 500},
		{Kind: "status", Status: 503}, {Kind: "reset"}, {Kind: "truncate"}}
	for i := range faults {
		faults[i].Probability = 0.02
	}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 112, Faults: faults, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, specs)}})

	// Ground truth: every event record (each version of versioned ones) and every snapshot item.
	from, to := sim.Anchor().Add(-25*time.Hour), sim.Anchor()
	var want []string
	perStream := map[string]int{}
	for name, s := range sources {
		d, ok := catalog.ByName(strings.Split(s.stream, "/")[0])
		require.True(t, ok, s.stream)
		var ids []string
		switch {
		case d.Kind == catalog.Snapshot:
			ids = sim.Items(tenant, name)
		case d.VersionField != "":
			ids = sim.Keys(tenant, name, from, to)
		default:
			ids = sim.IDs(tenant, name, from, to)
		}
		require.Len(t, ids, s.spec.Count, name)
		want = append(want, truth(s.stream, ids)...)
		perStream[s.stream] = len(ids)
	}
	// Audit blobs: available over the last 6 h, added newest first.
	for ct, blobs := range auditBlobs {
		d := activityDataset(t, ct)
		var ids []string
		for b := len(blobs) - 1; b >= 0; b-- {
			sim.AddAuditBlob(tenant, graphsim.AuditBlob{ContentType: ct, Created: time.Now().Add(-time.Duration(b+1) * 6 * time.Hour / time.Duration(len(blobs))), Records: blobs[b]})
			for _, r := range blobs[b][:pageSize] {
				ids = append(ids, r["Id"].(string))
			}
		}
		want = append(want, truth(d.Name+"/", ids)...)
		perStream[d.Name+"/"] = len(ids)
	}
	mfaItems := perStream["mfa_coverage/"]

	// The sink's keys: the version of versioned records, the baseline of snapshot items; later snapshot
	// records are counted by change, the MFA coverage summaries apart.
	var mu sync.Mutex
	changes := map[string]int{}
	var falseChanges []string
	summaries := 0
	keys := func(ld plog.Logs) []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			name, _ := rl.Resource().Attributes().Get(o365attr.Dataset)
			d, _ := catalog.ByName(name.Str())
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if lr.EventName() == "o365.mfa_coverage_summary" {
						summaries++
						continue
					}
					kind, _ := lr.Attributes().Get(o365attr.RecordKind)
					id, _ := lr.Attributes().Get(o365attr.RecordID)
					key := name.Str() + "/" + kind.Str() + "|" + id.Str()
					if d != nil && d.VersionField != "" {
						v, _ := lr.Body().Map().Get(d.VersionField)
						key += "@" + v.Str()
					}
					if change, _ := lr.Attributes().Get(o365attr.Change); d != nil && d.Kind == catalog.Snapshot && change.Str() != o365attr.ChangeBaseline {
						changes[change.Str()]++
						if change.Str() != o365attr.ChangeUnchanged && len(falseChanges) < 5 {
							falseChanges = append(falseChanges, change.Str()+" "+key)
						}
						continue
					}
					out = append(out, key)
				}
			}
		}
		return out
	}
	sink := startOTLPSinkKeyed(t, keys)
	streamOf := func(key string) string { s, _, _ := strings.Cut(key, "|"); return s }
	deliveredOf := func(stream string) int {
		sink.ledger.mu.Lock()
		defer sink.ledger.mu.Unlock()
		n := 0
		for k := range sink.ledger.counts {
			if streamOf(k) == stream {
				n++
			}
		}
		return n
	}

	dir := t.TempDir()
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}
	load := collect{settings: fmt.Sprintf("page_size: %d\nmanagement_endpoint: %s", pageSize, sim.URL()), datasets: strings.Join(datasets, "\n")}
	thresholds := killThresholds(rng, kills, len(want))
	var atKill []string // what had arrived at each kill
	start := time.Now()
	for run := 0; run <= kills; run++ {
		cfg := proctest.WriteFile(t, filepath.Join(dir, fmt.Sprintf("config-%d.yaml", run)),
			crashConfig(dir, sim, tenant, "full", "", load, sinkPipelineYAML(sink.addr, run, "")))
		p := proctest.StartCollector(t, env, "--config", cfg)
		if run == kills {
			sink.ledger.waitUnique(t, len(want), pick(5*time.Minute, 15*time.Minute))
			time.Sleep(3 * time.Second) // three more polls: nothing else may arrive
			p.Stop(t)
			require.Equal(t, 0, p.ExitCode(), "the last run exits cleanly:\n%s", proctest.Tail(p.Out.String(), 8<<10))
			break
		}
		// The first run is killed once the MFA coverage baseline is under way; the others past their
		// threshold, and after their own first delivery.
		target := max(thresholds[run], sink.ledger.unique()+1)
		reached := func() bool { return sink.ledger.unique() >= target }
		if run == 0 {
			reached = func() bool { return deliveredOf("mfa_coverage/") > 0 }
		}
		deadline := time.Now().Add(5 * time.Minute)
		for !reached() {
			require.True(t, p.Running(), "run %d exited by itself:\n%s", run, proctest.Tail(p.Out.String(), 8<<10))
			require.True(t, time.Now().Before(deadline), "run %d: no progress towards %d records", run, target)
			time.Sleep(2 * time.Millisecond)
		}
		if run > 0 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		}
		killCollector(t, p, run)
		atKill = append(atKill, fmt.Sprintf("%d (mfa %d/%d)", sink.ledger.unique(), deliveredOf("mfa_coverage/"), mfaItems))
	}
	took := time.Since(start)

	res := sink.ledger.compare(want)
	assert.Zero(t, res.lost, "records never delivered, e.g. %v", res.lostSample)
	assert.Zero(t, res.unknown, "records the simulator does not hold")
	for stream, n := range perStream {
		assert.Equal(t, n, deliveredOf(stream), "%s: every record (version, baseline item) of the stream", stream)
	}
	k := analyseKills(sink.ledger, kills, streamOf)
	assert.Zero(t, k.violations, "deliveries repeated that were not their stream's last page before a kill: %v", k.examples)
	assert.Equal(t, res.duplicated, k.duplicates)
	assert.LessOrEqual(t, res.duplicated, kills*len(perStream)*pageSize, "duplicates <= kills × streams × page_size")
	mu.Lock()
	falses := len(falseChanges)
	assert.Empty(t, falseChanges, "snapshot records other than baseline and unchanged (nothing changed): %v", falseChanges)
	assert.Positive(t, summaries, "an MFA coverage summary")
	unchanged := changes[o365attr.ChangeUnchanged]
	mu.Unlock()

	st := sim.Stats()
	assert.Positive(t, st.Faults, "faults were served")
	throttled := 0
	for _, r := range sim.Requests() {
		if r.Status == http.StatusTooManyRequests {
			throttled++
		}
	}
	t.Logf("%d runs, %d kills in %s; at each kill, records arrived: %v; %d records delivered for %d keys over %d streams; "+
		"duplicates per kill: %v; %d faults in %d Graph requests (%d answered 429); %d snapshot records unchanged, %d summaries",
		kills+1, kills, took.Round(time.Second), atKill, sink.ledger.deliveries(), len(want), len(perStream),
		k.perKill, st.Faults, st.GraphRequests, throttled, unchanged, summaries)
	report(t, row{Scenario: "12 every dataset: kill -9 + server faults (sql_storage sqlite)", Runs: kills + 1, Lost: res.lost,
		Duplicated: res.duplicated, Violations: k.violations + falses,
		Note: fmt.Sprintf("%d records of %d streams (every version, every baseline item); %d kills (the first mid-MFA-baseline), %d caused duplicates; "+
			"%d faults in %d requests; 0 false changes expected, %d found; %s",
			len(want), len(perStream), kills, k.killsWithDuplicates, st.Faults, st.GraphRequests, falses, took.Round(time.Second))})
}

// activityDataset is the catalog's dataset of a Management Activity API content type.
func activityDataset(t *testing.T, contentType string) *catalog.Dataset {
	t.Helper()
	for _, d := range catalog.All() {
		if d.ContentType == contentType {
			return d
		}
	}
	t.Fatalf("no dataset reads %s", contentType)
	return nil
}
