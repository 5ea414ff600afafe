package reliability

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// sqliteWatermark reads a stream's committed watermark straight from a sql_storage SQLite file (a
// read-only connection of this process; WAL lets it read while the collector writes).
func sqliteWatermark(db *sql.DB, tenantID, dataset string) (time.Time, error) {
	var raw []byte
	err := db.QueryRow(`SELECT value FROM otelcol_storage_kv WHERE kind = 'receiver' AND component = 'o365' AND client = '' AND key = ?`,
		"o365/"+tenantID+"/"+dataset+"/state").Scan(&raw)
	if err == sql.ErrNoRows {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	var st struct {
		Watermark time.Time `json:"watermark"`
	}
	err = json.Unmarshal(raw, &st)
	return st.Watermark, err
}

// Scenario 5, back-pressure, with the built distribution: the downstream (the OTLP sink, which the
// collector's otlp_grpc exporter reaches without a sending queue) answers UNAVAILABLE — retryable — for
// 10 s (2 min in soak) in the middle of a backfill. The exporter retries for 3 s and then returns the
// error to the receiver, which retries the same page with backoff.
//
// Checked: the receiver does not advance — the committed watermark, read from the SQLite file every
// 200 ms, stays where it was when the refusal began, and Graph is asked for no more than the requests
// already in flight then (the receiver holds the page it cannot deliver and fetches nothing new);
// memory stays bounded — the collector's RSS during the refusal stays under max(1.5 × its peak before,
// its peak before + 256 MiB); the refusal is logged once per page held; after recovery everything
// arrives, exactly once.
func TestBackpressure(t *testing.T) {
	records := pick(60_000, 200_000)
	refusal := pick(10*time.Second, 2*time.Minute)
	tenant := graphsimtest.TenantID(1)
	sim, ids := signInBackfill(t, 98, records)
	want := truth("signins", ids)
	sink := startOTLPSink(t)
	dir := t.TempDir()
	cfg := proctest.WriteFile(t, filepath.Join(dir, "config.yaml"), fmt.Sprintf(`
extensions:
  sql_storage:
    path: %[1]s/state.db
receivers:
  o365:
    storage: sql_storage
    poll_interval: 1s
    initial_lookback: 25h
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    rate_limits:
      reports: { tenant_requests: 40, app_requests: 1000, window: 1s }
    retry_on_failure: { initial_interval: 100ms, max_interval: 1s }
    http:
      tls:
        ca_file: %[3]s
    tenants:
      - name: tenant1
        tenant_id: %[4]s
        client_id: %[5]s
        client_secret: ${env:RELIABILITY_SECRET}
        datasets:
          signins: { kinds: [interactive] }
%[6]s`, dir, sim.URL(), sim.CAFile, tenant, graphsimtest.ClientID,
		sinkPipelineYAML(sink.addr, -1, "retry_on_failure: { initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 3s }")))
	p := proctest.StartCollector(t, []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}, "--config", cfg)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "state.db")+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()

	var peakBefore int64
	for sink.ledger.unique() < len(want)/3 {
		require.True(t, p.Running(), "the collector exited:\n%s", proctest.Tail(p.Out.String(), 8<<10))
		peakBefore = max(peakBefore, p.RSS())
		time.Sleep(50 * time.Millisecond)
	}

	sink.refusing.Store(true)
	began := time.Now()
	time.Sleep(500 * time.Millisecond) // a page acknowledged just before is committed within milliseconds
	held, err := sqliteWatermark(db, tenant, "signins")
	require.NoError(t, err)
	require.False(t, held.IsZero(), "something was committed before the refusal")
	requestsAt := len(sim.Requests())
	var peakDuring int64
	moved := 0
	for time.Since(began) < refusal {
		peakDuring = max(peakDuring, p.RSS())
		if wm, err := sqliteWatermark(db, tenant, "signins"); err == nil && !wm.Equal(held) {
			moved++
			t.Errorf("the watermark moved from %s to %s while the downstream refused", held, wm)
		}
		time.Sleep(200 * time.Millisecond)
	}
	graphDuring := 0
	for _, r := range sim.Requests()[requestsAt:] {
		if r.Status == http.StatusOK {
			graphDuring++
		}
	}
	delivered := sink.ledger.deliveries()
	refused := sink.refused.Load()
	sink.refusing.Store(false)

	sink.ledger.waitUnique(t, len(want), pick(5*time.Minute, 15*time.Minute))
	time.Sleep(2 * time.Second)
	p.Stop(t)
	res := sink.ledger.exactlyOnce(t, want)

	t.Logf("refused %d exports for %s at %d of %d records; watermark held at %s; %d Graph pages fetched meanwhile; RSS peak %d MiB before, %d MiB during",
		refused, refusal, delivered, len(want), held.Format(time.RFC3339Nano), graphDuring, peakBefore>>20, peakDuring>>20)
	assert.Positive(t, refused, "the collector kept trying")
	assert.LessOrEqual(t, graphDuring, 6, "no more Graph pages than the requests in flight when the refusal began (max_concurrent_requests)")
	bound := max(peakBefore*3/2, peakBefore+256<<20)
	assert.LessOrEqual(t, peakDuring, bound, "memory stays bounded while the downstream refuses")
	warned := logLines(p.Out.String(), "The next consumer refused records")
	assert.NotEmpty(t, warned, "the refusal is logged")
	assert.LessOrEqual(t, len(warned), 3, "once per page held, not once per retry")
	assert.NotEmpty(t, logLines(p.Out.String(), "The next consumer accepted the records it had refused"), "the recovery is logged")
	report(t, row{Scenario: fmt.Sprintf("5 back-pressure: downstream UNAVAILABLE %s", refusal), Runs: 1, Lost: res.lost, Duplicated: res.duplicated, Violations: moved,
		Note: fmt.Sprintf("%d records; watermark held; %d Graph pages fetched during the refusal; RSS peak %d MiB before, %d MiB during",
			len(want), graphDuring, peakBefore>>20, peakDuring>>20)})
}
