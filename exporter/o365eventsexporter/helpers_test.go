package o365eventsexporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365eventsexporter/internal/metadata"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

const testToken = "test-token-0123456789"

var (
	drivers = []string{sqldb.DriverSQLite, sqldb.DriverPostgres}
	authID  = component.MustNewIDWithName("bearertokenauth", "events")
)

func forEachDriver(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range drivers {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

// testConfig is a valid configuration on a fresh database (a new SQLite file, or a unique table prefix
// on the test Postgres, dropped at the end), serving on a free port behind the test's bearer token.
func testConfig(t testing.TB, driver string) *Config {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Driver = driver
	switch driver {
	case sqldb.DriverSQLite:
		cfg.Path = filepath.Join(t.TempDir(), "events.db")
	case sqldb.DriverPostgres:
		dsn := pgtest.DSN(t)
		cfg.Path, cfg.DSN = "", configopaque.String(dsn)
		cfg.TablePrefix = pgtest.TablePrefix(t, dsn, "evt")
	}
	srv := cfg.Server.Get()
	srv.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	srv.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	cfg.Retention.Interval = time.Hour // the tests call enforceRetention themselves
	require.NoError(t, cfg.Validate())
	return cfg
}

// harness is a started exporter (through exporterhelper, as the collector runs it) with a real
// bearertokenauth extension on its host.
type harness struct {
	t   testing.TB
	e   *eventsExporter
	exp exporter.Logs
	tel *componenttest.Telemetry
	url string
}

type testHost struct {
	ext map[component.ID]component.Component
}

func (h testHost) GetExtensions() map[component.ID]component.Component { return h.ext }

func startHarness(t testing.TB, cfg *Config) *harness {
	t.Helper()
	ctx := context.Background()
	authFactory := bearertokenauthextension.NewFactory()
	authCfg := authFactory.CreateDefaultConfig().(*bearertokenauthextension.Config)
	authCfg.BearerToken = testToken
	auth, err := authFactory.Create(ctx, extensiontest.NewNopSettings(authFactory.Type()), authCfg)
	require.NoError(t, err)
	host := testHost{ext: map[component.ID]component.Component{authID: auth}}
	require.NoError(t, auth.Start(ctx, host))
	t.Cleanup(func() { require.NoError(t, auth.Shutdown(ctx)) })

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(ctx)) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	e, err := newEventsExporter(set, cfg)
	require.NoError(t, err)
	exp, err := e.logsExporter(ctx)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, host))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(ctx)) })
	h := &harness{t: t, e: e, exp: exp, tel: tel}
	if e.addr != "" {
		h.url = "http://" + e.addr
	}
	return h
}

// get sends GET path with the bearer token (none when token is "") and returns status and body.
func (h *harness) get(path, token string) (int, []byte) {
	h.t.Helper()
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	u, err := url.Parse(h.url + path)
	require.NoError(h.t, err)
	resp, err := http.DefaultClient.Do(&http.Request{Method: http.MethodGet, URL: u, Header: header})
	require.NoError(h.t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(h.t, errors.Join(err, resp.Body.Close()))
	return resp.StatusCode, body
}

// page is a decoded answer of an event route.
type page struct {
	TenantID string `json:"tenant_id"`
	Records  []struct {
		Dataset    string          `json:"dataset"`
		RecordID   string          `json:"record_id"`
		Version    string          `json:"version"`
		Time       time.Time       `json:"time"`
		Type       string          `json:"type"`
		Body       json.RawMessage `json:"body"`
		Attributes map[string]any  `json:"attributes"`
	} `json:"records"`
	NextCursor *string `json:"next_cursor"`
}

func (h *harness) query(path string) page {
	h.t.Helper()
	status, body := h.get(path, testToken)
	require.Equal(h.t, http.StatusOK, status, "%s: %s", path, body)
	var p page
	require.NoError(h.t, json.Unmarshal(body, &p), "%s", body)
	return p
}

// count is the number of stored rows of tenant (all of them with tenant "").
func (h *harness) count(tenant string) int64 {
	h.t.Helper()
	var n int64
	q := "SELECT count(*) FROM " + h.e.cfg.TablePrefix + "records"
	args := []any{}
	if tenant != "" {
		q += " WHERE tenant = $1"
		args = append(args, tenant)
	}
	require.NoError(h.t, h.e.currentStore().r.QueryRowContext(context.Background(), q, args...).Scan(&n))
	return n
}

// sumMetric is the total of an int counter over its attributes (0 when never recorded).
func (h *harness) sumMetric(name string) int64 {
	h.t.Helper()
	m, err := h.tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		total += dp.Value
	}
	return total
}

