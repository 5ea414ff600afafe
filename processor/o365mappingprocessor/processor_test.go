package o365mappingprocessor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/metadatatest"
)

func TestMappingLookup(t *testing.T) {
	m, err := loadMapping("")
	require.NoError(t, err)
	tests := map[string]string{
		"signin.success":                          "signin_success",
		"directory_audit.role_management.assign":  "role_changes",      // directory_audit.role_management.*
		"directory_audit.user_management.add":     "user_changes",      // directory_audit.user_management.*
		"directory_audit.kerberos_domain.other":   "directory_changes", // directory_audit.*
		"role_assignment.snapshot":                "role_assignments",  // exact beats role_assignment.*
		"role_assignment.removed":                 "role_assignment_changes",
		"incident_candidate.brute_force":          "incident_candidates",
		"security_alert.defense_evasion":          "security_alerts",
		"security_incident.in_progress":           "security_incidents",
		"risky_user.snapshot":                     "risky_users",
		"risky_user.modified":                     "risky_user_changes",
		"intune_audit.device_configuration.patch": "intune_changes",
	}
	for typ, metric := range tests {
		e := m.lookup(typ)
		require.NotNil(t, e, typ)
		assert.Equal(t, metric, e.Metric, typ)
	}
	assert.Nil(t, m.lookup("something.unknown"))
	assert.Nil(t, m.lookup(""))
}

func TestMappingFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content, err string }{
		{"not_a_mapping", "- a\n- b\n", "x.yml:1: ``: must be a mapping, got a list"},
		{"no_version", "mappings: {}\n", "x.yml:1: `version`: is required (version: 1)"},
		{"no_mappings", "version: 1\n", "x.yml:1: `mappings`: is required"},
		{"unknown_top", "version: 1\nmappings: {}\nextra: 1\n", "x.yml:3: `extra`: is not a known key (version, mappings)"},
		{"entry_not_map", "version: 1\nmappings:\n  signin.success: identity\n", "x.yml:3: `mappings.signin.success`: must be a mapping, got the scalar \"identity\""},
		{"empty_domain", "version: 1\nmappings:\n  a.b:\n    domain: ''\n    control: c\n    metric: m\n", "x.yml:4: `mappings.a.b.domain`: must not be empty"},
		{"bad_yaml", "version: 1\nmappings: [\n", "x.yml: yaml: line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "x.yml")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			_, err := loadMapping(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestRuleFileErrors(t *testing.T) {
	dir := t.TempDir()
	const head = "version: 1\nrules:\n  - name: r\n    severity: high\n"
	tests := []struct{ name, content, err string }{
		{"rules_not_list", "version: 1\nrules: {}\n", "x.yml:2: `rules`: must be a list, got a mapping"},
		{"missing_type", "version: 1\nrules:\n  - name: r\n    severity: high\n    window: 1m\n", "x.yml:3: `rules[0](r).type`: is required"},
		{"missing_window", head + "    type: threshold\n    where: {a: b}\n", "x.yml:3: `rules[0](r).window`: is required"},
		{"zero_window", head + "    type: threshold\n    window: 0s\n    where: {a: b}\n", "x.yml:6: `rules[0](r).window`: must be positive"},
		{"no_conditions", head + "    type: threshold\n    window: 1m\n", "x.yml:3: `rules[0](r).where`: conditions are required (`where` or `any_of`)"},
		{"join_without_select", head + "    type: join\n    window: 1h\n    group_by: user.id\n    left: {where: {a: b}}\n    right: {select: {a: b}}\n",
			"x.yml:8: `rules[0](r).left.select`: is required"},
		{"bad_speed", head + "    type: travel\n    window: 1h\n    group_by: user.name\n    where: {a: b}\n    max_speed_kmh: -3\n",
			"x.yml:9: `rules[0](r).max_speed_kmh`: must be a non-negative number"},
		{"unknown_key", head + "    type: threshold\n    window: 1m\n    where: {a: b}\n    treshold: 3\n", "x.yml:8: `rules[0](r).treshold`: is not a known rule key"},
		{"duplicate_name", head + "    type: threshold\n    window: 1m\n    where: {a: b}\n  - name: r\n    severity: low\n    type: threshold\n    window: 1m\n    where: {a: b}\n",
			"x.yml:8: `rules[1].name`: \"r\" is already used by the rule on line 3"},
		{"bad_count", head + "    type: sequence\n    window: 1m\n    group_by: u\n    steps:\n      - where: {a: b}\n        count: many\n      - where: {a: c}\n",
			"x.yml:10: `rules[0](r).steps[0].count`: must be an integer between 1 and 100000, got \"many\""},
		{"null_value", head + "    type: threshold\n    window: 1m\n    where: {a: [~]}\n", "x.yml:7: `rules[0](r).where.a[0]`: must be a value, got nothing (null)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "x.yml")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o600))
			_, err := loadRules(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

// TestTelemetry checks every counter and the state gauge.
func TestTelemetry(t *testing.T) {
	p, sink, tel := newTestProcessor(t, defaultConfig())
	ctx := context.Background()
	ok1 := si(t, "ok1", "alice@contoso.com", "ip", 0, 0, seattle)
	bad := edit(t, sample(t, "signin"), map[string]any{"id": "bad", "userPrincipalName": nil, "userId": nil})
	require.NoError(t, p.ConsumeLogs(ctx, signins(ok1, bad).logs(t)))
	attack := append(failures(t, "f", "bob@contoso.com", "ip", 0, 5, 50126), si(t, "ok2", "bob@contoso.com", "ip", 6*time.Minute, 0, seattle))
	require.NoError(t, p.ConsumeLogs(ctx, signins(attack...).logs(t)))
	again := append(failures(t, "g", "bob@contoso.com", "ip", 10*time.Minute, 5, 50126), si(t, "ok3", "bob@contoso.com", "ip", 16*time.Minute, 0, seattle))
	require.NoError(t, p.ConsumeLogs(ctx, signins(again...).logs(t)))

	// A record naming an unknown o365 event, and a record of another receiver.
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(a.Dataset, "mailbox_rules")
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("?")
	foreign := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	foreign.Body().SetStr("from filelog")
	require.NoError(t, p.ConsumeLogs(ctx, ld))
	assert.Equal(t, 0, foreign.Attributes().Len(), "records of other receivers are left alone")

	set := func(kv ...string) attribute.Set {
		var attrs []attribute.KeyValue
		for i := 0; i < len(kv); i += 2 {
			attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
		}
		return attribute.NewSet(attrs...)
	}
	opts := []metricdatatest.Option{metricdatatest.IgnoreTimestamp()}
	metadatatest.AssertEqualO365MappingRecordsNormalized(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set("dataset", "signins"), Value: 13}}, opts...)
	metadatatest.AssertEqualO365MappingRecordsUnnormalizable(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set("dataset", "signins", "reason", "missing_field"), Value: 1},
		{Attributes: set("dataset", "unknown", "reason", "unknown_dataset"), Value: 1}}, opts...)
	metadatatest.AssertEqualO365MappingIncidentsEmitted(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set("rule", "brute_force", "tenant", testTenantName), Value: 1}}, opts...)
	metadatatest.AssertEqualO365MappingIncidentsSuppressed(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set("rule", "brute_force", "tenant", testTenantName), Value: 1}}, opts...)
	got, err := tel.GetMetric("otelcol_o365_mapping_correlation_state_entries")
	require.NoError(t, err)
	dps := got.Data.(metricdata.Gauge[int64]).DataPoints
	require.Len(t, dps, 1)
	assert.Positive(t, dps[0].Value)
	assert.Len(t, incidentsOf(sink.AllLogs()...), 1)
}

