package o365mappingprocessor

import (
	_ "embed"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/correlation"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/metadata"
)

//go:embed correlation.yml
var defaultCorrelationYAML []byte

// loadRules reads path, or the embedded correlation.yml when path is empty, and validates it.
func loadRules(path string) ([]*correlation.Rule, error) {
	return correlation.Load(path, "correlation.yml", defaultCorrelationYAML)
}

// appendIncidents renders the incidents into one ResourceLogs per tenant, with the resource of the
// record that completed them (o365.dataset = incident_candidates).
func (p *mappingProcessor) appendIncidents(ld plog.Logs, incidents []*correlation.Incident, now time.Time) {
	out := plog.NewLogs()
	byTenant := map[*correlation.Tenant]plog.LogRecordSlice{}
	observed := pcommon.NewTimestampFromTime(now)
	for _, inc := range incidents {
		lrs, ok := byTenant[inc.Tenant]
		if !ok {
			rl := out.ResourceLogs().AppendEmpty()
			inc.Resource.CopyTo(rl.Resource())
			rl.Resource().Attributes().PutStr(a.Dataset, a.DatasetIncidentCandidates)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
			sl.Scope().SetVersion(p.version)
			lrs = sl.LogRecords()
			byTenant[inc.Tenant] = lrs
		}
		p.writeIncident(inc, lrs.AppendEmpty(), observed)
	}
	out.ResourceLogs().MoveAndAppendTo(ld.ResourceLogs())
}

// writeIncident renders an incident as an IncidentCandidate log record.
func (p *mappingProcessor) writeIncident(inc *correlation.Incident, lr plog.LogRecord, observed pcommon.Timestamp) {
	r := inc.Rule
	lr.SetEventName(a.EventIncidentCandidate)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(inc.End))
	lr.SetObservedTimestamp(observed)
	lr.SetSeverityNumber(correlation.Severities[r.Severity])
	lr.SetSeverityText(r.Severity)
	var body strings.Builder
	body.WriteString(r.Name)
	body.WriteString(": ")
	body.WriteString(r.Description)
	for i, e := range inc.Entities {
		if i == 0 {
			body.WriteString(" [")
		} else {
			body.WriteString(", ")
		}
		body.WriteString(e[0] + "=" + e[1])
		if i == len(inc.Entities)-1 {
			body.WriteString("]")
		}
	}
	lr.Body().SetStr(body.String())

	attrs := lr.Attributes()
	attrs.EnsureCapacity(24)
	attrs.PutStr(a.RecordID, inc.ID)
	writeCommon(attrs, r.EventType, a.LogTypeIncidentCandidate, "Incident candidate")
	attrs.PutStr(a.IncidentID, inc.ID)
	attrs.PutStr(a.IncidentRule, r.Name)
	putStr(attrs, a.IncidentDescription, r.Description)
	attrs.PutStr(a.IncidentSeverity, r.Severity)
	attrs.PutStr(a.IncidentWindowStart, inc.Start.UTC().Format(time.RFC3339Nano))
	attrs.PutStr(a.IncidentWindowEnd, inc.End.UTC().Format(time.RFC3339Nano))
	ents := attrs.PutEmptyMap(a.IncidentEntities)
	for _, e := range inc.Entities {
		ents.PutStr(e[0], e[1])
		if _, exists := attrs.Get(e[0]); !exists {
			attrs.PutStr(e[0], e[1]) // the entities are also plain attributes (user.Name, client.address, …)
		}
	}
	if inc.Context != (pcommon.Map{}) && inc.Context.Len() > 0 {
		inc.Context.CopyTo(attrs.PutEmptyMap(a.IncidentContext))
	}
	ids := attrs.PutEmptySlice(a.IncidentRecordIDs)
	ids.EnsureCapacity(len(inc.RecordIDs))
	for _, id := range inc.RecordIDs {
		ids.AppendEmpty().SetStr(id)
	}
	attrs.PutInt(a.IncidentRecordCount, int64(len(inc.RecordIDs)))
	for _, d := range inc.Details {
		switch v := d.Value.(type) {
		case float64:
			attrs.PutDouble(d.Key, v)
		case int64:
			attrs.PutInt(d.Key, v)
		}
	}
	if e := p.mapping.lookup(r.EventType); e != nil {
		attrs.PutStr(a.Domain, e.Domain)
		attrs.PutStr(a.Control, e.Control)
		attrs.PutStr(a.Metric, e.Metric)
	}
	if p.norm.ocsf {
		sev := map[string]int{"low": sevLow, "medium": sevMedium, "high": sevHigh, "critical": sevCritical}[r.Severity]
		e := ocsfEvent{class: ocsfClassDetectionFinding, activityID: 1, activity: "Create", statusID: findingNew,
			severityID: sev, product: "otelcol-o365 correlation"}
		e.write(attrs, lr.Timestamp(), inc.ID)
		attrs.PutStr("ocsf.finding_info.uid", inc.ID)
		attrs.PutStr("ocsf.finding_info.title", r.Name)
		putStr(attrs, "ocsf.finding_info.desc", r.Description)
		attrs.PutInt("ocsf.finding_info.first_seen_time", inc.Start.UnixMilli())
		attrs.PutInt("ocsf.finding_info.last_seen_time", inc.End.UnixMilli())
		attrs.PutInt("ocsf.finding_info.related_events_count", int64(len(inc.RecordIDs)))
	}
}