// signin is one simulated sign-in: its Graph body (JSON, as Graph sends it) and what the processor
// adds.
type signin struct {
	id      string
	at      time.Time
	failure bool
}

func (s signin) bodyJSON() string {
	status := `{"errorCode":0}`
	if s.failure {
		status = `{"errorCode":50126,"failureReason":"Invalid username or password."}`
	}
	return fmt.Sprintf(`{"id":%q,"createdDateTime":%q,"userPrincipalName":"user%s@contoso.com","ipAddress":"203.0.113.7","status":%s,"riskLevelDuringSignIn":null,"isInteractive":true,"location":{"city":"Redmond","geoCoordinates":{"latitude":47.64,"longitude":-122.13}}}`,
		s.id, s.at.UTC().Format(time.RFC3339Nano), s.id, status)
}

func (s signin) eventType() string {
	if s.failure {
		return "signin.failure"
	}
	return "signin.success"
}

// resource appends a ResourceLogs for tenant and dataset, as the receiver shapes it.
func resource(ld plog.Logs, tenant, tenantID, dataset string) plog.LogRecordSlice {
	rl := ld.ResourceLogs().AppendEmpty()
	a := rl.Resource().Attributes()
	a.PutStr(o365attr.CloudProvider, "azure")
	a.PutStr(o365attr.TenantID, tenantID)
	a.PutStr(o365attr.TenantName, tenant)
	a.PutStr(o365attr.Dataset, dataset)
	return rl.ScopeLogs().AppendEmpty().LogRecords()
}

// signinLogs is a page of sign-ins of tenant as the processor emits it (keep_raw: true): the Graph
// body, decoded by the receiver's own page decoder, and the normalized attributes.
func signinLogs(t *testing.T, tenant string, signins []signin) plog.Logs {
	ld := plog.NewLogs()
	lrs := resource(ld, tenant, "tid-"+tenant, o365attr.DatasetSignIns)
	page := []byte(`{"value":[`)
	for i, s := range signins {
		if i > 0 {
			page = append(page, ',')
		}
		page = append(page, s.bodyJSON()...)
	}
	page = append(page, "]}"...)
	_, err := graph.FastDecoder{}.Decode(page, func() pcommon.Map { return lrs.AppendEmpty().Body().SetEmptyMap() })
	require.NoError(t, err)
	for i, s := range signins {
		lr := lrs.At(i)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(s.at))
		lr.SetEventName(o365attr.EventSignIn)
		a := lr.Attributes()
		a.PutStr(o365attr.RecordID, s.id)
		a.PutStr(o365attr.EventType, s.eventType())
		a.PutStr(o365attr.UserName, "user"+s.id+"@contoso.com")
		a.PutStr(o365attr.ClientAddress, "203.0.113.7")
	}
	return ld
}

// signins makes n sign-ins one second apart from start, every third a failure, ids prefix-<i>.
func signins(prefix string, n int, start time.Time) []signin {
	out := make([]signin, n)
	for i := range out {
		out[i] = signin{id: fmt.Sprintf("%s-%04d", prefix, i), at: start.Add(time.Duration(i) * time.Second), failure: i%3 == 0}
	}
	return out
}
