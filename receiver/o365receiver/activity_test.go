package o365receiver

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

const exchange = "Audit.Exchange"

// activityConfig reads tenant 1's Audit.Exchange feed from sim's Management Activity API.
func activityConfig(sim *graphsimtest.Sim) *Config {
	cfg := simConfig(sim, 1)
	cfg.ManagementEndpoint = sim.URL()
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"audit_exchange": {Enabled: new(true), Lookback: time.Hour}}
	return cfg
}

// auditRecords are n Exchange audit records in the API's common schema, ids prefix-0…, created at `at`
// minus i minutes (records inside a blob are of any age and in any order).
func auditRecords(prefix string, n int, at time.Time) []map[string]any {
	out := make([]map[string]any, 0, n)
	for i := range n {
		out = append(out, map[string]any{
			"Id": fmt.Sprintf("%s-%d", prefix, i), "CreationTime": at.Add(-time.Duration(i) * time.Minute).UTC().Format("2006-01-02T15:04:05"),
			"Operation": "MailItemsAccessed", "Workload": "Exchange", "RecordType": 50, "ResultStatus": "Succeeded",
			"UserId": "adele@contoso.onmicrosoft.com", "ClientIP": "203.0.113.7:49152", "OrganizationId": graphsimtest.TenantID(1),
		})
	}
	return out
}

func idsOf(blobs ...[]map[string]any) []string {
	var out []string
	for _, b := range blobs {
		for _, r := range b {
			if !slices.Contains(out, r["Id"].(string)) {
				out = append(out, r["Id"].(string))
			}
		}
	}
	return out
}

func activityStatus(r *o365Receiver) StreamStatus {
	for _, s := range r.Streams() {
		if s.Dataset == "audit_exchange" {
			return s
		}
	}
	return StreamStatus{}
}

// The receiver starts the absent subscription, pages the listing with NextPageUri, fetches each blob
// once and emits each record once — blobs inserted out of order, records of any age, a record that two
// blobs carry — with the body verbatim, the record's Id and its CreationTime.
func TestActivityFeedSubscribesPagesAndEmitsOnce(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 3, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	sim.SetActivityPageSize(2)
	now := time.Now()
	b1 := auditRecords("b1", 3, now.Add(-3*24*time.Hour)) // records days older than their blob
	b2 := auditRecords("b2", 2, now.Add(-30*time.Minute))
	b3 := append(auditRecords("b3", 2, now.Add(-2*time.Hour)), b2[0]) // b2-0 again, in another blob
	b4 := auditRecords("b4", 1, now.Add(-26*time.Hour))
	b5 := auditRecords("b5", 4, now.Add(-time.Minute))
	var blobIDs []string
	for _, b := range []struct {
		created time.Time
		recs    []map[string]any
	}{{now.Add(-time.Hour), b2}, {now.Add(-30 * time.Hour), b1}, {now.Add(-20 * time.Minute), b3}, {now.Add(-25 * time.Hour), b4}, {now.Add(-10 * time.Minute), b5}} {
		blobIDs = append(blobIDs, sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: b.created, Records: b.recs}))
	}
	sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: "Audit.SharePoint", Created: now.Add(-time.Hour), Records: auditRecords("spo", 2, now)})
	require.Empty(t, sim.Subscription(tid, exchange))

	sink := new(consumertest.LogsSink)
	startReceiver(t, activityConfig(sim), sink)
	requireExactly(t, sink, map[string][]string{"audit_exchange": idsOf(b1, b2, b3, b4, b5)})
	require.Equal(t, "enabled", sim.Subscription(tid, exchange), "the receiver started the subscription")
	for _, id := range blobIDs {
		require.Equal(t, 1, sim.BlobFetches(id), "blob %s fetched once, however often it was listed again", id)
	}
	nextPages := 0
	for _, rec := range sim.Requests() {
		if strings.Contains(rec.Query, "nextPage=") && rec.Status == 200 {
			nextPages++
		}
	}
	require.Positive(t, nextPages, "NextPageUri was followed")

	lr := findRecord(t, sink.AllLogs(), "b1-2")
	require.Equal(t, "o365.audit_exchange", lr.EventName())
	want, _ := time.Parse("2006-01-02T15:04:05", b1[2]["CreationTime"].(string))
	require.Equal(t, want.UTC(), lr.Timestamp().AsTime())
	body := lr.Body().Map().AsRaw()
	require.Equal(t, int64(50), body["RecordType"], "integers stay integers")
	require.Equal(t, "203.0.113.7:49152", body["ClientIP"], "the body is verbatim")
	require.Len(t, body, len(b1[2]))
	var order []string
	lr.Body().Map().Range(func(k string, _ pcommon.Value) bool { order = append(order, k); return true })
	require.True(t, slices.IsSorted(order), "the fields keep the order the API sent them in (the simulator writes them sorted): %v", order)
}

