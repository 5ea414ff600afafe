package correlation

import (
	"slices"
	"strings"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// distinct: at least `threshold` distinct values of `distinct` among matching records per group within
// `window`.

type distinctConfig struct {
	Common    `yaml:",inline"`
	Match     `yaml:",inline"`
	Threshold count `yaml:"threshold,required"`
	Distinct  attr  `yaml:"distinct,required"`
}

func (c *distinctConfig) build(b *builder) kind {
	k := &distinctKind{match: c.set(b.d, b.n, b.key, b.present), threshold: int(c.Threshold), attr: string(c.Distinct)}
	k.capacity = max(2*k.threshold, minEventsPerGroup)
	b.admit(&k.match)
	return k
}

type distinctKind struct {
	match     condSet
	threshold int
	attr      string
	capacity  int
}

// distinctState holds the newest event of each distinct value.
type distinctState map[string]event

func (d distinctState) size() int { return len(d) }

func (k *distinctKind) newState() state { return distinctState{} }

func (k *distinctKind) observe(s *scope, rec *Record) *fire {
	if !k.match.matches(rec.Attrs) {
		return nil
	}
	v, ok := rec.Attrs.Get(k.attr)
	if !ok {
		return nil
	}
	value := valueString(v)
	if value == "" {
		return nil
	}
	g := s.group(rec, true)
	if g == nil {
		return nil
	}
	seen := g.st.(distinctState)
	if old, ok := seen[value]; ok {
		if old.id == rec.ID || !rec.Time.After(old.t) {
			return nil // a redelivered record, or an older one: nothing new
		}
		old.t, old.id = rec.Time, strings.Clone(rec.ID)
		seen[value] = old
	} else {
		value = strings.Clone(value)
		seen[value] = event{t: rec.Time, id: strings.Clone(rec.ID), value: value}
	}
	g.touch(rec.Time)
	cut := g.last.Add(-s.r.Window)
	for v, ev := range seen {
		if ev.t.Before(cut) {
			delete(seen, v)
		}
	}
	for len(seen) > k.capacity { // drop the oldest
		oldest := ""
		for v, ev := range seen {
			if oldest == "" || ev.t.Before(seen[oldest].t) {
				oldest = v
			}
		}
		delete(seen, oldest)
	}
	if len(seen) < k.threshold {
		return nil
	}
	evs := make([]event, 0, len(seen))
	for _, ev := range seen {
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, func(x, y event) int { return x.t.Compare(y.t) })
	clear(seen) // the evidence is used up
	return &fire{g: g, start: evs[0].t, end: evs[len(evs)-1].t, ids: idsOf(evs),
		details: []Detail{{Key: a.IncidentDistinctCount, Value: int64(len(evs))}}}
}
