package o365exportexporter

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// marshaledEvent is the event as encoding/json writes it, which appendEvent must write byte for byte.
func marshaledEvent(t *testing.T, r *record, at time.Time) string {
	want, err := json.Marshal(docEvent{
		RecordID:   r.id,
		Timestamp:  formatTime(at),
		EventName:  r.lr.EventName(),
		Dataset:    r.dataset,
		Attributes: jsonMap(r.lr.Attributes()),
	})
	require.NoError(t, err)
	return string(want)
}

// TestEventEncoderIsEncodingJSON: every record of the golden input, and one with every kind of value,
// is encoded as json.Marshal encodes it, by one encoder (its buffers reused).
func TestEventEncoderIsEncodingJSON(t *testing.T) {
	at := time.Date(2024, 3, 13, 11, 0, 0, 123_000_000, time.UTC)
	enc := new(eventEncoder)
	var wants []string
	var events [][]byte
	for _, ld := range processedInput(t) {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			dataset := attrString(rl.Resource().Attributes(), a.Dataset)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					r := readRecord(dataset, lrs.At(k))
					wants = append(wants, marshaledEvent(t, &r, at))
					events = append(events, enc.event(&r, at))
				}
			}
		}
	}
	require.Greater(t, len(events), 100)
	for i := range events {
		require.Equal(t, wants[i], string(events[i]))
	}

	lr := plog.NewLogRecord()
	lr.SetEventName("o365.<signin>")
	m := lr.Attributes()
	m.PutStr(a.RecordID, "id & \u2028 \xff \b\f\x01")
	m.PutStr("z", "last key")
	m.PutStr("html", "<script>&amp;</script>")
	m.PutBool("bool", true)
	m.PutInt("int", math.MinInt64)
	for k, f := range map[string]float64{"nan": math.NaN(), "inf": math.Inf(1), "-inf": math.Inf(-1), "zero": 0,
		"negzero": math.Copysign(0, -1), "small": 1e-7, "edge": 1e-6, "big": 1e21, "below": 999999999999999999999,
		"lat": 47.6062, "tiny": 5e-324, "max": math.MaxFloat64} {
		m.PutDouble(k, f)
	}
	m.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2, 0xff})
	m.PutEmptyBytes("nobytes")
	m.PutEmpty("empty")
	s := m.PutEmptySlice("slice")
	s.AppendEmpty().SetStr("a")
	s.AppendEmpty().SetDouble(1.5)
	s.AppendEmpty().SetEmptySlice()
	s.AppendEmpty().SetEmptyMap().PutStr("k", "v")
	m.PutEmptySlice("noslice")
	nested := m.PutEmptyMap("map")
	nested.PutInt("b", 2)
	nested.PutInt("a", 1)
	m.PutEmptyMap("nomap")
	r := readRecord("signins", lr)
	require.Equal(t, marshaledEvent(t, &r, at), string(enc.event(&r, at)))
}

// TestEventEncoderDuplicateKeys: of duplicate keys (OTLP allows them; Put never makes them) the event
// keeps the last, as jsonMap does, and readRecord the first, as Get does.
func TestEventEncoderDuplicateKeys(t *testing.T) {
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[
		{"key":"o365.record.id","value":{"stringValue":"first"}},{"key":"b","value":{"intValue":"1"}},
		{"key":"o365.record.id","value":{"stringValue":"second"}},{"key":"a","value":{"intValue":"2"}}]}]}]}]}`))
	require.NoError(t, err)
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	require.Equal(t, 4, lr.Attributes().Len())
	r := readRecord("signins", lr)
	require.Equal(t, "first", r.id)
	at := time.Unix(0, 0)
	require.Equal(t, marshaledEvent(t, &r, at), string(new(eventEncoder).event(&r, at)))
	require.Contains(t, string(new(eventEncoder).event(&r, at)), `"o365.record.id":"second"`)
}
