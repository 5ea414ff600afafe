package o365receiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadatatest"
)

// startWithTelemetry starts a receiver whose internal telemetry the test reads (and, with logger, its
// log); it is shut down at cleanup unless the test did so.
func startWithTelemetry(t *testing.T, cfg *Config, sink *consumertest.LogsSink, logger *zap.Logger) (*o365Receiver, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	if logger != nil {
		set.Logger = logger
	}
	r, err := newReceiver(set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, tel
}

func TestInternalTelemetry(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 14, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 250, Span: time.Hour}}),
	}})
	sim.FailNext(graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: 100 * time.Millisecond})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	sink := new(consumertest.LogsSink)
	r, tel := startWithTelemetry(t, cfg, sink, nil)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == 250 }, 30*time.Second, 10*time.Millisecond)
	lag, err := tel.GetMetric("otelcol_o365_watermark_lag")
	require.NoError(t, err)
	// The newest record is at most one step (1 h / 250 records = 14.4 s) before the simulator's anchor.
	got := lag.Data.(metricdata.Gauge[float64]).DataPoints[0].Value
	require.GreaterOrEqual(t, got, time.Since(sim.Anchor()).Seconds()-1)
	require.LessOrEqual(t, got, time.Since(sim.Anchor()).Seconds()+15)
	require.NoError(t, r.Shutdown(context.Background()))

	attrs := attribute.NewSet(attribute.String("tenant", "tenant1"), attribute.String("dataset", "signins"))
	metadatatest.AssertEqualO365RecordsEmitted(t, tel, []metricdata.DataPoint[int64]{{Value: 250, Attributes: attrs}},
		metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualO365RequestsThrottled(t, tel, []metricdata.DataPoint[int64]{{Value: 1, Attributes: attrs}},
		metricdatatest.IgnoreTimestamp())
	pages, err := tel.GetMetric("otelcol_o365_pages_fetched")
	require.NoError(t, err)
	require.GreaterOrEqual(t, pages.Data.(metricdata.Sum[int64]).DataPoints[0].Value, int64(3), "at least the three pages of one pass")
}
