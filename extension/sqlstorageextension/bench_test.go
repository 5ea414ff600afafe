package sqlstorageextension

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// BenchmarkBatchSet measures one commit on SQLite (`synchronous: full`, the default): a Batch of one Set
// of a new key, with values of the size the o365_export journal appends per page of 1000 sign-ins
// (≈ 150 KB; ≈ 1.7 MB with include_events). It is the figure the journal's file appends were compared
// with (docs/benchmarks.md). One op is one commit.
func BenchmarkBatchSet(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{150_000, 1_700_000} {
		b.Run(fmt.Sprintf("sqlite/value=%dKB", size/1000), func(b *testing.B) {
			cfg := createDefaultConfig().(*Config)
			cfg.Path = filepath.Join(b.TempDir(), "storage.db")
			require.NoError(b, cfg.Validate())
			ext, err := NewFactory().Create(ctx, extensionSettings(), cfg)
			require.NoError(b, err)
			require.NoError(b, ext.Start(ctx, componenttest.NewNopHost()))
			b.Cleanup(func() { require.NoError(b, ext.Shutdown(ctx)) })
			c, err := ext.(*sqlStorage).GetClient(ctx, component.KindExporter, component.MustNewID("o365_export"), "journal")
			require.NoError(b, err)
			b.Cleanup(func() { _ = c.Close(ctx) })
			value := make([]byte, size)
			_, _ = rand.Read(value)
			i := 0
			for b.Loop() {
				require.NoError(b, c.Batch(ctx, storage.SetOperation(fmt.Sprint("page-", i), value)))
				i++
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
		})
	}
}
