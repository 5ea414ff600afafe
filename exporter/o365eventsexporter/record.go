package o365eventsexporter

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/jsonenc"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// row is one record as stored. Its key is (tenant, dataset, recordID, version).
type row struct {
	tenant, tenantID, dataset string
	recordID, version         string
	time                      int64  // the event's own time, ns since the epoch
	eventType                 string // "" = not normalized
	raw, normalized           []byte // JSON; nil = absent
}

func (r *row) key() string {
	return r.tenant + "\x00" + r.dataset + "\x00" + r.recordID + "\x00" + r.version
}

// dropCounts counts the records of a batch that are not stored.
type dropCounts struct{ noTenant, expired int64 }

// jsonBufs holds the buffers of batches' JSON (*[]byte): a buffer is free again once the batch is
// written, since the drivers copy what they bind, and the next batch then encodes into a buffer of
// the right size instead of growing one from nothing (≈ 9 MB copied per page of 1000 sign-ins).
var jsonBufs = sync.Pool{New: func() any { return new([]byte) }}

// rowsOf turns a batch into rows, in one pass; their JSON is in *bufp, which the rows use until they
// are written. Records older than notBefore (ns; math.MinInt64 for no bound) are not stored, nor
// records of a resource without a tenant.
func rowsOf(ld plog.Logs, notBefore int64, now time.Time, bufp *[]byte) ([]row, dropCounts) {
	var drops dropCounts
	out := make([]row, 0, ld.LogRecordCount())
	// One buffer for the batch's JSON: rows hold sub-slices of it, so a page costs a few allocations,
	// not two per record. A slice taken before the buffer grows keeps the old array, unchanged.
	buf := (*bufp)[:0]
	defer func() { *bufp = buf }()
	next := func(start int) []byte { return buf[start:len(buf):len(buf)] }
	for _, rl := range ld.ResourceLogs().All() {
		res := rl.Resource().Attributes()
		tenant, tenantID := strAttr(res, o365attr.TenantName), strAttr(res, o365attr.TenantID)
		if tenant == "" {
			tenant = tenantID
		}
		dataset := strAttr(res, o365attr.Dataset)
		var ds *catalog.Dataset
		if d, ok := catalog.ByName(dataset); ok {
			ds = d
		}
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if tenant == "" {
					drops.noTenant++
					continue
				}
				r := row{tenant: tenant, tenantID: tenantID, dataset: dataset, time: recordTime(lr, now)}
				if r.time < notBefore {
					drops.expired++
					continue
				}
				attrs := lr.Attributes()
				body := lr.Body()
				if body.Type() != pcommon.ValueTypeEmpty {
					start := len(buf)
					buf = appendValue(buf, body)
					r.raw = next(start)
				}
				r.recordID = strAttr(attrs, o365attr.RecordID)
				if r.recordID == "" {
					// Graph sent no id (or the record is not Graph's, e.g. a summary): its content is its
					// identity, as for the receiver's dedup.
					h := sha256.New()
					_, _ = h.Write(r.raw)
					_, _ = h.Write(appendMap(nil, attrs))
					r.recordID = "sha256:" + hex.EncodeToString(h.Sum(nil))
				}
				r.version = recordVersion(ds, body, lr)
				if t := strAttr(attrs, o365attr.EventType); t != "" {
					r.eventType = t
					start := len(buf)
					buf = appendMap(buf, attrs)
					r.normalized = next(start)
				}
				out = append(out, r)
			}
		}
	}
	return out, drops
}

// recordVersion is the part of a record's identity beyond its id, for datasets whose records Graph
// republishes under one id (alerts, risk detections: one record per version): the catalog's
// VersionField of the body. Without a body (the processor's `keep_raw: false`) the record's Timestamp
// stands in when the version field is also the dataset's time field, which the receiver put there.
func recordVersion(ds *catalog.Dataset, body pcommon.Value, lr plog.LogRecord) string {
	if ds == nil || ds.VersionField == "" {
		return ""
	}
	if body.Type() == pcommon.ValueTypeMap {
		if v, ok := body.Map().Get(ds.VersionField); ok {
			return v.AsString()
		}
	}
	if ds.TimeField == ds.VersionField && lr.Timestamp() != 0 {
		return lr.Timestamp().AsTime().UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// recordTime is the event's own time: Timestamp, else ObservedTimestamp, else now.
func recordTime(lr plog.LogRecord, now time.Time) int64 {
	if ts := lr.Timestamp(); ts != 0 {
		return int64(ts)
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return int64(ts)
	}
	return now.UnixNano()
}

func strAttr(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

// appendValue appends v as JSON: maps in their own key order (Graph's, for a body), numbers as they
// were decoded (integers as integers), doubles that are not finite as the strings "NaN", "+Inf",
// "-Inf", bytes as base64, empty as null.
func appendValue(b []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return jsonenc.AppendString(b, v.Str())
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return append(b, `"NaN"`...)
		case math.IsInf(f, 1):
			return append(b, `"+Inf"`...)
		case math.IsInf(f, -1):
			return append(b, `"-Inf"`...)
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBytes:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, v.Bytes().AsRaw())
		return append(b, '"')
	case pcommon.ValueTypeSlice:
		b = append(b, '[')
		for i, e := range v.Slice().All() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	case pcommon.ValueTypeMap:
		return appendMap(b, v.Map())
	default:
		return append(b, "null"...)
	}
}

func appendMap(b []byte, m pcommon.Map) []byte {
	b = append(b, '{')
	first := true
	for k, v := range m.All() {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = appendValue(b, v)
	}
	return append(b, '}')
}
