package correlation

// threshold: at least `threshold` matching records per group within `window`.

type thresholdConfig struct {
	Common    `yaml:",inline"`
	Match     `yaml:",inline"`
	Threshold count `yaml:"threshold"`
}

func (c *thresholdConfig) build(b *builder) kind {
	k := &thresholdKind{match: c.set(b.d, b.n, b.key, b.present), threshold: max(int(c.Threshold), 1)}
	k.capacity = max(2*k.threshold, minEventsPerGroup)
	b.admit(&k.match)
	return k
}

type thresholdKind struct {
	match     condSet
	threshold int
	capacity  int
}

func (k *thresholdKind) newState() state { return new(events) }

func (k *thresholdKind) observe(s *scope, rec *Record) *fire {
	if !k.match.matches(rec.Attrs) {
		return nil
	}
	g := s.group(rec, true)
	if g == nil {
		return nil
	}
	evs := g.st.(*events)
	if !evs.add(event{t: rec.Time, id: rec.ID}, k.capacity) {
		return nil
	}
	g.touch(rec.Time)
	evs.prune(g.last.Add(-s.r.Window))
	if len(*evs) < k.threshold {
		return nil
	}
	f := &fire{g: g, start: (*evs)[0].t, end: (*evs)[len(*evs)-1].t, ids: idsOf(*evs)}
	*evs = nil // the evidence is used up
	return f
}
