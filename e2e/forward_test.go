package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/e2e/internal/proctest"
	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// TestForwardToSecondCollector runs two otelcol-o365 processes. The first reads the Graph simulator
// (sign-ins, directory audits, role assignments, MFA registrations, plus an injected brute force) and
// runs two pipelines: raw records, and records normalized by o365_mapping with its incident candidates;
// each pipeline writes a file and forwards over OTLP/gRPC (`otlp_grpc`) to the second process, whose two
// `otlp` receivers write files of their own. The normalized pipeline also writes the export JSON
// (o365_export) to a directory and serves the summary.
//
// It checks that the second collector receives every raw record, every normalized record and every
// incident candidate exactly once — ids compared with the simulator's ground truth and with the first
// collector's own files — with resource attributes, attributes, bodies, event names and timestamps
// intact; and that every export document validates against export.v1.schema.json and together counts
// every normalized record and incident candidate once.
func TestForwardToSecondCollector(t *testing.T) {
	tenant := graphsimtest.TenantID(1)
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 33, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins":          {Count: 800, Span: 6 * time.Hour},
			"directory_audits": {Count: 300, Span: 6 * time.Hour},
			"role_assignments": {Count: 20},
			"mfa_coverage":     {Count: 40},
		}),
	}})
	attack := bruteForce(sim.Anchor().Add(-40 * time.Minute))
	require.NoError(t, sim.Inject(tenant, "signins", time.Time{}, attack...))
	var attackIDs []string
	for _, o := range attack {
		attackIDs = append(attackIDs, o["id"].(string))
	}
	t.Setenv("E2E_SECRET", graphsimtest.Secret)

	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	rawPort, normPort, summaryPort := proctest.FreePort(t), proctest.FreePort(t), proctest.FreePort(t)

	// The backend: a second otelcol-o365 with an OTLP receiver per stream and a file exporter each.
	startCollector(t, fmt.Sprintf(`
receivers:
  otlp/raw:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
  otlp/normalized:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
exporters:
  file/raw:
    path: %[3]s
  file/normalized:
    path: %[4]s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    logs/raw:
      receivers: [otlp/raw]
      exporters: [file/raw]
    logs/normalized:
      receivers: [otlp/normalized]
      exporters: [file/normalized]
`, rawPort, normPort, path("backend-raw.json"), path("backend-normalized.json")))

	first := startCollector(t, fmt.Sprintf(`
extensions:
  file_storage:
    directory: %[1]s
receivers:
  o365:
    storage: file_storage
    poll_interval: 1s
    initial_lookback: 24h
    page_size: 500
    graph_endpoint: %[2]s
    authority_host: %[2]s/
    rate_limits:
      reports: { tenant_requests: 50, app_requests: 100, window: 1s }
    http:
      tls:
        ca_file: %[3]s
    tenants:
      - name: tenant1
        tenant_id: %[4]s
        client_id: %[5]s
        client_secret: ${env:E2E_SECRET}
        datasets:
          signins: { kinds: [interactive] }
          directory_audits: {}
          role_assignments: { poll_interval: 1h }   # one snapshot during the test: exact counts
          mfa_coverage: { poll_interval: 1h }
processors:
  o365_mapping: {}
exporters:
  file/raw:
    path: %[6]s
  file/normalized:
    path: %[7]s
  otlp_grpc/raw:
    endpoint: 127.0.0.1:%[8]d
    tls:
      insecure: true
  otlp_grpc/normalized:
    endpoint: 127.0.0.1:%[9]d
    tls:
      insecure: true
  o365_export:
    flush_delay: 1s
    directory:
      path: %[10]s
    summary_server:
      endpoint: 127.0.0.1:%[11]d
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs/raw:
      receivers: [o365]
      exporters: [file/raw, otlp_grpc/raw]
    logs/normalized:
      receivers: [o365]
      processors: [o365_mapping]
      exporters: [file/normalized, otlp_grpc/normalized, o365_export]
`, dir, sim.URL(), sim.CAFile, tenant, graphsimtest.ClientID, path("raw.json"), path("normalized.json"),
		rawPort, normPort, path("export"), summaryPort))

	// Ground truth: every record the simulator serves (the injected sign-ins included), plus the MFA
	// coverage summary record the receiver adds to each snapshot (it has no id).
	from, to := sim.Anchor().Add(-7*time.Hour), sim.Anchor()
	want := map[string][]string{
		"signins":          sim.IDs(tenant, "signins", from, to),
		"directory_audits": sim.IDs(tenant, "directory_audits", from, to),
		"role_assignments": sim.Items(tenant, "role_assignments"),
		"mfa_coverage":     append(sim.Items(tenant, "mfa_coverage"), ""),
	}
	require.Len(t, want["signins"], 800+len(attack))
	require.Len(t, want["role_assignments"], 20)
	require.Subset(t, want["signins"], attackIDs)

	// The first collector's own outputs hold every record exactly once, normalized or raw.
	waitForExactly(t, path("raw.json"), want)
	waitForRecords(t, path("normalized.json"), func(got map[string][]string) bool {
		return total(without(got, "incident_candidates")) >= total(want)
	})
	normalized := proctest.RecordIDs(t, path("normalized.json"))
	for ds, ids := range want {
		require.Equal(t, sorted(ids), sorted(normalized[ds]), "normalized %s", ds)
	}
	incidents := normalized["incident_candidates"]
	require.NotEmpty(t, incidents)

	// The summary route answers while the collector runs.
	summary := getSummary(t, fmt.Sprintf("http://127.0.0.1:%d/export/summary?tenant_id=tenant1", summaryPort))

	// The backend catches up with the first collector while both run: a batch still in its retry
	// back-off when the first collector stops would be dropped (the sending queue is in memory here).
	waitForRecords(t, path("backend-raw.json"), func(got map[string][]string) bool {
		return total(got) >= total(proctest.RecordIDs(t, path("raw.json")))
	})
	waitForRecords(t, path("backend-normalized.json"), func(got map[string][]string) bool {
		return total(got) >= total(proctest.RecordIDs(t, path("normalized.json")))
	})

	// Stop the first collector: its OTLP queues drain into the backend and o365_export writes the
	// period still open.
	first.Stop(t)
	require.Equal(t, 0, first.ExitCode(), "the first collector exits cleanly")

	// The backend received exactly what the first collector wrote, raw and normalized.
	firstRaw := readRecords(t, path("raw.json"))
	firstNorm := readRecords(t, path("normalized.json"))
	waitForRecords(t, path("backend-raw.json"), func(got map[string][]string) bool { return total(got) >= len(firstRaw) })
	waitForRecords(t, path("backend-normalized.json"), func(got map[string][]string) bool { return total(got) >= len(firstNorm) })
	time.Sleep(time.Second) // nothing else may arrive
	backendRaw := proctest.RecordIDs(t, path("backend-raw.json"))
	backendNorm := proctest.RecordIDs(t, path("backend-normalized.json"))
	for ds, ids := range want {
		assert.Equal(t, sorted(ids), sorted(backendRaw[ds]), "backend raw %s", ds)
		assert.Equal(t, sorted(ids), sorted(backendNorm[ds]), "backend normalized %s", ds)
	}
	assert.Equal(t, sorted(incidents), sorted(backendNorm["incident_candidates"]), "backend incident candidates")
	assert.Equal(t, total(want), total(backendRaw))
	assert.Equal(t, total(want)+len(incidents), total(backendNorm))

	// Attributes, bodies, event names, timestamps and resources intact, record by record.
	compareRecords(t, firstRaw, readRecords(t, path("backend-raw.json")))
	backendRecords := readRecords(t, path("backend-normalized.json"))
	compareRecords(t, firstNorm, backendRecords)

	// A few attributes spelled out: the injected success, normalized; the brute force incident.
	success := backendRecords[recordKey("signins", attackIDs[len(attackIDs)-1], "o365.signin")]
	require.NotNil(t, success.Attributes)
	assert.Equal(t, "victim@contoso.com", success.Attributes["user.name"])
	assert.Equal(t, "203.0.113.7", success.Attributes["client.address"])
	assert.Equal(t, "signin.success", success.Attributes["o365.event.type"])
	assert.Equal(t, "identity_access", success.Attributes["o365.domain"])
	assert.Equal(t, "IA-2", success.Attributes["o365.control"])
	assert.Equal(t, attackIDs[len(attackIDs)-1], success.Body["id"])
	assert.Equal(t, "victim@contoso.com", success.Body["userPrincipalName"])
	assert.Equal(t, map[string]any{"cloud.provider": "azure", "azure.tenant.id": tenant, "o365.tenant.name": "tenant1", "o365.dataset": "signins"}, success.Resource)
	var brute *record
	for k, r := range backendRecords {
		if r.Attributes["o365.incident.rule"] == "brute_force" && r.Attributes["user.name"] == "victim@contoso.com" {
			rr := backendRecords[k]
			brute = &rr
		}
	}
	require.NotNil(t, brute, "the injected brute force reached the backend as an incident candidate")
	assert.Equal(t, "o365.incident_candidate", brute.EventName)
	var evidence []string
	for _, id := range brute.Attributes["o365.incident.evidence.record_ids"].([]any) {
		evidence = append(evidence, id.(string))
	}
	assert.Equal(t, sorted(attackIDs), evidence)

	// The export JSON: every document valid; together they count every normalized record and incident
	// candidate once, and list every incident candidate.
	schema := compileExportSchema(t)
	docs := readExportDocuments(t, path("export"), schema)
	require.NotEmpty(t, docs)
	var counted float64
	exported := map[string]bool{}
	for _, d := range docs {
		assert.Equal(t, "tenant1", d["tenant"].(map[string]any)["name"])
		assert.Equal(t, tenant, d["tenant"].(map[string]any)["id"])
		counted += d["records"].(map[string]any)["total"].(float64)
		for _, inc := range d["incident_candidates"].([]any) {
			exported[inc.(map[string]any)["id"].(string)] = true
		}
	}
	assert.Equal(t, float64(total(want)+len(incidents)), counted, "records counted in the export documents")
	assert.Equal(t, sorted(incidents), sorted(keysOf(exported)), "incident candidates in the export documents")

	t.Logf("%d raw and %d normalized records, %d incident candidates (%v), %d export documents",
		total(want), total(want), len(incidents), rulesOf(backendRecords), len(docs))

	// The summary served before the stop was the latest complete period's document, and valid.
	docsServed := summary["documents"].([]any)
	require.Len(t, docsServed, 1)
	raw, err := json.Marshal(docsServed[0])
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	require.NoError(t, schema.Validate(inst))
}

