package o365exportexporter

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/exporter/o365exportexporter/internal/durable"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// tenantKey identifies a tenant by both resource attributes.
type tenantKey struct {
	id, name string
}

// label is the tenant's name in telemetry, file paths and the summary: o365.tenant.name, else the id.
func (k tenantKey) label() string {
	if k.name != "" {
		return k.name
	}
	return k.id
}

type tenantState struct {
	key     tenantKey
	periods map[int64]*periodState // by period start, Unix nanoseconds
	held    int                    // records held by all periods (bounded by max_records_per_tenant)
}

// periodState accumulates one tenant's records of one period.
type periodState struct {
	start time.Time

	seen map[[16]byte]struct{} // dedup keys of the records counted
	held int                   // records held in memory: dedup keys plus events resumed from a document

	total, unmapped, unnormalized, dropped                int64
	byDataset, byDomain, byControl, byMetric, byEventType map[string]int64
	byMapping                                             map[[3]string]int64
	first, last                                           time.Time
	incidents                                             map[string]docIncident // by incident id
	events                                                []eventEntry

	// Lifecycle (wall clock).
	dirty      bool      // changed since the last document was built
	dirtySince time.Time // arrival of the oldest change not yet in a document
	lastUpdate time.Time // arrival of the newest record
	written    bool      // a document exists (built by this process, or resumed from the directory)
	inFlight   bool      // a document is being delivered: the state must not be released meanwhile
	pinned     bool      // a batch being counted has records for it: not released to make room

	// Journal (journal.go); nil when disabled, or until the period's first record.
	journal       *durable.Journal
	journalBase   int64 // the journal's size when it was last written whole
	journalBroken bool  // a write failed: the journal is rewritten whole at the next one
}

// eventEntry is one normalized event, encoded, with its sort key.
type eventEntry struct {
	ts  int64
	id  string
	raw []byte
}

func newPeriodState(start time.Time) *periodState {
	return &periodState{
		start:       start,
		seen:        map[[16]byte]struct{}{},
		byDataset:   map[string]int64{},
		byDomain:    map[string]int64{},
		byControl:   map[string]int64{},
		byMetric:    map[string]int64{},
		byEventType: map[string]int64{},
		byMapping:   map[[3]string]int64{},
		incidents:   map[string]docIncident{},
	}
}

func (p *periodState) touch(now time.Time) {
	if !p.dirty {
		p.dirty = true
		p.dirtySince = now
	}
	p.lastUpdate = now
}

func (p *periodState) observeTime(t time.Time) {
	if p.first.IsZero() || t.Before(p.first) {
		p.first = t
	}
	if p.last.IsZero() || t.After(p.last) {
		p.last = t
	}
}

// recordTime is the record's own time (Timestamp), else its fetch time.
func recordTime(lr plog.LogRecord) (time.Time, bool) {
	if ts := lr.Timestamp(); ts != 0 {
		return ts.AsTime(), true
	}
	if ts := lr.ObservedTimestamp(); ts != 0 {
		return ts.AsTime(), true
	}
	return time.Time{}, false
}

func attrString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// record is a log record with the attributes that every record needs read in one pass: a normalized
// record has ~40 attributes, pcommon.Map.Get scans them from the first, and o365_mapping appends the
// mapping attributes last.
type record struct {
	lr                                     plog.LogRecord
	dataset                                string
	id, eventType, domain, control, metric string // as attrString reads them
	hasIncidentRule                        bool
}

func readRecord(dataset string, lr plog.LogRecord) record {
	r := record{lr: lr, dataset: dataset}
	var seen uint8 // of duplicate keys the first counts, as with Get
	for k, v := range lr.Attributes().All() {
		var bit uint8
		var dst *string
		switch k {
		case a.RecordID:
			bit, dst = 1, &r.id
		case a.EventType:
			bit, dst = 2, &r.eventType
		case a.Domain:
			bit, dst = 4, &r.domain
		case a.Control:
			bit, dst = 8, &r.control
		case a.Metric:
			bit, dst = 16, &r.metric
		case a.IncidentRule:
			r.hasIncidentRule = true
			continue
		default:
			continue
		}
		if seen&bit == 0 {
			seen |= bit
			*dst = v.AsString()
		}
	}
	return r
}

