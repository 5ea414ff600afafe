package o365eventsexporter

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-o365/otelcol-o365/internal/cputime"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor"
)

// benchPages builds n pages of 1000 sign-ins of tenant as the pipeline delivers them: a real Graph
// sign-in (testdata/bench-signin.json, 3.2 KB, from Microsoft's documentation) with fresh ids (random
// UUIDs, benchID) and times, decoded by the receiver's page decoder and normalized by the o365_mapping
// processor.
func benchPages(b *testing.B, tenant string, n int, start time.Time) []plog.Logs {
	tmpl, err := os.ReadFile("testdata/bench-signin.json")
	require.NoError(b, err)
	f := o365mappingprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*o365mappingprocessor.Config)
	cfg.Correlation.Enabled = false
	sink := &consumertest.LogsSink{}
	proc, err := f.CreateLogs(context.Background(), processortest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(b, err)
	require.NoError(b, proc.Start(context.Background(), nil))
	defer func() { require.NoError(b, proc.Shutdown(context.Background())) }()
	for p := range n {
		var page strings.Builder
		page.WriteString(`{"value":[`)
		for i := range 1000 {
			if i > 0 {
				page.WriteByte(',')
			}
			k := p*1000 + i
			body := strings.Replace(string(tmpl), `"ID"`, strconv.Quote(benchID(tenant, k)), 1)
			body = strings.Replace(body, `"TIME"`, strconv.Quote(start.Add(time.Duration(k)*time.Second).Format(time.RFC3339)), 1)
			if k%4 != 0 {
				body = strings.Replace(body, `"errorCode":50126`, `"errorCode":0`, 1)
			}
			page.WriteString(strings.TrimSpace(body))
		}
		page.WriteString("]}")
		ld := plog.NewLogs()
		lrs := resource(ld, tenant, "tid-"+tenant, o365attr.DatasetSignIns)
		_, err := graph.FastDecoder{}.Decode([]byte(page.String()), func() pcommon.Map { return lrs.AppendEmpty().Body().SetEmptyMap() })
		require.NoError(b, err)
		for _, lr := range lrs.All() {
			id, _ := lr.Body().Map().Get("id")
			at, _ := lr.Body().Map().Get("createdDateTime")
			ts, _ := time.Parse(time.RFC3339, at.Str())
			lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			lr.SetEventName(o365attr.EventSignIn)
			lr.Attributes().PutStr(o365attr.RecordID, id.Str())
		}
		require.NoError(b, proc.ConsumeLogs(context.Background(), ld))
	}
	out := sink.AllLogs()
	require.Len(b, out, n)
	return out
}