// bruteForce makes six failed sign-ins of one user, a minute apart, then a success.
func bruteForce(start time.Time) []map[string]any {
	var out []map[string]any
	for i := range 7 {
		status := map[string]any{"errorCode": 50126, "failureReason": "Error validating credentials due to invalid username or password.", "additionalDetails": nil}
		if i == 6 {
			status = map[string]any{"errorCode": 0, "failureReason": "Other.", "additionalDetails": nil}
		}
		out = append(out, map[string]any{
			"id":                      fmt.Sprintf("e2eb7f00-0000-4000-8000-%012d", i),
			"createdDateTime":         graphsim.FormatTime(start.Add(time.Duration(i) * time.Minute)),
			"userDisplayName":         "Victim",
			"userPrincipalName":       "victim@contoso.com",
			"userId":                  "99999999-0000-4000-8000-000000000001",
			"appId":                   "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
			"appDisplayName":          "Graph Explorer",
			"ipAddress":               "203.0.113.7",
			"clientAppUsed":           "Browser",
			"correlationId":           fmt.Sprintf("d79f5bee-5860-4832-928f-%012d", i),
			"conditionalAccessStatus": "notApplied",
			"isInteractive":           true,
			"riskDetail":              "none",
			"riskLevelAggregated":     "none",
			"riskLevelDuringSignIn":   "none",
			"riskState":               "none",
			"riskEventTypes":          []any{},
			"riskEventTypes_v2":       []any{},
			"resourceDisplayName":     "Microsoft Graph",
			"resourceId":              "00000003-0000-0000-c000-000000000000",
			"status":                  status,
			"deviceDetail": map[string]any{"deviceId": "", "displayName": "", "operatingSystem": "Windows 10",
				"browser": "Edge 122.0.0", "isCompliant": false, "isManaged": false, "trustType": ""},
			"location": map[string]any{"city": "Redmond", "state": "Washington", "countryOrRegion": "US",
				"geoCoordinates": map[string]any{"altitude": nil, "latitude": 47.68050003051758, "longitude": -122.12094116210938}},
			"appliedConditionalAccessPolicies": []any{},
		})
	}
	return out
}

