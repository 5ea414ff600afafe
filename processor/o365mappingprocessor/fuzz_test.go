package o365mappingprocessor

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Fuzz targets: every normalizer is fed arbitrary JSON decoded as the receiver decodes Graph objects
// (anything that is not a JSON object becomes a non-map body), under every combination of options. A
// record must either be normalized with a well-formed event type, or be left exactly as it was but for
// o365.normalization.error; the whole processor (mapping, correlation, incidents) must not panic.
// Seed corpora: testdata/fuzz/<target>/.
//
// opts bits: 1 ocsf, 2 pseudonymize, 4 keep_raw false, 8 o365.change=modified, 16 o365.change=removed,
// 32 no Timestamp.

func FuzzNormalizeSignIn(f *testing.F) { fuzzNormalize(f, datasetOf(catalog.SignIns), "signin") }

func FuzzNormalizeDirectoryAudit(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.DirectoryAudits), "directory_audit")
}

func FuzzNormalizeRoleAssignment(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.RoleAssignments), "role_assignment")
}

func FuzzNormalizeConditionalAccessPolicy(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.ConditionalAccessPolicies), "conditional_access_policy")
}

func FuzzNormalizeMFARegistration(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.MFACoverage), "mfa_registration")
}

func FuzzNormalizeMFACoverageSummary(f *testing.F) {
	fuzzNormalize(f, dsMFACoverageSummary, "")
}

func FuzzNormalizeSecurityAlert(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.SecurityAlerts), "security_alert")
}

func FuzzNormalizeRiskDetection(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.RiskDetections), "risk_detection")
}

func FuzzNormalizeSecurityIncident(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.SecurityIncidents), "security_incident")
}

func FuzzNormalizeIntuneAudit(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.IntuneAuditEvents), "intune_audit_event")
}

func FuzzNormalizeRiskyUser(f *testing.F) {
	fuzzNormalize(f, datasetOf(catalog.RiskyUsers), "risky_user")
}

func fuzzNormalize(f *testing.F, ds *dataset, sampleName string) {
	if sampleName != "" {
		s := sample(f, sampleName)
		for opts := range uint8(64) {
			f.Add([]byte(s), opts)
		}
	}
	f.Add([]byte(`{}`), uint8(0))
	f.Add([]byte(`[]`), uint8(0))
	f.Add([]byte(`null`), uint8(0))
	f.Add([]byte(`{"id":1,"status":{"errorCode":"x"},"location":{"geoCoordinates":{"latitude":"NaN"}}}`), uint8(3))
	p, err := newProcessor(nopSettings(), fuzzConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = p.shutdown(context.Background()) })
	pseudo := newPseudonymizer([]byte("fuzz-key-0123456789"))
	f.Fuzz(func(t *testing.T, data []byte, opts uint8) {
		// A hang is a failure too: the fuzzer keeps the input of a worker that crashes.
		watchdog := time.AfterFunc(fuzzHang, func() { panic(fmt.Sprintf("no result after %s for opts %d and %q", fuzzHang, opts, data)) })
		defer watchdog.Stop()
		lr := plog.NewLogRecord()
		bodyFromJSON(lr.Body(), data)
		lr.SetEventName(ds.eventName)
		lr.Attributes().PutStr(a.RecordID, "r1")
		switch {
		case opts&8 != 0:
			lr.Attributes().PutStr(a.Change, a.ChangeModified)
		case opts&16 != 0:
			lr.Attributes().PutStr(a.Change, a.ChangeRemoved)
		}
		if opts&32 == 0 {
			lr.SetTimestamp(pcommon.Timestamp(1710357341619583300))
		}
		before := plog.NewLogRecord()
		lr.CopyTo(before)

		n := normalizer{ocsf: opts&1 != 0, keepRaw: opts&4 == 0}
		if opts&2 != 0 {
			n.pseudo = pseudo
		}
		eventType, nerr := n.run(ds, lr)
		if nerr != nil {
			if err := plogtest.CompareLogRecord(before, lr); err != nil {
				t.Fatalf("a record that cannot be normalized (%v) was changed: %v", nerr, err)
			}
			if nerr.reason == "" || nerr.msg == "" {
				t.Fatalf("error without reason or message: %+v", nerr)
			}
		} else {
			if !eventTypePattern.MatchString(eventType) || strings.HasSuffix(eventType, "*") {
				t.Fatalf("malformed event type %q", eventType)
			}
			if got := attrStr(lr, a.EventType); got != eventType {
				t.Fatalf("o365.event.type = %q, want %q", got, eventType)
			}
			// Without keepRaw, attributes may take values out of the body (setField): the same attributes.
			other := plog.NewLogRecord()
			before.CopyTo(other)
			n.keepRaw = !n.keepRaw
			if _, nerr := n.run(ds, other); nerr != nil || !other.Attributes().Equal(lr.Attributes()) {
				t.Fatalf("keepRaw %v: %v, attributes %v, want %v", n.keepRaw, nerr, other.Attributes().AsRaw(), lr.Attributes().AsRaw())
			}
		}

		// The whole processor on the raw record: must not panic.
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(a.TenantID, "t")
		rl.Resource().Attributes().PutStr(a.Dataset, ds.name)
		before.CopyTo(rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty())
		if _, err := p.processLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzHang is how long one input may take before the fuzz target calls it a hang.
const fuzzHang = 10 * time.Second

func fuzzConfig() *Config {
	cfg := defaultConfig()
	cfg.OCSF = true
	cfg.Correlation.MaxEntriesPerTenant = 1000
	return cfg
}

// bodyFromJSON decodes data as the receiver decodes a Graph object (one element of a page's "value");
// anything else becomes a non-map body.
func bodyFromJSON(body pcommon.Value, data []byte) {
	page := append(append([]byte(`{"value":[`), data...), "]}"...)
	decoded := 0
	_, err := graph.FastDecoder{}.Decode(page, func() pcommon.Map { decoded++; return body.SetEmptyMap() })
	if err != nil || decoded != 1 {
		body.SetStr(string(data))
	}
}