// dedupKey identifies a record within its period: dataset, o365.record.id and o365.event.type, so that a
// redelivered record, the same snapshot item listed by every poll, and further updates of one alert count
// once, while a snapshot item that changed counts once more under its change type. A record without an
// id is identified by its content.
func (r *record) dedupKey() [16]byte {
	h := fnv.New128a()
	write := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.Write([]byte(s))
	}
	write(r.dataset)
	if r.id != "" {
		write("id")
		write(r.id)
		write(r.eventType)
	} else {
		lr := r.lr
		write("content")
		write(lr.EventName())
		var ts [8]byte
		binary.LittleEndian.PutUint64(ts[:], uint64(lr.Timestamp()))
		_, _ = h.Write(ts[:])
		body, _ := json.Marshal(jsonValue(lr.Body()))
		write(string(body))
		at, _ := json.Marshal(jsonMap(lr.Attributes()))
		write(string(at))
	}
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// contribution is what one record adds to its period: everything a document needs from it, and its
// dedup key. It is also what the journal keeps of the record (journal.go), so that a period can be
// rebuilt after a crash exactly as it was counted.
type contribution struct {
	Key       []byte `json:"k"` // dedupKey, 16 bytes
	Dataset   string `json:"d"`
	At        int64  `json:"t"` // the record's time, Unix nanoseconds
	EventType string `json:"e,omitempty"`
	Domain    string `json:"dm,omitempty"`
	Control   string `json:"c,omitempty"`
	Metric    string `json:"m,omitempty"`
	// Incident is set for an IncidentCandidate record.
	Incident *docIncident `json:"i,omitempty"`
	// Event is the record's entry of `events` (include_events; not for incident candidates), and ID its
	// record id (the events' sort key after the time).
	Event json.RawMessage `json:"v,omitempty"`
	ID    string          `json:"id,omitempty"`
}

// contributionOf reads what a record adds to its period; key is its dedup key (16 bytes), events nil
// without include_events.
func contributionOf(r *record, key []byte, at time.Time, events *eventEncoder) contribution {
	c := contribution{Key: key, Dataset: r.dataset, At: at.UnixNano(), EventType: r.eventType}
	if c.EventType != "" {
		c.Domain, c.Control, c.Metric = r.domain, r.control, r.metric
	}
	if r.isIncident() {
		inc := incidentOf(r.lr)
		c.Incident = &inc
		return c
	}
	if events != nil && c.EventType != "" {
		c.Event, c.ID = events.event(r, at), r.id
	}
	return c
}

// apply counts a contribution (already known not to be a duplicate) into the period; events only with
// include_events.
func (p *periodState) apply(c *contribution, includeEvents bool) {
	p.seen[[16]byte(c.Key)] = struct{}{}
	p.held++
	p.total++
	p.byDataset[c.Dataset]++
	at := time.Unix(0, c.At).UTC()
	p.observeTime(at)
	if c.EventType == "" {
		p.unnormalized++
	} else {
		p.byEventType[c.EventType]++
		if c.Domain == "" && c.Control == "" && c.Metric == "" {
			p.unmapped++
		} else {
			if c.Domain != "" {
				p.byDomain[c.Domain]++
			}
			if c.Control != "" {
				p.byControl[c.Control]++
			}
			if c.Metric != "" {
				p.byMetric[c.Metric]++
			}
			p.byMapping[[3]string{c.Domain, c.Control, c.Metric}]++
		}
	}
	if c.Incident != nil {
		p.incidents[c.Incident.ID] = *c.Incident
		return
	}
	if includeEvents && len(c.Event) > 0 {
		p.events = append(p.events, eventEntry{ts: c.At, id: c.ID, raw: c.Event})
	}
}

func (r *record) isIncident() bool {
	return r.lr.EventName() == a.EventIncidentCandidate || r.hasIncidentRule && r.dataset == a.DatasetIncidentCandidates
}