func without(m map[string][]string, ds string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		if k != ds {
			out[k] = v
		}
	}
	return out
}

// waitForRecords polls a file exporter's output until done says so (3 minutes at most).
func waitForRecords(t *testing.T, path string, done func(map[string][]string) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if done(proctest.RecordIDs(t, path)) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: timed out, have %d records", path, total(proctest.RecordIDs(t, path)))
}

// record is one log record as a file exporter wrote it.
type record struct {
	Resource   map[string]any
	EventName  string
	Timestamp  int64
	Observed   int64
	Severity   string
	Attributes map[string]any
	Body       map[string]any
	BodyText   string
}

func recordKey(dataset, id, eventName string) string { return dataset + "|" + id + "|" + eventName }

// readRecords parses a file exporter's OTLP JSON lines into records by dataset, id and event name.
func readRecords(t *testing.T, path string) map[string]record {
	t.Helper()
	_, err := os.Stat(path)
	require.NoError(t, err)
	out := map[string]record{}
	proctest.EachRecord(t, path, false, func(resource pcommon.Map, lr plog.LogRecord) {
		res := resource.AsRaw()
		r := record{Resource: res, EventName: lr.EventName(), Timestamp: int64(lr.Timestamp()),
			Observed: int64(lr.ObservedTimestamp()), Severity: lr.SeverityText(), Attributes: lr.Attributes().AsRaw()}
		if lr.Body().Type().String() == "Map" {
			r.Body = lr.Body().Map().AsRaw()
		} else {
			r.BodyText = lr.Body().AsString()
		}
		id, _ := r.Attributes["o365.record.id"].(string)
		key := recordKey(fmt.Sprint(res["o365.dataset"]), id, r.EventName)
		_, dup := out[key]
		require.False(t, dup, "%s: record %s twice", path, key)
		out[key] = r
	})
	return out
}

