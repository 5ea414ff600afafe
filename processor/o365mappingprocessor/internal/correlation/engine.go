// Package correlation turns normalized records into incidents with the rules of correlation.yml.
//
// The engine keeps, per tenant, a bounded in-memory state of recent matching records ("entries"),
// grouped by rule × group-by values. It is not persisted: a restart loses open windows.
//
// Time: windows of event rules are measured in event time (the record's Timestamp), and their groups
// expire against the tenant's newest event time seen, so a backfill of old records correlates as if
// live. Join rows are snapshot state: they expire `window` after they were last fetched
// (ObservedTimestamp), measured against the newest fetch time seen for the tenant.
//
// Each rule kind (threshold.go, distinct.go, sequence.go, join.go, travel.go) has its own config type
// and running kind; the engine routes records to them, accounts for the state they keep, expires and
// evicts it, and suppresses repeated incidents. Rendering incidents as log records is the processor's.
package correlation

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// maxFutureSkew bounds how far ahead of the wall clock a record's time may move the tenant's clock.
const maxFutureSkew = 10 * time.Minute

// sweepInterval is how often (wall clock) a tenant's expired groups are swept.
const sweepInterval = time.Minute

// Engine runs rules over the records of many tenants.
type Engine struct {
	rules      []*Rule
	maxEntries int

	mu      sync.Mutex
	tenants map[string]*Tenant
}

// New returns an engine running rules, bounding each tenant's state to maxEntries entries.
func New(rules []*Rule, maxEntries int) *Engine {
	return &Engine{rules: rules, maxEntries: maxEntries, tenants: map[string]*Tenant{}}
}

// Rules returns the engine's rules, in file order.
func (e *Engine) Rules() []*Rule { return e.rules }

// Tenant returns the state of a tenant (key: its id; label: its name, for metrics), created on first use.
func (e *Engine) Tenant(key, label string) *Tenant {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tenants[key]
	if !ok {
		t = &Tenant{e: e, key: strings.Clone(key), Label: strings.Clone(label), groups: map[groupKey]*group{},
			memory: map[string][]seen{}, suppressed: make([]int, len(e.rules))}
		e.tenants[t.key] = t
	}
	return t
}

// Entries returns the state size per tenant label (for the gauge).
func (e *Engine) Entries() map[string]int {
	e.mu.Lock()
	ts := make([]*Tenant, 0, len(e.tenants))
	for _, t := range e.tenants {
		ts = append(ts, t)
	}
	e.mu.Unlock()
	out := map[string]int{}
	for _, t := range ts {
		t.Lock()
		out[t.Label] += t.size()
		t.Unlock()
	}
	return out
}

// Tenant is one tenant's correlation state. Lock it around Observe, RememberPolicyState, RememberIncidentSeverity and TakeStats.
type Tenant struct {
	sync.Mutex
	e     *Engine
	key   string
	Label string

	groups    map[groupKey]*group
	lru       list.List // of *group; front = most recently updated
	entries   int       // sum of group.n
	clock     time.Time // newest event time seen (bounded by wall clock + maxFutureSkew)
	rowClock  time.Time // newest fetch time of a join row seen (bounded likewise)
	lastSweep time.Time

	memory map[string][]seen // memory key (kind + object id) → what it was seen as, oldest version first

	evicted    int   // entries evicted since TakeStats
	suppressed []int // incidents suppressed since TakeStats, by rule

	// Reused by Observe: handing kinds (an interface) a fresh scope or record would allocate each per
	// record.
	sc  scope
	rec Record
}

// size is the tenant's state in entries: the one measure the cap and the gauge use.
func (t *Tenant) size() int { return t.entries + len(t.memory) }

type groupKey struct {
	rule int
	key  string
}

// group is the state of one rule for one set of group-by values.
type group struct {
	key    groupKey
	values []string // group-by values, for the incident's entities
	elem   *list.Element
	last   time.Time // newest time in the group (event time; fetch time for join rows)
	n      int       // entries accounted: 1 for the group + its state's size
	st     state

	fired       bool
	firedAt     time.Time
	fingerprint string
}

// touch moves the group's newest time on to at.
func (g *group) touch(at time.Time) {
	if at.After(g.last) {
		g.last = at
	}
}

// Record is what the engine sees of one normalized record.
type Record struct {
	Attrs     pcommon.Map
	EventType string
	LogType   string
	ID        string
	Time      time.Time // event time
	Observed  time.Time // fetch time (join rows); zero = unknown
	Resource  pcommon.Resource
}

