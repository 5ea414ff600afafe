package o365exportexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/metadatatest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Test tenants.
var (
	contoso  = tenantKey{id: "11111111-2222-3333-4444-555555555555", name: "contoso"}
	fabrikam = tenantKey{id: "66666666-7777-8888-9999-000000000000", name: "fabrikam"}
)

// t0 is the start of an hourly period.
var t0 = time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC)

// testClock is a settable wall clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// testConfig is the default configuration with a directory in a temporary directory.
func testConfig(t testing.TB) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Directory = configoptional.Some(DirectoryConfig{Path: t.TempDir()})
	return cfg
}

// newTestExporter makes an exporter whose wall clock is the returned testClock (at t0) and whose
// telemetry is recorded. It is not started: tests drive consume and flush themselves (start when they
// need the HTTP sender or the server).
func newTestExporter(t testing.TB, cfg *Config) (*exportExporter, *testClock, *componenttest.Telemetry) {
	t.Helper()
	return newTestExporterAt(t, cfg, t0)
}

// newTestExporterAt is newTestExporter with the clock at now (when the journal is replayed, too).
func newTestExporterAt(t testing.TB, cfg *Config, now time.Time) (*exportExporter, *testClock, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	e, err := newExportExporter(context.Background(), metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	clock := &testClock{now: now}
	e.now = clock.Now
	if e.dir != nil {
		require.NoError(t, e.dir.prepare())
	}
	require.NoError(t, e.recover())
	return e, clock, tt
}

// rec describes a normalized record.
type rec struct {
	tenant    tenantKey
	dataset   string
	id        string
	at        time.Time
	eventType string
	domain    string
	control   string
	metric    string
	attrs     map[string]any
}

// signin makes a successful or failed sign-in record of contoso.
func signin(id string, at time.Time, success bool) rec {
	r := rec{tenant: contoso, dataset: a.DatasetSignIns, id: id, at: at, eventType: "signin.success",
		domain: "identity_access", control: "IA-2", metric: "signin_success",
		attrs: map[string]any{a.UserName: "alice@contoso.com", a.Result: a.ResultSuccess, a.GeoLocationLat: 47.6062, a.GeoLocationLon: -122.3321}}
	if !success {
		r.eventType, r.control, r.metric = "signin.failure", "AC-7", "signin_failure"
		r.attrs[a.Result] = a.ResultFailure
		r.attrs[a.SignInErrorCode] = int64(50126)
	}
	return r
}

// logsOf builds one ResourceLogs per (tenant, dataset), in order of first appearance.
func logsOf(recs ...rec) plog.Logs {
	ld := plog.NewLogs()
	index := map[[3]string]plog.LogRecordSlice{}
	for _, r := range recs {
		k := [3]string{r.tenant.id, r.tenant.name, r.dataset}
		lrs, ok := index[k]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			res := rl.Resource().Attributes()
			res.PutStr(a.CloudProvider, "azure")
			if r.tenant.id != "" {
				res.PutStr(a.TenantID, r.tenant.id)
			}
			if r.tenant.name != "" {
				res.PutStr(a.TenantName, r.tenant.name)
			}
			res.PutStr(a.Dataset, r.dataset)
			lrs = rl.ScopeLogs().AppendEmpty().LogRecords()
			index[k] = lrs
		}
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.at))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.at.Add(time.Minute)))
		lr.Body().SetStr("body " + r.id)
		attrs := lr.Attributes()
		if r.id != "" {
			attrs.PutStr(a.RecordID, r.id)
		}
		switch r.dataset {
		case a.DatasetSignIns:
			lr.SetEventName(a.EventSignIn)
		case a.DatasetIncidentCandidates:
			lr.SetEventName(a.EventIncidentCandidate)
		default:
			lr.SetEventName("o365." + r.dataset)
		}
		if r.eventType != "" {
			attrs.PutStr(a.EventType, r.eventType)
		}
		for k, v := range map[string]string{a.Domain: r.domain, a.Control: r.control, a.Metric: r.metric} {
			if v != "" {
				attrs.PutStr(k, v)
			}
		}
		keys := make([]string, 0, len(r.attrs))
		for k := range r.attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := attrs.PutEmpty(k).FromRaw(r.attrs[k]); err != nil {
				panic(err)
			}
		}
	}
	return ld
}