func compareRecords(t *testing.T, want, got map[string]record) {
	t.Helper()
	require.Equal(t, len(want), len(got))
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "record %s missing", k)
		require.Equal(t, w, g, "record %s", k)
	}
}

func getSummary(t *testing.T, url string) map[string]any {
	t.Helper()
	var body []byte
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "GET %s", url)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	assert.EqualValues(t, 1, m["export_version"])
	return m
}

func compileExportSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(o365exportexporter.SchemaV1()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource("export.v1.schema.json", doc))
	s, err := c.Compile("export.v1.schema.json")
	require.NoError(t, err)
	return s
}

// readExportDocuments reads and validates every document under dir (<tenant>/<file>.json).
func readExportDocuments(t *testing.T, dir string, schema *jsonschema.Schema) []map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	require.NoError(t, err)
	sort.Strings(files)
	var docs []map[string]any
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(string(raw), "}\n"), f)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		require.NoError(t, err)
		require.NoError(t, schema.Validate(inst), f)
		var d map[string]any
		require.NoError(t, json.Unmarshal(raw, &d))
		assert.EqualValues(t, 1, d["export_version"])
		docs = append(docs, d)
	}
	return docs
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func rulesOf(records map[string]record) map[string]int {
	out := map[string]int{}
	for _, r := range records {
		if rule, ok := r.Attributes["o365.incident.rule"].(string); ok {
			out[rule]++
		}
	}
	return out
}
