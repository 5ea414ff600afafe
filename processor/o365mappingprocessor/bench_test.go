package o365mappingprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/cputime"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Benchmarks of the processor on realistic sign-ins (the simulator's, plus Microsoft's documented
// example), as the receiver emits them: 1000-record pages. One op is one record, so ns/op is the time per
// record on one core (processLogs runs on the caller's goroutine) and allocs/op the allocations per
// record. Copying the raw page before each pass is not timed.
//
//	go test -run '^$' -bench . -benchmem ./processor/o365mappingprocessor/
//
// Figures are in docs/benchmarks.md (§2).

const benchPageSize = 1000

// benchSignIns returns a page of n realistic, distinct sign-ins (some failures, several users).
func benchSignIns(tb testing.TB, n int) plog.Logs {
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", "signins_simulator", "page.json"))
	require.NoError(tb, err)
	var p struct {
		Value []map[string]any `json:"value"`
	}
	require.NoError(tb, json.Unmarshal(raw, &p))
	var doc map[string]any
	require.NoError(tb, json.Unmarshal([]byte(sample(tb, "signin")), &doc))
	pool := append(p.Value, doc)
	objs := make([]string, 0, n)
	for i := range n {
		o := pool[i%len(pool)]
		o["id"] = fmt.Sprintf("bench-%08d", i)
		b, err := json.Marshal(o)
		require.NoError(tb, err)
		objs = append(objs, string(b))
	}
	return receiverLogs(tb, a.DatasetSignIns, page(objs...))
}

func benchProcessor(b *testing.B, cfg *Config) {
	p, err := newProcessor(nopSettings(), cfg)
	require.NoError(b, err)
	defer func() { _ = p.shutdown(context.Background()) }()
	// The processor changes the body only when it drops it or pseudonymizes it; otherwise a processed page
	// is made raw again by cutting the attributes back to the receiver's, which keeps the untimed setup
	// from flooding the timed part with garbage to collect.
	reuse := cfg.KeepRaw && !cfg.Pseudonymize.HasValue()
	full := benchSignIns(b, benchPageSize)
	rest := benchSignIns(b, b.N%benchPageSize)
	work := plog.NewLogs()
	ctx := context.Background()
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for pass, done := 0, 0; done < b.N; pass++ {
		src := full
		if b.N-done < benchPageSize {
			src = rest
		}
		if !reuse || pass == 0 || src.LogRecordCount() != work.LogRecordCount() {
			src.CopyTo(work)
		}
		rewind(work, src, pass)
		cpu0 := cputime.Process()
		b.StartTimer()
		if _, err := p.processLogs(ctx, work); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cputime.Process() - cpu0
		done += src.LogRecordCount()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// CPU time of the whole process (GC workers included) while processing, per record: unlike ns/op it
	// does not grow when other processes compete for the cores.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}

// rewind makes a processed page raw again, as a new page: the receiver's attributes only, new record ids
// and times moved on by a day per pass (so correlation sees new records, not redeliveries).
func rewind(ld, src plog.Logs, pass int) {
	rls := ld.ResourceLogs()
	rls.RemoveIf(func(rl plog.ResourceLogs) bool {
		v, _ := rl.Resource().Attributes().Get(a.Dataset)
		return v.Str() == a.DatasetIncidentCandidates
	})
	lrs := rls.At(0).ScopeLogs().At(0).LogRecords()
	orig := src.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	shift := pcommon.Timestamp(pass) * pcommon.Timestamp(24*time.Hour)
	for i := 0; i < lrs.Len(); i++ {
		lr := lrs.At(i)
		attrs := lr.Attributes()
		attrs.RemoveIf(func(k string, _ pcommon.Value) bool { return k != a.RecordID })
		attrs.PutStr(a.RecordID, fmt.Sprintf("bench-%d-%d", pass, i))
		lr.SetTimestamp(orig.At(i).Timestamp() + shift)
	}
}

// BenchmarkNormalizeMapSignIns is normalize + map (correlation off): the path the ≥ 200k records/s/core
// target is about.
func BenchmarkNormalizeMapSignIns(b *testing.B) {
	cfg := defaultConfig()
	cfg.Correlation.Enabled = false
	benchProcessor(b, cfg)
}

// BenchmarkProcessSignIns adds the default correlation rules.
func BenchmarkProcessSignIns(b *testing.B) {
	benchProcessor(b, defaultConfig())
}

// BenchmarkProcessSignInsNoRaw is BenchmarkProcessSignIns with `keep_raw: false`, for a collector that
// exports only the normalized attributes.
func BenchmarkProcessSignInsNoRaw(b *testing.B) {
	cfg := defaultConfig()
	cfg.KeepRaw = false
	benchProcessor(b, cfg)
}

// BenchmarkProcessSignInsAllOptions adds OCSF attributes, pseudonymization and body dropping.
func BenchmarkProcessSignInsAllOptions(b *testing.B) {
	cfg := defaultConfig()
	cfg.OCSF, cfg.KeepRaw = true, false
	cfg.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: "0123456789abcdef0123"})
	benchProcessor(b, cfg)
}
