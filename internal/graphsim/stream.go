package graphsim

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// graphTimeUnit is the finest resolution of Graph timestamps (7 fractional digits).
const graphTimeUnit = 100 * time.Nanosecond

// anchorUnit is the resolution of the anchor: a multiple of every dataset's time unit, so that every
// synthetic timestamp is exactly representable in its dataset's rendering.
const anchorUnit = time.Millisecond

// stream is one tenant × dataset event stream: a lazily generated synthetic part (record i is computed
// from the seed when asked for) merged by time with records injected at run time.
type stream struct {
	def    *datasetDef
	spec   DatasetSpec
	seed   uint64
	anchor time.Time
	tenant *tenantData
	unit   time.Duration // resolution of the time field (def.timeUnit)

	// synthetic timing, derived from spec
	histGroups int64
	histStep   time.Duration
	liveStep   time.Duration

	continued atomic.Int64 // pages served that had more records (OmitNextLinkEvery)

	mu       sync.RWMutex
	injected []injectedRecord // sorted by time (stable for equal times)
	// insertedAt[k] is the index the k-th injected record was inserted at; cursors replay the inserts
	// made after them so that their injected index keeps pointing at the same record.
	insertedAt []int
}

type injectedRecord struct {
	at        time.Time
	visibleAt time.Time
	id        string
	ts        string               // the time field as the record carries it
	alt       map[string]time.Time // the record's alternative time properties it carries
	raw       json.RawMessage
}

func newStream(def *datasetDef, spec DatasetSpec, seed uint64, anchor time.Time, tenant *tenantData) *stream {
	unit := def.timeUnit
	if unit <= 0 {
		unit = 100 * time.Nanosecond
	}
	if spec.PerTimestamp <= 0 {
		spec.PerTimestamp = 1
	}
	if spec.Versions <= 0 {
		spec.Versions = 1
	}
	s := &stream{def: def, spec: spec, seed: seed, anchor: anchor, tenant: tenant, unit: unit}
	g := int64(spec.PerTimestamp)
	if spec.Count > 0 {
		s.histGroups = (int64(spec.Count) + g - 1) / g
		s.histStep = (spec.Span / time.Duration(s.histGroups)).Truncate(unit)
		if s.histStep <= 0 {
			s.histStep = unit
		}
	}
	if spec.RatePerSecond > 0 {
		s.liveStep = (time.Duration(float64(g) / spec.RatePerSecond * float64(time.Second))).Truncate(unit)
		if s.liveStep <= 0 {
			s.liveStep = unit
		}
	}
	return s
}

// versions is the number of records that share an id (DatasetSpec.Versions).
func (s *stream) versions() int64 { return int64(s.spec.Versions) }

// maxStep bounds the time between consecutive synthetic records (a group's jitter is below half a step).
func (s *stream) maxStep() time.Duration { return 2 * max(s.histStep, s.liveStep, s.unit) }

// syntheticTotal is the number of synthetic records whose group has started by now.
func (s *stream) syntheticTotal(now time.Time) int64 {
	n := int64(s.spec.Count)
	if s.liveStep > 0 && !now.Before(s.anchor) {
		groups := int64(now.Sub(s.anchor)/s.liveStep) + 1
		n += groups * int64(s.spec.PerTimestamp)
	}
	return n
}

// timeAt is the timestamp of synthetic record i. Records of a group share it exactly; a per-group
// jitter below half a step keeps the sequence monotonic while giving realistic sub-second digits.
func (s *stream) timeAt(i int64) time.Time {
	g := int64(s.spec.PerTimestamp)
	if i < int64(s.spec.Count) {
		grp := i / g
		base := s.anchor.Add(-time.Duration(s.histGroups) * s.histStep).Add(time.Duration(grp) * s.histStep)
		return base.Add(jitter(s.seed, grp, s.histStep, s.unit))
	}
	grp := (i - int64(s.spec.Count)) / g
	base := s.anchor.Add(time.Duration(grp) * s.liveStep)
	return base.Add(jitter(s.seed^0x5bd1e995, grp, s.liveStep, s.unit))
}

func jitter(seed uint64, grp int64, step, unit time.Duration) time.Duration {
	half := int64(step / 2 / unit)
	if half <= 0 {
		return 0
	}
	return time.Duration(mix(seed, uint64(grp))%uint64(half)) * unit
}

// visibleAt is when synthetic record i can first be listed (late arrival delays some records).
func (s *stream) visibleAt(i int64) time.Time {
	t := s.timeAt(i)
	if s.spec.LateFraction > 0 && unitFloat(mix(s.seed^0x1a7e, uint64(i))) < s.spec.LateFraction {
		return t.Add(s.spec.LateDelay)
	}
	return t
}

