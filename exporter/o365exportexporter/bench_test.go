package o365exportexporter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
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

// signinPages returns pages of 1000 normalized sign-ins of one tenant (the golden input's, with new
// ids), as the receiver and the processor deliver them: one hour of records per 10 pages.
func signinPages(b *testing.B, pages int) []plog.Logs {
	day := tenantOf100k(b)
	src := day.ResourceLogs().At(0)
	out := make([]plog.Logs, pages)
	for i := range out {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		src.Resource().CopyTo(rl.Resource())
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for k := range 1000 {
			lr := lrs.AppendEmpty()
			src.ScopeLogs().At(0).LogRecords().At((i*1000 + k) % 100_000).CopyTo(lr)
			lr.Attributes().PutStr(a.RecordID, fmt.Sprintf("page-%05d-%04d", i, k))
			lr.SetTimestamp(pcommon.NewTimestampFromTime(goldenAnchor.Add(time.Duration(i*1000+k) * 360 * time.Millisecond)))
		}
		out[i] = ld
	}
	return out
}

// BenchmarkConsumeLogs measures what ConsumeLogs costs per page of 1000 sign-ins: counting in memory
// only (journal off: the exporter's behaviour before the journal), and with the journal on the disk
// (one append and fsync per page) or on tmpfs (/dev/shm, where fsync costs nothing: the difference is
// the fsync). One op is one page.
func BenchmarkConsumeLogs(b *testing.B) {
	const pages = 200
	input := signinPages(b, pages)
	for _, includeEvents := range []bool{false, true} {
		for _, journal := range []string{"off", "disk", "tmpfs"} {
			b.Run(fmt.Sprintf("include_events=%v/journal=%s", includeEvents, journal), func(b *testing.B) {
				cfg := testConfig(b)
				cfg.IncludeEvents = includeEvents
				cfg.MaxRecordsPerTenant = 10_000_000
				switch journal {
				case "off":
					cfg.Journal = configoptional.None[JournalConfig]()
				case "tmpfs":
					dir, err := os.MkdirTemp("/dev/shm", "o365-export-bench-")
					if err != nil {
						b.Skipf("no tmpfs at /dev/shm: %v", err)
					}
					b.Cleanup(func() { _ = os.RemoveAll(dir) })
					cfg.Journal = configoptional.Some(JournalConfig{Path: dir})
				}
				e, _, _ := newTestExporter(b, cfg)
				i := 0
				for b.Loop() {
					if i == pages { // a fresh exporter: the pages are new records again
						b.StopTimer()
						cfg.Directory = configoptional.Some(DirectoryConfig{Path: b.TempDir()})
						if journal == "tmpfs" {
							dir := filepath.Join(e.journalDir, fmt.Sprint(b.N, "-", i))
							cfg.Journal = configoptional.Some(JournalConfig{Path: dir})
						}
						e, _, _ = newTestExporter(b, cfg)
						i = 0
						b.StartTimer()
					}
					require.NoError(b, e.consume(context.Background(), input[i]))
					i++
				}
				b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
				if e.journalDir != "" {
					var size int64
					for _, ts := range e.tenants {
						for _, p := range ts.periods {
							size += p.journal.Size()
						}
					}
					b.ReportMetric(float64(size)/float64(1000*i), "journal_bytes/record")
				}
			})
		}
	}
}
