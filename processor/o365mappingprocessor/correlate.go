package o365mappingprocessor

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// The correlation engine keeps, per tenant, a bounded in-memory state of recent matching records
// ("entries"), grouped by rule × group-by values. It is not persisted: a restart loses open windows.
//
// Time: windows of event rules are measured in event time (LogRecord Timestamp), and their groups expire
// against the tenant's newest event time seen, so a backfill of old records correlates as if live. Join
// rows are snapshot state: they expire `window` after they were last fetched (ObservedTimestamp),
// measured against the newest fetch time seen for the tenant.

// maxFutureSkew bounds how far ahead of the wall clock a record's time may move the tenant's clock.
const maxFutureSkew = 10 * time.Minute

// maxPolicyStates bounds the remembered conditional access policy states per tenant.
const maxPolicyStates = 10000

// sweepInterval is how often (wall clock) a tenant's expired groups are swept.
const sweepInterval = time.Minute

type engine struct {
	rules      []*rule
	maxEntries int
	now        func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantState
}

func newEngine(rules []*rule, maxEntries int) *engine {
	return &engine{rules: rules, maxEntries: maxEntries, now: time.Now, tenants: map[string]*tenantState{}}
}

// tenant returns the state of a tenant, created on first use.
func (e *engine) tenant(key, label string) *tenantState {
	e.mu.Lock()
	defer e.mu.Unlock()
	ts, ok := e.tenants[key]
	if !ok {
		ts = &tenantState{key: strings.Clone(key), label: strings.Clone(label), groups: map[groupKey]*group{},
			policyStates: map[string]policyState{}}
		e.tenants[ts.key] = ts
	}
	return ts
}

// entries returns the state size per tenant label (for the gauge).
func (e *engine) entries() map[string]int {
	e.mu.Lock()
	list := make([]*tenantState, 0, len(e.tenants))
	for _, ts := range e.tenants {
		list = append(list, ts)
	}
	e.mu.Unlock()
	out := map[string]int{}
	for _, ts := range list {
		ts.mu.Lock()
		out[ts.label] += ts.entries + len(ts.policyStates)
		ts.mu.Unlock()
	}
	return out
}

type tenantState struct {
	key, label string

	mu           sync.Mutex
	groups       map[groupKey]*group
	lru          list.List // of *group; front = most recently updated
	entries      int       // sum of group.n
	clock        time.Time // newest event time seen (bounded by wall clock + maxFutureSkew)
	rowClock     time.Time // newest fetch time of a join row seen (bounded likewise)
	lastSweep    time.Time
	evicted      int                    // entries evicted since the counter was last read
	policyStates map[string]policyState // conditional access policy id → state last seen
}

// policyState is a conditional access policy's state as last seen, and the version (the record's time:
// the policy's modifiedDateTime) it was seen in.
type policyState struct {
	state   string
	version pcommon.Timestamp
}

type groupKey struct {
	rule int
	key  string
}

// group is the state of one rule for one set of group-by values.
type group struct {
	key    groupKey
	values []string // group-by values, for the incident's entities
	elem   *list.Element
	last   time.Time // newest time in the group (event time; wall time for join rows)
	n      int       // entries held: 1 for the group + its events

	steps    [][]event        // threshold, travel: steps[0]; sequence: one slice per step
	distinct map[string]event // distinct: value → newest event
	left     map[string]event // join: record id → row
	right    *event           // join

	fired       bool
	firedAt     time.Time
	fingerprint string
}

type event struct {
	t        time.Time
	id       string
	lat, lon float64
	value    string // distinct value
}

// record is what the engine sees of one normalized record.
type record struct {
	attrs     pcommon.Map
	eventType string
	logType   string
	id        string
	t         time.Time // event time
	observed  time.Time // fetch time (join rows)
	resource  pcommon.Resource
}

// incident is one rule fire, emitted as an IncidentCandidate record.
type incident struct {
	rule       *rule
	tenant     *tenantState
	resource   pcommon.Resource
	entities   [][2]string
	context    pcommon.Map
	start, end time.Time
	ids        []string
	details    [][2]any
	id         string
	group      *group
}

