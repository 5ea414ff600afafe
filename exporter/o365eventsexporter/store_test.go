package o365eventsexporter

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// A page delivered again (a retry, a crash between the exporter's commit and the receiver's) is
// stored once: what a user can query holds each record exactly once, the counts say how many were
// new, and the tenant's count (what max_records_per_tenant reads) is exact.
func TestRedeliveredPageIsStoredOnce(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		h := startHarness(t, testConfig(t, driver))
		start := time.Now().Add(-time.Hour).UTC()
		all := signins("s", 150, start)
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", all[:100])))
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", all[:100])), "the same page again")
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", all[50:])), "a page overlapping the first")

		assert.Equal(t, int64(150), h.count("contoso"))
		assert.Equal(t, int64(150), h.sumMetric("otelcol_o365_events_records_stored"))
		assert.Equal(t, int64(150), h.sumMetric("otelcol_o365_events_records_redelivered"))
		tenants, err := h.e.currentStore().tenants(ctx)
		require.NoError(t, err)
		assert.Equal(t, []tenantCount{{"contoso", 150}}, tenants)

		p := h.query("/events/raw?tenant_id=contoso&limit=1000")
		require.Len(t, p.Records, 150)
		seen := map[string]bool{}
		for _, r := range p.Records {
			assert.False(t, seen[r.RecordID], "%s listed twice", r.RecordID)
			seen[r.RecordID] = true
		}
	})
}

// Alerts are republished under one id when they change: each version is a record of its own (the
// catalog's VersionField), and a redelivered version is still stored once — with or without the body
// (`keep_raw: false` leaves only the Timestamp, which the receiver took from the same field).
func TestAlertVersionsAreRecordsOfTheirOwn(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		h := startHarness(t, testConfig(t, driver))
		v1, v2 := time.Now().Add(-2*time.Hour).UTC(), time.Now().Add(-time.Hour).UTC()
		alerts := func(keepBody bool, versions ...time.Time) plog.Logs {
			ld := plog.NewLogs()
			lrs := resource(ld, "contoso", "tid-contoso", o365attr.DatasetSecurityAlerts)
			for _, v := range versions {
				lr := lrs.AppendEmpty()
				if keepBody {
					b := lr.Body().SetEmptyMap()
					b.PutStr("id", "alert-1")
					b.PutStr("lastUpdateDateTime", v.Format(time.RFC3339Nano))
				}
				lr.SetTimestamp(pcommon.NewTimestampFromTime(v))
				lr.Attributes().PutStr(o365attr.RecordID, "alert-1")
				lr.Attributes().PutStr(o365attr.EventType, "alert.new")
			}
			return ld
		}
		require.NoError(t, h.exp.ConsumeLogs(ctx, alerts(true, v1)))
		require.NoError(t, h.exp.ConsumeLogs(ctx, alerts(true, v1, v2)))
		require.NoError(t, h.exp.ConsumeLogs(ctx, alerts(false, v2)))
		assert.Equal(t, int64(2), h.count("contoso"), "two versions, each once")
		p := h.query("/events/normalized?tenant_id=contoso&type=alert.new")
		require.Len(t, p.Records, 2)
		assert.Equal(t, v1.Format(time.RFC3339Nano), p.Records[0].Version)
		assert.Equal(t, v2.Format(time.RFC3339Nano), p.Records[1].Version)
	})
}

