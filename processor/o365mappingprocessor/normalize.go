package o365mappingprocessor

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Reasons a record cannot be normalized (the `reason` attribute of
// otelcol_o365_mapping_records_unnormalizable).
const (
	reasonUnknownDataset = "unknown_dataset"
	reasonInvalidBody    = "invalid_body"
	reasonMissingField   = "missing_field"
	reasonInvalidField   = "invalid_field"
)

// normError says why a record could not be normalized. The record then passes through unchanged but
// for the o365.normalization.error attribute.
type normError struct {
	reason string
	msg    string
}

func (e *normError) Error() string { return e.msg }

func missing(field string) *normError {
	return &normError{reason: reasonMissingField, msg: "missing required field `" + field + "`"}
}

func invalid(field, want string) *normError {
	return &normError{reason: reasonInvalidField, msg: "field `" + field + "` is not " + want}
}

// dataset is one kind of record the processor normalizes: a catalog dataset with the facts only the
// processor has (its log_type and normalizer).
type dataset struct {
	idx       int    // index into per-batch counters: the catalog index, then the extra kinds below
	name      string // o365.dataset (catalog)
	eventName string // LogRecord EventName set by the receiver (catalog)
	logType   string // o365.log_type
	timeField string // body field that holds the event's own time (catalog EventTimeField; "" = none)
	normalize func(n *normalizer, lr plog.LogRecord, body pcommon.Map) (eventType string, err *normError)
}

// processorFacts are what the processor adds to each catalog dataset.
var processorFacts = map[*catalog.Dataset]struct {
	logType   string
	normalize func(n *normalizer, lr plog.LogRecord, body pcommon.Map) (string, *normError)
}{
	catalog.SignIns:                   {a.LogTypeSignIn, normalizeSignIn},
	catalog.DirectoryAudits:           {a.LogTypeAudit, normalizeDirectoryAudit},
	catalog.SecurityAlerts:            {a.LogTypeSecurityAlert, normalizeSecurityAlert},
	catalog.RiskDetections:            {a.LogTypeRiskDetection, normalizeRiskDetection},
	catalog.RoleAssignments:           {a.LogTypeRoleAssignment, normalizeRoleAssignment},
	catalog.ConditionalAccessPolicies: {a.LogTypeConditionalAccessPolicy, normalizeConditionalAccessPolicy},
	catalog.MFACoverage:               {a.LogTypeMFARegistration, normalizeMFARegistration},
	catalog.SecurityIncidents:         {a.LogTypeSecurityIncident, normalizeSecurityIncident},
	catalog.IntuneAuditEvents:         {a.LogTypeIntuneAudit, normalizeIntuneAudit},
	catalog.RiskyUsers:                {a.LogTypeRiskyUser, normalizeRiskyUser},
	catalog.AuditAzureAD:              {a.LogTypeUnifiedAudit, normalizeUnifiedAudit},
	catalog.AuditExchange:             {a.LogTypeUnifiedAudit, normalizeUnifiedAudit},
	catalog.AuditSharePoint:           {a.LogTypeUnifiedAudit, normalizeUnifiedAudit},
	catalog.AuditGeneral:              {a.LogTypeUnifiedAudit, normalizeUnifiedAudit},
	catalog.DLP:                       {a.LogTypeDLP, normalizeUnifiedAudit},
}

var (
	// byCatalog holds one dataset per catalog dataset, in catalog order.
	byCatalog = func() []*dataset {
		out := make([]*dataset, 0, len(catalog.All()))
		for _, c := range catalog.All() {
			f, ok := processorFacts[c]
			if !ok {
				panic("o365mappingprocessor: no normalizer for catalog dataset " + c.Name)
			}
			out = append(out, &dataset{idx: c.Index(), name: c.Name, eventName: c.EventName, logType: f.logType,
				timeField: c.EventTimeField, normalize: f.normalize})
		}
		return out
	}()
	// dsMFACoverageSummary is the receiver's summary record of an mfa_coverage snapshot.
	dsMFACoverageSummary = &dataset{idx: len(byCatalog), name: a.DatasetMFACoverage, eventName: a.EventMFACoverageSummary,
		logType: a.LogTypeMFACoverage, normalize: normalizeMFACoverageSummary}
	// dsUnknown counts records that name an o365 dataset or event this processor does not know.
	dsUnknown = &dataset{idx: len(byCatalog) + 1, name: "unknown"}

	// allDatasets is indexed by dataset.idx.
	allDatasets = append(append([]*dataset(nil), byCatalog...), dsMFACoverageSummary, dsUnknown)

	datasetByEvent = func() map[string]*dataset {
		m := map[string]*dataset{dsMFACoverageSummary.eventName: dsMFACoverageSummary,
			"o365.mfa_coverage": dsMFACoverageSummary} // the summary's name in earlier receiver versions
		for _, ds := range byCatalog {
			m[ds.eventName] = ds
		}
		return m
	}()
	datasetByName = func() map[string]*dataset {
		m := map[string]*dataset{}
		for _, ds := range byCatalog {
			m[ds.name] = ds
		}
		return m
	}()
)

// datasetOf returns the processor's dataset of a catalog dataset.
func datasetOf(c *catalog.Dataset) *dataset { return byCatalog[c.Index()] }

// datasetFor identifies a record by its EventName, else by its resource's o365.dataset. foreign is true
// for records that are not the o365 receiver's at all: they pass untouched and uncounted.
func datasetFor(eventName, resourceDataset string) (ds *dataset, foreign bool) {
	if ds, ok := datasetByEvent[eventName]; ok {
		return ds, false
	}
	if ds, ok := datasetByName[resourceDataset]; ok {
		return ds, false
	}
	if resourceDataset != "" || strings.HasPrefix(eventName, "o365.") {
		return dsUnknown, false
	}
	return nil, true
}

// normalizer holds the options every dataset normalizer applies.
type normalizer struct {
	keepRaw bool
	ocsf    bool
	pseudo  *pseudonymizer // nil: identifiers stay as they are
	// internalDomains are the configured `internal_domains`, lower-case: mail to them is not forwarding
	// outside the organisation.
	internalDomains []string
}

// user returns a user identifier as it is written to attributes: pseudonymized when configured.
func (n *normalizer) user(s string) string {
	if n.pseudo == nil || s == "" {
		return s
	}
	return n.pseudo.hash(s)
}

// pseudonymizeBody replaces identifier fields of a kept body with their pseudonyms.
func (n *normalizer) pseudonymizeBody(vals ...pcommon.Value) {
	if n.pseudo == nil || !n.keepRaw {
		return
	}
	for _, v := range vals {
		if typeOf(v) == pcommon.ValueTypeStr && v.Str() != "" {
			v.SetStr(n.pseudo.hash(v.Str()))
		}
	}
}

// run normalizes one record of ds: on success the record carries the normalized attributes and its
// Timestamp, and no body unless keepRaw is set (normalization may have taken values out of it, see
// setField); on failure it is left as it was.
func (n *normalizer) run(ds *dataset, lr plog.LogRecord) (string, *normError) {
	if ds.normalize == nil {
		return "", &normError{reason: reasonUnknownDataset, msg: fmt.Sprintf("unknown o365 event %q", lr.EventName())}
	}
	body := lr.Body()
	if body.Type() != pcommon.ValueTypeMap {
		return "", &normError{reason: reasonInvalidBody, msg: "body is " + body.Type().String() + ", not the Graph object (a map)"}
	}
	m := body.Map()
	setTime := lr.Timestamp() == 0 && ds.timeField != ""
	if setTime {
		t, ok := parseTime(get(m, ds.timeField))
		if setTime = ok; ok {
			lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
		}
	}
	eventType, err := ds.normalize(n, lr, m)
	switch {
	case err != nil && setTime:
		lr.SetTimestamp(0) // a record that cannot be normalized passes unchanged
	case err == nil && !n.keepRaw:
		_ = body.FromRaw(nil)
	}
	return eventType, err
}

// writeCommon puts the attributes every normalized record has.
func writeCommon(attrs pcommon.Map, eventType, logType, activity string) {
	attrs.PutStr(a.EventType, eventType)
	attrs.PutStr(a.LogType, logType)
	attrs.PutStr(a.Source, a.SourceMicrosoft365)
	putStr(attrs, a.Activity, activity)
}

// ---- value helpers: tolerant of every type a fuzzer or a future Graph version may send ----

func putStr(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// field is a string field of a Graph object: the string normalization writes (the field's value, or a
// value derived from it) and the body Value that holds the field.
//
// When the body is dropped after normalization (keepRaw unset), an attribute written from a field that
// still holds that string takes the field's Value over (Value.MoveTo) rather than a copy: each new pdata
// string is an allocation, 18 of the 41 per sign-in. A field taken over is empty afterwards, so a second
// write of it copies f.s.
type field struct {
	s string
	v pcommon.Value
}

func strField(v pcommon.Value) field { return field{s: str(v), v: v} }

// apply derives the string to write from the field's (pseudonymized, clipped...).
func (f field) apply(fn func(string) string) field {
	f.s = fn(f.s)
	return f
}

// unchanged reports whether the field still holds the string to write.
func (f *field) unchanged() bool { return typeOf(f.v) == pcommon.ValueTypeStr && f.v.Str() == f.s }

// putField writes a string attribute from a field, unless empty (inlined: most optional fields are).
func (n *normalizer) putField(m pcommon.Map, k string, f field) {
	if f.s != "" {
		n.putNonEmpty(m, k, &f)
	}
}

func (n *normalizer) putNonEmpty(m pcommon.Map, k string, f *field) {
	if !n.keepRaw && f.unchanged() {
		f.v.MoveTo(m.PutEmpty(k))
		return
	}
	m.PutStr(k, f.s)
}

// setField sets dst to f's string.
func (n *normalizer) setField(dst pcommon.Value, f field) {
	if !n.keepRaw && f.unchanged() {
		f.v.MoveTo(dst)
		return
	}
	dst.SetStr(f.s)
}

// missingValue stands for an absent field: helpers read it as empty. Never modified.
var missingValue = pcommon.NewValueEmpty()

// get returns a field of m, or missingValue.
func get(m pcommon.Map, k string) pcommon.Value {
	if v, ok := m.Get(k); ok {
		return v
	}
	return missingValue
}

// typeOf is v's type; an unset Value (a field never read) is empty.
func typeOf(v pcommon.Value) pcommon.ValueType {
	if v == (pcommon.Value{}) {
		return pcommon.ValueTypeEmpty
	}
	return v.Type()
}

func str(v pcommon.Value) string {
	if typeOf(v) == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func mapOf(v pcommon.Value) (pcommon.Map, bool) {
	if typeOf(v) == pcommon.ValueTypeMap {
		return v.Map(), true
	}
	return pcommon.Map{}, false
}

func sliceOf(v pcommon.Value) (pcommon.Slice, bool) {
	if typeOf(v) == pcommon.ValueTypeSlice {
		return v.Slice(), true
	}
	return pcommon.Slice{}, false
}

// num reads a JSON number (decoded as Int or Double) or a numeric string.
func num(v pcommon.Value) (float64, bool) {
	switch typeOf(v) {
	case pcommon.ValueTypeDouble:
		f := v.Double()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(v.Str(), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// integer reads an integral JSON number or numeric string.
func integer(v pcommon.Value) (int64, bool) {
	switch typeOf(v) {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
	case pcommon.ValueTypeStr:
		i, err := strconv.ParseInt(v.Str(), 10, 64)
		return i, err == nil
	}
	return 0, false
}

func boolean(v pcommon.Value) (bool, bool) {
	switch typeOf(v) {
	case pcommon.ValueTypeBool:
		return v.Bool(), true
	case pcommon.ValueTypeStr:
		b, err := strconv.ParseBool(v.Str())
		return b, err == nil
	}
	return false, false
}

func parseTime(v pcommon.Value) (time.Time, bool) {
	s := str(v)
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1971 { // Graph's 0001-01-01 placeholders are "no time"
		return time.Time{}, false
	}
	return t, true
}

// Bounds of list and free-text attributes (README "Normalized attributes"): a longer Graph list is cut
// after maxListItems entries, a longer free-text value after maxValueLen bytes.
const (
	maxListItems = 16
	maxValueLen  = 256
)

// putStrings copies the non-empty strings of a slice value into a slice attribute (nothing when none),
// at most maxListItems of them.
func putStrings(m pcommon.Map, k string, v pcommon.Value) {
	s, ok := sliceOf(v)
	if !ok || s.Len() == 0 {
		return
	}
	var l strList
	for i := 0; i < s.Len(); i++ {
		l.add(m, k, str(s.At(i)))
	}
}

// strList appends to a string slice attribute created on the first non-empty value, bounded by
// maxListItems.
type strList struct{ s pcommon.Slice }

func (l *strList) add(m pcommon.Map, k, v string) {
	if v == "" {
		return
	}
	if l.s == (pcommon.Slice{}) {
		l.s = m.PutEmptySlice(k)
	}
	if l.s.Len() < maxListItems {
		l.s.AppendEmpty().SetStr(v)
	}
}

// addUnique adds v unless the list holds it already.
func (l *strList) addUnique(m pcommon.Map, k, v string) {
	if l.s != (pcommon.Slice{}) {
		for i := 0; i < l.s.Len(); i++ {
			if l.s.At(i).Str() == v {
				return
			}
		}
	}
	l.add(m, k, v)
}

// maps calls f for each map item of a list value, at most maxListItems times (f reports false for an
// item it skips, which does not count).
func maps(v pcommon.Value, f func(pcommon.Map) bool) {
	list, ok := sliceOf(v)
	if !ok {
		return
	}
	for i, n := 0, 0; i < list.Len() && n < maxListItems; i++ {
		if m, ok := mapOf(list.At(i)); ok && f(m) {
			n++
		}
	}
}

// clip bounds a free-text value to maxValueLen bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxValueLen {
		return s
	}
	i := maxValueLen
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// noneIsEmpty reads Graph's risk enums, where "none" means no value.
func noneIsEmpty(s string) string {
	if s == "none" {
		return ""
	}
	return s
}

// geo is a Graph signInLocation (sign-ins, risk detections).
type geo struct {
	city, state, country field
	lat, lon             float64
	hasLat, hasLon       bool
}

func (g *geo) read(v pcommon.Value) {
	m, ok := mapOf(v)
	if !ok {
		return
	}
	m.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case "city":
			g.city = strField(v)
		case "state":
			g.state = strField(v)
		case "countryOrRegion":
			g.country = strField(v)
		case "geoCoordinates":
			if c, ok := mapOf(v); ok {
				c.Range(func(k string, v pcommon.Value) bool {
					switch k {
					case "latitude":
						g.lat, g.hasLat = num(v)
						g.hasLat = g.hasLat && g.lat >= -90 && g.lat <= 90
					case "longitude":
						g.lon, g.hasLon = num(v)
						g.hasLon = g.hasLon && g.lon >= -180 && g.lon <= 180
					}
					return true
				})
			}
		}
		return true
	})
}

func (g *geo) write(n *normalizer, attrs pcommon.Map) {
	n.putField(attrs, a.GeoCountryISOCode, g.country)
	n.putField(attrs, a.GeoLocalityName, g.city)
	n.putField(attrs, a.GeoRegionName, g.state)
	if g.hasLat && g.hasLon {
		attrs.PutDouble(a.GeoLocationLat, g.lat)
		attrs.PutDouble(a.GeoLocationLon, g.lon)
	}
}

// splitVersion splits Graph's "Edge 122.0.0" / "Windows 10" into name and version (the last word when
// it starts with a digit).
func splitVersion(s string) (name, version string) {
	i := strings.LastIndexByte(s, ' ')
	if i > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// ---- snake_case event type segments, cached (Graph's categories and types are a small set) ----

const maxSegmentLen = 64

var segmentCache = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

const maxCachedSegments = 4096

// segment turns a Graph enum or category ("UserManagement", "anonymizedIPAddress") into an event type
// segment ("user_management", "anonymized_ip_address"): lower-case letters, digits and '_'.
func segment(s string) string {
	if s == "" {
		return "other"
	}
	segmentCache.RLock()
	out, ok := segmentCache.m[s]
	segmentCache.RUnlock()
	if ok {
		return out
	}
	out = snake(s)
	segmentCache.Lock()
	if len(segmentCache.m) < maxCachedSegments {
		segmentCache.m[s] = out
	}
	segmentCache.Unlock()
	return out
}

func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	lastUnderscore := true
	for i, r := range rs {
		switch {
		case r >= 'A' && r <= 'Z':
			if i > 0 && !lastUnderscore {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
				if (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9') || (prev >= 'A' && prev <= 'Z' && nextLower) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(r + ('a' - 'A'))
			lastUnderscore = false
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
			lastUnderscore = false
		default:
			if !lastUnderscore {
				b.WriteByte('_')
				lastUnderscore = true
			}
		}
		if b.Len() >= maxSegmentLen {
			break
		}
	}
	out := strings.Trim(b.String(), "_")
	if len(out) > maxSegmentLen {
		out = strings.TrimRight(out[:maxSegmentLen], "_")
	}
	if out == "" {
		return "other"
	}
	return out
}

// typeCache joins a dataset prefix and up to two segments into an event type, cached per input pair.
var typeCache = struct {
	sync.RWMutex
	m map[[3]string]string
}{m: map[[3]string]string{}}

func eventType(prefix, s1, s2 string) string {
	key := [3]string{prefix, s1, s2}
	typeCache.RLock()
	out, ok := typeCache.m[key]
	typeCache.RUnlock()
	if ok {
		return out
	}
	out = prefix + "." + segment(s1)
	if s2 != "" || prefix == "directory_audit" {
		out += "." + segment(s2)
	}
	typeCache.Lock()
	if len(typeCache.m) < maxCachedSegments {
		typeCache.m[key] = out
	}
	typeCache.Unlock()
	return out
}

// changeType is the event type suffix of a snapshot record: its o365.change, or "snapshot".
func changeType(lr plog.LogRecord) string {
	if v, ok := lr.Attributes().Get(a.Change); ok {
		switch v.Str() {
		case a.ChangeAdded:
			return a.ChangeAdded
		case a.ChangeModified:
			return a.ChangeModified
		case a.ChangeRemoved:
			return a.ChangeRemoved
		}
	}
	return "snapshot"
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
