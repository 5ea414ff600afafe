package reliability

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// --- Delivery ledger ------------------------------------------------------------------------------

// ledger records every record delivered to a sink, by key (dataset|o365.record.id), in batches tagged
// with the epoch (collector run) that sent them. It is the ground for lost / duplicated counts.
type ledger struct {
	mu      sync.Mutex
	counts  map[string]int
	batches []batch
	total   int
}

type batch struct {
	epoch int
	keys  []string
}

func newLedger() *ledger { return &ledger{counts: map[string]int{}} }

// add records one accepted batch.
func (l *ledger) add(epoch int, keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.counts[k]++
	}
	l.total += len(keys)
	l.batches = append(l.batches, batch{epoch: epoch, keys: keys})
}

// unique is the number of distinct keys delivered.
func (l *ledger) unique() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.counts)
}

// deliveries is the number of records delivered, duplicates included.
func (l *ledger) deliveries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// tally compares the ledger with the ground truth: ids never delivered, deliveries beyond the first,
// and keys delivered that the ground truth does not hold.
type tally struct {
	lost, duplicated, unknown int
	lostSample, dupSample     []string
}

func (l *ledger) compare(want []string) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r tally
	wanted := make(map[string]bool, len(want))
	for _, k := range want {
		wanted[k] = true
		if l.counts[k] == 0 {
			r.lost++
			if len(r.lostSample) < 5 {
				r.lostSample = append(r.lostSample, k)
			}
		}
	}
	for k, n := range l.counts {
		if n > 1 {
			r.duplicated += n - 1
			if len(r.dupSample) < 5 {
				r.dupSample = append(r.dupSample, k)
			}
		}
		if !wanted[k] {
			r.unknown++
		}
	}
	sort.Strings(r.dupSample)
	return r
}

// exactlyOnce fails the test unless every wanted key was delivered exactly once and nothing else.
func (l *ledger) exactlyOnce(t testing.TB, want []string) tally {
	t.Helper()
	r := l.compare(want)
	require.Zero(t, r.lost, "ids never delivered, e.g. %v", r.lostSample)
	require.Zero(t, r.duplicated, "ids delivered more than once, e.g. %v", r.dupSample)
	require.Zero(t, r.unknown, "records that are not in the ground truth")
	return r
}

// waitUnique waits until n distinct keys were delivered.
func (l *ledger) waitUnique(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for l.unique() < n {
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d of %d records were delivered", within, l.unique(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keysOf lists dataset|o365.record.id of every record in ld.
func keysOf(ld plog.Logs) []string {
	var out []string
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		ds, _ := rl.Resource().Attributes().Get("o365.dataset")
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				id, _ := lrs.At(k).Attributes().Get("o365.record.id")
				out = append(out, ds.Str()+"|"+id.Str())
			}
		}
	}
	return out
}

// signInBackfill starts a simulator whose one tenant holds records sign-ins over the last 24 h, and
// returns it with the ids a full backfill must deliver (the simulator's, not the ledger's keys).
func signInBackfill(t testing.TB, seed uint64, records int) (*graphsimtest.Sim, []string) {
	t.Helper()
	sim := graphsimtest.Start(t, graphsim.Config{Seed: seed, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 24 * time.Hour}}),
	}})
	ids := sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-25*time.Hour), sim.Anchor())
	require.Len(t, ids, records)
	return sim, ids
}

// truth turns simulator ids of a dataset into ledger keys.
func truth(dataset string, ids ...[]string) []string {
	var out []string
	for _, list := range ids {
		for _, id := range list {
			out = append(out, dataset+"|"+id)
		}
	}
	return out
}

// --- OTLP sink ------------------------------------------------------------------------------------

// otlpSink is an OTLP/gRPC logs endpoint served by the test process. It records the ids of a request in
// its ledger before it answers, so a record the collector saw acknowledged is durably recorded (the
// test process outlives every collector it kills). The epoch of a request is its `x-epoch` header (the
// run number, set in each run's exporter `headers`). While refusing, it answers UNAVAILABLE (retryable)
// and records nothing.
type otlpSink struct {
	plogotlp.UnimplementedGRPCServer
	addr     string
	ledger   *ledger
	keys     func(plog.Logs) []string // a request's ledger keys
	refusing atomic.Bool
	refused  atomic.Int64
	accepted atomic.Int64 // requests accepted
}

// sinkPipelineYAML ends a collector configuration whose o365 receiver (with sql_storage) sends to the
// OTLP sink at addr: the otlp_grpc exporter without a sending queue — so the receiver's ConsumeLogs
// returns only once the sink acknowledged — tagged with the run's epoch (none when negative), with
// extra exporter settings, and JSON logs for the test to read.
func sinkPipelineYAML(addr string, epoch int, extra string) string {
	return sinkPipelineQueueYAML(addr, epoch, "{ enabled: false }", extra)
}

// sinkPipelineQueueYAML is sinkPipelineYAML with the exporter's `sending_queue` set to queue (YAML).
func sinkPipelineQueueYAML(addr string, epoch int, queue, extra string) string {
	header := ""
	if epoch >= 0 {
		header = fmt.Sprintf("\n    headers: { x-epoch: \"%d\" }", epoch)
	}
	if extra != "" {
		extra = "\n    " + extra
	}
	return fmt.Sprintf(`exporters:
  otlp_grpc:
    endpoint: %s
    tls: { insecure: true }
    compression: none
    sending_queue: %s%s%s
service:
  extensions: [sql_storage]
  telemetry:
    logs: { encoding: json }
    metrics: { level: none }
  pipelines:
    logs:
      receivers: [o365]
      exporters: [otlp_grpc]
`, addr, queue, header, extra)
}

func startOTLPSink(t testing.TB) *otlpSink {
	t.Helper()
	return startOTLPSinkKeyed(t, keysOf)
}

// startOTLPSinkKeyed is startOTLPSink recording the keys that keys finds in each request.
func startOTLPSinkKeyed(t testing.TB, keys func(plog.Logs) []string) *otlpSink {
	t.Helper()
	s := &otlpSink{ledger: newLedger(), keys: keys}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.addr = ln.Addr().String()
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	plogotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

func (s *otlpSink) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if s.refusing.Load() {
		s.refused.Add(1)
		return plogotlp.NewExportResponse(), status.Error(codes.Unavailable, "the test sink refuses (back-pressure scenario)")
	}
	epoch := -1
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-epoch"); len(v) == 1 {
			_, _ = fmt.Sscanf(v[0], "%d", &epoch)
		}
	}
	s.ledger.add(epoch, s.keys(req.Logs()))
	s.accepted.Add(1)
	return plogotlp.NewExportResponse(), nil
}
