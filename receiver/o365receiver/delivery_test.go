package o365receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// failingConsumer refuses its first `failures` batches with err, then passes to the sink.
type failingConsumer struct {
	sink     *consumertest.LogsSink
	failures atomic.Int64
	err      error
	refused  atomic.Int64
}

func (f *failingConsumer) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (f *failingConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if f.failures.Add(-1) >= 0 {
		f.refused.Add(int64(ld.LogRecordCount()))
		return f.err
	}
	return f.sink.ConsumeLogs(ctx, ld)
}

func TestConsumerRefusalLosesAndDuplicatesNothing(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 3, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 950, Span: time.Hour, PerTimestamp: 4}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	next := &failingConsumer{sink: new(consumertest.LogsSink), err: errors.New("exporter queue is full")}
	next.failures.Store(3) // the first three deliveries fail with a retryable error
	startReceiver(t, cfg, next)
	requireExactly(t, next.sink, map[string][]string{
		"signins": sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-2*time.Hour), sim.Anchor()),
	})
	require.Positive(t, next.refused.Load(), "the consumer did refuse batches")
}

func TestPermanentConsumerErrorDropsOnce(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 4, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 500, Span: time.Hour}}),
	}})
	cfg := simConfig(sim, 1)
	cfg.PageSize = 100
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	next := &failingConsumer{sink: new(consumertest.LogsSink), err: consumererror.NewPermanent(errors.New("malformed"))}
	next.failures.Store(1) // the first page is rejected for good: dropped, committed, never re-sent
	startReceiver(t, cfg, next)
	require.Eventually(t, func() bool { return next.sink.LogRecordCount() >= 400 }, 30*time.Second, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, int64(100), next.refused.Load())
	require.Equal(t, 400, next.sink.LogRecordCount(), "the dropped page is not delivered again")
}

// TestConsumeContract runs the collector's own exactly-once contract checker: random retryable and
// permanent consumer errors; every generated record must end up accepted or dropped exactly once. The
// generator injects records into the simulator, which the receiver then polls.
func TestConsumeContract(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 5, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	cfg := simConfig(sim, 1)
	cfg.PollInterval = 20 * time.Millisecond
	cfg.RetryOnFailure.InitialInterval = time.Millisecond
	cfg.RetryOnFailure.MaxInterval = 5 * time.Millisecond
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	// The checker runs four scenarios, each with a new receiver (in-memory state) against the same
	// simulator. A short initial lookback, and a pause after each scenario (generator Stop) that is
	// longer, keep one scenario's records out of the next one's first query.
	cfg.InitialLookback = time.Second
	receivertest.CheckConsumeContract(receivertest.CheckConsumeContractParams{
		T:             t,
		Factory:       contractFactory{NewFactory()},
		Signal:        pipeline.SignalLogs,
		Config:        cfg,
		Generator:     &simGenerator{sim: sim},
		GenerateCount: 2000,
	})
}

// simGenerator makes one sign-in per call, stamped now, in the simulator.
type simGenerator struct {
	sim *graphsimtest.Sim
	mu  sync.Mutex
	n   int
}

func (g *simGenerator) Start() {}
func (g *simGenerator) Stop()  { time.Sleep(1500 * time.Millisecond) }

func (g *simGenerator) Generate() []receivertest.UniqueIDAttrVal {
	g.mu.Lock()
	g.n++
	id := fmt.Sprintf("contract-%06d", g.n)
	g.mu.Unlock()
	err := g.sim.Inject(graphsimtest.TenantID(1), "signins", time.Time{}, map[string]any{
		"id": id, "createdDateTime": graphsim.FormatTime(time.Now()), "userPrincipalName": "contract@example.com",
	})
	if err != nil {
		panic(err)
	}
	return []receivertest.UniqueIDAttrVal{receivertest.UniqueIDAttrVal(id)}
}

// contractFactory wraps the real factory so the checker sees the Graph id under its `test_id` attribute;
// errors from the checker's consumer reach the receiver unchanged.
type contractFactory struct{ receiver.Factory }

func (f contractFactory) CreateLogs(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return f.Factory.CreateLogs(ctx, set, cfg, consumer.Logs(testIDConsumer{next}))
}

type testIDConsumer struct{ consumer.Logs }

func (c testIDConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		sls := ld.ResourceLogs().At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				id, _ := lrs.At(k).Attributes().Get(AttrRecordID)
				lrs.At(k).Attributes().PutStr(receivertest.UniqueIDAttrName, id.Str())
			}
		}
	}
	return c.Logs.ConsumeLogs(ctx, ld)
}
