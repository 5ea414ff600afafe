package o365exportexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// tenantOf100k returns 100k normalized sign-ins of one tenant in one day: the golden input's
// processed sign-ins, repeated with new ids and times spread over the day.
func tenantOf100k(b *testing.B) plog.Logs {
	var signins []plog.LogRecord
	var resource pcommon.Resource
	for _, ld := range processedInput(b) {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			ds, _ := rl.Resource().Attributes().Get(a.Dataset)
			if ds.Str() != a.DatasetSignIns {
				continue
			}
			resource = rl.Resource()
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					signins = append(signins, lrs.At(k))
				}
			}
		}
	}
	require.NotEmpty(b, signins)
	out := plog.NewLogs()
	rl := out.ResourceLogs().AppendEmpty()
	resource.CopyTo(rl.Resource())
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	day := goldenAnchor.Truncate(24 * time.Hour)
	const n = 100_000
	for i := range n {
		lr := lrs.AppendEmpty()
		signins[i%len(signins)].CopyTo(lr)
		lr.Attributes().PutStr(a.RecordID, fmt.Sprintf("bench-%06d", i))
		lr.SetTimestamp(pcommon.NewTimestampFromTime(day.Add(time.Duration(i) * (24 * time.Hour / n))))
	}
	return out
}

// BenchmarkExportDocument measures the exporter on a tenant with 100k events in one daily period:
// counting them (consume) and writing its document (build, encode, atomic write), with and without the
// events in the document. One op is one document.
func BenchmarkExportDocument(b *testing.B) {
	input := tenantOf100k(b)
	for _, includeEvents := range []bool{false, true} {
		b.Run(fmt.Sprintf("include_events=%v", includeEvents), func(b *testing.B) {
			var size int
			for b.Loop() {
				b.StopTimer()
				cfg := testConfig(b)
				cfg.Period, cfg.IncludeEvents = 24*time.Hour, includeEvents
				e, clock, _ := newTestExporter(b, cfg)
				clock.Set(goldenAnchor.Add(48 * time.Hour))
				ld := plog.NewLogs()
				input.CopyTo(ld)
				b.StartTimer()
				require.NoError(b, e.consume(context.Background(), ld))
				e.flush(context.Background(), clock.Now(), true)
				b.StopTimer()
				files := readTree(b, cfg.Directory.Get().Path)
				require.Len(b, files, 1)
				for _, f := range files {
					size = len(f)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "documents/s")
			b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(size), "document_bytes")
		})
	}
}