func findRecord(t *testing.T, logs []plog.Logs, id string) plog.LogRecord {
	t.Helper()
	found := plog.NewLogRecord()
	ok := false
	eachRecord(logs, func(_ string, lr plog.LogRecord) {
		if v, _ := lr.Attributes().Get(AttrRecordID); v.Str() == id && !ok {
			found, ok = lr, true
		}
	})
	require.True(t, ok, "no record %s", id)
	return found
}

// A blob listed late (its contentCreated far behind the time it appears in listings) and blobs that
// arrive while the receiver runs are collected within the lookback, exactly once; a throttled listing
// is retried after its Retry-After.
func TestActivityFeedLateBlobsAndThrottling(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 4, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	sim.SetSubscription(tid, exchange, "enabled")
	now := time.Now()
	first := auditRecords("first", 3, now.Add(-time.Hour))
	sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: now.Add(-40 * time.Minute), Records: first})
	late := auditRecords("late", 2, now.Add(-50*time.Minute))
	// Available (contentCreated) 45 min ago, but listed only from a second from now: behind the position.
	sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: now.Add(-45 * time.Minute), ListedFrom: now.Add(time.Second), Records: late})
	sim.FailNext(graphsim.Fault{Kind: "status", Status: 429, RetryAfter: 200 * time.Millisecond, Path: "/subscriptions/content"})

	sink := new(consumertest.LogsSink)
	r := startReceiver(t, activityConfig(sim), sink)
	require.Eventually(t, func() bool { return sink.LogRecordCount() >= len(first) }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return !activityStatus(r).Watermark.Before(now) }, 20*time.Second, 10*time.Millisecond,
		"the position passed the late blob's contentCreated before it was listed")
	live := auditRecords("live", 2, time.Now())
	sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: time.Now(), Records: live})
	requireExactly(t, sink, map[string][]string{"audit_exchange": idsOf(first, late, live)})
	require.Positive(t, sim.Stats().Throttled, "the listing was throttled once")
	require.Empty(t, activityStatus(r).LastError)
}

// Across a restart on persistent storage, nothing is emitted twice and no blob is fetched again.
func TestActivityFeedExactlyOnceAcrossRestart(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 5, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	now := time.Now()
	before := auditRecords("before", 5, now.Add(-2*time.Hour))
	id1 := sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: now.Add(-20 * time.Minute), Records: before})
	dir := t.TempDir()
	sink := new(consumertest.LogsSink)
	runOnStorage(t, dir, activityConfig(sim), sink, func(*o365Receiver) bool { return sink.LogRecordCount() >= len(before) })

	after := append(auditRecords("after", 3, now), before[0]) // one record carried again by a new blob
	id2 := sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: time.Now(), Records: after})
	runOnStorage(t, dir, activityConfig(sim), sink, func(*o365Receiver) bool { return sink.LogRecordCount() >= len(before)+3 })
	time.Sleep(300 * time.Millisecond)
	got := idsByDataset(sink.AllLogs())["audit_exchange"]
	require.Equal(t, sorted(idsOf(before, after)), sorted(got), "every record exactly once across the restart")
	require.Equal(t, 1, sim.BlobFetches(id1), "the first blob is not fetched again after the restart")
	require.Equal(t, 1, sim.BlobFetches(id2))
}

// Content that expired before it was fetched is a reported gap: counted and described in the stream's
// status (and so on the readiness page), never silently skipped; the rest is collected.
func TestActivityFeedExpiredContentIsAReportedGap(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 6, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	sim.SetSubscription(tid, exchange, "enabled")
	now := time.Now()
	expired := sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: now.Add(-50 * time.Minute), Expiration: now.Add(-time.Minute),
		Records: auditRecords("gone", 2, now)})
	kept := auditRecords("kept", 2, now)
	sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: now.Add(-40 * time.Minute), Records: kept})
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, activityConfig(sim), sink)
	requireExactly(t, sink, map[string][]string{"audit_exchange": idsOf(kept)})
	st := activityStatus(r)
	require.Equal(t, 1, st.Gaps, "one gap, reported once however often the blob is listed again")
	require.Contains(t, st.LastGap, expired)
	require.Contains(t, st.LastGap, "expired")
	require.Zero(t, sim.BlobFetches(expired))
}

