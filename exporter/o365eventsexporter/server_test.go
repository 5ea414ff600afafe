package o365eventsexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
)

// Paging through a route with the cursor returns every matching record once, in time order, with
// the raw body verbatim and the normalized attributes; since / until bound the time, and the tenant
// may be named by its Entra tenant id too.
func TestQueryPaging(t *testing.T) {
	forEachDriver(t, func(t *testing.T, driver string) {
		ctx := context.Background()
		h := startHarness(t, testConfig(t, driver))
		start := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
		contoso := signins("c", 100, start)
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", contoso[50:])))
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "contoso", contoso[:50])), "stored out of time order")
		require.NoError(t, h.exp.ConsumeLogs(ctx, signinLogs(t, "fabrikam", signins("f", 20, start))))

		var want []signin
		for _, s := range contoso {
			if s.failure {
				want = append(want, s)
			}
		}
		var got []string
		path := "/events/normalized?tenant_id=contoso&type=signin.failure&limit=7"
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10)
			p := h.query(path)
			assert.Equal(t, "contoso", p.TenantID)
			for _, r := range p.Records {
				got = append(got, r.RecordID)
				assert.Equal(t, "signin.failure", r.Type)
				assert.Equal(t, "signin.failure", r.Attributes["o365.event.type"])
				assert.Equal(t, "user"+r.RecordID+"@contoso.com", r.Attributes["user.name"])
				assert.Nil(t, r.Body, "the normalized route has no body")
			}
			if p.NextCursor == nil {
				break
			}
			require.Len(t, p.Records, 7, "a page with a next cursor is full")
			path = "/events/normalized?tenant_id=contoso&type=signin.failure&limit=7&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		var wantIDs []string
		for _, s := range want {
			wantIDs = append(wantIDs, s.id)
		}
		assert.Equal(t, wantIDs, got, "each failure once, in time order")

		// Raw: the Graph body verbatim (Graph's key order, integers as integers, null kept).
		p := h.query("/events/raw?tenant_id=tid-contoso&dataset=signins&since=" + start.Add(10*time.Second).Format(time.RFC3339) +
			"&until=" + start.Add(13*time.Second).Format(time.RFC3339))
		require.Len(t, p.Records, 3, "since inclusive, until exclusive")
		assert.Equal(t, "contoso", p.TenantID, "the Entra tenant id names the tenant too")
		for i, r := range p.Records {
			assert.JSONEq(t, contoso[10+i].bodyJSON(), string(r.Body))
			assert.Equal(t, contoso[10+i].bodyJSON(), string(r.Body), "byte for byte")
			assert.True(t, contoso[10+i].at.Equal(r.Time))
		}
		assert.Nil(t, p.NextCursor)

		assert.Empty(t, h.query("/events/raw?tenant_id=nobody").Records, "an unknown tenant has no records")
		assert.Len(t, h.query("/events/raw?tenant_id=fabrikam").Records, 20, "limit defaults to 100")
		assert.Len(t, h.query("/events/raw?tenant_id=contoso").Records, 100)
	})
}

