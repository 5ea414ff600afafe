package o365mappingprocessor

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

var update = flag.Bool("update", false, "rewrite the expected.yaml golden files")

// goldenKey is the pseudonymization key of the golden cases that pseudonymize.
const goldenKey = "golden-test-key-0123456789abcdef"

// goldenCase is one case of TestGolden: a Graph page of a dataset, as the receiver emits it, through the
// processor with a configuration.
type goldenCase struct {
	name    string
	input   string // testdata/golden/<input>/page.json (default: name)
	dataset string
	config  func(*Config)
	// changes sets o365.change on records by index; eventNames overrides EventName by index.
	changes    map[int]string
	eventNames map[int]string
}

func goldenCases() []goldenCase {
	pseudo := func(c *Config) {
		c.Pseudonymize = configoptional.Some(PseudonymizeConfig{Key: goldenKey})
	}
	return []goldenCase{
		{name: "signins_simulator", dataset: a.DatasetSignIns},
		{name: "signins_edge", dataset: a.DatasetSignIns},
		{name: "signins_ocsf_minimised", input: "signins_edge", dataset: a.DatasetSignIns,
			config: func(c *Config) { c.OCSF, c.KeepRaw = true, false; pseudo(c) }},
		{name: "directory_audits_simulator", dataset: a.DatasetDirectoryAudits},
		{name: "directory_audits_edge", dataset: a.DatasetDirectoryAudits},
		{name: "directory_audits_ocsf_pseudonymized", input: "directory_audits_edge", dataset: a.DatasetDirectoryAudits,
			config: func(c *Config) { c.OCSF = true; pseudo(c) }},
		{name: "role_assignments", dataset: a.DatasetRoleAssignments, changes: map[int]string{3: a.ChangeRemoved}},
		{name: "role_assignments_pseudonymized", input: "role_assignments", dataset: a.DatasetRoleAssignments, config: pseudo},
		{name: "conditional_access_policies", dataset: a.DatasetConditionalAccessPolicies,
			changes: map[int]string{1: a.ChangeModified, 2: a.ChangeRemoved}},
		{name: "mfa_coverage", dataset: a.DatasetMFACoverage, eventNames: map[int]string{2: a.EventMFACoverageSummary}},
		{name: "security_alerts", dataset: a.DatasetSecurityAlerts},
		{name: "security_alerts_ocsf", input: "security_alerts", dataset: a.DatasetSecurityAlerts,
			config: func(c *Config) { c.OCSF = true }},
		{name: "risk_detections", dataset: a.DatasetRiskDetections},
		{name: "risk_detections_ocsf", input: "risk_detections", dataset: a.DatasetRiskDetections,
			config: func(c *Config) { c.OCSF = true }},
		// Issue 15: the documented examples, see testdata/golden/SOURCES.md.
		{name: "security_incidents", dataset: a.DatasetSecurityIncidents},
		{name: "security_incidents_pseudonymized", input: "security_incidents", dataset: a.DatasetSecurityIncidents, config: pseudo},
		{name: "intune_audit_events", dataset: a.DatasetIntuneAuditEvents},
		{name: "risky_users", dataset: a.DatasetRiskyUsers,
			changes: map[int]string{1: a.ChangeAdded, 2: a.ChangeModified, 3: a.ChangeRemoved}},
	}
}

// logs is the case's page as the receiver emits it.
func (tc goldenCase) logs(t *testing.T) plog.Logs {
	t.Helper()
	input := tc.input
	if input == "" {
		input = tc.name
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "golden", input, "page.json"))
	require.NoError(t, err)
	ld := receiverLogs(t, tc.dataset, raw)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	for i, c := range tc.changes {
		lrs.At(i).Attributes().PutStr(a.Change, c)
	}
	for i, n := range tc.eventNames {
		lrs.At(i).SetEventName(n)
	}
	return ld
}

// cfg is the case's processor configuration.
func (tc goldenCase) cfg(t *testing.T) *Config {
	t.Helper()
	cfg := defaultConfig()
	if tc.config != nil {
		tc.config(cfg)
	}
	require.NoError(t, cfg.Validate())
	return cfg
}

// TestGolden feeds Graph pages (two captured from the simulator, the others built from Microsoft's
// documented examples plus edge cases) through the processor as the receiver emits them, and compares
// the output with testdata/golden/<case>/expected.yaml. Regenerate with `go test -run TestGolden -update`.
func TestGolden(t *testing.T) {
	listed, ocsf := readmeKeys(t), readmeOCSF(t)
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			p, sink, _ := newTestProcessor(t, cfg)
			require.NoError(t, p.ConsumeLogs(context.Background(), tc.logs(t)))
			require.Len(t, sink.AllLogs(), 1)
			got := sink.AllLogs()[0]

			expectedFile := filepath.Join("testdata", "golden", tc.name, "expected.yaml")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(expectedFile), 0o755))
				require.NoError(t, golden.WriteLogsToFile(expectedFile, got))
			}
			want, err := golden.ReadLogs(expectedFile)
			require.NoError(t, err)
			require.NoError(t, plogtest.CompareLogs(want, got, plogtest.IgnoreObservedTimestamp()))
			// CompareLogs does not look at EventName.
			assert.Equal(t, eventNames(want), eventNames(got))
			assertKeysListed(t, listed, got)
			ocsf.check(t, got, cfg.OCSF, nil)
		})
	}
}

// TestGoldenWithoutRaw runs the golden cases that keep the body with keep_raw: false, where
// normalization takes string fields out of the body it drops (setField): the output is the same but for
// the bodies of the normalized records.
func TestGoldenWithoutRaw(t *testing.T) {
	for _, tc := range goldenCases() {
		cfg := tc.cfg(t)
		if !cfg.KeepRaw {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg.KeepRaw = false
			p, sink, _ := newTestProcessor(t, cfg)
			require.NoError(t, p.ConsumeLogs(context.Background(), tc.logs(t)))
			require.Len(t, sink.AllLogs(), 1)
			want, err := golden.ReadLogs(filepath.Join("testdata", "golden", tc.name, "expected.yaml"))
			require.NoError(t, err)
			for _, lr := range allRecords(want) {
				_, failed := lr.Attributes().Get(a.NormalizationError)
				if lr.EventName() != a.EventIncidentCandidate && !failed {
					_ = lr.Body().FromRaw(nil)
				}
			}
			require.NoError(t, plogtest.CompareLogs(want, sink.AllLogs()[0], plogtest.IgnoreObservedTimestamp()))
		})
	}
}

// assertKeysListed fails on an attribute of a record the README's "Normalized attributes" does not
// list: TestCorpus checks the corpus datasets; the golden cases add the others (incidents, Intune, risky
// users), the pseudonymized outputs and the `ocsf.*` keys of `ocsf: true`.
func assertKeysListed(t *testing.T, listed func(string) bool, ld plog.Logs) {
	t.Helper()
	for _, lr := range allRecords(ld) {
		for k := range lr.Attributes().All() {
			assert.True(t, listed(k), "%s: attribute %s is not in the README's \"Normalized attributes\"", lr.EventName(), k)
		}
	}
}

func eventNames(ld plog.Logs) []string {
	var out []string
	for _, lr := range allRecords(ld) {
		out = append(out, lr.EventName())
	}
	return out
}
