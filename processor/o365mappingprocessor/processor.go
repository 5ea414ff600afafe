package o365mappingprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/correlation"
	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/metadata"
)

// mappingProcessor normalizes, maps and correlates the records of one pipeline.
type mappingProcessor struct {
	cfg     *Config
	logger  *zap.Logger
	version string
	norm    normalizer
	mapping *mappingTable
	engine  *correlation.Engine // nil: correlation disabled
	tb      *metadata.TelemetryBuilder

	datasetOpts []metric.MeasurementOption // by dataset idx
}

func newProcessor(set processor.Settings, cfg *Config) (*mappingProcessor, error) {
	mapping, err := loadMapping(cfg.MappingFile)
	if err != nil {
		return nil, err
	}
	p := &mappingProcessor{cfg: cfg, logger: set.Logger, version: set.BuildInfo.Version, mapping: mapping,
		norm: normalizer{keepRaw: cfg.KeepRaw, ocsf: cfg.OCSF, internalDomains: cfg.internalDomains()}}
	if cfg.Pseudonymize.HasValue() {
		p.norm.pseudo = newPseudonymizer([]byte(cfg.Pseudonymize.Get().Key))
	}
	if cfg.Correlation.Enabled {
		rules, err := loadRules(cfg.CorrelationFile)
		if err != nil {
			return nil, err
		}
		p.engine = correlation.New(rules, cfg.Correlation.MaxEntriesPerTenant)
	}
	if p.tb, err = metadata.NewTelemetryBuilder(set.TelemetrySettings); err != nil {
		return nil, err
	}
	for _, ds := range allDatasets {
		p.datasetOpts = append(p.datasetOpts, metric.WithAttributeSet(attribute.NewSet(attribute.String("dataset", ds.name))))
	}
	if p.engine != nil {
		err = p.tb.RegisterO365MappingCorrelationStateEntriesCallback(func(_ context.Context, o metric.Int64Observer) error {
			for tenant, n := range p.engine.Entries() {
				o.Observe(int64(n), metric.WithAttributes(attribute.String("tenant", tenant)))
			}
			return nil
		})
		if err != nil {
			p.tb.Shutdown()
			return nil, err
		}
	}
	return p, nil
}

func (p *mappingProcessor) shutdown(context.Context) error {
	p.tb.Shutdown()
	return nil
}

// batchStats counts one batch for telemetry, which is recorded once per batch.
type batchStats struct {
	normalized     []int64 // by dataset idx
	unmapped       []int64
	unnormalizable map[[2]string]int64 // (dataset, reason)
	incidents      map[[2]string]int64 // (rule, tenant)
	suppressed     map[[2]string]int64
	evicted        map[string]int64
}

// processLogs normalizes and maps every record of the o365 receiver in place, feeds them to the
// correlation rules, and appends the IncidentCandidate records they complete, one ResourceLogs per
// tenant, to the same batch.
//
// It is idempotent for a batch delivered again (a receiver retrying after a refusal hands the same,
// already processed batch back): normalized records are not normalized again, records already seen by a
// rule do not count twice, and the incidents already appended stay in the batch and are not repeated.
func (p *mappingProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	now := time.Now()
	st := batchStats{normalized: make([]int64, len(allDatasets)), unmapped: make([]int64, len(allDatasets))}
	var incidents []*correlation.Incident
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource()
		resDataset := strAttr(res.Attributes(), a.Dataset)
		if resDataset == a.DatasetIncidentCandidates {
			continue // ours, from an earlier pass over this batch
		}
		var ts *correlation.Tenant
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				ds, foreign := datasetFor(lr.EventName(), resDataset)
				if foreign {
					continue
				}
				attrs := lr.Attributes()
				eventType, logType, ok := p.normalizeAndMap(ds, lr, attrs, &st)
				if !ok || p.engine == nil {
					continue
				}
				if ts == nil {
					ts = p.engine.Tenant(tenantKey(res.Attributes()))
					ts.Lock()
				}
				switch {
				case logType == a.LogTypeConditionalAccessPolicy || (logType == a.LogTypeAudit && hasAttr(attrs, a.PolicyState)):
					ts.RememberPolicyState(attrs, logType, lr.Timestamp())
				case logType == a.LogTypeSecurityIncident:
					ts.RememberIncidentSeverity(attrs, lr.Timestamp())
				}
				rec := correlation.Record{Attrs: attrs, EventType: eventType, LogType: logType, ID: strAttr(attrs, a.RecordID),
					Time: eventTime(lr, now), Resource: res}
				if lr.ObservedTimestamp() != 0 {
					rec.Observed = lr.ObservedTimestamp().AsTime()
				}
				incidents = ts.Observe(rec, now, incidents)
			}
		}
		if ts != nil {
			evicted, suppressed := ts.TakeStats()
			ts.Unlock()
			if evicted > 0 {
				if st.evicted == nil {
					st.evicted = map[string]int64{}
				}
				st.evicted[ts.Label] += int64(evicted)
			}
			for r, n := range suppressed {
				if n > 0 {
					st.count(&st.suppressed, p.engine.Rules()[r].Name, ts.Label, int64(n))
				}
			}
		}
	}
	if len(incidents) > 0 {
		p.appendIncidents(ld, incidents, now)
		for _, inc := range incidents {
			st.count(&st.incidents, inc.Rule.Name, inc.Tenant.Label, 1)
		}
	}
	p.record(ctx, &st)
	return ld, nil
}

