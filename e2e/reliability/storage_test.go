package reliability

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/otelcol-o365/otelcol-o365/extension/sqlstorageextension"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// storageOutage is one way of taking the receiver's storage away and giving it back.
type storageOutage struct {
	name      string
	ext       component.Component
	down, up  func()
	watermark func() (time.Time, error) // the committed watermark, read around the outage
	failure   string                    // the storage poll failure's error says this
	secret    string                    // must appear in no log line ("" = none)
}

// runStorageOutage backfills sign-ins (paced at 10 requests/s) into an in-process receiver on the given
// storage (leases of 2 s, so the outage outlasts them), takes the storage away for 5 s (1 min in soak)
// mid-backfill and gives it back. Checked: the failure is logged as a `storage` poll failure whose error
// names the database and what is wrong with it; the committed watermark does not move and nothing is
// delivered while storage is away (after the page in hand when it went, whose commit waits in memory);
// everything arrives after recovery, exactly once — the page whose commit failed included.
func runStorageOutage(t *testing.T, o storageOutage) {
	records := pick(6000, 30000)
	outage := pick(5*time.Second, time.Minute)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 99, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: records, Span: 6 * time.Hour}}),
	}})
	want := truth("signins", sim.IDs(graphsimtest.TenantID(1), "signins", sim.Anchor().Add(-7*time.Hour), sim.Anchor()))
	cfg := pacedConfig(sim, 10)
	storageID := component.MustNewID("sql_storage")
	cfg.Storage = &storageID
	sink := newConsumerSink()
	run := startReceiver(t, cfg, sink, newHost(map[component.ID]component.Component{storageID: o.ext}))
	sink.ledger.waitUnique(t, len(want)/3, time.Minute)

	o.down()
	began := time.Now()
	time.Sleep(time.Second) // the page in hand when storage went is delivered (its commit fails)
	held, err := o.watermark()
	require.NoError(t, err)
	before := sink.ledger.deliveries()
	moved := 0
	for time.Since(began) < outage {
		if wm, err := o.watermark(); err == nil && !wm.Equal(held) {
			moved++
			t.Errorf("the watermark moved from %s to %s while storage was away", held, wm)
		}
		time.Sleep(200 * time.Millisecond)
	}
	during := sink.ledger.deliveries() - before
	o.up()
	sink.ledger.waitUnique(t, len(want), pick(2*time.Minute, 10*time.Minute))
	time.Sleep(time.Second)
	run.stop(t)
	res := sink.ledger.exactlyOnce(t, want)

	if !assert.Zero(t, during, "records delivered while storage was away") {
		moved++
	}
	polls := run.lines("Poll failed")
	require.NotEmpty(t, polls, "the storage failure is logged")
	storageErrors := 0
	for _, e := range polls {
		if fieldString(e, "kind") == "storage" && strings.Contains(fieldString(e, "error"), o.failure) {
			storageErrors++
		}
	}
	require.Positive(t, storageErrors, "a `storage` poll failure saying %q: %v", o.failure, texts(polls))
	if o.secret != "" {
		for _, e := range run.logs.All() {
			require.NotContains(t, entryText(e), o.secret)
		}
	}
	t.Logf("%s away for %s at %d of %d records; watermark held at %s; first failure: %s", o.name, outage, before, len(want),
		held.Format(time.RFC3339Nano), entryText(polls[0]))
	report(t, row{Scenario: "6 storage: " + o.name, Runs: 1, Lost: res.lost, Duplicated: res.duplicated, Violations: moved,
		Note: fmt.Sprintf("%d records; away %s; watermark held, nothing delivered meanwhile; %d storage poll failures logged", len(want), outage, storageErrors)})
}