// observe feeds one record to every rule that can concern it and returns the incidents it completes.
// The caller holds ts.mu.
func (e *engine) observe(ts *tenantState, rec *record, now time.Time, out []*incident, suppressed []int) []*incident {
	if limit := now.Add(maxFutureSkew); rec.t.After(ts.clock) {
		ts.clock = rec.t
		if ts.clock.After(limit) {
			ts.clock = limit
		}
	}
	for _, r := range e.rules {
		if !r.gate.admits(rec.eventType, rec.logType) {
			continue
		}
		var inc *incident
		switch r.kind {
		case kindThreshold:
			inc = e.threshold(ts, r, rec)
		case kindDistinct:
			inc = e.distinctCount(ts, r, rec)
		case kindSequence:
			inc = e.sequence(ts, r, rec)
		case kindJoin:
			inc = e.join(ts, r, rec, now.Add(maxFutureSkew))
		case kindTravel:
			inc = e.travel(ts, r, rec)
		}
		if inc == nil {
			continue
		}
		if e.suppress(r, inc) {
			suppressed[r.idx]++
			continue
		}
		out = append(out, inc)
	}
	e.enforceCap(ts, now)
	return out
}

// groupKeyOf builds the group key of a record for r; ok is false when a group-by attribute is missing.
func groupKeyOf(r *rule, attrs pcommon.Map) (string, bool) {
	switch len(r.groupBy) {
	case 0:
		return "", true
	case 1:
		v, ok := attrs.Get(r.groupBy[0])
		if !ok {
			return "", false
		}
		s := valueString(v)
		return s, s != ""
	}
	var b strings.Builder
	for i, k := range r.groupBy {
		v, ok := attrs.Get(k)
		if !ok {
			return "", false
		}
		s := valueString(v)
		if s == "" {
			return "", false
		}
		if i > 0 {
			b.WriteByte(0x1f)
		}
		b.WriteString(s)
	}
	return b.String(), true
}

func valueString(v pcommon.Value) string {
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	if v.Type() == pcommon.ValueTypeEmpty {
		return ""
	}
	return v.AsString()
}

// getGroup returns the group of key for r, creating it when create is set (nil otherwise).
func (e *engine) getGroup(ts *tenantState, r *rule, key string, create bool) *group {
	gk := groupKey{rule: r.idx, key: key}
	if g, ok := ts.groups[gk]; ok {
		ts.lru.MoveToFront(g.elem)
		return g
	}
	if !create {
		return nil
	}
	gk.key = strings.Clone(key)
	g := &group{key: gk, n: 1}
	if len(r.groupBy) > 1 {
		g.values = strings.Split(gk.key, "\x1f")
	} else if len(r.groupBy) == 1 {
		g.values = []string{gk.key}
	}
	switch r.kind {
	case kindSequence:
		g.steps = make([][]event, len(r.steps))
	case kindThreshold, kindTravel:
		g.steps = make([][]event, 1)
	case kindDistinct:
		g.distinct = map[string]event{}
	case kindJoin:
		g.left = map[string]event{}
	}
	g.elem = ts.lru.PushFront(g)
	ts.groups[gk] = g
	ts.entries++
	return g
}

func (ts *tenantState) removeGroup(g *group) {
	ts.lru.Remove(g.elem)
	delete(ts.groups, g.key)
	ts.entries -= g.n
}

// addEvent appends ev to a step's events unless its record is already there (a redelivered record);
// at most capacity events are kept, the oldest dropped first.
func (ts *tenantState) addEvent(g *group, stepIdx int, ev event, capacity int) bool {
	evs := g.steps[stepIdx]
	for i := range evs {
		if evs[i].id == ev.id && ev.id != "" {
			return false
		}
	}
	ev.id = strings.Clone(ev.id)
	// keep time order; records mostly arrive in order, so this is an append
	i := len(evs)
	for i > 0 && evs[i-1].t.After(ev.t) {
		i--
	}
	evs = slices.Insert(evs, i, ev)
	g.n++
	ts.entries++
	if len(evs) > capacity {
		evs = evs[len(evs)-capacity:]
		g.n -= 1
		ts.entries--
	}
	g.steps[stepIdx] = evs
	if ev.t.After(g.last) {
		g.last = ev.t
	}
	return true
}

