package graph

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/cputime"
)

// samplePage is a page of 1000 sign-ins served by the simulator (testdata, ~1.9 KB per record).
func samplePage(tb testing.TB) []byte {
	tb.Helper()
	f, err := os.Open("testdata/signins_page_1000.json.gz")
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	b, err := io.ReadAll(zr)
	require.NoError(tb, err)
	return b
}

// decodeToLogs decodes a page into log record bodies, as the receiver does.
func decodeToLogs(d PageDecoder, body []byte) (plog.Logs, error) {
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	_, err := d.Decode(body, func() pcommon.Map { return lrs.AppendEmpty().Body().SetEmptyMap() })
	return logs, err
}

// parkedToLogs decodes a page as the receiver does one fetched ahead: parsed, its time span and first
// id read while it waits, then emitted.
func parkedToLogs(body []byte) (plog.Logs, error) {
	pg, err := FastDecoder{}.Parse(body)
	if err != nil {
		return plog.Logs{}, err
	}
	pg.TimeSpan("createdDateTime")
	pg.StringField(0, "id")
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	return logs, pg.Emit(func() pcommon.Map { return lrs.AppendEmpty().Body().SetEmptyMap() })
}

// stdMapDecode is the baseline a user would write: encoding/json into map[string]any, then copied into
// the log body.
func stdMapDecode(body []byte) (plog.Logs, error) {
	var page struct {
		Value    []map[string]any `json:"value"`
		NextLink string           `json:"@odata.nextLink"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return plog.Logs{}, err
	}
	logs := plog.NewLogs()
	lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, rec := range page.Value {
		if err := lrs.AppendEmpty().Body().SetEmptyMap().FromRaw(rec); err != nil {
			return plog.Logs{}, err
		}
	}
	return logs, nil
}

func BenchmarkDecodePage(b *testing.B) {
	body := samplePage(b)
	for _, c := range []struct {
		name   string
		decode func([]byte) (plog.Logs, error)
	}{
		{"decoder=ours", func(p []byte) (plog.Logs, error) { return decodeToLogs(FastDecoder{}, p) }},
		{"decoder=ours_parked", parkedToLogs},
		{"decoder=std_tokens", func(p []byte) (plog.Logs, error) { return decodeToLogs(StdDecoder{}, p) }},
		{"decoder=std_map", stdMapDecode},
		{"decoder=msgraph_sdk", sdkParse},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if _, err := c.decode(body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
			reportCPU(b, cpu0, len(body))
		})
	}
	// The collector's own decoder of the same records: pdata's protobuf unmarshaler, the path every
	// OTLP receiver takes, building these bodies from their OTLP encoding (no JSON to read, no key
	// lookups). MB/s counts the page's JSON bytes, as for the others.
	b.Run("decoder=pdata_otlp_proto", func(b *testing.B) {
		logs, err := decodeToLogs(FastDecoder{}, body)
		require.NoError(b, err)
		encoded, err := (&plog.ProtoMarshaler{}).MarshalLogs(logs)
		require.NoError(b, err)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		cpu0 := cputime.Process()
		for b.Loop() {
			if _, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(encoded); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*float64(logs.LogRecordCount())/b.Elapsed().Seconds(), "records/s")
		reportCPU(b, cpu0, len(body))
	})
}

// floorNode is a page's value already parsed, with every key and string a Go string: what a decoder
// would have in hand before it touches pdata.
type floorNode struct {
	kind     pcommon.ValueType
	key, str string
	i        int64
	f        float64
	b        bool
	children []floorNode
}

func toFloorNode(key string, v any) floorNode {
	n := floorNode{key: key}
	switch x := v.(type) {
	case string:
		n.kind, n.str = pcommon.ValueTypeStr, x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			n.kind, n.i = pcommon.ValueTypeInt, i
		} else {
			f, _ := x.Float64()
			n.kind, n.f = pcommon.ValueTypeDouble, f
		}
	case bool:
		n.kind, n.b = pcommon.ValueTypeBool, x
	case map[string]any:
		n.kind = pcommon.ValueTypeMap
		for k, e := range x {
			n.children = append(n.children, toFloorNode(k, e))
		}
	case []any:
		n.kind = pcommon.ValueTypeSlice
		for _, e := range x {
			n.children = append(n.children, toFloorNode("", e))
		}
	default:
		n.kind = pcommon.ValueTypeEmpty
	}
	return n
}

// buildFloor fills dst from n; clone copies every string, as a decoder must (its input buffer is
// reused), or shares the prepared ones.
func buildFloor(n *floorNode, dst pcommon.Value, clone bool) {
	switch n.kind {
	case pcommon.ValueTypeStr:
		if clone {
			dst.SetStr(strings.Clone(n.str))
		} else {
			dst.SetStr(n.str)
		}
	case pcommon.ValueTypeInt:
		dst.SetInt(n.i)
	case pcommon.ValueTypeDouble:
		dst.SetDouble(n.f)
	case pcommon.ValueTypeBool:
		dst.SetBool(n.b)
	case pcommon.ValueTypeMap:
		fillFloorMap(n.children, dst.SetEmptyMap(), clone)
	case pcommon.ValueTypeSlice:
		s := dst.SetEmptySlice()
		s.EnsureCapacity(len(n.children))
		for i := range n.children {
			buildFloor(&n.children[i], s.AppendEmpty(), clone)
		}
	}
}

func fillFloorMap(members []floorNode, m pcommon.Map, clone bool) {
	m.EnsureCapacity(len(members))
	for i := range members {
		buildFloor(&members[i], m.PutEmpty(members[i].key), clone)
	}
}

// BenchmarkPdataFloor is the cost of the pdata API alone for the page BenchmarkDecodePage decodes:
// the same log records and bodies built from values already parsed, so no decoder that fills plog can
// be faster. strings=shared is below even that floor (no string is copied); strings=copied copies each
// string value once, as any decoder whose input buffer is reused must.
func BenchmarkPdataFloor(b *testing.B) {
	body := samplePage(b)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var page struct {
		Value []map[string]any `json:"value"`
	}
	require.NoError(b, dec.Decode(&page))
	records := make([][]floorNode, len(page.Value))
	for i, rec := range page.Value {
		for k, v := range rec {
			records[i] = append(records[i], toFloorNode(k, v))
		}
	}
	for _, clone := range []bool{false, true} {
		name := map[bool]string{false: "strings=shared", true: "strings=copied"}[clone]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				logs := plog.NewLogs()
				lrs := logs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
				lrs.EnsureCapacity(len(records))
				for i := range records {
					fillFloorMap(records[i], lrs.AppendEmpty().Body().SetEmptyMap(), clone)
				}
			}
			b.ReportMetric(float64(b.N)*float64(len(records))/b.Elapsed().Seconds(), "records/s")
			reportCPU(b, cpu0, len(body))
		})
	}
}

// reportCPU reports the process's CPU time per page and the page bytes per CPU-second since cpu0:
// unlike wall-clock figures they hold on a machine busy with other work (run with -cpu 1, so that the
// collector's garbage collection is counted as part of the cost, as it is).
func reportCPU(b *testing.B, cpu0 time.Duration, pageBytes int) {
	cpu := cputime.Process() - cpu0
	if cpu <= 0 {
		return
	}
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/page")
	b.ReportMetric(float64(b.N)*float64(pageBytes)/1e6/cpu.Seconds(), "MB/cpu-s")
}
