package correlation

import (
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/yamlfile"
)

// join: a group has a current `left` row and a current `right` row (snapshot state). A record selected
// by a side's `select` is a row of that side while it matches the side's `where`; a selected record that
// does not (a `removed` change record, a user who registered MFA since) removes its row. Left rows are
// kept per record id, the right row per group.

type joinConfig struct {
	Common `yaml:",inline"`
	Left   joinSide `yaml:"left,required"`
	Right  joinSide `yaml:"right,required"`
}

type joinSideConfig struct {
	Select where `yaml:"select,required"`
	Where  where `yaml:"where"`
}

type joinSide struct {
	sel   condSet // records that describe this side
	where condSet // ... and are a current row of it
}

func (s *joinSide) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	var c joinSideConfig
	decodeMapping(d, n, key, &c)
	s.sel, s.where = condSet{all: c.Select}, condSet{all: c.Where}
}

func (c *joinConfig) build(b *builder) kind {
	if len(c.GroupBy) == 0 {
		b.require("group_by")
	}
	b.admit(&c.Left.sel)
	b.admit(&c.Right.sel)
	return &joinKind{left: c.Left, right: c.Right}
}

type joinKind struct{ left, right joinSide }

// joinRows are a group's rows, timed by their fetch time.
type joinRows struct {
	left  map[string]event // record id → row
	right *event
}

func (j *joinRows) size() int {
	if j.right != nil {
		return len(j.left) + 1
	}
	return len(j.left)
}

func (j *joinRows) holdsRows() bool { return j.size() > 0 }

func (j *joinRows) expireRows(cut time.Time) {
	for id, ev := range j.left {
		if ev.t.Before(cut) {
			delete(j.left, id)
		}
	}
	if j.right != nil && j.right.t.Before(cut) {
		j.right = nil
	}
}

func (k *joinKind) newState() state { return &joinRows{left: map[string]event{}} }

func (k *joinKind) observe(s *scope, rec *Record) *fire {
	var f *fire
	for side, js := range []*joinSide{&k.left, &k.right} {
		if !js.sel.matches(rec.Attrs) {
			continue
		}
		at := rec.Observed
		if at.IsZero() {
			at = rec.Time
		}
		if at.After(s.limit) {
			at = s.limit
		}
		if at.After(s.t.rowClock) {
			s.t.rowClock = at
		}
		present := js.where.matches(rec.Attrs)
		g := s.group(rec, present)
		if g == nil {
			if side == 0 && !present {
				k.dropLeftRow(s, rec.ID) // a removal that no longer names its group (the receiver's {id})
			}
			continue
		}
		rows := g.st.(*joinRows)
		if side == 0 {
			switch _, had := rows.left[rec.ID]; {
			case present && had:
				rows.left[rec.ID] = event{t: at, id: rows.left[rec.ID].id}
			case present:
				id := strings.Clone(rec.ID)
				rows.left[id] = event{t: at, id: id}
			default:
				delete(rows.left, rec.ID)
			}
		} else {
			switch {
			case present && rows.right == nil:
				rows.right = &event{t: at, id: strings.Clone(rec.ID)}
			case present:
				if rows.right.id != rec.ID {
					rows.right.id = strings.Clone(rec.ID)
				}
				rows.right.t = at
			default:
				rows.right = nil
			}
		}
		g.touch(at)
		rows.expireRows(s.t.rowClock.Add(-s.r.Window))
		if present && len(rows.left) > 0 && rows.right != nil {
			evs := make([]event, 0, len(rows.left)+1)
			for _, ev := range rows.left {
				evs = append(evs, ev)
			}
			evs = append(evs, *rows.right)
			slices.SortFunc(evs, func(x, y event) int { return x.t.Compare(y.t) })
			f = &fire{g: g, start: evs[0].t, end: evs[len(evs)-1].t, ids: idsOf(evs)}
		}
	}
	return f
}

// dropLeftRow removes the left row of record id from whichever group holds it.
func (k *joinKind) dropLeftRow(s *scope, id string) {
	if id == "" {
		return
	}
	s.each(func(g *group) bool {
		rows := g.st.(*joinRows)
		if _, ok := rows.left[id]; ok {
			delete(rows.left, id)
			return false
		}
		return true
	})
}