// prune drops a group's events older than its newest time minus the window.
func (ts *tenantState) prune(g *group, window time.Duration) {
	cut := g.last.Add(-window)
	for s, evs := range g.steps {
		i := 0
		for i < len(evs) && evs[i].t.Before(cut) {
			i++
		}
		if i > 0 {
			g.steps[s] = evs[i:]
			g.n -= i
			ts.entries -= i
		}
	}
}

func (ts *tenantState) clearSteps(g *group) {
	for s := range g.steps {
		g.n -= len(g.steps[s])
		ts.entries -= len(g.steps[s])
		g.steps[s] = nil
	}
}

func (e *engine) threshold(ts *tenantState, r *rule, rec *record) *incident {
	if !r.match.matches(rec.attrs) {
		return nil
	}
	key, ok := groupKeyOf(r, rec.attrs)
	if !ok {
		return nil
	}
	g := e.getGroup(ts, r, key, true)
	if !ts.addEvent(g, 0, event{t: rec.t, id: rec.id}, r.maxEvents) {
		return nil
	}
	ts.prune(g, r.window)
	if len(g.steps[0]) < r.threshold {
		return nil
	}
	evs := g.steps[0]
	inc := e.newIncident(ts, r, g, rec, evs[0].t, evs[len(evs)-1].t, idsOf(evs))
	ts.clearSteps(g)
	return inc
}

func (e *engine) distinctCount(ts *tenantState, r *rule, rec *record) *incident {
	if !r.match.matches(rec.attrs) {
		return nil
	}
	v, ok := rec.attrs.Get(r.distinct)
	if !ok {
		return nil
	}
	value := valueString(v)
	if value == "" {
		return nil
	}
	key, ok := groupKeyOf(r, rec.attrs)
	if !ok {
		return nil
	}
	g := e.getGroup(ts, r, key, true)
	if old, seen := g.distinct[value]; seen {
		if old.id == rec.id || !rec.t.After(old.t) {
			return nil // a redelivered record, or an older one: nothing new
		}
		old.t, old.id = rec.t, strings.Clone(rec.id)
		g.distinct[value] = old
	} else {
		value = strings.Clone(value)
		g.distinct[value] = event{t: rec.t, id: strings.Clone(rec.id), value: value}
		g.n++
		ts.entries++
	}
	if rec.t.After(g.last) {
		g.last = rec.t
	}
	cut := g.last.Add(-r.window)
	for k, ev := range g.distinct {
		if ev.t.Before(cut) {
			delete(g.distinct, k)
			g.n--
			ts.entries--
		}
	}
	for len(g.distinct) > r.maxEvents { // drop the oldest
		oldest := ""
		for k, ev := range g.distinct {
			if oldest == "" || ev.t.Before(g.distinct[oldest].t) {
				oldest = k
			}
		}
		delete(g.distinct, oldest)
		g.n--
		ts.entries--
	}
	if len(g.distinct) < r.threshold {
		return nil
	}
	evs := make([]event, 0, len(g.distinct))
	for _, ev := range g.distinct {
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(x, y event) int { return x.t.Compare(y.t) })
	inc := e.newIncident(ts, r, g, rec, evs[0].t, evs[len(evs)-1].t, idsOf(evs))
	inc.details = append(inc.details, [2]any{a.IncidentDistinctCount, int64(len(evs))})
	g.n -= len(g.distinct)
	ts.entries -= len(g.distinct)
	clear(g.distinct)
	return inc
}

