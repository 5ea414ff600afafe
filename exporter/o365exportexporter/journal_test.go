package o365exportexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/durable"
	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadatatest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// A "crash" in these tests is an exporter abandoned without shutdown (nothing it holds in memory is
// written), followed by a new exporter on the same directory: what survives is exactly what was on
// disk, as after a kill -9.

// journalTree returns the journal's files (relative path → content).
func journalTree(t *testing.T, e *exportExporter) map[string][]byte {
	t.Helper()
	return readTree(t, e.journalDir)
}

// chunks cuts the records of batches into batches of n records (each with its resource).
func chunks(batches []plog.Logs, n int) []plog.Logs {
	var out []plog.Logs
	var cur plog.Logs
	count := 0
	for _, ld := range batches {
		for _, one := range splitRecords(ld) {
			if count%n == 0 {
				cur = plog.NewLogs()
				out = append(out, cur)
			}
			one.ResourceLogs().MoveAndAppendTo(cur.ResourceLogs())
			count++
		}
	}
	return out
}

// TestGoldenSurvivesCrashes: the golden input delivered in small batches, with a crash after every
// fifth of them (the last batch before each crash delivered again after it, as the receiver re-emits the
// page in flight), and documents written in between, gives exactly the golden bytes; with compaction
// after every document write as well.
func TestGoldenSurvivesCrashes(t *testing.T) {
	all := chunks(processedInput(t), 4)
	require.Greater(t, len(all), 20)
	for _, compactEvery := range []bool{false, true} {
		for _, gc := range goldenCases {
			t.Run(gc.name+map[bool]string{false: "", true: "/compacting"}[compactEvery], func(t *testing.T) {
				cfg := testConfig(t)
				gc.config(cfg)
				cfg.FlushDelay = 0
				var e *exportExporter
				crashes := 0
				for i, ld := range all {
					if i%(len(all)/5) == 0 {
						var clock *testClock
						e, clock, _ = newTestExporter(t, cfg) // the crash: the previous exporter is abandoned
						clock.Set(goldenFlushTime)
						if compactEvery {
							e.compactAlways = true
						}
						if i > 0 {
							crashes++
							require.NoError(t, e.consume(context.Background(), all[i-1]), "the page in flight, again")
						}
					}
					require.NoError(t, e.consume(context.Background(), ld))
					if i%3 == 2 { // documents written now and then (just before each crash, too)
						e.flush(context.Background(), goldenFlushTime, true)
					}
				}
				require.GreaterOrEqual(t, crashes, 4)
				e.flush(context.Background(), goldenFlushTime, true)
				want := readTree(t, filepath.Join("testdata", "golden", gc.name))
				got := readTree(t, cfg.Directory.Get().Path)
				require.Equal(t, keys(want), keys(got))
				for name, b := range got {
					require.NoError(t, compareGolden(want[name], b), name)
				}
			})
		}
	}
}