// Bad input is a 400 whose message names the parameter.
func TestQueryBadRequests(t *testing.T) {
	h := startHarness(t, testConfig(t, "sqlite"))
	for path, want := range map[string]string{
		"/events/raw":                              "`tenant_id` is required",
		"/events/raw?tenant_id=":                   "`tenant_id` is required",
		"/events/raw?tenant_id=c&dataset=nope":     "`dataset` must be one of audit_azure_ad, audit_exchange, audit_general, audit_sharepoint, conditional_access_policies, directory_audits, dlp, incident_candidates, intune_audit_events, mfa_coverage, risk_detections, risky_users, role_assignments, security_alerts, security_incidents, signins, got \"nope\"",
		"/events/raw?tenant_id=c&since=yesterday":  "`since` must be an RFC 3339 time such as 2026-05-04T10:00:00Z, got \"yesterday\"",
		"/events/raw?tenant_id=c&until=2026-05-04": "`until` must be an RFC 3339 time",
		"/events/raw?tenant_id=c&since=2026-05-04T10:00:00Z&until=2026-05-04T09:00:00Z": "`until` must be after `since`",
		"/events/raw?tenant_id=c&limit=0":                                               "`limit` must be an integer from 1 to 1000, got \"0\"",
		"/events/raw?tenant_id=c&limit=1001":                                            "`limit` must be an integer from 1 to 1000",
		"/events/raw?tenant_id=c&limit=ten":                                             "`limit` must be an integer from 1 to 1000",
		"/events/raw?tenant_id=c&cursor=abc":                                            "`cursor` is not a cursor returned by this API",
		"/events/raw?tenant_id=c&type=signin.failure":                                   "unknown parameter `type`; this route takes tenant_id, dataset, since, until, limit, cursor",
		"/events/normalized?tenant_id=c&dataset=signins":                                "unknown parameter `dataset`; this route takes tenant_id, type, since, until, limit, cursor",
		"/events/normalized?tenant_id=c&type=":                                          "`type` must be a normalized event type",
		"/events/normalized?tenant_id=c&tenant_id=d":                                    "`tenant_id` is given 2 times; give it once",
		"/events/normalized?tenant_id=c&limit=5&limit=6":                                "`limit` is given 2 times",
	} {
		status, body := h.get(path, testToken)
		assert.Equal(t, http.StatusBadRequest, status, path)
		var e ErrorResponse
		require.NoError(t, json.Unmarshal(body, &e), "%s: %s", path, body)
		assert.Contains(t, e.Error, want, path)
	}
	status, _ := h.get("/events/raw?tenant_id=c&since=2026-05-04T10:00:00.123456789%2B02:00&limit=1000", testToken)
	assert.Equal(t, http.StatusOK, status, "RFC 3339 with fraction and offset")
	status, _ = h.get("/events", testToken)
	assert.Equal(t, http.StatusNotFound, status)
}

// The event routes are behind `server.auth` (an authenticator extension, as the readiness admin
// routes): refused credentials get a 401 that does not echo the authenticator, and without `auth`
// the routes answer 403 — never open. GET /datasets is open without `auth` (catalog facts, no data).
func TestAuthentication(t *testing.T) {
	h := startHarness(t, testConfig(t, "sqlite"))
	for _, path := range []string{"/events/raw?tenant_id=c", "/events/normalized?tenant_id=c", "/datasets"} {
		status, body := h.get(path, "wrong-token")
		assert.Equal(t, http.StatusUnauthorized, status, path)
		assert.JSONEq(t, `{"error":"unauthorized: this route requires credentials accepted by the `+"`server.auth`"+` authenticator"}`, string(body))
		status, _ = h.get(path, "")
		assert.Equal(t, http.StatusUnauthorized, status, path)
		status, _ = h.get(path, testToken)
		assert.Equal(t, http.StatusOK, status, path)
	}

	cfg := testConfig(t, "sqlite")
	cfg.Server.Get().ServerConfig.Auth = configoptional.None[confighttp.AuthConfig]()
	open := startHarness(t, cfg)
	for _, path := range []string{"/events/raw?tenant_id=c", "/events/normalized?tenant_id=c"} {
		status, body := open.get(path, "")
		assert.Equal(t, http.StatusForbidden, status, path)
		assert.Contains(t, string(body), "configure `server.auth`")
	}
	status, _ := open.get("/datasets", "")
	assert.Equal(t, http.StatusOK, status)
}

// GET /datasets is the receiver's catalog: every dataset with its Graph sources, permissions, licence
// and kind, read from internal/catalog.
func TestDatasets(t *testing.T) {
	h := startHarness(t, testConfig(t, "sqlite"))
	status, body := h.get("/datasets", testToken)
	require.Equal(t, http.StatusOK, status)
	var list DatasetList
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Datasets, len(catalog.All()))
	for i, d := range catalog.All() {
		got := list.Datasets[i]
		assert.Equal(t, d.Name, got.Name)
		assert.Equal(t, d.Kind.String(), got.Kind)
		assert.Equal(t, d.Licence, got.Licence)
		assert.Equal(t, d.Permissions(d.Sources), got.Permissions)
		require.Len(t, got.Sources, len(d.Sources))
		for j, s := range d.Sources {
			assert.Equal(t, "/"+s.APIVersion+s.Path, got.Sources[j].Graph)
		}
	}
	signins := list.Datasets[0]
	assert.Equal(t, "signins", signins.Name)
	assert.Equal(t, "event_stream", signins.Kind)
	assert.Equal(t, "/v1.0/auditLogs/signIns", signins.Sources[0].Graph)
	assert.Equal(t, "AuditLog.Read.All", signins.Sources[0].Permission)
}
