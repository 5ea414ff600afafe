package o365readinessextension

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-o365/otelcol-o365/extension/o365readinessextension/internal/metadatatest"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// healthyFake is a provider with one healthy tenant collecting sign-ins and directory audits.
func healthyFake(tenant string) *fakeProvider {
	now := time.Now()
	ds := []o365status.Dataset{
		{Name: "signins", Permissions: []string{"AuditLog.Read.All"}, Licence: "Entra ID P1 or P2"},
		{Name: "directory_audits", Permissions: []string{"AuditLog.Read.All"}, Licence: "any"},
	}
	ok := func(dataset, variant string) o365status.StreamStatus {
		return o365status.StreamStatus{
			Tenant: tenant, Dataset: dataset, Variant: variant, State: o365status.StateOK,
			LastPollStart: now.Add(-2 * time.Second), LastPollEnd: now.Add(-time.Second), LastSuccess: now.Add(-time.Second),
			RecordsLastPoll: 3, NextPoll: now.Add(time.Hour), Watermark: now.Add(-time.Minute), BackfillProgress: 1,
		}
	}
	return &fakeProvider{
		tenants: []o365status.Tenant{{
			Name: tenant, TenantID: "tid-" + tenant, ClientID: "cid", Cloud: "public",
			Credential: "client_secret", CredentialPresent: true, Datasets: ds,
		}},
		streams: []o365status.StreamStatus{ok("signins", "interactive"), ok("directory_audits", "")},
		tokens: map[string]o365status.TokenInfo{tenant: {
			ObtainedAt: now.Add(-time.Minute), ExpiresOn: now.Add(time.Hour), Roles: []string{"AuditLog.Read.All"},
		}},
	}
}