// incidentOf reads an IncidentCandidate record's attributes (processor README, "IncidentCandidate
// records").
func incidentOf(lr plog.LogRecord) docIncident {
	attrs := lr.Attributes()
	inc := docIncident{
		ID:          attrString(attrs, a.IncidentID),
		Rule:        attrString(attrs, a.IncidentRule),
		Severity:    attrString(attrs, a.IncidentSeverity),
		Description: attrString(attrs, a.IncidentDescription),
		Window: docTimeWindow{
			Start: normalizeTime(attrString(attrs, a.IncidentWindowStart)),
			End:   normalizeTime(attrString(attrs, a.IncidentWindowEnd)),
		},
		Entities: map[string]any{},
		Evidence: docEvidence{RecordIDs: []string{}},
	}
	if inc.ID == "" {
		inc.ID = attrString(attrs, a.RecordID)
	}
	if v, ok := attrs.Get(a.IncidentEntities); ok && v.Type() == pcommon.ValueTypeMap {
		inc.Entities = jsonMap(v.Map())
	}
	if v, ok := attrs.Get(a.IncidentContext); ok && v.Type() == pcommon.ValueTypeMap && v.Map().Len() > 0 {
		inc.Context = jsonMap(v.Map())
	}
	if v, ok := attrs.Get(a.IncidentRecordIDs); ok && v.Type() == pcommon.ValueTypeSlice {
		for i := 0; i < v.Slice().Len(); i++ {
			inc.Evidence.RecordIDs = append(inc.Evidence.RecordIDs, v.Slice().At(i).AsString())
		}
	}
	sort.Strings(inc.Evidence.RecordIDs)
	inc.Evidence.Count = int64(len(inc.Evidence.RecordIDs))
	if v, ok := attrs.Get(a.IncidentRecordCount); ok && v.Type() == pcommon.ValueTypeInt {
		inc.Evidence.Count = v.Int()
	}
	if v, ok := attrs.Get(a.IncidentDistinctCount); ok && v.Type() == pcommon.ValueTypeInt {
		n := v.Int()
		inc.DistinctCount = &n
	}
	inc.DistanceKm = finiteDouble(attrs, a.IncidentDistanceKm)
	inc.SpeedKmh = finiteDouble(attrs, a.IncidentSpeedKmh)
	return inc
}

func finiteDouble(m pcommon.Map, key string) *float64 {
	v, ok := m.Get(key)
	if !ok {
		return nil
	}
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		f = v.Double()
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	default:
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// normalizeTime re-formats an RFC 3339 time in the document's one format; anything else is kept as is.
func normalizeTime(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return formatTime(t)
	}
	return s
}

// jsonMap converts attributes into JSON values (see jsonValue).
func jsonMap(m pcommon.Map) map[string]any {
	out := make(map[string]any, m.Len())
	for k, v := range m.All() {
		out[k] = jsonValue(v)
	}
	return out
}

// jsonValue converts a pdata value into a JSON value: strings, booleans, integers and doubles as such
// (doubles that are not finite as the strings "NaN", "+Inf", "-Inf"), bytes as base64, slices as arrays,
// maps as objects, empty as null.
func jsonValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		switch {
		case math.IsNaN(f):
			return "NaN"
		case math.IsInf(f, 1):
			return "+Inf"
		case math.IsInf(f, -1):
			return "-Inf"
		}
		return f
	case pcommon.ValueTypeBytes:
		return v.Bytes().AsRaw() // encoding/json writes []byte as base64
	case pcommon.ValueTypeSlice:
		s := v.Slice()
		out := make([]any, s.Len())
		for i := 0; i < s.Len(); i++ {
			out[i] = jsonValue(s.At(i))
		}
		return out
	case pcommon.ValueTypeMap:
		return jsonMap(v.Map())
	default:
		return nil
	}
}

