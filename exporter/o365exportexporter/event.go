package o365exportexporter

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-o365/otelcol-o365/internal/jsonenc"
)

// eventEncoder writes the records' entries of `events` exactly as json.Marshal writes the docEvent
// with jsonMap's attributes: the journal keeps these bytes and they break ties in the events' order, so
// they must not change; encoding/json spent most of an include_events page on a map[string]any per
// record and its reflection. Its buffers are reused from record to record.
type eventEncoder struct {
	buf     []byte
	entries []mapEntry // of the maps being written, the outer ones first
}

type mapEntry struct {
	k string
	i int // position in the map: of duplicate keys the last wins, as in jsonMap
	v pcommon.Value
}

// event returns the record's entry, in a slice of its own.
func (enc *eventEncoder) event(r *record, at time.Time) []byte {
	b := append(enc.buf[:0], `{"record_id":`...)
	b = jsonenc.AppendStringAsMarshal(b, r.id)
	b = append(b, `,"timestamp":`...)
	b = jsonenc.AppendStringAsMarshal(b, formatTime(at))
	b = append(b, `,"event_name":`...)
	b = jsonenc.AppendStringAsMarshal(b, r.lr.EventName())
	b = append(b, `,"dataset":`...)
	b = jsonenc.AppendStringAsMarshal(b, r.dataset)
	b = append(b, `,"attributes":`...)
	b = enc.appendMap(b, r.lr.Attributes())
	enc.buf = append(b, '}')
	return bytes.Clone(enc.buf)
}

// appendMap appends json.Marshal(jsonMap(m)): keys sorted, and of duplicate keys the last.
func (enc *eventEncoder) appendMap(dst []byte, m pcommon.Map) []byte {
	base := len(enc.entries)
	for k, v := range m.All() {
		enc.entries = append(enc.entries, mapEntry{k: k, i: len(enc.entries), v: v})
	}
	slices.SortFunc(enc.entries[base:], func(x, y mapEntry) int {
		return cmp.Or(strings.Compare(x.k, y.k), cmp.Compare(x.i, y.i))
	})
	end := len(enc.entries)
	dst = append(dst, '{')
	first := true
	// By index: a nested map appends its entries after end (and may move the slice).
	for i := base; i < end; i++ {
		e := enc.entries[i]
		if i+1 < end && enc.entries[i+1].k == e.k {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = jsonenc.AppendStringAsMarshal(dst, e.k)
		dst = append(dst, ':')
		dst = enc.appendValue(dst, e.v)
	}
	enc.entries = enc.entries[:base]
	return append(dst, '}')
}

// appendValue appends json.Marshal(jsonValue(v)).
func (enc *eventEncoder) appendValue(dst []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return jsonenc.AppendStringAsMarshal(dst, v.Str())
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(dst, v.Bool())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		return appendJSONFloat(dst, v.Double())
	case pcommon.ValueTypeBytes:
		raw := v.Bytes().AsRaw()
		if raw == nil {
			return append(dst, "null"...)
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, raw)
		return append(dst, '"')
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		dst = append(dst, '[')
		for i := 0; i < s.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = enc.appendValue(dst, s.At(i))
		}
		return append(dst, ']')
	case pcommon.ValueTypeMap:
		return enc.appendMap(dst, v.Map())
	default:
		return append(dst, "null"...)
	}
}

// appendJSONFloat writes a double as jsonValue and encoding/json do: the strings "NaN", "+Inf" and
// "-Inf" for what is not finite, else ECMAScript's number format (exponents from 1e21 and below 1e-6,
// not padded).
func appendJSONFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if n := len(dst); format == 'e' && n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1] // e-07 → e-7
		dst = dst[:n-1]
	}
	return dst
}