// Incident is one rule fire; the processor renders it as an IncidentCandidate record.
type Incident struct {
	Rule       *Rule
	Tenant     *Tenant
	Resource   pcommon.Resource // of the record that completed it
	ID         string           // hash of tenant, rule, group key and evidence
	Entities   [][2]string      // group-by attribute → value
	Context    pcommon.Map      // the rule's context attributes, from the completing record
	Start, End time.Time
	RecordIDs  []string // sorted
	Details    []Detail
	group      *group
}

// Detail is a kind-specific incident attribute (an int64 or a float64 value).
type Detail struct {
	Key   string
	Value any
}

// fire is what a kind returns when a record completes an incident.
type fire struct {
	g          *group
	start, end time.Time
	ids        []string
	details    []Detail
}

// scope is one record's pass through one rule: the kind reaches its groups through it, and the engine
// accounts afterwards for every group touched.
type scope struct {
	t       *Tenant
	r       *Rule
	limit   time.Time // wall clock + maxFutureSkew
	touched []*group
}

// group returns the group of the record's group-by values, creating it when create is set; nil when a
// group-by attribute is missing or (create unset) no group exists.
func (s *scope) group(rec *Record, create bool) *group {
	key, ok := groupKeyOf(s.r, rec.Attrs)
	if !ok {
		return nil
	}
	return s.groupByKey(key, create)
}

func (s *scope) groupByKey(key string, create bool) *group {
	t := s.t
	gk := groupKey{rule: s.r.idx, key: key}
	g, ok := t.groups[gk]
	if ok {
		t.lru.MoveToFront(g.elem)
	} else {
		if !create {
			return nil
		}
		gk.key = strings.Clone(key)
		g = &group{key: gk, st: s.r.kind.newState()}
		switch {
		case len(s.r.GroupBy) > 1:
			g.values = strings.Split(gk.key, "\x1f")
		case len(s.r.GroupBy) == 1:
			g.values = []string{gk.key}
		}
		g.elem = t.lru.PushFront(g)
		t.groups[gk] = g
	}
	if !slices.Contains(s.touched, g) {
		s.touched = append(s.touched, g)
	}
	return g
}

// each calls f for every group of the scope's rule (for kinds that must find state without a group key).
func (s *scope) each(f func(g *group) bool) {
	for _, g := range s.t.groups {
		if g.key.rule == s.r.idx {
			s.touched = append(s.touched, g)
			if !f(g) {
				return
			}
		}
	}
}

// account brings a group's entry count, and the tenant's, to what its state holds.
func (t *Tenant) account(g *group) {
	n := 1 + g.st.size()
	t.entries += n - g.n
	g.n = n
}

func (t *Tenant) removeGroup(g *group) {
	t.lru.Remove(g.elem)
	delete(t.groups, g.key)
	t.entries -= g.n
}

// Observe feeds one record to every rule that can concern it and appends the incidents it completes
// (those not suppressed) to out.
func (t *Tenant) Observe(record Record, now time.Time, out []*Incident) []*Incident {
	t.rec = record
	rec := &t.rec
	limit := now.Add(maxFutureSkew)
	if rec.Time.After(t.clock) {
		t.clock = rec.Time
		if t.clock.After(limit) {
			t.clock = limit
		}
	}
	for _, r := range t.e.rules {
		if !r.gate.admits(rec.EventType, rec.LogType) {
			continue
		}
		s := &t.sc
		s.t, s.r, s.limit, s.touched = t, r, limit, s.touched[:0]
		f := r.kind.observe(s, rec)
		for _, g := range s.touched {
			t.account(g)
		}
		if f == nil {
			continue
		}
		inc := t.newIncident(r, f, rec)
		if t.suppress(r, inc) {
			t.suppressed[r.idx]++
			continue
		}
		out = append(out, inc)
	}
	t.enforceCap(now)
	t.rec = Record{} // hold no batch past the call
	return out
}

// TakeStats returns, and resets, the entries evicted and the incidents suppressed (by rule index, as in
// Engine.Rules) since the last call.
func (t *Tenant) TakeStats() (evicted int, suppressed []int) {
	evicted, suppressed = t.evicted, slices.Clone(t.suppressed)
	t.evicted = 0
	clear(t.suppressed)
	return evicted, suppressed
}