// An app without ActivityFeed.Read cannot start the subscription: the stream reports that, as a
// permission problem, and the readiness probe reports the subscription as not started.
func TestActivityFeedReportsASubscriptionItMayNotStart(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 8, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	sim.SetRoles(tid, graphsimtest.ClientID, slices.DeleteFunc(slices.Clone(graphsimtest.AllRoles), func(r string) bool { return strings.HasPrefix(r, "ActivityFeed.") }))
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, activityConfig(sim), sink)
	require.Eventually(t, func() bool { return activityStatus(r).LastErrorKind != "" }, 20*time.Second, 10*time.Millisecond)
	st := activityStatus(r)
	require.Equal(t, o365status.ErrorPermission, st.LastErrorKind)
	require.Contains(t, st.LastError, "subscription to Audit.Exchange is not started and this app may not start it")
	require.Contains(t, st.LastError, "ActivityFeed.Read")
	require.Empty(t, sim.Subscription(tid, exchange))
	require.NotContains(t, r.Token(cfgTenant(r)).Roles, "ActivityFeed.Read", "readiness sees the permission missing")

	err := r.Probe(context.Background(), cfgTenant(r), "audit_exchange")
	require.ErrorContains(t, err, "subscription to Audit.Exchange is not started")
	require.Zero(t, sink.LogRecordCount())
}

// A tenant whose unified audit logging is off: the API refuses the subscription with its undocumented
// "Tenant … does not exist"; the stream reports auditing as disabled, with the remedy, cools down as for
// a 403, and the probe says the same. Once auditing is turned on, the stream recovers by itself.
func TestActivityFeedReportsDisabledAuditing(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 8, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	sim.SetAuditingDisabled(tid, true)
	blob := auditRecords("r", 2, time.Now().Add(-time.Hour))
	sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: time.Now().Add(-30 * time.Minute), Records: blob})
	sink := new(consumertest.LogsSink)
	cfg := activityConfig(sim)
	cfg.ForbiddenRetryInterval = 200 * time.Millisecond
	r := startReceiver(t, cfg, sink)
	require.Eventually(t, func() bool { return activityStatus(r).LastErrorKind != "" }, 20*time.Second, 10*time.Millisecond)
	st := activityStatus(r)
	require.Equal(t, o365status.ErrorAuditingDisabled, st.LastErrorKind)
	require.Equal(t, o365status.StateCoolingDown, st.State, "retrying sooner cannot help")
	require.Contains(t, st.LastError, "unified audit logging is turned off for the tenant")
	require.Contains(t, st.LastError, "Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true")
	require.Contains(t, st.LastError, "Tenant "+tid+" does not exist", "the API's answer is quoted")
	require.NotContains(t, st.LastError, "AzureManager", "without its stack trace")
	require.Empty(t, sim.Subscription(tid, exchange))

	err := r.Probe(context.Background(), cfgTenant(r), "audit_exchange")
	require.ErrorIs(t, err, o365status.ErrAuditingDisabled)
	require.ErrorContains(t, err, "unified audit logging is turned off")
	require.Zero(t, sink.LogRecordCount())

	sim.SetAuditingDisabled(tid, false)
	require.Eventually(t, func() bool { return sink.LogRecordCount() == len(blob) }, 20*time.Second, 10*time.Millisecond)
	require.Empty(t, activityStatus(r).LastErrorKind)
	require.NoError(t, r.Probe(context.Background(), cfgTenant(r), "audit_exchange"))
}

func cfgTenant(r *o365Receiver) string { return r.cfg.Tenants[0].label() }

// Each cloud's Management Activity API host and token scope (the API reference's "Activity API
// operations"); China has none documented, GCC is set by hand.
func TestManagementEndpointPerCloud(t *testing.T) {
	for cloud, want := range map[string]string{
		"": "https://manage.office.com", "public": "https://manage.office.com", "usgov": "https://manage.office365.us",
		"usgovdod": "https://manage.protection.apps.mil", "china": "",
	} {
		cfg := createDefaultConfig().(*Config)
		endpoint, scope := cfg.management(&TenantConfig{Cloud: cloud})
		require.Equal(t, want, endpoint, cloud)
		if want == "" {
			require.Empty(t, scope, cloud)
			continue
		}
		require.Equal(t, want+"/.default", scope, cloud)
	}
	cfg := createDefaultConfig().(*Config)
	cfg.ManagementEndpoint, cfg.ManagementResource = "https://manage-gcc.office.com/", "https://manage-gcc.office.com"
	endpoint, scope := cfg.management(&TenantConfig{})
	require.Equal(t, "https://manage-gcc.office.com", endpoint)
	require.Equal(t, "https://manage-gcc.office.com/.default", scope)
}