// sequence: a record is remembered for every step it matches. A group is only created by the first
// step: a success before any failure is not remembered, which keeps the state proportional to failures.
func (e *engine) sequence(ts *tenantState, r *rule, rec *record) *incident {
	var g *group
	added := false
	for i := range r.steps {
		if !r.steps[i].match.matches(rec.attrs) {
			continue
		}
		if g == nil {
			key, ok := groupKeyOf(r, rec.attrs)
			if !ok {
				return nil
			}
			if g = e.getGroup(ts, r, key, i == 0); g == nil {
				return nil
			}
		}
		if ts.addEvent(g, i, event{t: rec.t, id: rec.id}, r.stepCaps[i]) {
			added = true
		}
	}
	if !added {
		return nil
	}
	ts.prune(g, r.window)
	chosen := matchSequence(r, g.steps)
	if chosen == nil {
		return nil
	}
	// The evidence is the run plus every other event of the steps inside it (all six failures before the
	// success, not only the five the threshold needs).
	start := g.steps[chosen[0][0]][chosen[0][1]].t
	end := start
	for _, c := range chosen {
		if t := g.steps[c[0]][c[1]].t; t.After(end) {
			end = t
		}
	}
	inRun := func(s, j int) bool {
		t := g.steps[s][j].t
		return slices.Contains(chosen, [2]int{s, j}) || (!t.Before(start) && !t.After(end) && s < len(r.steps)-1)
	}
	var evs []event
	for s := range g.steps {
		for j, ev := range g.steps[s] {
			if inRun(s, j) {
				evs = append(evs, ev)
			}
		}
	}
	inc := e.newIncident(ts, r, g, rec, start, end, idsOf(evs))
	// The evidence is used up: remove it.
	for s := range g.steps {
		kept := g.steps[s][:0]
		for j, ev := range g.steps[s] {
			if !inRun(s, j) {
				kept = append(kept, ev)
			}
		}
		removed := len(g.steps[s]) - len(kept)
		g.n -= removed
		ts.entries -= removed
		g.steps[s] = kept
	}
	return inc
}

// matchSequence finds the earliest run of the steps in time order within the window: for each candidate
// first event, take each step's first `count` events at or after the previous step's last one. It returns
// (step, index) pairs, or nil.
func matchSequence(r *rule, steps [][]event) [][2]int {
	for start := range steps[0] {
		t0 := steps[0][start].t
		end := t0.Add(r.window)
		cursor := t0
		var chosen [][2]int
		used := map[string]bool{}
		ok := true
		for s, st := range r.steps {
			taken := 0
			from := 0
			if s == 0 {
				from = start
			}
			for j := from; j < len(steps[s]) && taken < st.count; j++ {
				ev := steps[s][j]
				if ev.t.Before(cursor) || used[ev.id] {
					continue
				}
				if ev.t.After(end) {
					break
				}
				chosen = append(chosen, [2]int{s, j})
				used[ev.id] = true
				cursor = ev.t
				taken++
			}
			if taken < st.count {
				ok = false
				break
			}
		}
		if ok {
			return chosen
		}
	}
	return nil
}

// join keeps the current left rows (by record id) and right row of each group; it fires while both
// exist. Rows are timed by their fetch time (else their event time) and dropped when the tenant's newest
// fetch time is `window` past it.
func (e *engine) join(ts *tenantState, r *rule, rec *record, limit time.Time) *incident {
	var inc *incident
	for side, js := range []*joinSide{&r.left, &r.right} {
		if !js.sel.matches(rec.attrs) {
			continue
		}
		key, ok := groupKeyOf(r, rec.attrs)
		if !ok {
			continue
		}
		at := rec.observed
		if at.IsZero() {
			at = rec.t
		}
		if at.After(limit) {
			at = limit
		}
		if at.After(ts.rowClock) {
			ts.rowClock = at
		}
		present := js.where.matches(rec.attrs)
		g := e.getGroup(ts, r, key, present)
		if g == nil {
			continue
		}
		if side == 0 {
			if _, had := g.left[rec.id]; had {
				if !present {
					delete(g.left, rec.id)
					g.n--
					ts.entries--
				} else {
					g.left[rec.id] = event{t: at, id: g.left[rec.id].id}
				}
			} else if present {
				id := strings.Clone(rec.id)
				g.left[id] = event{t: at, id: id}
				g.n++
				ts.entries++
			}
		} else {
			switch {
			case present && g.right == nil:
				g.right = &event{t: at, id: strings.Clone(rec.id)}
				g.n++
				ts.entries++
			case present:
				if g.right.id != rec.id {
					g.right.id = strings.Clone(rec.id)
				}
				g.right.t = at
			case g.right != nil:
				g.right = nil
				g.n--
				ts.entries--
			}
		}
		if at.After(g.last) {
			g.last = at
		}
		e.pruneJoin(ts, r, g)
		if present && len(g.left) > 0 && g.right != nil {
			evs := make([]event, 0, len(g.left)+1)
			for _, ev := range g.left {
				evs = append(evs, ev)
			}
			evs = append(evs, *g.right)
			slices.SortFunc(evs, func(x, y event) int { return x.t.Compare(y.t) })
			inc = e.newIncident(ts, r, g, rec, evs[0].t, evs[len(evs)-1].t, idsOf(evs))
		}
	}
	return inc
}