// TestJournalRebuildsUnwrittenPeriods: records accepted and never written (no flush before the crash)
// are in the documents the next process writes; a period whose document already said everything is
// not written again.
func TestJournalRebuildsUnwrittenPeriods(t *testing.T) {
	cfg := testConfig(t)
	cfg.IncludeEvents = true
	e1, clock, _ := newTestExporter(t, cfg)
	consume(t, e1, signin("s1", t0.Add(time.Minute), false), signin("s2", t0.Add(2*time.Minute), true),
		incident("inc-1", "brute_force", t0, t0.Add(2*time.Minute), "s1", "s2"))
	clock.Set(t0.Add(time.Hour + defaultFlushDelay))
	e1.flush(context.Background(), clock.Now(), false) // 10:00 written
	written, err := os.Stat(e1.dir.path(contoso, t0))
	require.NoError(t, err)
	consume(t, e1, signin("s3", t0.Add(time.Hour+time.Minute), true),
		rec{tenant: fabrikam, dataset: a.DatasetSignIns, id: "f1", at: t0.Add(time.Hour), eventType: "signin.success"})
	assert.Len(t, journalTree(t, e1), 3, "one journal per tenant and period")

	e2, clock2, _ := newTestExporterAt(t, cfg, clock.Now())
	require.Len(t, e2.tenants, 2)
	p := e2.tenants[contoso].periods[t0.UnixNano()]
	require.NotNil(t, p)
	assert.False(t, p.dirty, "the written document already covers 10:00")
	assert.True(t, t0.Equal(p.lastUpdate), "released state_idle_timeout after its last batch, not after the restart: %s", p.lastUpdate)
	assert.True(t, e2.tenants[contoso].periods[t0.Add(time.Hour).UnixNano()].dirty)
	assert.Equal(t, 4, e2.tenants[contoso].held, "the dedup keys and events are back")

	e2.flush(context.Background(), clock2.Now(), true)
	again, err := os.Stat(e2.dir.path(contoso, t0))
	require.NoError(t, err)
	assert.Equal(t, written.ModTime(), again.ModTime(), "10:00 not rewritten")
	assert.Equal(t, 3.0, field(docAt(t, e2, contoso, t0), "records.total"))
	doc := docAt(t, e2, contoso, t0.Add(time.Hour))
	assert.Equal(t, 1.0, field(doc, "records.total"))
	assert.Len(t, doc["events"], 1)
	assert.Equal(t, 1.0, field(docAt(t, e2, fabrikam, t0.Add(time.Hour)), "records.total"))

	// Released state_idle_timeout after its last batch (before the crash), with its journal.
	e2.flush(context.Background(), t0.Add(defaultStateIdleTimeout), false)
	require.Contains(t, e2.tenants, contoso)
	assert.NotContains(t, e2.tenants[contoso].periods, t0.UnixNano())
	assert.Contains(t, e2.tenants[contoso].periods, t0.Add(time.Hour).UnixNano(), "its last batch came an hour later")
	assert.NotContains(t, journalTree(t, e2), filepath.Base(filepath.Dir(e2.journalFileOf(contoso, t0)))+"/20240313T100000Z_PT1H.jnl")
	assert.Len(t, journalTree(t, e2), 2)
}

