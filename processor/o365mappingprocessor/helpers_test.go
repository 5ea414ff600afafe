package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/metadata"
)

// Fixed identity of the test tenant.
const (
	testTenantID   = "11111111-2222-3333-4444-555555555555"
	testTenantName = "contoso"
)

// observedAt is the fetch time the test records carry.
var observedAt = time.Date(2024, 3, 14, 0, 0, 0, 0, time.UTC)

// receiverLogs builds a batch exactly as the o365 receiver emits a Graph page: one ResourceLogs for the
// tenant × dataset, one record per object with the object as body (decoded by the receiver's own page
// decoder), EventName, the object's time as Timestamp, the fetch time as ObservedTimestamp and
// o365.record.id.
func receiverLogs(tb testing.TB, dataset string, page []byte) plog.Logs {
	tb.Helper()
	sh, ok := catalog.ByName(dataset)
	require.True(tb, ok, "unknown dataset %s", dataset)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(a.CloudProvider, "azure")
	res.PutStr(a.TenantID, testTenantID)
	res.PutStr(a.TenantName, testTenantName)
	res.PutStr(a.Dataset, sh.Name)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/otelcol-o365/otelcol-o365/receiver/o365receiver")
	sl.Scope().SetVersion("test")
	records := sl.LogRecords()
	_, err := graph.FastDecoder{}.Decode(page, func() pcommon.Map { return records.AppendEmpty().Body().SetEmptyMap() })
	require.NoError(tb, err)
	for i := 0; i < records.Len(); i++ {
		lr := records.At(i)
		body := lr.Body().Map()
		lr.SetEventName(sh.EventName)
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observedAt))
		for _, field := range []string{sh.TimeField, sh.EventTimeField} { // audit records: CreationTime, UTC without a zone
			if v, ok := body.Get(field); ok && field != "" && lr.Timestamp() == 0 {
				for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05"} {
					if t, err := time.ParseInLocation(layout, v.AsString(), time.UTC); err == nil {
						lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
						break
					}
				}
			}
		}
		id := ""
		if v, ok := body.Get("id"); ok {
			id = v.AsString()
		} else if v, ok := body.Get("Id"); ok { // unified audit records
			id = v.AsString()
		}
		lr.Attributes().PutStr(a.RecordID, id)
	}
	return ld
}

// page wraps JSON objects in a Graph collection page.
func page(objects ...string) []byte {
	return []byte(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#test","value":[` + strings.Join(objects, ",") + `]}`)
}

// sample reads testdata/graph/<name>.json, a Graph object.
func sample(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "graph", name+".json"))
	require.NoError(tb, err)
	return string(b)
}

// edit returns a copy of a JSON object with fields set (nil deletes); dotted keys reach nested objects.
func edit(tb testing.TB, obj string, fields map[string]any) string {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal([]byte(obj), &m))
	for k, v := range fields {
		target := m
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := target[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				target[p] = next
			}
			target = next
		}
		last := parts[len(parts)-1]
		if v == nil {
			delete(target, last)
		} else {
			target[last] = v
		}
	}
	b, err := json.Marshal(m)
	require.NoError(tb, err)
	return string(b)
}

// newTestProcessor builds the processor with a test telemetry and a sink.
func newTestProcessor(tb testing.TB, cfg *Config) (processor.Logs, *consumertest.LogsSink, *componenttest.Telemetry) {
	tb.Helper()
	tel := componenttest.NewTelemetry()
	tb.Cleanup(func() { require.NoError(tb, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.BuildInfo.Version = "test"
	sink := &consumertest.LogsSink{}
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(tb, err)
	require.NoError(tb, p.Start(context.Background(), componenttest.NewNopHost()))
	tb.Cleanup(func() { require.NoError(tb, p.Shutdown(context.Background())) })
	return p, sink, tel
}

func defaultConfig() *Config { return createDefaultConfig().(*Config) }

// allRecords lists the records of a batch.
func allRecords(ld plog.Logs) []plog.LogRecord {
	var out []plog.LogRecord
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, lrs.At(k))
			}
		}
	}
	return out
}

// incidentsOf lists the IncidentCandidate records of batches.
func incidentsOf(batches ...plog.Logs) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range batches {
		for _, lr := range allRecords(ld) {
			if lr.EventName() == a.EventIncidentCandidate {
				out = append(out, lr)
			}
		}
	}
	return out
}

func attrStr(lr plog.LogRecord, k string) string {
	v, ok := lr.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

func nopSettings() processor.Settings {
	set := processortest.NewNopSettings(metadata.Type)
	set.BuildInfo.Version = "test"
	return set
}