func (e *engine) pruneJoin(ts *tenantState, r *rule, g *group) {
	cut := ts.rowClock.Add(-r.window)
	for id, ev := range g.left {
		if ev.t.Before(cut) {
			delete(g.left, id)
			g.n--
			ts.entries--
		}
	}
	if g.right != nil && g.right.t.Before(cut) {
		g.right = nil
		g.n--
		ts.entries--
	}
}

// travel compares a record's geo point with the group's recent ones and fires on the fastest pair that
// is farther apart than min_distance_km and faster than max_speed_kmh.
func (e *engine) travel(ts *tenantState, r *rule, rec *record) *incident {
	if !r.match.matches(rec.attrs) {
		return nil
	}
	lat, ok1 := attrFloat(rec.attrs, r.latAttr)
	lon, ok2 := attrFloat(rec.attrs, r.lonAttr)
	if !ok1 || !ok2 || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return nil
	}
	key, ok := groupKeyOf(r, rec.attrs)
	if !ok {
		return nil
	}
	g := e.getGroup(ts, r, key, true)
	p := event{t: rec.t, id: rec.id, lat: lat, lon: lon}
	var q event
	found, bestSpeed, bestDist := false, 0.0, 0.0
	for _, prev := range g.steps[0] {
		if prev.id == p.id && p.id != "" {
			return nil // redelivered
		}
		dt := p.t.Sub(prev.t)
		if dt < 0 {
			dt = -dt
		}
		if dt > r.window {
			continue
		}
		dist := haversineKm(prev.lat, prev.lon, p.lat, p.lon)
		if dist < r.minDist || dist == 0 {
			continue
		}
		speed := math.Inf(1)
		if dt > 0 {
			speed = dist / dt.Hours()
		}
		if speed > r.maxSpeed && (!found || speed > bestSpeed) {
			q, found, bestSpeed, bestDist = prev, true, speed, dist
		}
	}
	ts.addEvent(g, 0, p, r.maxEvents)
	ts.prune(g, r.window)
	if !found {
		return nil
	}
	p.id = strings.Clone(p.id)
	first, second := q, p
	if second.t.Before(first.t) {
		first, second = second, first
	}
	inc := e.newIncident(ts, r, g, rec, first.t, second.t, []string{first.id, second.id})
	inc.details = append(inc.details,
		[2]any{a.IncidentDistanceKm, math.Round(bestDist*10) / 10},
		[2]any{a.IncidentSpeedKmh, roundSpeed(bestSpeed)})
	// Keep only the newest point: the next comparison starts from where the user is now.
	g.n -= len(g.steps[0]) - 1
	ts.entries -= len(g.steps[0]) - 1
	g.steps[0] = append(g.steps[0][:0], second)
	return inc
}

func roundSpeed(s float64) float64 {
	if math.IsInf(s, 1) {
		return -1 // the two sign-ins have the same time
	}
	return math.Round(s)
}

func attrFloat(attrs pcommon.Map, k string) (float64, bool) {
	v, ok := attrs.Get(k)
	if !ok {
		return 0, false
	}
	return num(v)
}

const earthRadiusKm = 6371.0088

func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h)))
}

func idsOf(evs []event) []string {
	ids := make([]string, 0, len(evs))
	for _, ev := range evs {
		if ev.id != "" {
			ids = append(ids, ev.id)
		}
	}
	return ids
}