// TestStateCap bounds a tenant's correlation state and counts what it evicts.
func TestStateCap(t *testing.T) {
	cfg := defaultConfig()
	cfg.Correlation.MaxEntriesPerTenant = 50
	p, _, tel := newTestProcessor(t, cfg)
	for i := range 40 {
		user := fmt.Sprintf("user%d@contoso.com", i)
		require.NoError(t, p.ConsumeLogs(context.Background(), signins(
			si(t, fmt.Sprintf("f%d", i), user, fmt.Sprintf("198.51.100.%d", i), time.Duration(i)*time.Second, 50126, seattle),
			si(t, fmt.Sprintf("s%d", i), user, "203.0.113.1", time.Duration(i)*time.Second, 0, seattle)).logs(t)))
	}
	got, err := tel.GetMetric("otelcol_o365_mapping_correlation_state_entries")
	require.NoError(t, err)
	dps := got.Data.(metricdata.Gauge[int64]).DataPoints
	require.Len(t, dps, 1)
	assert.LessOrEqual(t, dps[0].Value, int64(50))
	ev, err := tel.GetMetric("otelcol_o365_mapping_correlation_state_evictions")
	require.NoError(t, err)
	assert.Positive(t, ev.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
}

func TestKeepRawFalseAndPseudonymize(t *testing.T) {
	cfg := defaultConfig()
	cfg.KeepRaw = false
	cfg.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: "0123456789abcdef0123"})
	p, sink, _ := newTestProcessor(t, cfg)
	bad := edit(t, sample(t, "signin"), map[string]any{"id": "bad", "userPrincipalName": nil, "userId": nil})
	attack := append(failures(t, "f", "Bob@Contoso.com", "ip", 0, 5, 50126), si(t, "ok", "bob@contoso.com", "ip", 6*time.Minute, 0, seattle), bad)
	require.NoError(t, p.ConsumeLogs(context.Background(), signins(attack...).logs(t)))
	pseudo := newPseudonymizer([]byte("0123456789abcdef0123")).hash("bob@contoso.com")
	out := sink.AllLogs()[0]
	for _, lr := range allRecords(out) {
		switch {
		case lr.EventName() == a.EventIncidentCandidate:
			assert.Equal(t, pseudo, attrStr(lr, a.UserName), "the incident names the pseudonym")
		case attrStr(lr, a.RecordID) == "bad":
			assert.Equal(t, "Map", lr.Body().Type().String(), "an unnormalizable record passes unchanged")
		default:
			assert.Equal(t, "Empty", lr.Body().Type().String())
			assert.Equal(t, pseudo, attrStr(lr, a.UserName), "case does not change the pseudonym")
			assert.Len(t, attrStr(lr, a.UserID), 32)
			assert.NotContains(t, attrStr(lr, a.UserFullName), "Megan")
		}
	}
	assert.Len(t, incidentsOf(out), 1)
}

// TestPseudonymizeKeptBody replaces the identifier fields of a kept body too.
func TestPseudonymizeKeptBody(t *testing.T) {
	cfg := defaultConfig()
	cfg.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: "0123456789abcdef0123"})
	p, sink, _ := newTestProcessor(t, cfg)
	objs := map[string]string{
		a.DatasetSignIns:         sample(t, "signin"),
		a.DatasetDirectoryAudits: sample(t, "directory_audit"),
		a.DatasetRoleAssignments: sample(t, "role_assignment"),
		a.DatasetMFACoverage:     sample(t, "mfa_registration"),
		a.DatasetSecurityAlerts:  sample(t, "security_alert"),
		a.DatasetRiskDetections:  sample(t, "risk_detection"),
		// Issue 15: who works an incident and who comments on it are people too.
		a.DatasetSecurityIncidents: sample(t, "security_incident"),
		a.DatasetIntuneAuditEvents: sample(t, "intune_audit_event"),
		a.DatasetRiskyUsers:        sample(t, "risky_user"),
	}
	for ds, obj := range objs {
		require.NoError(t, p.ConsumeLogs(context.Background(), batch{dataset: ds, objects: []string{obj}}.logs(t)))
	}
	for _, ld := range sink.AllLogs() {
		for _, lr := range allRecords(ld) {
			body := lr.Body().AsString()
			for _, clear := range []string{"MeganB@contoso.com", "Megan Bowen", "26be570a-ae82-4189-b4e2-a37c6808512d", "AdeleV@contoso.com",
				"AlexW@contoso.com", "admin@contoso.com", "4ab0b690-479b-47ff-af8f-2576cf521872", "KaiC@contoso.onmicrosoft.com",
				"DavidS@contoso.onmicrosoft.com", "Alex Wilber", "c2b6c2b9-dddc-acd0-2b39-d519d803dbc3"} {
				assert.NotContains(t, body, clear, lr.EventName())
			}
			assert.True(t, strings.Contains(body, "{"), "the body is kept")
		}
	}
}