// build makes the period's document.
func (p *periodState) build(key tenantKey, period time.Duration, includeEvents bool, generatedAt time.Time) document {
	doc := document{
		ExportVersion: ExportVersion,
		DocumentID:    documentID(key, p.start, period),
		Tenant:        docTenant{ID: key.id, Name: key.name},
		Period: docPeriod{
			Start:    formatTime(p.start),
			End:      formatTime(p.start.Add(period)),
			Duration: isoDuration(period),
		},
		Records: docRecords{
			Total:        p.total,
			ByDataset:    p.byDataset,
			Unmapped:     p.unmapped,
			Unnormalized: p.unnormalized,
			Dropped:      p.dropped,
		},
		Counts: docCounts{
			ByDomain:    p.byDomain,
			ByControl:   p.byControl,
			ByMetric:    p.byMetric,
			ByEventType: p.byEventType,
			ByMapping:   make([]docMapping, 0, len(p.byMapping)),
		},
		IncidentCandidates: make([]docIncident, 0, len(p.incidents)),
	}
	if !p.first.IsZero() {
		doc.TimeRange = docTimeRange{First: formatTime(p.first), Last: formatTime(p.last)}
	} else { // only dropped records: the period itself
		doc.TimeRange = docTimeRange{First: doc.Period.Start, Last: doc.Period.Start}
	}
	for k, n := range p.byMapping {
		doc.Counts.ByMapping = append(doc.Counts.ByMapping, docMapping{Domain: k[0], Control: k[1], Metric: k[2], Count: n})
	}
	sort.Slice(doc.Counts.ByMapping, func(i, j int) bool {
		x, y := doc.Counts.ByMapping[i], doc.Counts.ByMapping[j]
		return strings.Join([]string{x.Domain, x.Control, x.Metric}, "\x00") < strings.Join([]string{y.Domain, y.Control, y.Metric}, "\x00")
	})
	for _, inc := range p.incidents {
		doc.IncidentCandidates = append(doc.IncidentCandidates, inc)
	}
	sort.Slice(doc.IncidentCandidates, func(i, j int) bool {
		x, y := doc.IncidentCandidates[i], doc.IncidentCandidates[j]
		if x.Window.Start != y.Window.Start {
			return x.Window.Start < y.Window.Start
		}
		if x.Window.End != y.Window.End {
			return x.Window.End < y.Window.End
		}
		if x.Rule != y.Rule {
			return x.Rule < y.Rule
		}
		return x.ID < y.ID
	})
	if includeEvents {
		slices.SortFunc(p.events, func(x, y eventEntry) int {
			switch {
			case x.ts != y.ts:
				if x.ts < y.ts {
					return -1
				}
				return 1
			case x.id != y.id:
				return strings.Compare(x.id, y.id)
			}
			return strings.Compare(string(x.raw), string(y.raw))
		})
		events := make([]json.RawMessage, len(p.events))
		for i, e := range p.events {
			events[i] = e.raw
		}
		doc.Events = &events
	}
	if !generatedAt.IsZero() {
		doc.GeneratedAt = formatTime(generatedAt)
	}
	return doc
}

// documentID names a tenant's document of one period, whatever its content: the tenant id (else its
// name), the period start and the period length, e.g. "1111…/2024-03-13T11:00:00Z/PT1H".
func documentID(key tenantKey, start time.Time, period time.Duration) string {
	tenant := key.id
	if tenant == "" {
		tenant = key.name
	}
	return tenant + "/" + formatTime(start) + "/" + isoDuration(period)
}

// resume makes a period's starting point from its document written earlier (after a restart, or after
// its state was released): counts, incidents and events continue; the dedup keys are not in the
// document, so a record counted before is counted again if it is delivered again.
func resume(doc *document, start time.Time) *periodState {
	p := newPeriodState(start)
	p.total = doc.Records.Total
	p.unmapped = doc.Records.Unmapped
	p.unnormalized = doc.Records.Unnormalized
	p.dropped = doc.Records.Dropped
	addAll := func(dst, src map[string]int64) {
		for k, v := range src {
			dst[k] += v
		}
	}
	addAll(p.byDataset, doc.Records.ByDataset)
	addAll(p.byDomain, doc.Counts.ByDomain)
	addAll(p.byControl, doc.Counts.ByControl)
	addAll(p.byMetric, doc.Counts.ByMetric)
	addAll(p.byEventType, doc.Counts.ByEventType)
	for _, m := range doc.Counts.ByMapping {
		p.byMapping[[3]string{m.Domain, m.Control, m.Metric}] += m.Count
	}
	if doc.Records.Total > 0 {
		if t, err := time.Parse(time.RFC3339Nano, doc.TimeRange.First); err == nil {
			p.observeTime(t)
		}
		if t, err := time.Parse(time.RFC3339Nano, doc.TimeRange.Last); err == nil {
			p.observeTime(t)
		}
	}
	for _, inc := range doc.IncidentCandidates {
		if inc.Entities == nil {
			inc.Entities = map[string]any{}
		}
		if inc.Evidence.RecordIDs == nil {
			inc.Evidence.RecordIDs = []string{}
		}
		p.incidents[inc.ID] = inc
	}
	if doc.Events != nil {
		for _, raw := range *doc.Events {
			var head struct {
				RecordID  string `json:"record_id"`
				Timestamp string `json:"timestamp"`
			}
			if json.Unmarshal(raw, &head) != nil {
				continue
			}
			t, _ := time.Parse(time.RFC3339Nano, head.Timestamp)
			p.events = append(p.events, eventEntry{ts: t.UnixNano(), id: head.RecordID, raw: raw})
		}
		p.held += len(p.events)
	}
	p.written = true
	return p
}