// Who may call what: read routes are open unless readiness_requires_auth; admin routes need the
// authenticator and are refused (403) when none is configured — never open.
func TestRouteAuthorization(t *testing.T) {
	type call struct {
		method, path, token string
		want                int
	}
	tests := []struct {
		name  string
		edits []func(*Config)
		calls []call
	}{
		{
			name: "no admin_auth: admin routes refused, read routes open",
			calls: []call{
				{http.MethodPost, "/run/t1", "", http.StatusForbidden},
				{http.MethodPost, "/run/t1", adminToken, http.StatusForbidden},
				{http.MethodGet, "/tenants", "", http.StatusForbidden},
				{http.MethodGet, "/tenants", adminToken, http.StatusForbidden},
				{http.MethodGet, "/readiness", "", http.StatusOK},
				{http.MethodGet, "/tenants/t1/readiness", "", http.StatusOK},
				{http.MethodGet, "/version", "", http.StatusOK},
				{http.MethodGet, "/", "", http.StatusOK},
			},
		},
		{
			name:  "admin_auth: admin routes need its credentials",
			edits: []func(*Config){withAdminAuth},
			calls: []call{
				{http.MethodPost, "/run/t1", "", http.StatusUnauthorized},
				{http.MethodPost, "/run/t1", "wrong", http.StatusUnauthorized},
				{http.MethodPost, "/run/t1", adminToken, http.StatusAccepted},
				{http.MethodGet, "/tenants", "", http.StatusUnauthorized},
				{http.MethodGet, "/tenants", adminToken, http.StatusOK},
				{http.MethodGet, "/readiness", "", http.StatusOK},
				{http.MethodGet, "/tenants/t1/readiness", "", http.StatusOK},
				{http.MethodGet, "/", "", http.StatusOK},
			},
		},
		{
			name:  "readiness_requires_auth: every route needs credentials",
			edits: []func(*Config){withAdminAuth, func(c *Config) { c.ReadinessRequiresAuth = true }},
			calls: []call{
				{http.MethodGet, "/readiness", "", http.StatusUnauthorized},
				{http.MethodGet, "/readiness", adminToken, http.StatusOK},
				{http.MethodGet, "/tenants/t1/readiness", "", http.StatusUnauthorized},
				{http.MethodGet, "/tenants/t1/readiness", adminToken, http.StatusOK},
				{http.MethodGet, "/version", "", http.StatusUnauthorized},
				{http.MethodGet, "/", "", http.StatusUnauthorized},
				{http.MethodGet, "/", adminToken, http.StatusOK},
				{http.MethodPost, "/run/t1", adminToken, http.StatusAccepted},
			},
		},
		{
			name:  "routing errors",
			edits: []func(*Config){withAdminAuth},
			calls: []call{
				{http.MethodGet, "/run/t1", adminToken, http.StatusMethodNotAllowed},
				{http.MethodPost, "/readiness", "", http.StatusMethodNotAllowed},
				{http.MethodPost, "/run/nobody", adminToken, http.StatusNotFound},
				{http.MethodPost, "/run/t1?dataset=nothing", adminToken, http.StatusNotFound},
				{http.MethodPost, "/run/t1?receiver=o365/other", adminToken, http.StatusNotFound},
				{http.MethodGet, "/tenants/nobody/readiness", "", http.StatusNotFound},
				{http.MethodGet, "/metrics", "", http.StatusNotFound},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext, c := startExtension(t, tt.edits...)
			fake := healthyFake("t1")
			ext.RegisterProvider(component.MustNewID("o365"), fake)
			for _, call := range tt.calls {
				status, h, body := c.do(call.method, call.path, call.token)
				assert.Equal(t, call.want, status, "%s %s (token %q): %s", call.method, call.path, call.token, body)
				assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
				assert.Equal(t, "no-store", h.Get("Cache-Control"))
				switch status {
				case http.StatusUnauthorized:
					assert.NotEmpty(t, h.Get("WWW-Authenticate"))
					fallthrough
				case http.StatusForbidden, http.StatusNotFound:
					var e ErrorResponse
					require.NoError(t, json.Unmarshal(body, &e), string(body))
					assert.NotEmpty(t, e.Error)
					assert.NotContains(t, e.Error, adminToken)
				}
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			wantTriggers := 0
			for _, call := range tt.calls {
				if call.want == http.StatusAccepted {
					wantTriggers += 2
				}
			}
			assert.Len(t, fake.triggers, wantTriggers, "only admitted run requests reach the receiver")
		})
	}
}

// Several receivers may register; tenant names are unique per receiver only, so a shared name needs
// ?receiver=. The aggregate covers all of them; with none registered it is not ready.
func TestSeveralReceivers(t *testing.T) {
	ext, c := startExtension(t, withAdminAuth)
	var agg AggregateReadiness
	assert.Equal(t, http.StatusServiceUnavailable, c.getJSON("/readiness", "", &agg))
	require.Len(t, agg.Reasons, 1)
	assert.Contains(t, agg.Reasons[0], "no o365 receiver has registered")

	eu, us := component.MustNewIDWithName("o365", "eu"), component.MustNewIDWithName("o365", "us")
	ext.RegisterProvider(eu, healthyFake("shared"))
	usFake := healthyFake("shared")
	usFake.tokens["shared"] = o365status.TokenInfo{LastError: "token endpoint answered HTTP 401 invalid_client: AADSTS7000222: The provided client secret keys are expired.", LastErrorAt: time.Now()}
	ext.RegisterProvider(us, usFake)

	status, _, body := c.do(http.MethodGet, "/tenants/shared/readiness", "")
	assert.Equal(t, http.StatusConflict, status)
	var e ErrorResponse
	require.NoError(t, json.Unmarshal(body, &e))
	assert.Contains(t, e.Error, `tenant "shared" is collected by several receivers ([o365/eu o365/us]); add ?receiver=<id>`)
	var tr TenantReadiness
	assert.Equal(t, http.StatusOK, c.getJSON("/tenants/shared/readiness?receiver=o365/eu", "", &tr))
	assert.Equal(t, "o365/eu", tr.Receiver)
	assert.Equal(t, http.StatusServiceUnavailable, c.getJSON("/tenants/shared/readiness?receiver=o365/us", "", &tr))
	assert.Contains(t, tr.Reasons[0], "the client secret has expired", "AADSTS7000222 is explained")
	status, _, _ = c.do(http.MethodPost, "/run/shared", adminToken)
	assert.Equal(t, http.StatusConflict, status)
	status, _, _ = c.do(http.MethodPost, "/run/shared?receiver=o365/eu", adminToken)
	assert.Equal(t, http.StatusAccepted, status)

	agg = AggregateReadiness{}
	assert.Equal(t, http.StatusServiceUnavailable, c.getJSON("/readiness", "", &agg))
	require.Len(t, agg.Tenants, 2)
	assert.Equal(t, "o365/eu", agg.Tenants[0].Receiver)
	assert.True(t, agg.Tenants[0].Ready)
	assert.False(t, agg.Tenants[1].Ready)

	var list TenantList
	require.Equal(t, http.StatusOK, c.getJSON("/tenants", adminToken, &list))
	assert.Len(t, list.Tenants, 2)
	var v VersionInfo
	require.Equal(t, http.StatusOK, c.getJSON("/version", "", &v))
	assert.Equal(t, []string{"o365/eu", "o365/us"}, v.Receivers)
	assert.Equal(t, "otelcol-o365", v.Command)
	assert.Equal(t, "0.0.1-test", v.Version)
	assert.NotEmpty(t, v.GoVersion)

	ext.UnregisterProvider(us)
	agg = AggregateReadiness{}
	assert.Equal(t, http.StatusOK, c.getJSON("/readiness", "", &agg))
	assert.Len(t, agg.Tenants, 1)
}

// Probes are sent only for datasets whose polls do not succeed, at most once per probe.interval, only
// by the per-tenant route (never by /readiness or the page), and concurrent readers share one probe.
func TestProbesAreCachedAndBounded(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	ext, c := startExtensionWithTelemetry(t, tel)

	fake := healthyFake("t1")
	fake.streams[0].LastError, fake.streams[0].LastErrorKind = "graph licence error: HTTP 403 ...", "licence"
	fake.streams[0].State = o365status.StateCoolingDown
	fake.probe = func(_, dataset string) error {
		require.Equal(t, "signins", dataset, "the healthy dataset is not probed")
		return &graph.Error{Kind: graph.KindLicence, Status: 403, Code: "Authentication_RequestFromNonPremiumTenantOrB2CTenant", Message: "no premium licence"}
	}
	ext.RegisterProvider(component.MustNewID("o365"), fake)

	for range 3 {
		var agg AggregateReadiness
		c.getJSON("/readiness", "", &agg)
		c.do(http.MethodGet, "/", "")
	}
	assert.Zero(t, fake.probes.Load(), "aggregate readiness and the page never probe")

	done := make(chan TenantReadiness, 5)
	for range 5 {
		go func() {
			_, tr := c.tenantReadiness("t1")
			done <- tr
		}()
	}
	for range 5 {
		tr := <-done
		ep := dataset(t, tr, "signins").Endpoint
		assert.Equal(t, "probe", ep.Source)
		assert.Equal(t, "licence", ep.ErrorKind)
		assert.Equal(t, 403, ep.Status)
	}
	assert.Equal(t, int64(1), fake.probes.Load(), "five concurrent readers, one probe")

	// The aggregate now shows the cached result without sending anything.
	var agg AggregateReadiness
	c.getJSON("/readiness", "", &agg)
	assert.Equal(t, int64(1), fake.probes.Load())

	// After the interval, one more.
	ext.setClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	c.tenantReadiness("t1")
	c.tenantReadiness("t1")
	assert.Equal(t, int64(2), fake.probes.Load())
	metadatatest.AssertEqualO365ReadinessProbes(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("result", "failed"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	// A probe that does not answer in time is inconclusive, not a failure of the dataset's endpoint.
	ext.setClock(func() time.Time { return time.Now().Add(4 * time.Hour) })
	fake.mu.Lock()
	fake.probe = func(string, string) error { return context.DeadlineExceeded }
	fake.mu.Unlock()
	_, tr := c.tenantReadiness("t1")
	ep := dataset(t, tr, "signins").Endpoint
	assert.Equal(t, "timeout", ep.ErrorKind)
	assert.Nil(t, ep.Reachable)
	assert.True(t, containsAny(dataset(t, tr, "signins").Warnings, "was inconclusive (timeout)"))
}

// The collector's own component status (componentstatus.Watcher): permanent errors stop the aggregate
// when include_component_status is on (default); recoverable ones are warnings.
func TestComponentStatusInAggregate(t *testing.T) {
	for _, include := range []bool{true, false} {
		t.Run(fmt.Sprintf("include_component_status=%v", include), func(t *testing.T) {
			ext, c := startExtension(t, func(cfg *Config) { cfg.Readiness.IncludeComponentStatus = include })
			ext.RegisterProvider(component.MustNewID("o365"), healthyFake("t1"))
			rcv := componentstatus.NewInstanceID(component.MustNewID("o365"), component.KindReceiver)
			exp := componentstatus.NewInstanceID(component.MustNewID("otlp"), component.KindExporter)
			ext.ComponentStatusChanged(rcv, componentstatus.NewRecoverableErrorEvent(errors.New("tenant1/signins: throttled")))
			ext.ComponentStatusChanged(exp, componentstatus.NewEvent(componentstatus.StatusOK))

			var agg AggregateReadiness
			assert.Equal(t, http.StatusOK, c.getJSON("/readiness", "", &agg))
			assert.True(t, containsAny(agg.Warnings, "component receiver o365 reports recoverable_error: tenant1/signins: throttled"), agg.Warnings)
			require.Len(t, agg.Components, 2)
			assert.Equal(t, ComponentStatus{Component: "otlp", Kind: "exporter", Status: "ok", Since: agg.Components[0].Since}, agg.Components[0])

			ext.ComponentStatusChanged(exp, componentstatus.NewPermanentErrorEvent(errors.New("invalid endpoint")))
			agg = AggregateReadiness{}
			status := c.getJSON("/readiness", "", &agg)
			if include {
				assert.Equal(t, http.StatusServiceUnavailable, status)
				assert.True(t, containsAny(agg.Reasons, "component exporter otlp reports permanent_error: invalid endpoint"), agg.Reasons)
			} else {
				assert.Equal(t, http.StatusOK, status)
				assert.True(t, containsAny(agg.Warnings, "component exporter otlp reports permanent_error"), agg.Warnings)
			}
		})
	}
}

// Run-now outcomes are counted.
func TestRunTelemetry(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	ext, c := startExtensionWithTelemetry(t, tel, withAdminAuth, func(cfg *Config) { cfg.RunRateLimit.Requests = 1; cfg.RunRateLimit.Per = time.Hour })
	ext.RegisterProvider(component.MustNewID("o365"), healthyFake("t1"))

	for _, call := range []struct{ path, token string }{
		{"/run/t1", ""}, {"/run/t1", adminToken}, {"/run/t1", adminToken}, {"/run/none", adminToken},
	} {
		c.do(http.MethodPost, call.path, call.token)
	}
	metadatatest.AssertEqualO365ReadinessRunRequests(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "unauthorized"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "triggered"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "rate_limited"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("outcome", "not_found"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// The status page escapes what it shows: error texts come from Graph and the token endpoint.
func TestPageEscapes(t *testing.T) {
	ext, c := startExtension(t)
	fake := healthyFake("t1")
	fake.streams[1].LastError = `graph bad_request error: HTTP 400 BadRequest: <script>alert("x")</script> & more`
	fake.streams[1].LastErrorKind = "bad_request"
	fake.streams[1].State = o365status.StateFailing
	ext.RegisterProvider(component.MustNewID("o365"), fake)
	status, h, body := c.do(http.MethodGet, "/", "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
	assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
	page := string(body)
	assert.NotContains(t, page, "<script>")
	assert.Contains(t, page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more")
	assert.Equal(t, 1, strings.Count(page, `<table id="readiness">`))
	assert.Contains(t, page, `<td class="bad"`)
	assert.Contains(t, page, `<td class="ok"`)
}