// incident makes an IncidentCandidate record of contoso ending at end.
func incident(id, rule string, start, end time.Time, evidence ...string) rec {
	ev := make([]any, len(evidence))
	for i, e := range evidence {
		ev[i] = e
	}
	return rec{tenant: contoso, dataset: a.DatasetIncidentCandidates, id: id, at: end,
		eventType: "incident_candidate." + rule, domain: "incident_response", control: "IR-4", metric: "incident_candidates",
		attrs: map[string]any{
			a.IncidentID: id, a.IncidentRule: rule, a.IncidentSeverity: "high", a.IncidentDescription: "Test " + rule,
			a.IncidentWindowStart: start.Format(time.RFC3339Nano), a.IncidentWindowEnd: end.Format(time.RFC3339Nano),
			a.IncidentEntities: map[string]any{a.UserName: "alice@contoso.com"}, a.IncidentRecordIDs: ev,
			a.IncidentRecordCount: int64(len(ev)),
		}}
}

func consume(t *testing.T, e *exportExporter, recs ...rec) {
	t.Helper()
	require.NoError(t, e.consume(context.Background(), logsOf(recs...)))
}

// readTree returns every file under dir (relative path → content), except the journal's inside it.
func readTree(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == journalDirName && path != dir {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = b
		return nil
	}))
	return out
}

// docAt reads the document of a tenant's period from the exporter's directory (nil when absent).
func docAt(t *testing.T, e *exportExporter, key tenantKey, start time.Time) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(e.dir.path(key, start))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	validate(t, raw)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

// field reads a dotted path from a decoded document.
func field(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

var (
	schemaOnce              sync.Once
	schemaOpen, schemaTight *jsonschema.Schema
	schemaErr               error
)

// schemas compiles export.v1.schema.json as shipped (open: unknown fields allowed, as the compatibility
// rule requires) and a strict variant with additionalProperties: false on every object that lists its
// properties, which proves the exporter writes no field the schema does not document.
func schemas(t *testing.T) (open, strict *jsonschema.Schema) {
	t.Helper()
	schemaOnce.Do(func() {
		compile := func(doc any) (*jsonschema.Schema, error) {
			c := jsonschema.NewCompiler()
			c.AssertFormat()
			const url = "https://github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/export.v1.schema.json"
			if err := c.AddResource(url, doc); err != nil {
				return nil, err
			}
			return c.Compile(url)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaV1()))
		if err != nil {
			schemaErr = err
			return
		}
		if schemaOpen, schemaErr = compile(doc); schemaErr != nil {
			return
		}
		tight, _ := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaV1()))
		closeObjects(tight)
		schemaTight, schemaErr = compile(tight)
	})
	require.NoError(t, schemaErr)
	return schemaOpen, schemaTight
}

func closeObjects(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["properties"]; ok {
			if _, set := x["additionalProperties"]; !set {
				x["additionalProperties"] = false
			}
		}
		for _, c := range x {
			closeObjects(c)
		}
	case []any:
		for _, c := range x {
			closeObjects(c)
		}
	}
}

// validate checks a document against the schema (shipped and strict) and the canonical form.
func validate(t *testing.T, raw []byte) {
	t.Helper()
	open, strict := schemas(t)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	require.NoError(t, open.Validate(inst), "%s", raw)
	require.NoError(t, strict.Validate(inst), "%s", raw)
	requireCanonical(t, raw)
}

// requireCanonical checks that raw is exactly its canonical re-encoding: sorted keys, stable numbers,
// two-space indentation, "\n" at the end.
func requireCanonical(t *testing.T, raw []byte) {
	t.Helper()
	again, err := canonicalize(raw)
	require.NoError(t, err)
	require.Equal(t, string(again), string(raw), "not canonical")
	require.True(t, bytes.HasSuffix(raw, []byte("}\n")))
}

func fmtTime(ts time.Time) string { return ts.UTC().Format(time.RFC3339Nano) }

func sprint(v any) string { return fmt.Sprint(v) }