// bounds is a time interval from a $filter: From/To nil = unbounded.
type bounds struct {
	from, to         *time.Time
	fromOpen, toOpen bool // gt / lt rather than ge / le
}

func (b bounds) aboveLow(t time.Time) bool {
	if b.from == nil {
		return true
	}
	if b.fromOpen {
		return t.After(*b.from)
	}
	return !t.Before(*b.from)
}

func (b bounds) contains(t time.Time) bool { return b.aboveLow(t) && !b.aboveHigh(t) }

func (b bounds) aboveHigh(t time.Time) bool {
	if b.to == nil {
		return false
	}
	if b.toOpen {
		return !t.Before(*b.to)
	}
	return t.After(*b.to)
}

// syntheticRange is [lo, hi) of synthetic indices whose timestamps fall in b (and have started by now).
func (s *stream) syntheticRange(b bounds, now time.Time) (int64, int64) {
	total := s.syntheticTotal(now)
	lo := int64(sort.Search(int(total), func(i int) bool { return s.aboveLow(int64(i), b) }))
	hi := int64(sort.Search(int(total), func(i int) bool { return b.aboveHigh(s.timeAt(int64(i))) || s.timeAt(int64(i)).After(now) }))
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

func (s *stream) aboveLow(i int64, b bounds) bool { return b.aboveLow(s.timeAt(i)) }

// injectedRange is [lo, hi) of injected records in b; the caller holds s.mu.
func (s *stream) injectedRange(b bounds) (int, int) {
	lo := sort.Search(len(s.injected), func(i int) bool { return b.aboveLow(s.injected[i].at) })
	hi := sort.Search(len(s.injected), func(i int) bool { return b.aboveHigh(s.injected[i].at) })
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// inject adds records at their own timestamps; they are visible from visibleAt (zero = at once).
func (s *stream) inject(recs []injectedRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		pos := sort.Search(len(s.injected), func(i int) bool { return s.injected[i].at.After(r.at) })
		s.injected = append(s.injected, injectedRecord{})
		copy(s.injected[pos+1:], s.injected[pos:])
		s.injected[pos] = r
		s.insertedAt = append(s.insertedAt, pos)
	}
}

// cursor is a position in the merged order: the next synthetic and injected indices to look at, and
// how many records had been injected then. It is what $skiptoken encodes; it stays valid while records
// are added (see rebase).
type cursor struct {
	syn  int64
	inj  int
	nInj int
}

func (c cursor) token() string { return fmt.Sprintf("%x.%x.%x", c.syn, c.inj, c.nInj) }

func parseCursor(tok string) (cursor, error) {
	var c cursor
	if _, err := fmt.Sscanf(tok, "%x.%x.%x", &c.syn, &c.inj, &c.nInj); err != nil || c.token() != tok || c.nInj < 0 {
		return cursor{}, fmt.Errorf("invalid $skiptoken")
	}
	return c, nil
}

// rebase moves c.inj over the records injected since c was made (an insert at or before an index shifts
// it), so that it designates the same record, and clamps it to the current range [ilo, ihi); the caller
// holds s.mu. Records injected before the walk are then never lost or repeated. A record injected during
// the walk is listed if it lands past the last injected record passed (later in asc, earlier in desc),
// even if that puts it out of time order with synthetic records already listed.
func (s *stream) rebase(c cursor, desc bool, ilo, ihi int) cursor {
	if c.nInj > len(s.insertedAt) {
		return c // not a cursor of this stream: leave it as it is
	}
	for _, pos := range s.insertedAt[c.nInj:] {
		if (!desc && pos < c.inj) || (desc && pos <= c.inj+1) {
			c.inj++
		}
	}
	c.nInj = len(s.insertedAt)
	// An insert right at the cursor but outside the range (below it in asc, above it in desc) must not
	// push the cursor out of the range.
	if !desc && c.inj < ilo {
		c.inj = ilo
	}
	if desc && c.inj > ihi-1 {
		c.inj = ihi - 1
	}
	return c
}

// page collects up to top visible records of b in the given order starting at cur (nil = the start),
// and returns the records and the cursor of the next page (nil when the range is exhausted).
func (s *stream) page(b bounds, desc bool, top int, cur *cursor, now time.Time) ([]json.RawMessage, *cursor) {
	return s.query(listQuery{bounds: b, desc: desc, top: top, cursor: cur}, now, false)
}

// query is page for a whole list query: bounds on the time field and on alternative time properties.
// A filter on an alternative property (never later than the time field, at most maxLead earlier) maps
// to a wider range of the stream whose records are then tested one by one.
func (s *stream) query(lq listQuery, now time.Time, beta bool) ([]json.RawMessage, *cursor) {
	synB, injB := lq.bounds, lq.bounds
	for field, b := range lq.alt {
		if b.from != nil {
			synB.narrowFrom(*b.from, false)
			injB.narrowFrom(*b.from, false)
		}
		if b.to != nil {
			synB.narrowTo(b.to.Add(s.def.altTimes[field].maxLead(s)), false)
		}
	}
	slo, shi := s.syntheticRange(synB, now)
	s.mu.RLock()
	defer s.mu.RUnlock()
	ilo, ihi := s.injectedRange(injB)
	desc, top, skip := lq.desc, lq.top, lq.skip
	if lq.cursor != nil {
		skip = 0 // a nextLink continues after what the first page skipped
	}
	var c cursor
	switch {
	case lq.cursor != nil:
		c = s.rebase(*lq.cursor, desc, ilo, ihi)
	case desc:
		c = cursor{syn: shi - 1, inj: ihi - 1, nInj: len(s.insertedAt)}
	default:
		c = cursor{syn: slo, inj: ilo, nInj: len(s.insertedAt)}
	}
	var out []json.RawMessage
	for {
		synOK := c.syn >= slo && c.syn < shi
		injOK := c.inj >= ilo && c.inj < ihi
		if !synOK && !injOK {
			return out, nil
		}
		if len(out) == top {
			return out, &c
		}
		takeSyn := synOK
		if synOK && injOK {
			ts, ti := s.timeAt(c.syn), s.injected[c.inj].at
			if desc {
				takeSyn = ts.After(ti)
			} else {
				takeSyn = !ts.After(ti)
			}
		}
		step := int64(1)
		if desc {
			step = -1
		}
		if takeSyn {
			if !s.visibleAt(c.syn).After(now) && s.syntheticMatches(c.syn, lq.alt) {
				if skip > 0 {
					skip--
				} else {
					out = append(out, s.def.build(s, c.syn, beta))
				}
			}
			c.syn += step
		} else {
			r := s.injected[c.inj]
			if !r.visibleAt.After(now) && r.matches(lq.alt) {
				if skip > 0 {
					skip--
				} else {
					out = append(out, r.raw)
				}
			}
			c.inj += int(step)
		}
	}
}

func (s *stream) syntheticMatches(i int64, alt map[string]bounds) bool {
	for field, b := range alt {
		if !b.contains(s.def.altTimes[field].at(s, i)) {
			return false
		}
	}
	return true
}

func (r injectedRecord) matches(alt map[string]bounds) bool {
	for field, b := range alt {
		t, ok := r.alt[field]
		if !ok || !b.contains(t) {
			return false
		}
	}
	return true
}

// ids lists the ids of every record with a timestamp in [from, to], visible yet or not: the ground truth
// a test compares a receiver's output with. A versioned item's id appears once per version.
func (s *stream) ids(from, to time.Time) []string {
	out := []string{}
	s.each(from, to, func(id, _ string) { out = append(out, id) })
	return out
}

// keys is ids with each record's time field as served: "id@time", unique per record version.
func (s *stream) keys(from, to time.Time) []string {
	out := []string{}
	s.each(from, to, func(id, ts string) { out = append(out, id+"@"+ts) })
	return out
}

// each calls f with the id and rendered time of every record in [from, to]: synthetic ones in time
// order, then injected ones in time order.
func (s *stream) each(from, to time.Time, f func(id, ts string)) {
	b := bounds{from: &from, to: &to}
	lo, hi := s.syntheticRange(b, to)
	for i := lo; i < hi; i++ {
		f(s.def.id(s, i), s.def.formatTime(s.timeAt(i)))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ilo, ihi := s.injectedRange(b)
	for _, r := range s.injected[ilo:ihi] {
		f(r.id, r.ts)
	}
}

// mix is splitmix64 of a and b: a fast, well-distributed deterministic hash.
func mix(a, b uint64) uint64 {
	z := a ^ (b * 0x9e3779b97f4a7c15)
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// omitsNextLink says whether the page being served, which has more records, goes without its nextLink.
func (st *stream) omitsNextLink() bool {
	if st.spec.OmitNextLink {
		return true
	}
	n := int64(st.spec.OmitNextLinkEvery)
	return n > 0 && st.continued.Add(1)%n == 0
}
