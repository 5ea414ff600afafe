package o365exportexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// TestCanonicalEncoding: sorted keys at every level, ECMAScript number formatting, no HTML escaping,
// two-space indentation and one final newline.
func TestCanonicalEncoding(t *testing.T) {
	got, err := encode(struct {
		Z any            `json:"z"`
		A map[string]any `json:"a"`
		M []any          `json:"m"`
	}{
		Z: "<b>&</b>",
		A: map[string]any{"b": 1, "a": map[string]any{"y": true, "x": nil}},
		M: []any{1.0, 0.1, 100.0, 1e21, 1e20, 1e-7, 0.000001, math.Copysign(0, -1), 47.68050003051758, int64(math.MaxInt64), 123456789.125},
	})
	require.NoError(t, err)
	assert.Equal(t, `{
  "a": {
    "a": {
      "x": null,
      "y": true
    },
    "b": 1
  },
  "m": [
    1,
    0.1,
    100,
    1e+21,
    100000000000000000000,
    1e-7,
    0.000001,
    -0,
    47.68050003051758,
    9223372036854775807,
    123456789.125
  ],
  "z": "<b>&</b>"
}
`, string(got))
}

func TestJSONValue(t *testing.T) {
	m := pcommon.NewMap()
	m.PutDouble("nan", math.NaN())
	m.PutDouble("inf", math.Inf(1))
	m.PutDouble("-inf", math.Inf(-1))
	m.PutEmptyBytes("bytes").FromRaw([]byte{1, 2, 3})
	m.PutEmpty("empty")
	s := m.PutEmptySlice("slice")
	s.AppendEmpty().SetInt(1)
	s.AppendEmpty().SetStr("x")
	m.PutEmptyMap("map").PutBool("ok", true)
	b, err := encode(jsonMap(m))
	require.NoError(t, err)
	assert.JSONEq(t, `{"nan":"NaN","inf":"+Inf","-inf":"-Inf","bytes":"AQID","empty":null,"slice":[1,"x"],"map":{"ok":true}}`, string(b))
}

// TestSchemaRejects: the schema is not vacuous; and unknown fields pass the shipped schema (consumers
// of version 1 must accept documents with fields added later) but not the strict variant the tests use
// to keep the exporter honest.
func TestSchemaRejects(t *testing.T) {
	e, _, _ := newTestExporter(t, testConfig(t))
	consume(t, e, signin("s1", t0, true), incident("i", "brute_force", t0, t0, "s1"))
	e.flush(context.Background(), t0, true)
	var raw []byte
	for _, b := range readTree(t, e.cfg.Directory.Get().Path) {
		raw = b
	}
	validate(t, raw)
	open, strict := schemas(t)
	check := func(edit func(map[string]any)) (openErr, strictErr error) {
		var doc map[string]any
		require.NoError(t, json.Unmarshal(raw, &doc))
		edit(doc)
		b, err := json.Marshal(doc)
		require.NoError(t, err)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		require.NoError(t, err)
		return open.Validate(inst), strict.Validate(inst)
	}
	for name, edit := range map[string]func(map[string]any){
		"version 2":           func(d map[string]any) { d["export_version"] = 2 },
		"no tenant":           func(d map[string]any) { delete(d, "tenant") },
		"negative count":      func(d map[string]any) { d["records"].(map[string]any)["total"] = -1 },
		"fractional count":    func(d map[string]any) { d["counts"].(map[string]any)["by_domain"].(map[string]any)["x"] = 1.5 },
		"local time":          func(d map[string]any) { d["period"].(map[string]any)["start"] = "2024-03-13T10:00:00+01:00" },
		"trailing zero":       func(d map[string]any) { d["time_range"].(map[string]any)["first"] = "2024-03-13T10:00:00.100Z" },
		"bad duration":        func(d map[string]any) { d["period"].(map[string]any)["duration"] = "1h" },
		"incident without id": func(d map[string]any) { delete(d["incident_candidates"].([]any)[0].(map[string]any), "id") },
	} {
		openErr, strictErr := check(edit)
		assert.Error(t, openErr, name)
		assert.Error(t, strictErr, name)
	}
	openErr, strictErr := check(func(d map[string]any) { d["added_in_1_1"] = "x" })
	assert.NoError(t, openErr, "an unknown field is allowed by the shipped schema")
	assert.Error(t, strictErr)
}

// TestGeneratedAt is only written when asked for.
func TestGeneratedAt(t *testing.T) {
	cfg := testConfig(t)
	cfg.IncludeGeneratedAt = true
	e, clock, _ := newTestExporter(t, cfg)
	consume(t, e, signin("s1", t0, true))
	clock.Set(t0.Add(90*time.Minute + 1500*time.Millisecond))
	e.flush(context.Background(), clock.Now(), false)
	assert.Equal(t, "2024-03-13T11:30:01.5Z", docAt(t, e, contoso, t0)["generated_at"])
}

// TestEventsInDocument: include_events lists the normalized events (not raw records, not incidents),
// sorted by time and id, with every attribute.
func TestEventsInDocument(t *testing.T) {
	cfg := testConfig(t)
	cfg.IncludeEvents = true
	e, _, _ := newTestExporter(t, cfg)
	raw := rec{tenant: contoso, dataset: a.DatasetSignIns, id: "raw", at: t0}
	consume(t, e, signin("b", t0.Add(time.Minute), true), signin("a", t0.Add(time.Minute), false), signin("c", t0, true), raw,
		incident("i", "brute_force", t0, t0, "a"))
	e.flush(context.Background(), t0, true)
	doc := docAt(t, e, contoso, t0)
	events := doc["events"].([]any)
	require.Len(t, events, 3)
	var ids []string
	for _, ev := range events {
		ids = append(ids, ev.(map[string]any)["record_id"].(string))
	}
	assert.Equal(t, []string{"c", "a", "b"}, ids)
	assert.Equal(t, map[string]any{
		"record_id": "a", "timestamp": "2024-03-13T10:01:00Z", "event_name": "o365.signin", "dataset": "signins",
		"attributes": map[string]any{
			"o365.record.id": "a", "o365.event.type": "signin.failure", "o365.domain": "identity_access", "o365.control": "AC-7",
			"o365.metric": "signin_failure", "user.name": "alice@contoso.com", "o365.result": "failure",
			"o365.signin.error_code": 50126.0, "geo.location.lat": 47.6062, "geo.location.lon": -122.3321,
		},
	}, events[1])

	// Without events in the period, the list is there and empty.
	cfg2 := testConfig(t)
	cfg2.IncludeEvents = true
	e2, _, _ := newTestExporter(t, cfg2)
	consume(t, e2, raw)
	e2.flush(context.Background(), t0, true)
	assert.Equal(t, []any{}, docAt(t, e2, contoso, t0)["events"])
}

// TestConcurrentConsumeAndFlush is for the race detector.
func TestConcurrentConsumeAndFlush(t *testing.T) {
	cfg := testConfig(t)
	cfg.FlushDelay = 0
	cfg.MaxRecordsPerTenant = 50
	e, clock, _ := newTestExporter(t, cfg)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				consume(t, e, signin(strings.Repeat("x", g+1)+string(rune('a'+i%26))+time.Duration(i).String(), t0.Add(time.Duration(i)*time.Minute), i%2 == 0))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			clock.Set(t0.Add(time.Duration(i) * 5 * time.Minute))
			e.flush(context.Background(), clock.Now(), false)
		}
	}()
	wg.Wait()
	e.flush(context.Background(), clock.Now(), true)
	for _, b := range readTree(t, cfg.Directory.Get().Path) {
		validate(t, b)
	}
}
