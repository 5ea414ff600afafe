package o365exportexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor"
)

// The golden input: Graph pages captured from the simulator (seed 7, anchor 2024-03-13T12:00:00Z) with an
// injected brute force and an impossible travel, stored under testdata/input so that the golden files
// depend on this exporter (and the processor), not on the simulator's data generator.
var (
	goldenAnchor   = time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)
	goldenObserved = goldenAnchor.Add(2 * time.Minute) // the receiver's fetch time
	goldenTaken    = goldenAnchor.Add(-time.Minute)    // when the snapshots were taken
	goldenTenant   = tenantKey{id: graphsimtest.TenantID(1), name: "tenant1"}
)

// inputSource is one captured dataset.
type inputSource struct {
	file, dataset, eventName, timeField, version, path string
	query                                              url.Values
}

var goldenSources = []inputSource{
	{"role_assignments.json", a.DatasetRoleAssignments, a.EventRoleAssignment, "", "v1.0", "/roleManagement/directory/roleAssignments",
		url.Values{"$expand": {"principal,roleDefinition"}}},
	{"mfa_coverage.json", a.DatasetMFACoverage, a.EventMFARegistration, "", "v1.0", "/reports/authenticationMethods/userRegistrationDetails", url.Values{}},
	{"signins.json", a.DatasetSignIns, a.EventSignIn, "createdDateTime", "v1.0", "/auditLogs/signIns", nil},
	{"directory_audits.json", a.DatasetDirectoryAudits, a.EventDirectoryAudit, "activityDateTime", "v1.0", "/auditLogs/directoryAudits", nil},
}

// objects fetches every object of a captured source in [from, to] (snapshots whole).
func objects(t *testing.T, c *graphsimtest.Client, src inputSource, from, to time.Time) []json.RawMessage {
	q := url.Values{}
	for k, v := range src.query {
		q[k] = v
	}
	if src.timeField != "" {
		q.Set("$filter", fmt.Sprintf("%s ge %s and %s le %s", src.timeField, graphsim.FormatTime(from), src.timeField, graphsim.FormatTime(to)))
		q.Set("$orderby", src.timeField+" asc")
		q.Set("$top", "100")
	}
	return c.Objects(t, src.version, src.path, q)
}

// attackSignIns derives sign-ins from a simulator sign-in: six failed passwords of one user then a
// success (brute_force), and two successful sign-ins of another user from Seattle and, 15 minutes
// later, Berlin (impossible_travel).
func attackSignIns(t *testing.T, template json.RawMessage) []map[string]any {
	mk := func(i int, at time.Time, upn string, errorCode int, city, country string, lat, lon float64) map[string]any {
		var obj map[string]any
		require.NoError(t, json.Unmarshal(template, &obj))
		obj["id"] = fmt.Sprintf("0a77ac00-0000-4000-8000-%012d", i)
		obj["createdDateTime"] = graphsim.FormatTime(at)
		obj["userPrincipalName"] = upn
		obj["userDisplayName"] = strings.Split(upn, "@")[0]
		obj["userId"] = fmt.Sprintf("99999999-0000-4000-8000-%012d", len(upn))
		obj["ipAddress"] = "203.0.113.7"
		status := map[string]any{"errorCode": errorCode, "additionalDetails": nil}
		if errorCode != 0 {
			status["failureReason"] = "Error validating credentials due to invalid username or password."
		}
		obj["status"] = status
		obj["location"] = map[string]any{"city": city, "state": "", "countryOrRegion": country,
			"geoCoordinates": map[string]any{"altitude": nil, "latitude": lat, "longitude": lon}}
		return obj
	}
	var out []map[string]any
	base := goldenAnchor.Add(-100 * time.Minute) // 10:20
	for i := range 7 {
		code := 50126
		if i == 6 {
			code = 0
		}
		out = append(out, mk(i, base.Add(time.Duration(i)*time.Minute), "victim@contoso.com", code, "Seattle", "US", 47.6062, -122.3321))
	}
	travel := goldenAnchor.Add(-50 * time.Minute) // 11:10
	out = append(out, mk(7, travel, "traveler@contoso.com", 0, "Seattle", "US", 47.6062, -122.3321))
	out = append(out, mk(8, travel.Add(15*time.Minute), "traveler@contoso.com", 0, "Berlin", "DE", 52.52, 13.405))
	return out
}

