package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// persistentQueue is the OTLP exporter's `sending_queue` as the receiver README ("Delivery guarantee
// and the pipeline") and the README examples set it: in the receiver's sql_storage, batching inside it
// bounded in bytes; "memory" is the exporter's default in-memory queue, which the README says breaks
// the guarantee.
func persistentQueue(kind string) string {
	if kind == "memory" {
		return "{ batch: { sizer: bytes, min_size: 1000000, max_size: 3000000 } }"
	}
	return "{ storage: sql_storage, batch: { sizer: bytes, min_size: 1000000, max_size: 3000000 } }"
}

// Scenario 1d, crash with a persistent exporter queue. TestCrashKill9 runs the OTLP exporter without a
// queue, so that the receiver's acceptance is the sink's; users batch in the exporter's persistent
// `sending_queue` instead (every README example with an OTLP exporter does). Here the receiver's
// ConsumeLogs returns once the page is in the queue's storage (sql_storage, SQLite, synchronous full),
// and the queue sends batches to the sink after the answer. A backfill is killed with SIGKILL 3 times
// (20 in make soak) when the sink has a random 2–98 % of the records (+0–200 ms), and restarted on the
// same storage each time: the queue's pages left unsent at a kill are sent by the next run.
//
// What is checked: no id lost, nothing unknown. Duplicates are counted, not bounded by one page: a kill
// may also come between the sink's answer to a batch and the queue's deletion of it, and the restarted
// queue sends that batch again (up to max_size bytes per queue consumer in flight).
//
// O365_CRASH_QUEUE=memory runs the exporter's default in-memory queue instead, to measure what the
// README says it loses (the assertions then fail).
func TestCrashKill9PersistentQueue(t *testing.T) {
	const records = 60_000
	kills := pick(3, 20)
	rng := crashRNG(t, 0x6a09e667f3bcc909)
	queue := os.Getenv("O365_CRASH_QUEUE")

	tenant := graphsimtest.TenantID(1)
	sim, ids := signInBackfill(t, 93, records)
	want := truth("signins", ids)
	sink := startOTLPSink(t)
	dir := t.TempDir()
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret}
	thresholds := killThresholds(rng, kills, records)

	start, killed := time.Now(), 0
	for run := 0; run <= kills; run++ {
		cfg := proctest.WriteFile(t, filepath.Join(dir, fmt.Sprintf("config-%d.yaml", run)),
			crashConfig(dir, sim, tenant, "full", "", interactiveSignIns, sinkPipelineQueueYAML(sink.addr, run, persistentQueue(queue), "retry_on_failure: { max_elapsed_time: 0 }")))
		p := proctest.StartCollector(t, env, "--config", cfg)
		if run == kills {
			// Until every id arrived or, since what a kill lost is never fetched again, the run caught up
			// and the sink has received nothing for 3 s (the queue is drained).
			deadline := time.Now().Add(pick(5*time.Minute, 15*time.Minute))
			seen, quietSince := sink.ledger.deliveries(), time.Now()
			for sink.ledger.unique() < records {
				require.True(t, p.Running(), "the last run exited by itself:\n%s", proctest.Tail(p.Out.String(), 8<<10))
				require.True(t, time.Now().Before(deadline), "after the last start, %d of %d records arrived", sink.ledger.unique(), records)
				if n := sink.ledger.deliveries(); n != seen {
					seen, quietSince = n, time.Now()
				}
				if strings.Contains(p.Out.String(), `"msg":"Caught up"`) && time.Since(quietSince) > 3*time.Second {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // three more polls: nothing else may arrive
			p.Stop(t)
			require.Equal(t, 0, p.ExitCode(), "the last run exits cleanly")
			break
		}
		target := max(thresholds[run], sink.ledger.unique()+1)
		deadline := time.Now().Add(5 * time.Minute)
		caughtUp := runUntil(t, p, run, deadline, target, sink.ledger.unique)
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		killCollector(t, p, run)
		killed++
		if caughtUp {
			t.Logf("run %d caught up before %d records arrived: no further kills", run, target)
			run = kills - 1
		}
	}
	took := time.Since(start)

	res := sink.ledger.compare(want)
	name := "1d crash, OTLP exporter with a persistent sending_queue (sql_storage)"
	if queue == "memory" {
		name = "1d crash, OTLP exporter with the default in-memory sending_queue"
	}
	t.Logf("%d runs, %d kills in %s: %d records delivered for %d ids, %d lost, %d duplicated",
		killed+1, killed, took.Round(time.Second), sink.ledger.deliveries(), records, res.lost, res.duplicated)
	report(t, row{Scenario: name, Runs: killed + 1, Lost: res.lost, Duplicated: res.duplicated,
		Note: fmt.Sprintf("%d sign-ins, %d kills; %s", records, killed, took.Round(time.Second))})
	assert.Equal(t, kills, killed, "every run but the last is killed while it delivers")
	assert.Zero(t, res.lost, "ids the receiver committed that never reached the sink, e.g. %v", res.lostSample)
	assert.Zero(t, res.unknown, "records the simulator does not hold")
	assert.Equal(t, records, sink.ledger.unique(), "effectively once: deduplicated by o365.record.id, the sink holds exactly the ground truth")
}
