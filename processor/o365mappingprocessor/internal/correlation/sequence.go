package correlation

import (
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/yamlfile"
)

// sequence: `steps` in time order (each `count` times) per group within `window`.

type sequenceConfig struct {
	Common `yaml:",inline"`
	Steps  steps `yaml:"steps,required"`
}

type stepConfig struct {
	Match `yaml:",inline"`
	Count count `yaml:"count"`
}

// steps is a list of at least two steps.
type steps struct {
	list []stepConfig
	sets []condSet
}

func (s *steps) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	if n.Kind != yaml.SequenceNode || len(n.Content) < 2 {
		d.Errorf(n, key, "must be a list of at least two steps")
		return
	}
	for i, sn := range n.Content {
		skey := key + "[" + strconv.Itoa(i) + "]"
		var st stepConfig
		present := decodeMapping(d, sn, skey, &st)
		s.sets = append(s.sets, st.set(d, sn, skey, present))
		s.list = append(s.list, st)
	}
}

func (c *sequenceConfig) build(b *builder) kind {
	if len(c.GroupBy) == 0 {
		b.require("group_by")
	}
	k := &sequenceKind{}
	for i, st := range c.Steps.list {
		k.steps = append(k.steps, step{match: c.Steps.sets[i], count: max(int(st.Count), 1)})
		k.caps = append(k.caps, max(2*max(int(st.Count), 1), minEventsPerGroup))
		b.admit(&k.steps[i].match)
	}
	return k
}

type step struct {
	match condSet
	count int
}

type sequenceKind struct {
	steps []step
	caps  []int // events kept per step
}

// stepEvents holds each step's events.
type stepEvents []events

func (s *stepEvents) size() int {
	n := 0
	for i := range *s {
		n += len((*s)[i])
	}
	return n
}

func (k *sequenceKind) newState() state {
	s := make(stepEvents, len(k.steps))
	return &s
}

// observe remembers a record for every step it matches. A group is only created by the first step: a
// success before any failure is not remembered, which keeps the state proportional to failures.
func (k *sequenceKind) observe(s *scope, rec *Record) *fire {
	var g *group
	added := false
	for i := range k.steps {
		if !k.steps[i].match.matches(rec.Attrs) {
			continue
		}
		if g == nil {
			if g = s.group(rec, i == 0); g == nil {
				return nil
			}
		}
		if (*g.st.(*stepEvents))[i].add(event{t: rec.Time, id: rec.ID}, k.caps[i]) {
			added = true
			g.touch(rec.Time)
		}
	}
	if !added {
		return nil
	}
	st := *g.st.(*stepEvents)
	for i := range st {
		st[i].prune(g.last.Add(-s.r.Window))
	}
	chosen := k.match(st, s.r)
	if chosen == nil {
		return nil
	}
	// The evidence is the run plus every other event of the earlier steps inside it (all six failures
	// before the success, not only the five the count needs).
	start := st[chosen[0][0]][chosen[0][1]].t
	end := start
	for _, c := range chosen {
		if t := st[c[0]][c[1]].t; t.After(end) {
			end = t
		}
	}
	inRun := func(si, j int) bool {
		t := st[si][j].t
		return slices.Contains(chosen, [2]int{si, j}) || (!t.Before(start) && !t.After(end) && si < len(k.steps)-1)
	}
	var evs []event
	for si := range st {
		for j, ev := range st[si] {
			if inRun(si, j) {
				evs = append(evs, ev)
			}
		}
	}
	for si := range st { // the evidence is used up
		kept := st[si][:0]
		for j, ev := range st[si] {
			if !inRun(si, j) {
				kept = append(kept, ev)
			}
		}
		st[si] = kept
	}
	return &fire{g: g, start: start, end: end, ids: idsOf(evs)}
}

// match finds the earliest run of the steps in time order within the window: for each candidate first
// event, take each step's first `count` events at or after the previous step's last one. It returns
// (step, index) pairs, or nil.
func (k *sequenceKind) match(st stepEvents, r *Rule) [][2]int {
	for first := range st[0] {
		t0 := st[0][first].t
		end := t0.Add(r.Window)
		cursor := t0
		var chosen [][2]int
		used := map[string]bool{}
		ok := true
		for si, sp := range k.steps {
			taken := 0
			from := 0
			if si == 0 {
				from = first
			}
			for j := from; j < len(st[si]) && taken < sp.count; j++ {
				ev := st[si][j]
				if ev.t.Before(cursor) || used[ev.id] {
					continue
				}
				if ev.t.After(end) {
					break
				}
				chosen = append(chosen, [2]int{si, j})
				used[ev.id] = true
				cursor = ev.t
				taken++
			}
			if taken < sp.count {
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