// TestJournalRedeliveryCountedOnce: the batch in flight at a crash, delivered again to the next process,
// counts once; so does a snapshot item listed again after a restart, and a record delivered again after
// its period resumed from its document and was compacted.
func TestJournalRedeliveryCountedOnce(t *testing.T) {
	cfg := testConfig(t)
	e1, _, _ := newTestExporter(t, cfg)
	snap := rec{tenant: contoso, dataset: a.DatasetRoleAssignments, id: "ra-1", at: t0.Add(5 * time.Minute),
		eventType: "role_assignment.snapshot", domain: "privileged_access", control: "AC-6", metric: "role_assignments"}
	batch := []rec{signin("s1", t0.Add(time.Minute), true), signin("s2", t0.Add(2*time.Minute), false),
		incident("inc", "brute_force", t0, t0.Add(2*time.Minute), "s2"), snap}
	consume(t, e1, batch...)

	e2, _, tt := newTestExporter(t, cfg)
	size := func() int64 {
		info, err := os.Stat(e2.journalFileOf(contoso, t0))
		require.NoError(t, err)
		return info.Size()
	}
	before := size()
	consume(t, e2, batch...)
	assert.Equal(t, before, size(), "a batch of duplicates writes nothing")
	later := snap
	later.at = t0.Add(35 * time.Minute) // the next poll lists it again
	consume(t, e2, later, signin("s3", t0.Add(3*time.Minute), true))
	metadatatest.AssertEqualO365ExportRecordsDuplicate(t, tt, []metricdata.DataPoint[int64]{
		{Value: 5, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	e2.compactAlways = true
	e2.flush(context.Background(), t0.Add(3*time.Hour), true) // written, and the journal compacted
	j := journalTree(t, e2)
	require.Len(t, j, 1)
	for _, b := range j {
		assert.Contains(t, string(b), `"snapshot"`)
		assert.NotContains(t, string(b), `"batch"`, "compacted into one snapshot")
	}

	e3, clock3, _ := newTestExporter(t, cfg)
	clock3.Set(t0.Add(3 * time.Hour))
	consume(t, e3, batch...)
	e3.flush(context.Background(), clock3.Now(), true)
	doc := docAt(t, e3, contoso, t0)
	assert.Equal(t, 5.0, field(doc, "records.total"))
	assert.Equal(t, map[string]any{"signins": 3.0, "incident_candidates": 1.0, "role_assignments": 1.0}, field(doc, "records.by_dataset"))
}

// TestJournalTornTailIsIgnored: a frame a crash cut short (its append never returned, so its records
// were never acknowledged) is dropped when the journal is read, and the file cut back to the frames
// before it, so that later appends follow complete frames; the rest of the journal counts.
func TestJournalTornTailIsIgnored(t *testing.T) {
	cfg := testConfig(t)
	e1, _, _ := newTestExporter(t, cfg)
	consume(t, e1, signin("s1", t0.Add(time.Minute), true), signin("s2", t0.Add(2*time.Minute), true))
	path := e1.journalFileOf(contoso, t0)
	good, err := os.Stat(path)
	require.NoError(t, err)
	consume(t, e1, signin("s3", t0.Add(3*time.Minute), true))
	full, err := os.ReadFile(path)
	require.NoError(t, err)

	for cut := good.Size() + 1; cut < int64(len(full)); cut += max(1, (int64(len(full))-good.Size())/7) {
		t.Run("", func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, full[:cut], 0o640))
			e2, clock, _ := newTestExporter(t, cfg)
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, good.Size(), info.Size(), "cut back to the complete frames")
			assert.Equal(t, 2, e2.tenants[contoso].held, "s3's frame was torn: never acknowledged")

			consume(t, e2, signin("s3", t0.Add(3*time.Minute), true), signin("s4", t0.Add(4*time.Minute), true))
			e3, _, _ := newTestExporter(t, cfg) // and the journal is whole again
			e3.flush(context.Background(), clock.Now().Add(2*time.Hour), true)
			assert.Equal(t, 4.0, field(docAt(t, e3, contoso, t0), "records.total"))
		})
	}
}

// TestJournalWriteErrorRefusesTheBatch: when the journal cannot be written, ConsumeLogs returns an error
// and the records are not counted (not even in memory), so that the pipeline's retry counts them once
// the journal works again; periods whose journal was written keep their records.
func TestJournalWriteErrorRefusesTheBatch(t *testing.T) {
	cfg := testConfig(t)
	e, _, tt := newTestExporter(t, cfg)
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	path := e.journalFileOf(contoso, t0)
	saved, err := os.ReadFile(path)
	require.NoError(t, err)
	// The journal replaced by a directory: the append fails (root ignores permissions, not this).
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o750))

	batch := logsOf(signin("s2", t0.Add(2*time.Minute), true), signin("n1", t0.Add(time.Hour+time.Minute), true))
	err = e.consume(context.Background(), batch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `cannot journal 1 records of tenant "contoso", period 2024-03-13T10:00:00Z`)
	assert.Equal(t, 1, e.tenants[contoso].periods[t0.UnixNano()].held, "s2 is not counted")
	assert.Equal(t, 1, e.tenants[contoso].periods[t0.Add(time.Hour).UnixNano()].held, "n1's period was journaled: counted")
	metadatatest.AssertEqualO365ExportRecordsCounted(t, tt, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	// The retry, once the disk works: the journal is written whole again (its end was not known).
	require.NoError(t, os.Remove(path))
	require.NoError(t, e.consume(context.Background(), batch))
	assert.Equal(t, 2, e.tenants[contoso].periods[t0.UnixNano()].held)
	e2, _, _ := newTestExporter(t, cfg) // a crash now loses nothing
	e2.flush(context.Background(), t0.Add(3*time.Hour), true)
	assert.Equal(t, 2.0, field(docAt(t, e2, contoso, t0), "records.total"))
	assert.Equal(t, 1.0, field(docAt(t, e2, contoso, t0.Add(time.Hour)), "records.total"))
	rewritten, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotEqual(t, saved, rewritten)

	// A period that cannot get a journal at all: refused, and nothing of it is kept.
	blocker := filepath.Dir(e.journalFileOf(fabrikam, t0))
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	err = e.consume(context.Background(), logsOf(rec{tenant: fabrikam, dataset: a.DatasetSignIns, id: "f1", at: t0, eventType: "signin.success"}))
	require.Error(t, err)
	assert.NotContains(t, e.tenants, fabrikam)
}