// normalizeAndMap normalizes a record (unless it already is) and adds the mapping attributes. ok is false
// for a record that cannot be normalized: it then only gains o365.normalization.error.
func (p *mappingProcessor) normalizeAndMap(ds *dataset, lr plog.LogRecord, attrs pcommon.Map, st *batchStats) (eventType, logType string, ok bool) {
	if v, done := attrs.Get(a.EventType); done && v.Type() == pcommon.ValueTypeStr && v.Str() != "" {
		eventType = v.Str()
		logType = strAttr(attrs, a.LogType)
	} else {
		var nerr *normError
		eventType, nerr = p.norm.run(ds, lr)
		if nerr != nil {
			attrs.PutStr(a.NormalizationError, nerr.msg)
			st.count(&st.unnormalizable, ds.name, nerr.reason, 1)
			return "", "", false
		}
		logType = ds.logType
		st.normalized[ds.idx]++
	}
	if e := p.mapping.lookup(eventType); e != nil {
		attrs.PutStr(a.Domain, e.Domain)
		attrs.PutStr(a.Control, e.Control)
		attrs.PutStr(a.Metric, e.Metric)
	} else {
		st.unmapped[ds.idx]++
	}
	return eventType, logType, true
}

func (st *batchStats) count(m *map[[2]string]int64, k1, k2 string, n int64) {
	if *m == nil {
		*m = map[[2]string]int64{}
	}
	(*m)[[2]string{k1, k2}] += n
}

func (p *mappingProcessor) record(ctx context.Context, st *batchStats) {
	for i, n := range st.normalized {
		if n > 0 {
			p.tb.O365MappingRecordsNormalized.Add(ctx, n, p.datasetOpts[i])
		}
	}
	for i, n := range st.unmapped {
		if n > 0 {
			p.tb.O365MappingRecordsUnmapped.Add(ctx, n, p.datasetOpts[i])
		}
	}
	for k, n := range st.unnormalizable {
		p.tb.O365MappingRecordsUnnormalizable.Add(ctx, n, metric.WithAttributes(
			attribute.String("dataset", k[0]), attribute.String("reason", k[1])))
	}
	for k, n := range st.incidents {
		p.tb.O365MappingIncidentsEmitted.Add(ctx, n, metric.WithAttributes(
			attribute.String("rule", k[0]), attribute.String("tenant", k[1])))
	}
	for k, n := range st.suppressed {
		p.tb.O365MappingIncidentsSuppressed.Add(ctx, n, metric.WithAttributes(
			attribute.String("rule", k[0]), attribute.String("tenant", k[1])))
	}
	for tenant, n := range st.evicted {
		p.tb.O365MappingCorrelationStateEvictions.Add(ctx, n, metric.WithAttributes(attribute.String("tenant", tenant)))
	}
}

// tenantKey identifies a tenant's correlation state (tenant id) and labels its metrics (name).
func tenantKey(res pcommon.Map) (key, label string) {
	key = strAttr(res, a.TenantID)
	label = strAttr(res, a.TenantName)
	if key == "" {
		key = label
	}
	if label == "" {
		label = key
	}
	return key, label
}

// eventTime is the record's own time, else its fetch time, else now.
func eventTime(lr plog.LogRecord, now time.Time) time.Time {
	if ts := lr.Timestamp(); ts != 0 {
		return ts.AsTime()
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return ts.AsTime()
	}
	return now
}

func strAttr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func hasAttr(m pcommon.Map, k string) bool {
	_, ok := m.Get(k)
	return ok
}
