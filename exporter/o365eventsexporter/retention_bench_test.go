package o365eventsexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkRetentionBeyond measures one retention chunk of max_records_per_tenant: deleting the
// 10,000 oldest records of a tenant that holds 10,000 more than it keeps, at 1M stored records
// (generated as for BenchmarkQuery: contoso holds 900k). One op is one chunk.
func BenchmarkRetentionBeyond(b *testing.B) {
	for _, driver := range drivers {
		b.Run("driver="+driver, func(b *testing.B) {
			cfg := testConfig(b, driver)
			cfg.Retention.MaxAge, cfg.Retention.MaxRecordsPerTenant = 0, 0
			h := startHarness(b, cfg)
			s := h.e.currentStore()
			b.Cleanup(func() { dropRows(b, s) })
			generateRows(b, s, 1_000_000)
			ctx := context.Background()
			// generateRows leaves the tenants' counts at 0: set contoso's.
			var n int64
			require.NoError(b, s.r.QueryRowContext(ctx, "SELECT count(*) FROM "+s.prefix+"records WHERE tenant = 'contoso'").Scan(&n))
			_, err := s.w.ExecContext(ctx, s.q.tenantAdd, "contoso", "", n)
			require.NoError(b, err)
			b.ResetTimer()
			var total time.Duration
			for i := range b.N {
				keep := n - int64(i+1)*deleteChunkRecords
				t0 := time.Now()
				deleted, err := s.deleteBeyond(ctx, "contoso", keep, deleteChunkRecords)
				total += time.Since(t0)
				require.NoError(b, err)
				require.Equal(b, int64(deleteChunkRecords), deleted, fmt.Sprint("chunk ", i))
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/chunk")
			b.ReportMetric(0, "ns/op")
		})
	}
}