// benchID is the k-th sign-in id of tenant: a UUID as Graph's are, in no order, so that the unique
// key's inserts land anywhere in its index as in production (sequential ids would append to it).
func benchID(tenant string, k int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s-%d", tenant, k))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// BenchmarkStore measures records stored per second through the exporter as the collector runs it
// (exporterhelper, no sending_queue: each ConsumeLogs returns once its transaction committed; SQLite
// with synchronous full, i.e. an fsync per page), on SQLite and on the Postgres of 127.0.0.1:5432.
// streams=1 is one receiver stream (pages one after another); streams=4 is four tenants' streams at
// once. One op is one page of 1000 records (3.2 KB raw + the normalized attributes each).
func BenchmarkStore(b *testing.B) {
	for _, driver := range drivers {
		for _, streams := range []int{1, 4} {
			b.Run(fmt.Sprintf("driver=%s/streams=%d", driver, streams), func(b *testing.B) {
				h := startHarness(b, testConfig(b, driver))
				start := time.Now().Add(-20 * 24 * time.Hour)
				perStream := (b.N + streams - 1) / streams
				pages := make([][]plog.Logs, streams)
				for s := range streams {
					pages[s] = benchPages(b, fmt.Sprintf("tenant%d", s), perStream, start)
				}
				b.ResetTimer()
				began, cpu0 := time.Now(), cputime.Process()
				var wg sync.WaitGroup
				errs := make(chan error, streams)
				for s := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for _, ld := range pages[s] {
							if err := h.exp.ConsumeLogs(context.Background(), ld); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				elapsed, cpu := time.Since(began), cputime.Process()-cpu0
				b.StopTimer()
				close(errs)
				for err := range errs {
					require.NoError(b, err)
				}
				records := streams * perStream * 1000
				b.ReportMetric(float64(records)/elapsed.Seconds(), "records/s")
				// CPU of this process (exporter and database driver; for Postgres not the server's): what
				// records/s would be with a core to itself, on a machine shared with other work.
				b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkQuery measures GET /events/normalized and /events/raw with limit=100 over HTTP (server,
// authentication, SQL, JSON) at 1M and 10M stored records (O365_EVENTS_BENCH_SIZES, default
// "1000000,10000000"), on SQLite and Postgres. The rows are generated inside the database in bulk
// (compact synthetic sign-ins and audits: ~0.9 KB raw + ~0.3 KB normalized; 90 % of one tenant,
// 80 % sign-ins, a quarter of those failures, over 30 days). Each query kind runs 1000 times from
// random start times; p50 and p99 are reported in ms.
func BenchmarkQuery(b *testing.B) {
	sizes := []int{1_000_000, 10_000_000}
	if v := os.Getenv("O365_EVENTS_BENCH_SIZES"); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			require.NoError(b, err)
			sizes = append(sizes, n)
		}
	}
	for _, driver := range drivers {
		for _, size := range sizes {
			b.Run(fmt.Sprintf("driver=%s/records=%d", driver, size), func(b *testing.B) {
				cfg := testConfig(b, driver)
				cfg.Retention.MaxAge, cfg.Retention.MaxRecordsPerTenant = 0, 0
				h := startHarness(b, cfg)
				b.Cleanup(func() { dropRows(b, h.e.currentStore()) })
				began := time.Now()
				end := generateRows(b, h.e.currentStore(), size)
				b.Logf("generated %d rows in %s", size, time.Since(began).Round(time.Second))
				kinds := []struct {
					name, path    string
					since, window bool // from a random time; for one hour
				}{
					{"normalized_type", "/events/normalized?tenant_id=contoso&type=signin.failure&limit=100", true, false},
					{"normalized_type_first_page", "/events/normalized?tenant_id=contoso&type=signin.failure&limit=100", false, false},
					{"normalized_any", "/events/normalized?tenant_id=contoso&limit=100", true, false},
					{"raw_dataset", "/events/raw?tenant_id=contoso&dataset=directory_audits&limit=100", true, false},
					{"raw_window", "/events/raw?tenant_id=fabrikam&limit=100", true, true},
					{"normalized_rare_type", "/events/normalized?tenant_id=contoso&type=role.assignment.added&limit=100", true, false},
				}
				span := 30 * 24 * time.Hour
				b.ResetTimer()
				for _, k := range kinds {
					const n = 1000
					lat := make([]time.Duration, 0, n)
					var next *string
					for i := range n {
						since := end.Add(-span).Add(time.Duration(uint64(i)*2654435761%uint64(span/time.Second)) * time.Second)
						path := k.path
						if next != nil && i%2 == 1 { // every other query continues the previous page
							path += "&cursor=" + url.QueryEscape(*next)
						} else if k.since {
							path += "&since=" + url.QueryEscape(since.Format(time.RFC3339))
						}
						if k.window {
							path += "&until=" + url.QueryEscape(since.Add(time.Hour).Format(time.RFC3339))
						}
						t0 := time.Now()
						status, body := h.get(path, testToken)
						lat = append(lat, time.Since(t0)) // the client's decoding is not the server's latency
						require.Equal(b, http.StatusOK, status, "%s: %s", path, body)
						var p page
						require.NoError(b, json.Unmarshal(body, &p))
						next = p.NextCursor
					}
					slices.Sort(lat)
					ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
					b.ReportMetric(ms(0.50), k.name+"_p50_ms")
					b.ReportMetric(ms(0.99), k.name+"_p99_ms")
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// dropRows empties a benchmark's big table before the harness and pgtest clean up: dropping 10M
// rows can take longer than their cleanup's bound.
func dropRows(b *testing.B, s *store) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if s.dialect.Name == sqldb.DriverPostgres {
		_, err := s.w.ExecContext(ctx, "DROP TABLE "+s.prefix+"records")
		require.NoError(b, err)
	}
}

// generateRows fills the store with n rows in bulk, inside the database, and returns the newest
// event time. Two tenants (contoso 90 %), sign-ins (80 %: success, failure 1 in 4) and audits
// (a role assignment 1 in 10,000), one per 30 days / n.
func generateRows(b *testing.B, s *store, n int) time.Time {
	end := time.Now().Truncate(time.Second)
	startNs := end.Add(-30 * 24 * time.Hour).UnixNano()
	step := int64(30*24*time.Hour) / int64(n)
	const chunk = 500_000
	// The same expressions in both databases: printf is SQLite's, format Postgres's.
	var series, str, cat string
	if s.dialect.Name == sqldb.DriverSQLite {
		series = `WITH RECURSIVE g(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < $2) SELECT i FROM g`
		str = `printf('%08d', i)`
		cat = "||"
	} else {
		series = `SELECT generate_series($1::bigint, $2::bigint - 1) AS i`
		str = `lpad(i::text, 8, '0')`
		cat = "||"
	}
	tenant := `CASE WHEN i % 10 = 9 THEN 'fabrikam' ELSE 'contoso' END`
	dataset := `CASE WHEN i % 5 = 4 THEN 'directory_audits' ELSE 'signins' END`
	typ := `CASE WHEN i % 5 = 4 THEN (CASE WHEN i % 10000 = 4 THEN 'role.assignment.added' ELSE 'audit.user.update' END)
		WHEN i % 4 = 0 THEN 'signin.failure' ELSE 'signin.success' END`
	raw := `'{"id":"' ` + cat + str + cat + ` '","createdDateTime":"2026-11-02T10:00:00Z","userDisplayName":"Jamie Doe","userPrincipalName":"user' ` + cat + ` (i % 5000) ` + cat +
		` '@contoso.com","userId":"bbb3b4b5-e6e6-f7f5-f7f5-090805040302","appId":"d3590ed6-52b3-4102-aeff-aad2292ab01c","appDisplayName":"Azure Portal","ipAddress":"203.0.113.' ` + cat + ` (i % 250) ` + cat +
		` '","clientAppUsed":"Browser","correlationId":"d79f5bee-5860-4832-928f-3133e22ae912","conditionalAccessStatus":"success","isInteractive":true,"riskDetail":"none","riskLevelAggregated":"none","riskLevelDuringSignIn":"none","riskState":"none","resourceDisplayName":"Windows Azure Service Management API","resourceId":"797f4846-ba00-4fd7-ba43-dac1f8f63013","status":{"errorCode":0,"failureReason":null,"additionalDetails":"MFA requirement satisfied by claim in the token"},"deviceDetail":{"deviceId":"","displayName":"","operatingSystem":"Windows 10","browser":"Edge 80.0.361","isCompliant":false,"isManaged":false,"trustType":""},"location":{"city":"Redmond","state":"Washington","countryOrRegion":"US","geoCoordinates":{"altitude":null,"latitude":47.68050003051758,"longitude":-122.12094116210938}}}'`
	norm := `'{"o365.record.id":"' ` + cat + str + cat + ` '","o365.event.type":"' ` + cat + typ + cat + ` '","o365.log_type":"sign_in_log","o365.source":"Microsoft365","o365.activity":"Sign-in","o365.result":"success","user.name":"user' ` + cat + ` (i % 5000) ` + cat +
		` '@contoso.com","user.id":"bbb3b4b5-e6e6-f7f5-f7f5-090805040302","client.address":"203.0.113.7","o365.application.name":"Azure Portal","geo.country.iso_code":"US","o365.domain":"identity","o365.control":"authentication","o365.metric":"signins"}'`
	insert := s.dialect.Expand(s.prefix, `INSERT INTO {p}records (tenant, dataset, record_id, version, event_time, event_type, raw, normalized, stored_at)
		SELECT `+tenant+`, `+dataset+`, `+str+`, '', $3 + i * $4, `+typ+`, `+raw+`, `+norm+`, 0 FROM (`+series+`) AS s`)
	ctx := context.Background()
	for from := 0; from < n; from += chunk {
		to := min(from+chunk, n)
		_, err := s.w.ExecContext(ctx, insert, from, to, startNs, step)
		require.NoError(b, err)
	}
	for _, t := range []string{"contoso", "fabrikam"} {
		_, err := s.w.ExecContext(ctx, s.q.tenantAdd, t, "", 0)
		require.NoError(b, err)
	}
	if s.dialect.Name == sqldb.DriverPostgres {
		_, err := s.w.ExecContext(ctx, "ANALYZE "+s.prefix+"records")
		require.NoError(b, err)
	} else {
		_, err := s.w.ExecContext(ctx, "ANALYZE")
		require.NoError(b, err)
	}
	return time.Unix(0, startNs+int64(n)*step)
}