func (e *engine) newIncident(ts *tenantState, r *rule, g *group, rec *record, start, end time.Time, ids []string) *incident {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	inc := &incident{rule: r, tenant: ts, resource: rec.resource, start: start, end: end, ids: ids, group: g}
	for i, k := range r.groupBy {
		if i < len(g.values) {
			inc.entities = append(inc.entities, [2]string{k, g.values[i]})
		}
	}
	if len(r.context) > 0 {
		inc.context = pcommon.NewMap()
		for _, k := range r.context {
			if v, ok := rec.attrs.Get(k); ok && v.Type() != pcommon.ValueTypeEmpty {
				v.CopyTo(inc.context.PutEmpty(k))
			}
		}
	}
	h := sha256.New()
	for _, s := range []string{ts.key, r.name, g.key.key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	fp := sha256.New()
	for _, id := range ids {
		fp.Write([]byte(id))
		fp.Write([]byte{0})
	}
	fpSum := fp.Sum(nil)
	h.Write(fpSum)
	inc.id = hex.EncodeToString(h.Sum(nil)[:16])
	return inc
}

// suppress reports whether an incident repeats one already emitted for the same group: the same evidence
// (at any time while the group is remembered), or any evidence within the rule's suppression window
// after the last one. Otherwise it records the incident as the group's last.
func (e *engine) suppress(r *rule, inc *incident) bool {
	g := inc.group
	if g.fired && (inc.id == g.fingerprint || inc.end.Before(g.firedAt.Add(r.suppression))) {
		return true
	}
	g.fired, g.firedAt, g.fingerprint = true, inc.end, inc.id
	return false
}

// expired reports whether a group holds nothing that can still contribute or suppress.
func (e *engine) expired(ts *tenantState, g *group, now time.Time) bool {
	r := e.rules[g.key.rule]
	clock := ts.clock
	if r.kind == kindJoin {
		clock = ts.rowClock
		if len(g.left) > 0 || g.right != nil {
			return false
		}
	}
	keep := r.window
	if g.fired && r.suppression > keep {
		keep = r.suppression
	}
	return g.last.Add(keep).Before(clock)
}

// sweep removes expired groups; enforceCap then evicts least recently updated groups while the tenant
// holds more than maxEntries.
func (e *engine) sweep(ts *tenantState, now time.Time) {
	ts.lastSweep = now
	for el := ts.lru.Back(); el != nil; {
		prev := el.Prev()
		g := el.Value.(*group)
		r := e.rules[g.key.rule]
		if r.kind == kindJoin {
			e.pruneJoin(ts, r, g)
		}
		if e.expired(ts, g, now) {
			ts.removeGroup(g)
		}
		el = prev
	}
}

func (e *engine) enforceCap(ts *tenantState, now time.Time) {
	if now.Sub(ts.lastSweep) >= sweepInterval {
		e.sweep(ts, now)
	}
	if ts.entries <= e.maxEntries {
		return
	}
	if now.Sub(ts.lastSweep) >= time.Second { // a full tenant: expired groups go first, at most once a second
		e.sweep(ts, now)
	}
	// Evict down to 95 % of the cap, so that a tenant at its cap evicts in chunks, not on every record.
	target := e.maxEntries - e.maxEntries/20
	for ts.entries > target && ts.lru.Len() > 1 {
		g := ts.lru.Back().Value.(*group)
		ts.evicted += g.n
		ts.removeGroup(g)
	}
}

// rememberPolicyState fills o365.policy.previous_state of a conditional access policy change record from
// the state last seen in an earlier version of the policy, and remembers the new one. Snapshot records
// only seed the memory (a change record of the same poll may come before or after its snapshot record; a
// state seen in the same version as the change record says nothing about the state before it). Change
// records and audits update it.
func (ts *tenantState) rememberPolicyState(attrs pcommon.Map, logType string, version pcommon.Timestamp) {
	id := strAttr(attrs, a.PolicyID)
	if id == "" {
		return
	}
	state := strAttr(attrs, a.PolicyState)
	change := strAttr(attrs, a.Change)
	prev, known := ts.policyStates[id]
	if logType == a.LogTypeConditionalAccessPolicy && change != "" && known && prev.state != "" && prev.version != version {
		if _, has := attrs.Get(a.PolicyPreviousState); !has {
			attrs.PutStr(a.PolicyPreviousState, prev.state)
		}
	}
	switch {
	case change == a.ChangeRemoved:
		delete(ts.policyStates, id)
	case state == "":
	case logType == a.LogTypeConditionalAccessPolicy && change == "" && known:
		// a snapshot record: the memory already has this policy
	default:
		if len(ts.policyStates) >= maxPolicyStates && !known {
			ts.evicted += len(ts.policyStates)
			clear(ts.policyStates)
		}
		ts.policyStates[strings.Clone(id)] = policyState{state: strings.Clone(state), version: version}
	}
}

// writeIncident renders an incident as an IncidentCandidate log record.
func (p *mappingProcessor) writeIncident(inc *incident, lr plog.LogRecord, observed pcommon.Timestamp) {
	r := inc.rule
	lr.SetEventName(a.EventIncidentCandidate)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(inc.end))
	lr.SetObservedTimestamp(observed)
	lr.SetSeverityNumber(severities[r.severity])
	lr.SetSeverityText(r.severity)
	var body strings.Builder
	body.WriteString(r.name)
	body.WriteString(": ")
	body.WriteString(r.description)
	for i, e := range inc.entities {
		if i == 0 {
			body.WriteString(" [")
		} else {
			body.WriteString(", ")
		}
		body.WriteString(e[0] + "=" + e[1])
		if i == len(inc.entities)-1 {
			body.WriteString("]")
		}
	}
	lr.Body().SetStr(body.String())

	attrs := lr.Attributes()
	attrs.EnsureCapacity(24)
	attrs.PutStr(a.RecordID, inc.id)
	writeCommon(attrs, r.eventType, a.LogTypeIncidentCandidate, "Incident candidate")
	attrs.PutStr(a.IncidentID, inc.id)
	attrs.PutStr(a.IncidentRule, r.name)
	putStr(attrs, a.IncidentDescription, r.description)
	attrs.PutStr(a.IncidentSeverity, r.severity)
	attrs.PutStr(a.IncidentWindowStart, inc.start.UTC().Format(time.RFC3339Nano))
	attrs.PutStr(a.IncidentWindowEnd, inc.end.UTC().Format(time.RFC3339Nano))
	ents := attrs.PutEmptyMap(a.IncidentEntities)
	for _, e := range inc.entities {
		ents.PutStr(e[0], e[1])
		if _, exists := attrs.Get(e[0]); !exists {
			attrs.PutStr(e[0], e[1]) // the entities are also plain attributes (user.name, client.address, …)
		}
	}
	if inc.context != (pcommon.Map{}) && inc.context.Len() > 0 {
		inc.context.CopyTo(attrs.PutEmptyMap(a.IncidentContext))
	}
	ids := attrs.PutEmptySlice(a.IncidentRecordIDs)
	ids.EnsureCapacity(len(inc.ids))
	for _, id := range inc.ids {
		ids.AppendEmpty().SetStr(id)
	}
	attrs.PutInt(a.IncidentRecordCount, int64(len(inc.ids)))
	for _, d := range inc.details {
		switch v := d[1].(type) {
		case float64:
			attrs.PutDouble(d[0].(string), v)
		case int64:
			attrs.PutInt(d[0].(string), v)
		}
	}
	if e := p.mapping.lookup(r.eventType); e != nil {
		attrs.PutStr(a.Domain, e.Domain)
		attrs.PutStr(a.Control, e.Control)
		attrs.PutStr(a.Metric, e.Metric)
	}
	if p.norm.ocsf {
		sev := map[string]int{"low": sevLow, "medium": sevMedium, "high": sevHigh, "critical": sevCritical}[r.severity]
		e := ocsfEvent{class: ocsfClassDetectionFinding, activityID: 1, activity: "Create", statusID: findingNew,
			severityID: sev, product: "otelcol-o365 correlation"}
		e.write(attrs, lr.Timestamp(), inc.id)
		attrs.PutStr("ocsf.finding_info.uid", inc.id)
		attrs.PutStr("ocsf.finding_info.title", r.name)
		putStr(attrs, "ocsf.finding_info.desc", r.description)
		attrs.PutInt("ocsf.finding_info.first_seen_time", inc.start.UnixMilli())
		attrs.PutInt("ocsf.finding_info.last_seen_time", inc.end.UnixMilli())
		attrs.PutInt("ocsf.finding_info.related_events_count", int64(len(inc.ids)))
	}
}