// TestConcurrentConsume feeds one tenant from several goroutines, as several receiver streams do.
func TestConcurrentConsume(t *testing.T) {
	p, sink, _ := newTestProcessor(t, defaultConfig())
	const workers = 4
	batches := make([]plog.Logs, workers)
	for w := range workers {
		user := fmt.Sprintf("user%d@contoso.com", w)
		batches[w] = signins(append(failures(t, fmt.Sprintf("w%d", w), user, "ip", 0, 5, 50126),
			si(t, fmt.Sprintf("ok%d", w), user, "ip", 6*time.Minute, 0, seattle))...).logs(t)
	}
	done := make(chan error, workers)
	for w := range workers {
		go func() { done <- p.ConsumeLogs(context.Background(), batches[w]) }()
	}
	for range workers {
		require.NoError(t, <-done)
	}
	assert.Len(t, incidentsOf(sink.AllLogs()...), workers)
}

// TestPseudonymizeNewAttributes: user ids in conditional access conditions are pseudonymized, and the
// free text that may name people (device names, audit values and details) is not written.
func TestPseudonymizeNewAttributes(t *testing.T) {
	cfg := defaultConfig()
	cfg.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: "0123456789abcdef0123"})
	p, sink, _ := newTestProcessor(t, cfg)
	const userID = "db38e1f1-2b55-4b1d-9bc5-7a0c0a7b6d0d"
	policy := edit(t, sample(t, "conditional_access_policy"), map[string]any{"conditions.users.includeUsers": []any{"All"},
		"conditions.users.excludeUsers": []any{userID}})
	signin := edit(t, sample(t, "signin"), map[string]any{"deviceDetail.displayName": "Megan's iPhone"})
	for ds, obj := range map[string]string{a.DatasetConditionalAccessPolicies: policy, a.DatasetSignIns: signin,
		a.DatasetDirectoryAudits: sample(t, "directory_audit")} {
		require.NoError(t, p.ConsumeLogs(context.Background(), batch{dataset: ds, objects: []string{obj}}.logs(t)))
	}
	pseudo := newPseudonymizer([]byte("0123456789abcdef0123")).hash(userID)
	for _, ld := range sink.AllLogs() {
		for _, lr := range allRecords(ld) {
			attrs := lr.Attributes().AsRaw()
			switch lr.EventName() {
			case a.EventConditionalAccessPolicy:
				assert.Contains(t, attrs[a.PolicyUsersInclude], "All", "keywords stay")
				assert.Contains(t, attrs[a.PolicyUsersExclude], pseudo)
				assert.NotContains(t, attrs[a.PolicyUsersExclude], userID)
			case a.EventSignIn:
				assert.NotContains(t, attrs, a.DeviceName)
			case a.EventDirectoryAudit:
				assert.Contains(t, attrs, a.AuditModifiedProperties)
				assert.NotContains(t, attrs, a.AuditOldValues)
				assert.NotContains(t, attrs, a.AuditNewValues)
				assert.NotContains(t, attrs, a.AuditAdditionalDetails)
			}
		}
	}
}