// Retention: records beyond max_records_per_tenant (the oldest) and older than max_age are deleted by
// the retention pass, other tenants untouched; records older than max_age are not stored at all.
func TestRetention(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.Retention.MaxRecordsPerTenant = 40
		cfg.Retention.MaxAge = 24 * time.Hour
		h := startHarness(t, cfg)
		now := time.Now().UTC()
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", signins("c", 100, now.Add(-30*time.Minute)))))
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "fabrikam", signins("f", 30, now.Add(-2*time.Hour)))))
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "fabrikam", signins("old", 5, now.Add(-25*time.Hour)))))
		assert.Equal(t, int64(5), h.sumMetric("otelcol_o365_events_records_dropped"), "older than max_age: not stored")
		assert.Equal(t, int64(100), h.count("contoso"))

		require.NoError(t, h.e.enforceRetention(ctx))
		assert.Equal(t, int64(40), h.count("contoso"))
		assert.Equal(t, int64(30), h.count("fabrikam"))
		p := h.query("/events/raw?tenant_id=contoso&limit=1000")
		require.Len(t, p.Records, 40)
		assert.Equal(t, "c-0060", p.Records[0].RecordID, "the newest 40 are kept")

		// Time passes: fabrikam's records are now older than max_age.
		h.e.now = func() time.Time { return now.Add(23 * time.Hour) }
		require.NoError(t, h.e.enforceRetention(ctx))
		assert.Equal(t, int64(0), h.count("fabrikam"))
		assert.Equal(t, int64(40), h.count("contoso"), "contoso's newest are younger than max_age")
		assert.Equal(t, int64(60+30), h.sumMetric("otelcol_o365_events_records_deleted"))
		tenants, err := h.e.currentStore().tenants(ctx)
		require.NoError(t, err)
		assert.Equal(t, []tenantCount{{"contoso", 40}, {"fabrikam", 0}}, tenants, "counts follow the deletes")
	})
}

// Retention passes at once (the start-up pass beside a scheduled one, or replicas sharing one Postgres)
// keep the newest max_records_per_tenant: each deletes what lies beyond them, never its own count of
// "the oldest" on top of another's.
func TestConcurrentRetentionPassesKeepTheNewest(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		cfg := testConfig(t, driver)
		cfg.Retention.MaxRecordsPerTenant = 40
		h := startHarness(t, cfg)
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", signins("c", 100, time.Now().Add(-time.Hour)))))
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = h.e.enforceRetention(ctx) }()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, int64(40), h.count("contoso"))
		p := h.query("/events/raw?tenant_id=contoso&limit=1000")
		require.Len(t, p.Records, 40)
		assert.Equal(t, "c-0060", p.Records[0].RecordID, "the newest 40 are kept")
		assert.Equal(t, int64(60), h.sumMetric("otelcol_o365_events_records_deleted"))
	})
}

// A Postgres that goes away: the write fails with a retryable error (the receiver will not commit the
// page, and sends it again) that names the database and never the password; once it is back, the page
// is stored, once.
func TestDatabaseOutageIsRetryable(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, sqldb.DriverPostgres)
	u, err := url.Parse(string(cfg.DSN))
	require.NoError(t, err)
	proxy := pgtest.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	const password = "s3cr3t-Pa55word"
	u.User = url.UserPassword(u.User.Username(), password)
	cfg.DSN = configopaque.String(u.String())
	cfg.RetryConfig.Enabled = false // the receiver's retry is what matters here
	cfg.TimeoutConfig.Timeout = 2 * time.Second
	h := startHarness(t, cfg)
	page := signinLogs(t, "contoso", signins("s", 10, time.Now().Add(-time.Hour)))

	proxy.Down()
	err = h.exp.ConsumeLogs(ctx, page)
	require.Error(t, err)
	t.Logf("while down: %v", err)
	assert.False(t, consumererror.IsPermanent(err), "an unavailable database is retryable")
	assert.Contains(t, err.Error(), "o365_events: storing 10 records in the postgres at "+proxy.Addr)
	assert.NotContains(t, err.Error(), password)

	proxy.Up(false)
	require.Eventually(t, func() bool { return h.exp.ConsumeLogs(ctx, page) == nil }, 15*time.Second, 100*time.Millisecond)
	require.NoError(t, h.exp.ConsumeLogs(ctx, page))
	assert.Equal(t, int64(10), h.count("contoso"))
}
