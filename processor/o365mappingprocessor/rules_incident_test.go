package o365mappingprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// incidentVersion is a version of the documented incident (testdata/graph/security_incident.json) with
// its severity and its time (lastUpdateDateTime).
func incidentVersion(tb testing.TB, id, severity string, at time.Duration) string {
	return edit(tb, sample(tb, "security_incident"), map[string]any{
		"id": id, "severity": severity, "lastUpdateDateTime": t0.Add(at).Format("2006-01-02T15:04:05.0000000Z"),
	})
}

func incidents(objs ...string) batch {
	return batch{dataset: a.DatasetSecurityIncidents, objects: objs}
}

func TestRuleSecurityIncidentSeverityHigh(t *testing.T) {
	const inc = "2972395"
	runRuleCases(t, "security_incident_severity_high", []ruleCase{
		{name: "medium, then high fires", want: 1, ids: []string{inc}, ents: map[string]string{a.SecurityIncidentID: inc},
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "medium", 0)), incidents(incidentVersion(t, inc, "high", time.Hour))}
			}},
		{name: "low, then high in one page fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "low", 0), incidentVersion(t, inc, "high", time.Minute))}
			}},
		{name: "informational, medium, high fires once", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "informational", 0)), incidents(incidentVersion(t, inc, "medium", time.Minute)),
					incidents(incidentVersion(t, inc, "high", 2*time.Minute)), incidents(incidentVersion(t, inc, "high", 3*time.Minute))}
			}},
		{name: "first seen at high does not fire: nothing to rise from", want: 0,
			batches: func(t *testing.T) []batch { return []batch{incidents(incidentVersion(t, inc, "high", 0))} }},
		{name: "high, then high again does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "high", 0)), incidents(incidentVersion(t, inc, "high", time.Hour))}
			}},
		{name: "low, then medium does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "low", 0)), incidents(incidentVersion(t, inc, "medium", time.Hour))}
			}},
		{name: "high, then lowered to medium does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "high", 0)), incidents(incidentVersion(t, inc, "medium", time.Hour))}
			}},
		{name: "newest first, as Graph lists them: high, then the medium before it fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "high", time.Hour), incidentVersion(t, inc, "medium", 0))}
			}},
		{name: "newest first across polls: high, then the medium before it fires", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "high", time.Hour)), incidents(incidentVersion(t, inc, "medium", 0))}
			}},
		{name: "low, high, then the medium between them arriving late fires once", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "low", 0)), incidents(incidentVersion(t, inc, "high", time.Hour)),
					incidents(incidentVersion(t, inc, "medium", time.Minute))}
			}},
		{name: "medium, then high, then lowered to medium, newest first, fires once", want: 1,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "medium", 2*time.Hour), incidentVersion(t, inc, "high", time.Hour),
					incidentVersion(t, inc, "medium", 0))}
			}},
		{name: "medium, then medium, newest first, does not fire", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, inc, "medium", time.Hour), incidentVersion(t, inc, "medium", 0))}
			}},
		{name: "two incidents, each medium then high, fire each", want: 2,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, "1", "medium", 0), incidentVersion(t, "2", "medium", 0)),
					incidents(incidentVersion(t, "1", "high", time.Hour), incidentVersion(t, "2", "high", time.Hour))}
			}},
		{name: "another incident's medium does not make this one rise", want: 0,
			batches: func(t *testing.T) []batch {
				return []batch{incidents(incidentVersion(t, "1", "medium", 0)), incidents(incidentVersion(t, "2", "high", time.Hour))}
			}},
	})
}

// The previous severity is on the record itself, and a batch delivered again (a receiver retrying)
// neither loses it nor fires twice.
func TestIncidentPreviousSeverityAndRedelivery(t *testing.T) {
	p, sink, _ := newTestProcessor(t, defaultConfig())
	const inc = "2972395"
	require.NoError(t, p.ConsumeLogs(context.Background(), incidents(incidentVersion(t, inc, "medium", 0)).logs(t)))
	second := incidents(incidentVersion(t, inc, "high", time.Hour)).logs(t)
	require.NoError(t, p.ConsumeLogs(context.Background(), second))
	require.NoError(t, p.ConsumeLogs(context.Background(), second))
	lr := second.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, "medium", attrStr(lr, a.SecurityIncidentPreviousSeverity))
	assert.Equal(t, "high", attrStr(lr, a.SecurityIncidentSeverity))
	// The batch delivered twice is the same plog.Logs: its incidents are counted once, in it.
	fired := 0
	for _, c := range incidentsOf(sink.AllLogs()[0], second) {
		if attrStr(c, a.IncidentRule) == "security_incident_severity_high" {
			fired++
			ctx := c.Attributes().AsRaw()[a.IncidentContext].(map[string]any)
			assert.Equal(t, "medium", ctx[a.SecurityIncidentPreviousSeverity], "the context names the severity it rose from")
		}
	}
	assert.Equal(t, 1, fired)
}