// TestJournalFollowsTheState: a period's journal goes when its state is released (idle after its
// document was written, or to make room under max_records_per_tenant); a record for it afterwards
// resumes from the document, and its new journal starts from that document, so a crash then loses
// neither the earlier counts nor the new record.
func TestJournalFollowsTheState(t *testing.T) {
	cfg := testConfig(t)
	e, clock, _ := newTestExporter(t, cfg)
	ctx := context.Background()
	consume(t, e, signin("s1", t0.Add(time.Minute), false), incident("inc-1", "brute_force", t0, t0.Add(time.Minute), "s1"))
	clock.Set(t0.Add(time.Hour + defaultFlushDelay))
	e.flush(ctx, clock.Now(), false)
	require.Len(t, journalTree(t, e), 1, "written, still held")
	clock.Set(clock.Now().Add(defaultStateIdleTimeout))
	e.flush(ctx, clock.Now(), false)
	require.NotContains(t, e.tenants, contoso)
	assert.Empty(t, journalTree(t, e), "released: its journal is gone")

	consume(t, e, signin("s2", t0.Add(2*time.Minute), true)) // resumes from the document
	e2, clock2, _ := newTestExporter(t, cfg)
	clock2.Set(clock.Now())
	e2.flush(ctx, clock2.Now(), true)
	doc := docAt(t, e2, contoso, t0)
	assert.Equal(t, 3.0, field(doc, "records.total"))
	assert.Len(t, doc["incident_candidates"], 1)

	// Released to make room: the journal goes too.
	cfg2 := testConfig(t)
	cfg2.MaxRecordsPerTenant = 2
	e3, clock3, _ := newTestExporter(t, cfg2)
	consume(t, e3, signin("a1", t0.Add(time.Minute), true), signin("a2", t0.Add(2*time.Minute), true))
	clock3.Set(t0.Add(2 * time.Hour))
	e3.flush(ctx, clock3.Now(), false)
	consume(t, e3, signin("b1", t0.Add(2*time.Hour), true))
	j := journalTree(t, e3)
	require.Len(t, j, 1)
	for name := range j {
		assert.True(t, strings.HasSuffix(name, "20240313T120000Z_PT1H.jnl"), name)
	}
}

// TestJournalOfAnotherPeriodIsLeftAlone: after `period` changed, the journals of the old length are
// not replayed (their periods are not this configuration's) and not deleted.
func TestJournalOfAnotherPeriodIsLeftAlone(t *testing.T) {
	cfg := testConfig(t)
	e1, _, _ := newTestExporter(t, cfg)
	consume(t, e1, signin("s1", t0.Add(time.Minute), true))
	before := journalTree(t, e1)
	require.Len(t, before, 1)

	cfg.Period = 15 * time.Minute
	e2, _, _ := newTestExporter(t, cfg)
	assert.Empty(t, e2.tenants)
	assert.Equal(t, before, journalTree(t, e2))
}

