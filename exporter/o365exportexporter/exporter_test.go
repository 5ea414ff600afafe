package o365exportexporter

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadatatest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// TestDocumentContent checks what a document says about a period: tenant, period, covered time
// range, counts by dataset / domain / control / metric / event type / mapping, incident candidates.
func TestDocumentContent(t *testing.T) {
	e, clock, _ := newTestExporter(t, testConfig(t))
	audit := rec{tenant: contoso, dataset: a.DatasetDirectoryAudits, id: "audit-1", at: t0.Add(30 * time.Minute),
		eventType: "directory_audit.role_management.assign", domain: "privileged_access", control: "AC-6", metric: "role_changes"}
	unmapped := rec{tenant: contoso, dataset: a.DatasetDirectoryAudits, id: "audit-2", at: t0.Add(31 * time.Minute), eventType: "directory_audit.other.other"}
	raw := rec{tenant: contoso, dataset: a.DatasetSignIns, id: "raw-1", at: t0.Add(32 * time.Minute)}
	consume(t, e,
		signin("s1", t0.Add(5*time.Minute+123*time.Millisecond), false),
		signin("s2", t0.Add(6*time.Minute), false),
		signin("s3", t0.Add(59*time.Minute+59*time.Second), true),
		audit, unmapped, raw,
		incident("inc-1", "brute_force", t0.Add(5*time.Minute), t0.Add(59*time.Minute+59*time.Second), "s2", "s1", "s3"),
		signin("next-period", t0.Add(time.Hour), true),
	)
	clock.Set(t0.Add(time.Hour + defaultFlushDelay))
	e.flush(context.Background(), clock.Now(), false)

	doc := docAt(t, e, contoso, t0)
	require.NotNil(t, doc)
	assert.EqualValues(t, 1, doc["export_version"])
	assert.Equal(t, contoso.id+"/2024-03-13T10:00:00Z/PT1H", doc["document_id"])
	assert.Equal(t, map[string]any{"id": contoso.id, "name": "contoso"}, doc["tenant"])
	assert.Equal(t, map[string]any{"start": "2024-03-13T10:00:00Z", "end": "2024-03-13T11:00:00Z", "duration": "PT1H"}, doc["period"])
	assert.Equal(t, map[string]any{"first": "2024-03-13T10:05:00.123Z", "last": "2024-03-13T10:59:59Z"}, doc["time_range"])
	assert.Equal(t, map[string]any{
		"total": 7.0, "unmapped": 1.0, "unnormalized": 1.0, "dropped": 0.0,
		"by_dataset": map[string]any{"signins": 4.0, "directory_audits": 2.0, "incident_candidates": 1.0},
	}, doc["records"])
	assert.Equal(t, map[string]any{"identity_access": 3.0, "privileged_access": 1.0, "incident_response": 1.0}, field(doc, "counts.by_domain"))
	assert.Equal(t, map[string]any{"AC-7": 2.0, "IA-2": 1.0, "AC-6": 1.0, "IR-4": 1.0}, field(doc, "counts.by_control"))
	assert.Equal(t, map[string]any{"signin_failure": 2.0, "signin_success": 1.0, "role_changes": 1.0, "incident_candidates": 1.0}, field(doc, "counts.by_metric"))
	assert.Equal(t, map[string]any{"signin.failure": 2.0, "signin.success": 1.0, "directory_audit.role_management.assign": 1.0,
		"directory_audit.other.other": 1.0, "incident_candidate.brute_force": 1.0}, field(doc, "counts.by_event_type"))
	assert.Equal(t, []any{
		map[string]any{"domain": "identity_access", "control": "AC-7", "metric": "signin_failure", "count": 2.0},
		map[string]any{"domain": "identity_access", "control": "IA-2", "metric": "signin_success", "count": 1.0},
		map[string]any{"domain": "incident_response", "control": "IR-4", "metric": "incident_candidates", "count": 1.0},
		map[string]any{"domain": "privileged_access", "control": "AC-6", "metric": "role_changes", "count": 1.0},
	}, field(doc, "counts.by_mapping"))
	assert.Equal(t, []any{map[string]any{
		"id": "inc-1", "rule": "brute_force", "severity": "high", "description": "Test brute_force",
		"window":   map[string]any{"start": "2024-03-13T10:05:00Z", "end": "2024-03-13T10:59:59Z"},
		"entities": map[string]any{"user.name": "alice@contoso.com"},
		"evidence": map[string]any{"count": 3.0, "record_ids": []any{"s1", "s2", "s3"}},
	}}, doc["incident_candidates"])
	assert.NotContains(t, doc, "events")
	assert.NotContains(t, doc, "generated_at")

	// The next period is still open.
	assert.Nil(t, docAt(t, e, contoso, t0.Add(time.Hour)))
}

