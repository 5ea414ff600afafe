package correlation

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.yaml.in/yaml/v3"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// Conditions: what a rule's `where`, `any_of`, steps and join sides test on a record's attributes.

// condSet is all of `all`, and (when any is non-empty) at least one of `any`.
type condSet struct {
	all []cond
	any [][]cond
}

func (c *condSet) matches(attrs pcommon.Map) bool {
	for i := range c.all {
		if !c.all[i].matches(attrs) {
			return false
		}
	}
	if len(c.any) == 0 {
		return true
	}
	for _, branch := range c.any {
		ok := true
		for i := range branch {
			if !branch[i].matches(attrs) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

type opKind int

const (
	opEquals opKind = iota
	opNotEquals
	opIn
	opNotIn
	opExists
	opPrefix
	opMatches
)

// cond is one attribute test.
type cond struct {
	attr   string
	op     opKind
	lits   []literal
	exists bool
	prefix string
	re     *regexp.Regexp
}

// literal is a YAML scalar compared with attributes of any type without allocating.
type literal struct {
	s            string
	i            int64
	f            float64
	b            bool
	isInt, isNum bool
	isBool       bool
}

func newLiteral(n *yaml.Node) literal {
	l := literal{s: n.Value}
	if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil && n.Tag != "!!str" {
		l.i, l.isInt = i, true
		l.f, l.isNum = float64(i), true
	} else if f, err := strconv.ParseFloat(n.Value, 64); err == nil && n.Tag != "!!str" && !math.IsNaN(f) {
		l.f, l.isNum = f, true
	}
	if n.Tag == "!!bool" {
		if b, err := strconv.ParseBool(n.Value); err == nil {
			l.b, l.isBool = b, true
		}
	}
	return l
}

func (l *literal) equals(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str() == l.s
	case pcommon.ValueTypeInt:
		return l.isInt && v.Int() == l.i
	case pcommon.ValueTypeDouble:
		return l.isNum && v.Double() == l.f
	case pcommon.ValueTypeBool:
		return l.isBool && v.Bool() == l.b
	case pcommon.ValueTypeSlice: // a list attribute "equals" a literal it contains
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			if e := s.At(i); e.Type() != pcommon.ValueTypeSlice && l.equals(e) {
				return true
			}
		}
	}
	return false
}

func (c *cond) matches(attrs pcommon.Map) bool {
	v, ok := attrs.Get(c.attr)
	if ok && v.Type() == pcommon.ValueTypeEmpty {
		ok = false
	}
	switch c.op {
	case opExists:
		return ok == c.exists
	case opNotEquals, opNotIn:
		if !ok {
			return true
		}
		for i := range c.lits {
			if c.lits[i].equals(v) {
				return false
			}
		}
		return true
	}
	if !ok {
		return false
	}
	switch c.op {
	case opEquals, opIn:
		for i := range c.lits {
			if c.lits[i].equals(v) {
				return true
			}
		}
		return false
	case opPrefix:
		return v.Type() == pcommon.ValueTypeStr && strings.HasPrefix(v.Str(), c.prefix)
	case opMatches:
		return v.Type() == pcommon.ValueTypeStr && c.re.MatchString(v.Str())
	}
	return false
}

// typeGate tells, from the normalized event type and log type alone, whether a record can concern a
// rule: most records skip most rules without a single attribute lookup.
type typeGate struct {
	all      bool
	types    map[string]bool
	prefixes []string
	logTypes map[string]bool
}

func (g *typeGate) admits(eventType, logType string) bool {
	if g.all || g.types[eventType] || g.logTypes[logType] {
		return true
	}
	for _, p := range g.prefixes {
		if strings.HasPrefix(eventType, p) {
			return true
		}
	}
	return false
}

// addConds widens the gate by what one entry point (a list of ANDed conditions) admits.
func (g *typeGate) addConds(conds []cond) {
	var byType, byLog *cond
	for i := range conds {
		c := &conds[i]
		if c.op != opEquals && c.op != opIn && c.op != opPrefix {
			continue
		}
		switch c.attr {
		case a.EventType:
			byType = c
		case a.LogType:
			byLog = c
		}
	}
	switch {
	case byType != nil:
		if byType.op == opPrefix {
			g.prefixes = append(g.prefixes, byType.prefix)
			return
		}
		for _, l := range byType.lits {
			g.types[l.s] = true
		}
	case byLog != nil && byLog.op != opPrefix:
		for _, l := range byLog.lits {
			g.logTypes[l.s] = true
		}
	default:
		g.all = true
	}
}

func (g *typeGate) addSet(c *condSet) {
	if len(c.any) == 0 {
		g.addConds(c.all)
		return
	}
	for _, branch := range c.any {
		g.addConds(append(append([]cond(nil), c.all...), branch...))
	}
}