// groupKeyOf builds the group key of a record for r; ok is false when a group-by attribute is missing.
func groupKeyOf(r *Rule, attrs pcommon.Map) (string, bool) {
	switch len(r.GroupBy) {
	case 0:
		return "", true
	case 1:
		v, ok := attrs.Get(r.GroupBy[0])
		if !ok {
			return "", false
		}
		s := valueString(v)
		return s, s != ""
	}
	var b strings.Builder
	for i, k := range r.GroupBy {
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
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeEmpty:
		return ""
	}
	return v.AsString()
}

func (t *Tenant) newIncident(r *Rule, f *fire, rec *Record) *Incident {
	ids := slices.Compact(slices.Sorted(slices.Values(f.ids)))
	g := f.g
	inc := &Incident{Rule: r, Tenant: t, Resource: rec.Resource, Start: f.start, End: f.end, RecordIDs: ids,
		Details: f.details, group: g}
	for i, k := range r.GroupBy {
		if i < len(g.values) {
			inc.Entities = append(inc.Entities, [2]string{k, g.values[i]})
		}
	}
	if len(r.Context) > 0 {
		inc.Context = pcommon.NewMap()
		for _, k := range r.Context {
			if v, ok := rec.Attrs.Get(k); ok && v.Type() != pcommon.ValueTypeEmpty {
				v.CopyTo(inc.Context.PutEmpty(k))
			}
		}
	}
	h := sha256.New()
	for _, s := range []string{t.key, r.Name, g.key.key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	fp := sha256.New()
	for _, id := range ids {
		fp.Write([]byte(id))
		fp.Write([]byte{0})
	}
	h.Write(fp.Sum(nil))
	inc.ID = hex.EncodeToString(h.Sum(nil)[:16])
	return inc
}

// suppress reports whether an incident repeats one already emitted for the same group: the same evidence
// (at any time while the group is remembered), or any evidence within the rule's suppression window
// after the last one. Otherwise it records the incident as the group's last.
func (t *Tenant) suppress(r *Rule, inc *Incident) bool {
	g := inc.group
	if g.fired && (inc.ID == g.fingerprint || inc.End.Before(g.firedAt.Add(r.Suppression))) {
		return true
	}
	g.fired, g.firedAt, g.fingerprint = true, inc.End, inc.ID
	return false
}

// rowState is the state of kinds whose rows are snapshot state (join): timed by fetch time, pruned by
// the tenant's newest fetch time, and kept while they hold rows.
type rowState interface {
	state
	expireRows(cut time.Time)
	holdsRows() bool
}

// expired reports whether a group holds nothing that can still contribute or suppress.
func (t *Tenant) expired(g *group) bool {
	r := t.e.rules[g.key.rule]
	clock := t.clock
	if rs, ok := g.st.(rowState); ok {
		clock = t.rowClock
		if rs.holdsRows() {
			return false
		}
	}
	keep := r.Window
	if g.fired && r.Suppression > keep {
		keep = r.Suppression
	}
	return g.last.Add(keep).Before(clock)
}

// sweep removes expired groups (and expired join rows).
func (t *Tenant) sweep(now time.Time) {
	t.lastSweep = now
	for el := t.lru.Back(); el != nil; {
		prev := el.Prev()
		g := el.Value.(*group)
		if rs, ok := g.st.(rowState); ok {
			rs.expireRows(t.rowClock.Add(-t.e.rules[g.key.rule].Window))
			t.account(g)
		}
		if t.expired(g) {
			t.removeGroup(g)
		}
		el = prev
	}
}

// enforceCap sweeps once a sweepInterval, and evicts least recently updated groups while the tenant
// holds more than the engine's maxEntries.
func (t *Tenant) enforceCap(now time.Time) {
	if now.Sub(t.lastSweep) >= sweepInterval {
		t.sweep(now)
	}
	if t.size() <= t.e.maxEntries {
		return
	}
	if now.Sub(t.lastSweep) >= time.Second { // a full tenant: expired groups go first, at most once a second
		t.sweep(now)
	}
	// Evict down to 95 % of the cap, so that a tenant at its cap evicts in chunks, not on every record.
	target := t.e.maxEntries - t.e.maxEntries/20
	for t.size() > target && t.lru.Len() > 1 {
		g := t.lru.Back().Value.(*group)
		t.evicted += g.n
		t.removeGroup(g)
	}
}