// A contentUri or NextPageUri on another host than the Management API's is refused before a token is
// sent there: the stream fails with error kind foreign_host and the foreign host sees no request.
func TestActivityFeedSendsNoTokenToAnotherHost(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 9, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}})
	tid := graphsimtest.TenantID(1)
	sim.SetSubscription(tid, exchange, "enabled")
	sim.SetActivityPageSize(1)
	for i := range 2 {
		sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: time.Now().Add(-time.Duration(i+1) * time.Minute), Records: auditRecords(fmt.Sprint(i), 1, time.Now())})
	}
	require.NoError(t, sim.SetForeignNextLinks(true))
	sink := new(consumertest.LogsSink)
	r := startReceiver(t, activityConfig(sim), sink)
	require.Eventually(t, func() bool { return activityStatus(r).LastErrorKind != "" }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, "foreign_host", activityStatus(r).LastErrorKind)
	require.Contains(t, activityStatus(r).LastError, "the access token goes only there")
	require.Empty(t, sim.ForeignRequests(), "nothing, and no token, went to the other host")
	require.Zero(t, sink.LogRecordCount())
}

// catchUpLatency is added to each simulator response of TestActivityFeedCatchUpRequests, to measure the
// catch-up's time against an API slower than the local simulator (docs/benchmarks.md §6b).
var catchUpLatency = flag.Duration("catchup-latency", 0, "latency of each simulator response in TestActivityFeedCatchUpRequests")

// Catching up the API's whole 7 days of one content type costs one request per blob, plus the content
// listings: one per 24 h window and one per further NextPageUri page, plus the subscription check. The
// figures are logged for docs/benchmarks.md (go test -run TestActivityFeedCatchUpRequests -v).
func TestActivityFeedCatchUpRequests(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 10, Tenants: []graphsim.Tenant{graphsimtest.Tenant(1, nil)}, Latency: *catchUpLatency})
	tid := graphsimtest.TenantID(1)
	sim.SetSubscription(tid, exchange, "enabled")
	const perDay, pageSize = 288, 100 // a blob an hour; 100 blobs a listing page (the API documents no size)
	sim.SetActivityPageSize(pageSize)
	now := time.Now()
	var ids []string
	for i := range 7 * perDay {
		// From 2 min inside the 7 days to 3 min ago: all available at the first poll.
		created := now.Add(-time.Duration(7*perDay-i)*5*time.Minute + 2*time.Minute)
		recs := auditRecords(fmt.Sprintf("c%d", i), 3, created)
		ids = append(ids, idsOf(recs)...)
		sim.AddAuditBlob(tid, graphsim.AuditBlob{ContentType: exchange, Created: created, Records: recs})
	}
	cfg := activityConfig(sim)
	cfg.InitialLookback = 7 * 24 * time.Hour
	cfg.PollInterval = time.Hour // one poll: the catch-up alone
	cfg.Tenants[0].Datasets = map[string]DatasetConfig{"audit_exchange": {Enabled: new(true)}}
	sink := new(consumertest.LogsSink)
	started := time.Now()
	startReceiver(t, cfg, sink)
	requireExactly(t, sink, map[string][]string{"audit_exchange": ids})
	took := time.Since(started)
	lists, fetches, other := 0, 0, 0
	for _, rec := range sim.Requests() {
		switch {
		case strings.Contains(rec.Path, "/subscriptions/content"):
			lists++
		case strings.Contains(rec.Path, "/activity/feed/audit/"):
			fetches++
		default:
			other++
		}
	}
	require.Equal(t, len(ids)/3, fetches, "each blob fetched once")
	windows := 7
	require.LessOrEqual(t, lists, windows+(7*perDay)/pageSize+windows, "one listing per window and per further page")
	t.Logf("7 days, %d blobs, %d records: %d requests (%d listings, %d blob fetches, %d subscription checks) = %.1f min of the 2,000 a minute budget; %s here",
		7*perDay, len(ids), lists+fetches+other, lists, fetches, other, float64(lists+fetches+other)/2000, took.Round(time.Millisecond))
}
