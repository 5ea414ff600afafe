package o365exportexporter

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

func summaryConfig(t *testing.T, maxDocs int) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.IncludeEvents = true // served documents leave the events out
	cfg.Journal = configoptional.Some(JournalConfig{Path: t.TempDir()})
	srv := cfg.SummaryServer.GetOrInsertDefault()
	srv.ServerConfig.NetAddr.Endpoint = "127.0.0.1:0"
	srv.MaxDocumentsPerTenant = maxDocs
	cfg.SummaryServer = configoptional.Some(*srv)
	return cfg
}

func get(t *testing.T, base, path string, query url.Values) (int, map[string]any, string) {
	t.Helper()
	u := "http://" + base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(body, &m), "%s", body)
		requireCanonical(t, body)
	}
	return resp.StatusCode, m, string(body)
}

// documents returns the served documents' ids, validating each against the schema.
func documents(t *testing.T, resp map[string]any) []string {
	t.Helper()
	assert.EqualValues(t, 1, resp["export_version"])
	var ids []string
	for _, d := range resp["documents"].([]any) {
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		canonical, err := canonicalize(raw)
		require.NoError(t, err)
		validate(t, canonical)
		assert.NotContains(t, d, "events")
		ids = append(ids, d.(map[string]any)["document_id"].(string))
	}
	return ids
}

// TestSummaryServer: GET /export/summary serves the latest document of every tenant, or of the tenant
// named by tenant_id (its id or its name); with since, every kept document whose period ends after it.
func TestSummaryServer(t *testing.T) {
	e, clock, _ := startTestExporter(t, summaryConfig(t, 3))
	base := e.server.addr
	ctx := context.Background()

	status, resp, _ := get(t, base, SummaryPath, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, documents(t, resp))
	status, _, body := get(t, base, SummaryPath, url.Values{"tenant_id": {"contoso"}})
	assert.Equal(t, http.StatusNotFound, status)
	assert.Contains(t, body, `no export document for tenant \"contoso\"`)

	for h := range 5 {
		consume(t, e, signin("s", t0.Add(time.Duration(h)*time.Hour), true))
	}
	consume(t, e, rec{tenant: fabrikam, dataset: a.DatasetSignIns, id: "f", at: t0.Add(time.Hour), eventType: "signin.success"})
	clock.Set(t0.Add(6 * time.Hour))
	e.flush(ctx, clock.Now(), false)

	id := func(k tenantKey, h int) string {
		return k.id + "/" + fmtTime(t0.Add(time.Duration(h)*time.Hour)) + "/PT1H"
	}
	_, resp, _ = get(t, base, SummaryPath, nil)
	assert.Equal(t, []string{id(contoso, 4), id(fabrikam, 1)}, documents(t, resp))
	for _, name := range []string{"contoso", contoso.id} {
		_, resp, _ = get(t, base, SummaryPath, url.Values{"tenant_id": {name}})
		assert.Equal(t, []string{id(contoso, 4)}, documents(t, resp))
	}
	// since: periods ending after 12:30 → 12:00, 13:00, 14:00 (only the 3 newest are kept anyway).
	_, resp, _ = get(t, base, SummaryPath, url.Values{"tenant_id": {"contoso"}, "since": {"2024-03-13T12:30:00Z"}})
	assert.Equal(t, []string{id(contoso, 2), id(contoso, 3), id(contoso, 4)}, documents(t, resp))
	_, resp, _ = get(t, base, SummaryPath, url.Values{"since": {"2024-03-13T12:00:00+01:00"}})
	assert.Equal(t, []string{id(contoso, 2), id(contoso, 3), id(contoso, 4), id(fabrikam, 1)}, documents(t, resp))
	_, resp, _ = get(t, base, SummaryPath, url.Values{"since": {"2024-03-13T15:00:00Z"}})
	assert.Empty(t, documents(t, resp))

	// The served document is the written one, without events.
	_, resp, _ = get(t, base, SummaryPath, url.Values{"tenant_id": {"fabrikam"}})
	d := resp["documents"].([]any)[0].(map[string]any)
	assert.Equal(t, 1.0, field(d, "records.total"))

	status, _, body = get(t, base, SummaryPath, url.Values{"since": {"yesterday"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "`since` must be an RFC 3339 time")
	resp2, err := http.Post("http://"+base+SummaryPath, "application/json", nil)
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp2.StatusCode)
	status, _, _ = get(t, base, "/other", nil)
	assert.Equal(t, http.StatusNotFound, status)

	// The schema is served too.
	resp3, err := http.Get("http://" + base + SchemaPath)
	require.NoError(t, err)
	schema, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	assert.Equal(t, "application/schema+json", resp3.Header.Get("Content-Type"))
	assert.Equal(t, string(SchemaV1()), string(schema))
}
