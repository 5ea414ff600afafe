package o365receiver

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/multierr"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadatatest"
)

func TestAllPermanent(t *testing.T) {
	perm := consumererror.NewPermanent(errors.New("malformed"))
	retry := errors.New("queue is full")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"permanent", perm, true},
		{"retryable", retry, false},
		{"wrapped permanent", fmt.Errorf("pipeline logs/raw: %w", perm), true},
		{"join of permanent and retryable", errors.Join(perm, retry), false},
		{"join of retryable and permanent", errors.Join(retry, perm), false},
		{"join of permanents", errors.Join(perm, consumererror.NewPermanent(errors.New("too large"))), true},
		{"multierr of permanent and retryable (the collector's fan-out)", multierr.Append(perm, retry), false},
		{"multierr of permanents", multierr.Append(perm, perm), true},
		{"wrapped join of permanent and retryable", fmt.Errorf("fan-out: %w", errors.Join(perm, retry)), false},
		{"join inside a join", errors.Join(perm, errors.Join(perm, retry)), false},
		{"permanent around a mixed join", consumererror.NewPermanent(errors.Join(perm, retry)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, allPermanent(tc.err))
		})
	}
}

// fanOut hands each batch to every pipeline and joins their errors, as the collector's fan-out consumer
// (internal/fanoutconsumer, which the collector puts behind a receiver used by several pipelines) does.
type fanOut []consumer.Logs

func (f fanOut) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (f fanOut) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	var errs error
	for _, next := range f {
		errs = multierr.Append(errs, next.ConsumeLogs(ctx, ld))
	}
	return errs
}

// When one pipeline rejects a page for good and another asks for a retry, the page is retried until the
// second one takes it — not dropped for both; the pipeline that had accepted it sees it again, counted.
func TestFanOutRetriesWhileOnePipelineAsksForRetry(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 41, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 500, Span: time.Hour}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	rejecting := &failingConsumer{sink: new(consumertest.LogsSink), err: consumererror.NewPermanent(errors.New("record too large"))}
	rejecting.failures.Store(1 << 30) // rejects every page
	refusing := &failingConsumer{sink: new(consumertest.LogsSink), err: errors.New("sending queue is full")}
	refusing.failures.Store(3) // refuses the first three deliveries, retryably
	accepting := new(consumertest.LogsSink)

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	r, err := newReceiver(metadatatest.NewSettings(tel), cfg, fanOut{rejecting, refusing, accepting})
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	want := sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-2*time.Hour), sim.Anchor())
	require.Eventually(t, func() bool { return refusing.sink.LogRecordCount() >= len(want) }, 30*time.Second, 10*time.Millisecond,
		"the pipeline that asked for a retry gets every record")
	require.NoError(t, r.Shutdown(context.Background()))

	requireExactly(t, refusing.sink, map[string][]string{"signins": want})
	// The first page was answered "rejected" + "retry" three times: delivered four times to the pipeline
	// that accepts everything, three of them counted as redelivered.
	redelivered := accepting.LogRecordCount() - len(want)
	assert.Equal(t, 3*100, redelivered, "the accepting pipeline sees the retried page again")
	attrs := attribute.NewSet(attribute.String("tenant", "tenant1"), attribute.String("dataset", "signins"))
	metadatatest.AssertEqualO365RecordsRedelivered(t, tel, []metricdata.DataPoint[int64]{{Value: int64(redelivered), Attributes: attrs}},
		metricdatatest.IgnoreTimestamp())
	// Once the refusing pipeline took a page, the rejecting one alone answers: dropped (for it) and counted.
	metadatatest.AssertEqualO365RecordsDropped(t, tel, []metricdata.DataPoint[int64]{{Value: int64(len(want)), Attributes: attrs}},
		metricdatatest.IgnoreTimestamp())
}
