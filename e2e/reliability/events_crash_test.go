package reliability

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// Scenario 11, crash into the event store. The built distribution backfills sign-ins from the
// simulator through o365_mapping into the o365_events exporter (SQLite, no sending_queue), with
// sql_storage (SQLite) for the receiver's position, and is killed with SIGKILL at random moments
// while it writes (3 times in make test, 10 in make soak), then restarted on the same files each time.
//
// The receiver commits a page only after the exporter's ConsumeLogs returned, and the exporter returns
// only after its transaction committed (fsynced: synchronous full). A kill between the two makes the
// next run fetch that page again; the exporter merges it into the stored rows. Every other kill comes
// the moment a commit of the exporter is seen — inside that window, as often as not — the others 0–200
// ms later. A trigger the test puts on the table counts the merges: the pages that were delivered
// again. What is checked: the database holds each ground-truth record exactly once (nothing lost,
// nothing twice, nothing unknown), raw and normalized; the tenant's count equals the rows; and paging
// through GET /events/raw with the cursor returns each record exactly once.
func TestCrashKill9IntoEventStore(t *testing.T) {
	records := pick(60_000, 300_000)
	kills := pick(3, 10)
	rng := crashRNG(t, 0x85ebca6b)

	tenant := graphsimtest.TenantID(1)
	sim, want := signInBackfill(t, 97, records)
	dir := t.TempDir()
	eventsDB := filepath.Join(dir, "events.db")
	port := proctest.FreePort(t)
	const token = "events-crash-token-0123456789"
	env := []string{"RELIABILITY_SECRET=" + graphsimtest.Secret, "EVENTS_TOKEN=" + token}
	cfg := proctest.WriteFile(t, filepath.Join(dir, "config.yaml"), eventsCrashConfig(dir, sim, tenant, port))

	// busy_timeout: the collector writes while the test reads and adds its trigger; without it a
	// statement meeting the collector's write lock fails at once with SQLITE_BUSY.
	db, err := sql.Open("sqlite", eventsDB+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	stored := func() int {
		var n int
		if db.QueryRow(`SELECT count(*) FROM o365_events_records WHERE dataset = 'signins'`).Scan(&n) != nil {
			return 0 // not created yet, or busy: ask again
		}
		return n
	}

	thresholds := killThresholds(rng, kills, records)
	start := time.Now()
	var queried []string
	for run := 0; run <= kills; run++ {
		p := proctest.StartCollector(t, env, "--config", cfg)
		if run == kills {
			deadline := time.Now().Add(pick(5*time.Minute, 15*time.Minute))
			for stored() < records {
				require.True(t, p.Running(), "the last run exited:\n%s", proctest.Tail(p.Out.String(), 8<<10))
				require.True(t, time.Now().Before(deadline), "after the kills, %d of %d records stored", stored(), records)
				time.Sleep(20 * time.Millisecond)
			}
			queried = pageAll(t, fmt.Sprintf("http://127.0.0.1:%d", port), token)
			p.Stop(t)
			require.Equal(t, 0, p.ExitCode(), "the last run exits cleanly")
			break
		}
		target := max(thresholds[run], stored()+1)
		deadline := time.Now().Add(5 * time.Minute)
		for stored() < target {
			require.True(t, p.Running(), "run %d exited by itself:\n%s", run, proctest.Tail(p.Out.String(), 8<<10))
			require.True(t, time.Now().Before(deadline), "run %d: no progress towards %d records", run, target)
			time.Sleep(time.Millisecond)
		}
		if run == 0 { // the exporter made its tables: count its merges from now on
			_, err := db.Exec(`CREATE TABLE test_merges (record_id TEXT);
				CREATE TRIGGER test_count_merges AFTER UPDATE ON o365_events_records BEGIN INSERT INTO test_merges VALUES (new.record_id); END`)
			require.NoError(t, err)
		}
		if run%2 == 1 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		}
		killCollector(t, p, run)
	}
	took := time.Since(start)

	// The database: every ground-truth id exactly once, raw and normalized, and nothing else.
	counts := map[string]int{}
	rows, err := db.Query(`SELECT record_id, raw IS NOT NULL AND normalized IS NOT NULL FROM o365_events_records WHERE dataset = 'signins'`)
	require.NoError(t, err)
	incomplete := 0
	for rows.Next() {
		var id string
		var both bool
		require.NoError(t, rows.Scan(&id, &both))
		counts[id]++
		if !both {
			incomplete++
		}
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	var lost, twice, unknown int
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		if counts[id] == 0 {
			lost++
		}
	}
	for id, n := range counts {
		if n > 1 {
			twice += n - 1
		}
		if !wanted[id] {
			unknown++
		}
	}
	assert.Zero(t, lost, "ground-truth records missing from the store")
	assert.Zero(t, twice, "records stored more than once")
	assert.Zero(t, unknown, "records the simulator does not hold")
	assert.Zero(t, incomplete, "every sign-in has its raw body and its normalized attributes")
	var counted, all int
	require.NoError(t, db.QueryRow(`SELECT records FROM o365_events_tenants WHERE tenant = 'tenant1'`).Scan(&counted))
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM o365_events_records WHERE tenant = 'tenant1'`).Scan(&all))
	assert.Equal(t, all, counted, "the tenant's count (what max_records_per_tenant reads) is exact after the kills")

	var merges int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM test_merges`).Scan(&merges))
	t.Logf("%d records were delivered again after a kill and merged into their rows", merges)

	// What a user queries: paging through the raw sign-ins returns each once.
	seen := map[string]int{}
	for _, id := range queried {
		seen[id]++
	}
	queriedTwice := len(queried) - len(seen)
	assert.Zero(t, queriedTwice, "records returned twice by the paged query")
	assert.Len(t, seen, records, "every record is returned by the paged query")

	report(t, row{Scenario: "11 crash into o365_events (kill -9, sqlite)", Runs: kills + 1, Lost: lost, Duplicated: twice + queriedTwice,
		Violations: unknown + incomplete, Note: fmt.Sprintf("%d records, %d kills, %d records delivered again and merged; stored and queried exactly once; %s",
			records, kills, merges, took.Round(time.Second))})
}

// pageAll pages through GET /events/raw?dataset=signins with the cursor and returns the record ids.
func pageAll(t *testing.T, base, token string) []string {
	t.Helper()
	var ids []string
	q := url.Values{"tenant_id": {"tenant1"}, "dataset": {"signins"}, "limit": {"1000"}}
	for {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/events/raw?"+q.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var page struct {
			Records []struct {
				RecordID string `json:"record_id"`
			} `json:"records"`
			NextCursor *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for _, r := range page.Records {
			ids = append(ids, r.RecordID)
		}
		if page.NextCursor == nil {
			return ids
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// eventsCrashConfig is crashConfig with the o365_events store behind o365_mapping, its API on port.
func eventsCrashConfig(dir string, sim *graphsimtest.Sim, tenant string, port int) string {
	return crashConfig(dir, sim, tenant, "full", `  bearertokenauth/events:
    token: ${env:EVENTS_TOKEN}
`, interactiveSignIns, fmt.Sprintf(`processors:
  o365_mapping:
    correlation: { enabled: false }
exporters:
  o365_events:
    path: %s/events.db
    retention: { max_age: 0s }
    server:
      endpoint: 127.0.0.1:%d
      auth: { authenticator: bearertokenauth/events }
service:
  extensions: [sql_storage, bearertokenauth/events]
  telemetry:
    logs: { encoding: json }
    metrics: { level: none }
  pipelines:
    logs:
      receivers: [o365]
      processors: [o365_mapping]
      exporters: [o365_events]
`, dir, port))
}