// TestFlushTiming: a period's document is written flush_delay after it ends, not before; a late record
// updates it (same file) flush_delay after it arrived; shutdown writes open periods.
func TestFlushTiming(t *testing.T) {
	cfg := testConfig(t)
	cfg.FlushDelay = 5 * time.Minute
	e, clock, tt := newTestExporter(t, cfg)
	ctx := context.Background()
	consume(t, e, signin("s1", t0.Add(10*time.Minute), true))

	for _, at := range []time.Time{t0.Add(59 * time.Minute), t0.Add(time.Hour), t0.Add(time.Hour + 5*time.Minute - time.Nanosecond)} {
		clock.Set(at)
		e.flush(ctx, at, false)
		assert.Nil(t, docAt(t, e, contoso, t0), "written at %s", at)
	}
	clock.Set(t0.Add(time.Hour + 5*time.Minute))
	e.flush(ctx, clock.Now(), false)
	doc := docAt(t, e, contoso, t0)
	require.NotNil(t, doc)
	assert.Equal(t, 1.0, field(doc, "records.total"))

	// Nothing changed: no new write (the file is not touched).
	info, err := os.Stat(e.dir.path(contoso, t0))
	require.NoError(t, err)
	clock.Set(t0.Add(time.Hour + 30*time.Minute))
	e.flush(ctx, clock.Now(), false)
	info2, err := os.Stat(e.dir.path(contoso, t0))
	require.NoError(t, err)
	assert.Equal(t, info.ModTime(), info2.ModTime())

	// A late record (arriving at +1h30) is written at +1h35, into the same file.
	consume(t, e, signin("late", t0.Add(20*time.Minute), false))
	clock.Set(t0.Add(time.Hour + 34*time.Minute))
	e.flush(ctx, clock.Now(), false)
	assert.Equal(t, 1.0, field(docAt(t, e, contoso, t0), "records.total"))
	clock.Set(t0.Add(time.Hour + 35*time.Minute))
	e.flush(ctx, clock.Now(), false)
	doc = docAt(t, e, contoso, t0)
	assert.Equal(t, 2.0, field(doc, "records.total"))
	assert.Equal(t, contoso.id+"/2024-03-13T10:00:00Z/PT1H", doc["document_id"])

	// An open period is written at shutdown.
	consume(t, e, signin("open", t0.Add(2*time.Hour), true))
	e.flush(ctx, clock.Now(), true)
	assert.Equal(t, 1.0, field(docAt(t, e, contoso, t0.Add(2*time.Hour)), "records.total"))
	assert.Len(t, readTree(t, cfg.Directory.Get().Path), 2)

	metadatatest.AssertEqualO365ExportDocumentsWritten(t, tt, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestDedup: a redelivered batch, and a record seen again, count once per period; the same id in
// another period counts there; a snapshot item that changed counts again under its change type.
func TestDedup(t *testing.T) {
	e, _, tt := newTestExporter(t, testConfig(t))
	batch := []rec{signin("s1", t0.Add(time.Minute), true), signin("s2", t0.Add(2*time.Minute), false),
		incident("inc", "brute_force", t0, t0.Add(2*time.Minute), "s2")}
	consume(t, e, batch...)
	consume(t, e, batch...)
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	consume(t, e, signin("s1", t0.Add(time.Hour+time.Minute), true)) // same id, next period

	snap := rec{tenant: contoso, dataset: a.DatasetRoleAssignments, id: "ra-1", at: t0.Add(5 * time.Minute),
		eventType: "role_assignment.snapshot", domain: "privileged_access", control: "AC-6", metric: "role_assignments"}
	later := snap
	later.at = t0.Add(10 * time.Minute) // the next poll lists it again
	modified := later
	modified.eventType, modified.metric = "role_assignment.modified", "role_assignment_changes"
	consume(t, e, snap, later, modified)

	e.flush(context.Background(), t0.Add(3*time.Hour), true)
	doc := docAt(t, e, contoso, t0)
	assert.Equal(t, map[string]any{"signins": 2.0, "incident_candidates": 1.0, "role_assignments": 2.0}, field(doc, "records.by_dataset"))
	assert.Equal(t, 5.0, field(doc, "records.total"))
	assert.Len(t, doc["incident_candidates"], 1)
	assert.Equal(t, 1.0, field(docAt(t, e, contoso, t0.Add(time.Hour)), "records.total"))

	metadatatest.AssertEqualO365ExportRecordsCounted(t, tt, []metricdata.DataPoint[int64]{
		{Value: 6, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualO365ExportRecordsDuplicate(t, tt, []metricdata.DataPoint[int64]{
		{Value: 5, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestRecordsWithoutTenantOrTime are dropped and counted, never an error.
func TestRecordsWithoutTenantOrTime(t *testing.T) {
	e, _, tt := newTestExporter(t, testConfig(t))
	noTenant := signin("x", t0, true)
	noTenant.tenant = tenantKey{}
	consume(t, e, noTenant)
	ld := logsOf(signin("y", t0, true))
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	lr.SetTimestamp(0)
	lr.SetObservedTimestamp(0)
	require.NoError(t, e.consume(context.Background(), ld))
	metadatatest.AssertEqualO365ExportRecordsDropped(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", ""), attribute.String("reason", "no_tenant"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"), attribute.String("reason", "no_timestamp"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	// Only the name, or only the id, identifies a tenant too.
	onlyName := signin("n", t0, true)
	onlyName.tenant = tenantKey{name: "named"}
	onlyID := signin("i", t0, true)
	onlyID.tenant = tenantKey{id: "abc"}
	consume(t, e, onlyName, onlyID)
	e.flush(context.Background(), t0.Add(2*time.Hour), true)
	assert.Equal(t, "named/2024-03-13T10:00:00Z/PT1H", docAt(t, e, onlyName.tenant, t0)["document_id"])
	assert.Equal(t, "abc/2024-03-13T10:00:00Z/PT1H", docAt(t, e, onlyID.tenant, t0)["document_id"])
}

// TestTenantCap: at max_records_per_tenant, written periods are released (oldest first) to make room;
// when none can be, the record is dropped, counted in the document and in telemetry; other tenants are
// not affected.
func TestTenantCap(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecordsPerTenant = 3
	e, clock, tt := newTestExporter(t, cfg)
	ctx := context.Background()
	consume(t, e, signin("a1", t0.Add(time.Minute), true), signin("a2", t0.Add(2*time.Minute), true))
	clock.Set(t0.Add(2 * time.Hour))
	e.flush(ctx, clock.Now(), false) // period 10:00 written: releasable
	consume(t, e, signin("b1", t0.Add(2*time.Hour+time.Minute), true), signin("b2", t0.Add(2*time.Hour+2*time.Minute), true))
	assert.Equal(t, 2, e.tenants[contoso].held, "10:00 was released to make room")
	consume(t, e, signin("b3", t0.Add(2*time.Hour+3*time.Minute), true), signin("b4", t0.Add(2*time.Hour+4*time.Minute), true))
	consume(t, e, rec{tenant: fabrikam, dataset: a.DatasetSignIns, id: "f1", at: t0.Add(2 * time.Hour), eventType: "signin.success"})
	e.flush(ctx, clock.Now(), true)

	doc := docAt(t, e, contoso, t0.Add(2*time.Hour))
	assert.Equal(t, 3.0, field(doc, "records.total"))
	assert.Equal(t, 1.0, field(doc, "records.dropped"))
	assert.Equal(t, 2.0, field(docAt(t, e, contoso, t0), "records.total"), "the released period's document stays")
	assert.Equal(t, 1.0, field(docAt(t, e, fabrikam, t0.Add(2*time.Hour)), "records.total"))

	contosoAttr := attribute.NewSet(attribute.String("tenant", "contoso"))
	metadatatest.AssertEqualO365ExportTenantCapHits(t, tt, []metricdata.DataPoint[int64]{{Value: 2, Attributes: contosoAttr}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualO365ExportRecordsDropped(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"), attribute.String("reason", "tenant_cap"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualO365ExportStateRecords(t, tt, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: contosoAttr},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "fabrikam"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestIdleStateIsReleasedAndResumed: a written period's state is released state_idle_timeout after
// its last record; a record for it afterwards resumes from the document, so the document keeps the
// earlier counts. The same happens across a restart (a new exporter on the same directory).
func TestIdleStateIsReleasedAndResumed(t *testing.T) {
	cfg := testConfig(t)
	e, clock, _ := newTestExporter(t, cfg)
	ctx := context.Background()
	consume(t, e, signin("s1", t0.Add(time.Minute), false), signin("s2", t0.Add(2*time.Minute), true),
		incident("inc-1", "brute_force", t0, t0.Add(2*time.Minute), "s1", "s2"))
	clock.Set(t0.Add(time.Hour + defaultFlushDelay))
	e.flush(ctx, clock.Now(), false)
	require.Contains(t, e.tenants[contoso].periods, t0.UnixNano())
	clock.Set(t0.Add(2 * time.Minute).Add(defaultStateIdleTimeout)) // lastUpdate was t0 (the clock then)
	e.flush(ctx, clock.Now(), false)
	require.NotContains(t, e.tenants, contoso, "released")
	first := docAt(t, e, contoso, t0)

	consume(t, e, signin("s3", t0.Add(3*time.Minute), true))
	e.flush(ctx, clock.Now(), true)
	doc := docAt(t, e, contoso, t0)
	assert.Equal(t, 4.0, field(doc, "records.total"))
	assert.Equal(t, first["incident_candidates"], doc["incident_candidates"])
	assert.Equal(t, map[string]any{"signin.failure": 1.0, "signin.success": 2.0, "incident_candidate.brute_force": 1.0}, field(doc, "counts.by_event_type"))

	// Restart: a new exporter continues the document.
	e2, clock2, _ := newTestExporter(t, cfg)
	clock2.Set(clock.Now())
	consume(t, e2, signin("s4", t0.Add(4*time.Minute), false))
	e2.flush(ctx, clock2.Now(), true)
	doc = docAt(t, e2, contoso, t0)
	assert.Equal(t, 5.0, field(doc, "records.total"))
	assert.Equal(t, map[string]any{"first": "2024-03-13T10:01:00Z", "last": "2024-03-13T10:04:00Z"}, doc["time_range"])
}

// TestResumeKeepsEventsAndExactNumbers: a document resumed from disk, with events, and written again
// without new records in it, is byte-identical.
func TestResumeKeepsEventsAndExactNumbers(t *testing.T) {
	cfg := testConfig(t)
	cfg.IncludeEvents = true
	e, _, _ := newTestExporter(t, cfg)
	s := signin("s1", t0.Add(time.Minute), true)
	s.attrs["o365.big"] = int64(9007199254740993) // not exact as a float64
	x, y := 0.1, 0.2
	s.attrs[a.GeoLocationLat] = x + y // 0.30000000000000004
	inc := incident("inc", "impossible_travel", t0, t0.Add(time.Minute), "s1")
	inc.attrs[a.IncidentDistanceKm] = 8086.3
	inc.attrs[a.IncidentSpeedKmh] = 48517.8
	inc.attrs[a.IncidentContext] = map[string]any{"n": int64(9007199254740993)}
	consume(t, e, s, inc)
	e.flush(context.Background(), t0.Add(2*time.Hour), true)
	before, err := os.ReadFile(e.dir.path(contoso, t0))
	require.NoError(t, err)
	assert.Contains(t, string(before), `"o365.big": 9007199254740993`)
	assert.Contains(t, string(before), `"geo.location.lat": 0.30000000000000004`)
	assert.Contains(t, string(before), `"distance_km": 8086.3`)

	e2, _, _ := newTestExporter(t, cfg)
	p := e2.period(e2.tenant(contoso), t0)
	p.touch(t0)
	e2.flush(context.Background(), t0.Add(2*time.Hour), true)
	after, err := os.ReadFile(e.dir.path(contoso, t0))
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
}

// TestDirectoryWriteFailureIsRetried: a failed write is counted and tried again after flush_delay.
func TestDirectoryWriteFailureIsRetried(t *testing.T) {
	cfg := testConfig(t)
	e, clock, tt := newTestExporter(t, cfg)
	ctx := context.Background()
	blocker := filepath.Join(cfg.Directory.Get().Path, "contoso")
	require.NoError(t, os.WriteFile(blocker, []byte("not a directory"), 0o600))
	consume(t, e, signin("s1", t0.Add(time.Minute), true))
	clock.Set(t0.Add(time.Hour + defaultFlushDelay))
	e.flush(ctx, clock.Now(), false)
	metadatatest.AssertEqualO365ExportDeliveryFailures(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"), attribute.String("destination", "directory"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	p := e.tenants[contoso].periods[t0.UnixNano()]
	require.True(t, p.dirty)
	require.False(t, p.inFlight)

	require.NoError(t, os.Remove(blocker))
	clock.Set(clock.Now().Add(defaultFlushDelay - time.Second))
	e.flush(ctx, clock.Now(), false)
	assert.Nil(t, docAt(t, e, contoso, t0), "not before flush_delay")
	clock.Set(clock.Now().Add(time.Second))
	e.flush(ctx, clock.Now(), false)
	assert.Equal(t, 1.0, field(docAt(t, e, contoso, t0), "records.total"))
}

// TestRetention: max_documents_per_tenant keeps the newest documents of each tenant; max_age deletes
// documents whose period ended longer ago; other files are left alone.
func TestRetention(t *testing.T) {
	cfg := testConfig(t)
	dir := cfg.Directory.Get().Path
	cfg.Directory.Get().MaxDocumentsPerTenant = 3
	e, clock, tt := newTestExporter(t, cfg)
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "contoso"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "contoso", "notes.txt"), []byte("mine"), 0o600))
	for h := range 5 {
		consume(t, e, signin("s", t0.Add(time.Duration(h)*time.Hour), true))
	}
	consume(t, e, rec{tenant: fabrikam, dataset: a.DatasetSignIns, id: "f", at: t0, eventType: "signin.success"})
	clock.Set(t0.Add(6 * time.Hour))
	e.flush(ctx, clock.Now(), false)
	files := readTree(t, dir)
	assert.Contains(t, files, "contoso/notes.txt")
	assert.Contains(t, files, "contoso/20240313T120000Z_PT1H.json")
	assert.Contains(t, files, "contoso/20240313T130000Z_PT1H.json")
	assert.Contains(t, files, "contoso/20240313T140000Z_PT1H.json")
	assert.Contains(t, files, "fabrikam/20240313T100000Z_PT1H.json")
	assert.Len(t, files, 5)
	metadatatest.AssertEqualO365ExportDocumentsDeleted(t, tt, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("tenant", "contoso"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	cfg2 := testConfig(t)
	cfg2.Directory.Get().MaxAge = 90 * time.Minute
	e2, clock2, _ := newTestExporter(t, cfg2)
	for h := range 3 {
		consume(t, e2, signin("s", t0.Add(time.Duration(h)*time.Hour), true))
	}
	clock2.Set(t0.Add(3*time.Hour + 31*time.Minute)) // 10:00 ended 2h31 ago, 11:00 1h31 ago, 12:00 31 min ago
	e2.flush(ctx, clock2.Now(), false)
	files = readTree(t, cfg2.Directory.Get().Path)
	assert.Equal(t, []string{"contoso/20240313T120000Z_PT1H.json"}, keys(files))
}

// TestAtomicWrite: documents appear whole (no temporary file is left, the content is canonical), and
// temporary files a crash left are removed at start.
func TestAtomicWrite(t *testing.T) {
	cfg := testConfig(t)
	dir := cfg.Directory.Get().Path
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "contoso"), 0o750))
	stale := filepath.Join(dir, "contoso", ".20240313T100000Z_PT1H.json.tmp-123456")
	require.NoError(t, os.WriteFile(stale, []byte("{"), 0o600))
	e, _, _ := newTestExporter(t, cfg) // prepare() runs
	assert.NoFileExists(t, stale)
	consume(t, e, signin("s1", t0, true))
	e.flush(context.Background(), t0, true)
	files := readTree(t, dir)
	assert.Equal(t, []string{"contoso/20240313T100000Z_PT1H.json"}, keys(files))
	validate(t, files["contoso/20240313T100000Z_PT1H.json"])
	info, err := os.Stat(filepath.Join(dir, "contoso", "20240313T100000Z_PT1H.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())
}

// TestPeriodsAndNames: period boundaries are UTC-aligned, file names and document ids carry the period.
func TestPeriodsAndNames(t *testing.T) {
	for _, tc := range []struct {
		period time.Duration
		at     time.Time
		start  string
		file   string
	}{
		{15 * time.Minute, time.Date(2024, 3, 13, 10, 44, 59, 999, time.UTC), "2024-03-13T10:30:00Z", "20240313T103000Z_PT15M.json"},
		{time.Hour, time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC), "2024-03-13T10:00:00Z", "20240313T100000Z_PT1H.json"},
		{90 * time.Minute, time.Date(2024, 3, 13, 2, 59, 0, 0, time.UTC), "2024-03-13T01:30:00Z", "20240313T013000Z_PT1H30M.json"},
		{24 * time.Hour, time.Date(2024, 3, 13, 23, 59, 0, 0, time.FixedZone("CET", 3600)), "2024-03-13T00:00:00Z", "20240313T000000Z_PT24H.json"},
		{time.Hour, time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC), "1969-12-31T23:00:00Z", "19691231T230000Z_PT1H.json"},
	} {
		cfg := testConfig(t)
		cfg.Period = tc.period
		e, _, _ := newTestExporter(t, cfg)
		start := e.periodStart(tc.at)
		assert.Equal(t, tc.start, fmtTime(start), "%s %s", tc.period, tc.at)
		assert.Equal(t, tc.file, filepath.Base(e.dir.path(contoso, start)))
		d, ok := parseISODuration(isoDuration(tc.period))
		assert.True(t, ok)
		assert.Equal(t, tc.period, d)
	}
	assert.Equal(t, "_", tenantDir(tenantKey{}))
	assert.Equal(t, "a_b_c", tenantDir(tenantKey{name: "a/b c"}))
	assert.Equal(t, "_..", tenantDir(tenantKey{name: ".."}))
	assert.Equal(t, contoso.id, tenantDir(tenantKey{id: contoso.id}))
}

// TestStartShutdownThroughFactory: Shutdown works without Start; Start/Shutdown through the factory
// writes the open periods.
func TestStartShutdownThroughFactory(t *testing.T) {
	f := NewFactory()
	ctx := context.Background()
	all := httpConfig(t, "http://127.0.0.1:1/unreachable", true)
	all.SummaryServer = summaryConfig(t, 5).SummaryServer
	exp, err := f.CreateLogs(ctx, metadatatest.NewSettings(componenttest.NewTelemetry()), all)
	require.NoError(t, err)
	require.NoError(t, exp.Shutdown(ctx), "Shutdown without Start, every destination configured")

	cfg := testConfig(t)
	exp, err = f.CreateLogs(ctx, metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Shutdown(ctx), "Shutdown without Start")

	exp, err = f.CreateLogs(ctx, metadatatest.NewSettings(componenttest.NewTelemetry()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	ld := logsOf(signin("s1", time.Now(), true))
	ld.MarkReadOnly()
	require.NoError(t, exp.ConsumeLogs(ctx, ld))
	require.NoError(t, exp.Shutdown(ctx))
	files := readTree(t, cfg.Directory.Get().Path)
	require.Len(t, files, 1)
	for _, b := range files {
		validate(t, b)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