// TestJournalWithHTTPResendsRebuiltPeriods: with an HTTP destination a rebuilt period is sent again
// (its document may have been in the in-memory queue at the crash), with the same bytes.
func TestJournalWithHTTPResendsRebuiltPeriods(t *testing.T) {
	srv := newDocServer(t)
	cfg := httpConfig(t, srv.URL+"/ingest", false)
	e1, _, _ := startTestExporter(t, cfg)
	consume(t, e1, signin("s1", t0.Add(time.Minute), true))
	e1.flush(context.Background(), t0.Add(2*time.Hour), false)
	attempts := func() []attempt { at, _, _ := srv.snapshot(); return at }
	require.Eventually(t, func() bool { return len(attempts()) == 1 }, 5*time.Second, 10*time.Millisecond)

	e2, _, _ := startTestExporter(t, cfg)
	require.True(t, e2.tenants[contoso].periods[t0.UnixNano()].dirty)
	e2.flush(context.Background(), t0.Add(3*time.Hour), false)
	require.Eventually(t, func() bool { return len(attempts()) == 2 }, 5*time.Second, 10*time.Millisecond)
	got := attempts()
	assert.Equal(t, string(got[0].body), string(got[1].body))
	assert.Equal(t, got[0].key, got[1].key)
	_, accepted, _ := srv.snapshot()
	assert.Len(t, accepted, 1, "the receiver stores it once")
}

// TestJournalDisabled: `journal: { enabled: false }` counts in memory only; nothing is written before a
// document.
func TestJournalDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Journal = configoptional.None[JournalConfig]()
	e, _, _ := newTestExporter(t, cfg)
	assert.Empty(t, e.journalDir)
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	assert.Empty(t, readTree(t, cfg.Directory.Get().Path))
	_, err := os.Stat(filepath.Join(cfg.Directory.Get().Path, journalDirName))
	assert.True(t, os.IsNotExist(err))
}

// The journal reads what durable wrote: a sanity check that the file starts with its magic.
func TestJournalFileFormat(t *testing.T) {
	e, _, _ := newTestExporter(t, testConfig(t))
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	_, c, err := durable.OpenJournal(e.journalFileOf(contoso, t0))
	require.NoError(t, err)
	require.Len(t, c.Frames, 2)
	assert.Contains(t, string(c.Frames[0]), `"header":{"version":1,"tenant_id":"11111111-2222-3333-4444-555555555555","tenant_name":"contoso","period_start":"2024-03-13T10:00:00Z","period":"PT1H"}`)
	assert.Contains(t, string(c.Frames[1]), `"batch":{"records":[{"k":`)
}

// TestBatchFrameDecodes: the hand-written batch frame decodes to what encoding/json's encoding of the
// same batch decodes to, for strings that need escaping (quotes, control characters, invalid UTF-8,
// U+2028), incidents with exact numbers, events, and dropped records.
func TestBatchFrameDecodes(t *testing.T) {
	inc := incidentOf(logsOf(incident("inc-\"1\"", "brute_force", t0, t0.Add(time.Minute), "s1", "s2")).ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
	inc.Context = map[string]any{"n": json.Number("9007199254740993")}
	strs := []string{"", "plain", `q"uote\back`, "ctl\x00\x01\n\r\t\x1f", "bad\xff\xfeutf8", "sep\u2028\u2029", "ünïcødé ✓ <&>"}
	var b journalBatch
	for i, s := range strs {
		c := contribution{Key: bytes.Repeat([]byte{byte(i)}, 16), Dataset: s, At: int64(i) * 1e15, EventType: s, Domain: s,
			Control: strs[(i+1)%len(strs)], Metric: s, ID: s}
		if i%2 == 0 {
			c.Event = json.RawMessage(`{"record_id":"x","attributes":{"n":9007199254740993,"f":0.30000000000000004}}`)
		}
		if i == 3 {
			c.Incident = &inc
		}
		b.Records = append(b.Records, c)
	}
	b.Arrived = t0.UnixNano()
	for _, batch := range []journalBatch{b, {Dropped: 3}, {Records: b.Records[:1], Dropped: 2, Arrived: 7}, {}} {
		frame, err := batchFrame(nil, &batch)
		require.NoError(t, err)
		want, err := json.Marshal(journalFrame{Batch: &batch})
		require.NoError(t, err)
		decode := func(raw []byte) journalFrame {
			var f journalFrame
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&f), "%s", raw)
			return f
		}
		assert.Equal(t, decode(want), decode(frame[8:])) // after durable's frame header
	}
}