// Scenario 6a: Postgres goes away mid-run. The shared server on 127.0.0.1:5432 is left alone: the
// receiver's sql_storage reaches it through a TCP proxy of this test, which goes down (closes its
// listener and every connection: refused and reset, as a restarting server) and comes back. The
// committed watermark is read with a direct connection to the server.
func TestStoragePostgresOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	p := pgtest.NewProxy(t, u.Host)
	proxied := *u
	proxied.Host = p.Addr
	proxied.User = url.UserPassword(u.User.Username(), "reliability-Pa55word") // trust auth ignores it; it must not leak
	prefix := pgtest.TablePrefix(t, dsn, "rel")
	ext := startStorage(t, storageConfig(func(c *sqlstorageextension.Config) {
		c.Driver, c.Path, c.DSN, c.TablePrefix = "postgres", "", configopaque.String(proxied.String()), prefix
		c.Timeout = time.Second
		c.Lease.TTL, c.Lease.RenewInterval = 2*time.Second, 500*time.Millisecond
	}))
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	runStorageOutage(t, storageOutage{
		name: "Postgres restarted (TCP proxy down)", ext: ext, down: p.Down, up: func() { p.Up(false) },
		secret:  "reliability-Pa55word",
		failure: "sql_storage: batch: the postgres at " + p.Addr + ` (database "` + strings.TrimPrefix(u.Path, "/") + `", user "` + u.User.Username() + `") is unavailable`,
		watermark: func() (time.Time, error) {
			var raw []byte
			err := conn.QueryRow(context.Background(), `SELECT value FROM `+prefix+`kv WHERE kind = 'receiver' AND component = 'o365' AND client = '' AND key = $1`,
				"o365/"+graphsimtest.TenantID(1)+"/signins/state").Scan(&raw)
			if err != nil {
				return time.Time{}, err
			}
			var st struct {
				Watermark time.Time `json:"watermark"`
			}
			return st.Watermark, json.Unmarshal(raw, &st)
		},
	})
}

// Scenario 6b: the SQLite file becomes read-only mid-run. The tests run as root, whom chmod does not
// stop, and SQLite keeps the files open; so the database file and its write-ahead log are made
// immutable (chattr +i: even root, even through descriptors opened before, gets EPERM on write) — a
// real read-only SQLite, not a wrapper. The -shm index is left alone (SQLite maps it into memory; a
// write fault there would be a SIGBUS, not the read-only database this scenario is about). Skipped with
// a message where chattr cannot set the attribute (no CAP_LINUX_IMMUTABLE, or a filesystem without it).
func TestStorageSQLiteReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	probe := filepath.Join(dir, "probe")
	require.NoError(t, os.WriteFile(probe, nil, 0o600))
	if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot make a file immutable here (chattr +i: %v %s): the read-only SQLite scenario needs it", err, out)
	}
	_ = exec.Command("chattr", "-i", probe).Run()
	files := []string{path, path + "-wal"}
	immutable := func(on bool) {
		flag := "-i"
		if on {
			flag = "+i"
		}
		for _, f := range files {
			out, err := exec.Command("chattr", flag, f).CombinedOutput()
			require.NoError(t, err, "chattr %s %s: %s", flag, f, out)
		}
	}
	t.Cleanup(func() {
		for _, f := range files {
			_ = exec.Command("chattr", "-i", f).Run()
		}
	})
	ext := startStorage(t, storageConfig(func(c *sqlstorageextension.Config) {
		c.Path = path
		c.Timeout = time.Second
		c.Lease.TTL, c.Lease.RenewInterval = 2*time.Second, 500*time.Millisecond
	}))
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	runStorageOutage(t, storageOutage{
		name: "SQLite read-only (chattr +i)", ext: ext,
		down: func() {
			for _, f := range files {
				_, err := os.Stat(f)
				require.NoError(t, err, "%s exists", f)
			}
			immutable(true)
		},
		up:        func() { immutable(false) },
		failure:   "sql_storage: batch: the sqlite database " + path + " cannot be written",
		watermark: func() (time.Time, error) { return sqliteWatermark(db, graphsimtest.TenantID(1), "signins") },
	})
}