// captureInput rewrites testdata/input from the simulator.
func captureInput(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 7, Anchor: goldenAnchor, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{
			"signins":          {Count: 60, Span: 3 * time.Hour},
			"directory_audits": {Count: 24, Span: 3 * time.Hour},
			"role_assignments": {Count: 12},
			"mfa_coverage":     {Count: 20},
		}),
	}})
	c := graphsimtest.NewClient(t, sim, goldenTenant.id)
	from, to := goldenAnchor.Add(-3*time.Hour), goldenAnchor
	template := objects(t, c, goldenSources[2], from, to)[0]
	var attack []map[string]any
	attack = append(attack, attackSignIns(t, template)...)
	require.NoError(t, sim.Inject(goldenTenant.id, "signins", time.Time{}, attack...))
	require.NoError(t, os.MkdirAll(filepath.Join("testdata", "input"), 0o755))
	for _, src := range goldenSources {
		objs := objects(t, c, src, from, to)
		require.NotEmpty(t, objs, src.path)
		b, err := json.MarshalIndent(map[string]any{"value": objs}, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "input", src.file), append(b, '\n'), 0o644))
	}
}

// receiverLogs shapes a Graph page as the o365 receiver emits it: one ResourceLogs for the tenant ×
// dataset, the object as body (decoded by the receiver's page decoder), EventName, the object's time
// (snapshots: the snapshot time) as Timestamp, the fetch time as ObservedTimestamp, o365.record.id, and
// on snapshot records o365.change = baseline.
func receiverLogs(t testing.TB, src inputSource, page []byte) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(a.CloudProvider, "azure")
	res.PutStr(a.TenantID, goldenTenant.id)
	res.PutStr(a.TenantName, goldenTenant.name)
	res.PutStr(a.Dataset, src.dataset)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/otelcol-o365/otelcol-o365/receiver/o365receiver")
	records := sl.LogRecords()
	_, err := graph.FastDecoder{}.Decode(page, func() pcommon.Map { return records.AppendEmpty().Body().SetEmptyMap() })
	require.NoError(t, err)
	for i := 0; i < records.Len(); i++ {
		lr := records.At(i)
		body := lr.Body().Map()
		lr.SetEventName(src.eventName)
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(goldenObserved))
		id := ""
		if v, ok := body.Get("id"); ok {
			id = v.AsString()
		}
		lr.Attributes().PutStr(a.RecordID, id)
		if src.timeField == "" {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(goldenTaken))
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(goldenTaken))
			lr.Attributes().PutStr(a.Change, "baseline")
			continue
		}
		if v, ok := body.Get(src.timeField); ok {
			if ts, err := time.Parse(time.RFC3339Nano, v.AsString()); err == nil {
				lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			}
		}
	}
	return ld
}

// processedInput runs the captured pages through the o365_mapping processor (default configuration)
// and returns its output batches.
func processedInput(t testing.TB) []plog.Logs {
	f := o365mappingprocessor.NewFactory()
	sink := new(consumertest.LogsSink)
	ctx := context.Background()
	p, err := f.CreateLogs(ctx, processortest.NewNopSettings(component.MustNewType("o365_mapping")), f.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()))
	for _, src := range goldenSources {
		page, err := os.ReadFile(filepath.Join("testdata", "input", src.file))
		require.NoError(t, err)
		require.NoError(t, p.ConsumeLogs(ctx, receiverLogs(t, src, page)))
	}
	require.NoError(t, p.Shutdown(ctx))
	return sink.AllLogs()
}
