package o365mappingprocessor

import (
	_ "embed"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.yaml.in/yaml/v3"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

//go:embed correlation.yml
var defaultCorrelationYAML []byte

// ruleKind is how a rule turns records into an incident.
type ruleKind int

const (
	// kindThreshold: at least `threshold` matching records per group within `window`.
	kindThreshold ruleKind = iota
	// kindDistinct: at least `threshold` distinct values of `distinct` among matching records per group
	// within `window`.
	kindDistinct
	// kindSequence: `steps` in time order (each `count` times) per group within `window`.
	kindSequence
	// kindJoin: a group has a current `left` row and a current `right` row (snapshot state).
	kindJoin
	// kindTravel: two matching records of a group whose geo points are farther apart than
	// `max_speed_kmh` allows in the time between them.
	kindTravel
)

var ruleKinds = map[string]ruleKind{
	"threshold": kindThreshold, "distinct": kindDistinct, "sequence": kindSequence, "join": kindJoin, "travel": kindTravel,
}

var severities = map[string]plog.SeverityNumber{
	"low": plog.SeverityNumberInfo, "medium": plog.SeverityNumberWarn, "high": plog.SeverityNumberError,
	"critical": plog.SeverityNumberFatal,
}

// rule is one validated correlation rule.
type rule struct {
	idx         int
	name        string
	description string
	severity    string
	kind        ruleKind
	window      time.Duration
	suppression time.Duration
	groupBy     []string
	context     []string

	match     condSet  // threshold, distinct, travel
	threshold int      // threshold, distinct
	distinct  string   // distinct
	steps     []step   // sequence
	left      joinSide // join
	right     joinSide // join
	maxSpeed  float64  // travel, km/h
	minDist   float64  // travel, km
	latAttr   string   // travel
	lonAttr   string   // travel
	gate      typeGate // which normalized records can concern the rule
	eventType string   // incident_candidate.<name>
	stepCaps  []int    // sequence: events kept per step
	maxEvents int      // threshold, distinct, travel: events kept per group
}

type step struct {
	match condSet
	count int
}

type joinSide struct {
	sel   condSet // records that describe this side
	where condSet // ... and are a current row of it; a selected record that fails `where` removes the row
}

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

var (
	ruleNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	attrNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)
)

// Defaults and bounds of rule fields.
const (
	defaultMaxSpeedKmh   = 900.0
	defaultMinDistanceKm = 500.0
	travelEventsPerGroup = 3
	minEventsPerGroup    = 32
)

// loadRules reads path, or the embedded correlation.yml when path is empty, and validates it. The schema
// is documented in README.md ("correlation.yml").
func loadRules(path string) ([]*rule, error) {
	root, doc, err := readYAML(path, "correlation.yml", defaultCorrelationYAML)
	if err != nil {
		return nil, err
	}
	top := map[string]*yaml.Node{}
	for _, kv := range doc.mapPairs(root, "") {
		switch kv[0].Value {
		case "version", "rules":
			top[kv[0].Value] = kv[1]
		default:
			doc.errorf(kv[0], kv[0].Value, "is not a known key (version, rules)")
		}
	}
	if root.Kind != yaml.MappingNode {
		return nil, doc.err()
	}
	doc.checkVersion(root, top)
	rulesNode, ok := top["rules"]
	if !ok {
		doc.errorf(root, "rules", "is required")
		return nil, doc.err()
	}
	if rulesNode.Kind != yaml.SequenceNode {
		doc.errorf(rulesNode, "rules", "must be a list, got %s", kindName(rulesNode))
		return nil, doc.err()
	}
	var rules []*rule
	names := map[string]int{}
	for i, rn := range rulesNode.Content {
		r, enabled := doc.parseRule(rn, fmt.Sprintf("rules[%d]", i))
		if r == nil {
			continue
		}
		if line, dup := names[r.name]; dup {
			doc.errorf(rn, fmt.Sprintf("rules[%d].name", i), "%q is already used by the rule on line %d", r.name, line)
			continue
		}
		names[r.name] = rn.Line
		if enabled {
			r.idx = len(rules)
			rules = append(rules, r)
		}
	}
	if err := doc.err(); err != nil {
		return nil, err
	}
	return rules, nil
}

var ruleKeys = map[string]bool{
	"name": true, "description": true, "enabled": true, "severity": true, "type": true, "window": true,
	"suppression": true, "group_by": true, "context": true, "where": true, "any_of": true, "threshold": true,
	"distinct": true, "steps": true, "left": true, "right": true, "max_speed_kmh": true, "min_distance_km": true,
	"latitude": true, "longitude": true,
}

// keysFor lists the keys each rule type accepts beyond the common ones.
var keysFor = map[ruleKind][]string{
	kindThreshold: {"where", "any_of", "threshold"},
	kindDistinct:  {"where", "any_of", "threshold", "distinct"},
	kindSequence:  {"steps"},
	kindJoin:      {"left", "right"},
	kindTravel:    {"where", "any_of", "max_speed_kmh", "min_distance_km", "latitude", "longitude"},
}

var commonRuleKeys = []string{"name", "description", "enabled", "severity", "type", "window", "suppression", "group_by", "context"}

func (d *yamlDoc) parseRule(n *yaml.Node, key string) (*rule, bool) {
	pairs := d.mapPairs(n, key)
	if n.Kind != yaml.MappingNode {
		return nil, false
	}
	f := map[string]*yaml.Node{}
	var unknown []*yaml.Node
	for _, kv := range pairs {
		if !ruleKeys[kv[0].Value] {
			unknown = append(unknown, kv[0])
			continue
		}
		f[kv[0].Value] = kv[1]
	}
	r := &rule{}
	errsBefore := len(d.errs)
	if v, ok := f["name"]; ok {
		r.name = d.str(v, join(key, "name"))
		if r.name != "" && !ruleNamePattern.MatchString(r.name) {
			d.errorf(v, join(key, "name"), "must be lower-case letters, digits and '_', starting with a letter, got %q", r.name)
		}
	} else {
		d.errorf(n, join(key, "name"), "is required")
	}
	if r.name != "" {
		key = fmt.Sprintf("%s(%s)", key, r.name)
	}
	for _, k := range unknown {
		d.errorf(k, join(key, k.Value), "is not a known rule key")
	}
	r.eventType = "incident_candidate." + r.name
	if v, ok := f["description"]; ok {
		r.description, _ = d.scalar(v, join(key, "description"))
	}
	enabled := true
	if v, ok := f["enabled"]; ok {
		if s, ok := d.scalar(v, join(key, "enabled")); ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				d.errorf(v, join(key, "enabled"), "must be true or false, got %q", s)
			}
			enabled = b
		}
	}
	if v, ok := f["severity"]; ok {
		r.severity = d.str(v, join(key, "severity"))
		if _, known := severities[r.severity]; r.severity != "" && !known {
			d.errorf(v, join(key, "severity"), "must be low, medium, high or critical, got %q", r.severity)
		}
	} else {
		d.errorf(n, join(key, "severity"), "is required (low, medium, high or critical)")
	}
	kindSet := false
	if v, ok := f["type"]; ok {
		s := d.str(v, join(key, "type"))
		k, known := ruleKinds[s]
		if s != "" && !known {
			d.errorf(v, join(key, "type"), "must be threshold, distinct, sequence, join or travel, got %q", s)
		}
		r.kind, kindSet = k, known
	} else {
		d.errorf(n, join(key, "type"), "is required (threshold, distinct, sequence, join or travel)")
	}
	if v, ok := f["window"]; ok {
		r.window = d.duration(v, join(key, "window"))
	} else {
		d.errorf(n, join(key, "window"), "is required (a duration such as 15m)")
	}
	r.suppression = r.window
	if v, ok := f["suppression"]; ok {
		r.suppression = d.durationAllowZero(v, join(key, "suppression"))
	}
	if v, ok := f["group_by"]; ok {
		r.groupBy = d.attrList(v, join(key, "group_by"))
	}
	if v, ok := f["context"]; ok {
		r.context = d.attrList(v, join(key, "context"))
	}
	if !kindSet {
		return nil, false
	}
	allowed := map[string]bool{}
	for _, k := range commonRuleKeys {
		allowed[k] = true
	}
	for _, k := range keysFor[r.kind] {
		allowed[k] = true
	}
	for _, kv := range pairs {
		if ruleKeys[kv[0].Value] && !allowed[kv[0].Value] {
			d.errorf(kv[0], join(key, kv[0].Value), "does not apply to rules of type %s", kindNames[r.kind])
		}
	}
	if len(r.groupBy) == 0 && (r.kind == kindJoin || r.kind == kindTravel || r.kind == kindSequence) {
		d.errorf(n, join(key, "group_by"), "is required for rules of type %s", kindNames[r.kind])
	}
	r.gate = typeGate{types: map[string]bool{}, logTypes: map[string]bool{}}
	switch r.kind {
	case kindThreshold, kindDistinct, kindTravel:
		r.match = d.condSet(f, key, n)
		r.gate.addSet(&r.match)
		r.threshold = 1
		if v, ok := f["threshold"]; ok {
			r.threshold = d.positiveInt(v, join(key, "threshold"))
		} else if r.kind == kindDistinct {
			d.errorf(n, join(key, "threshold"), "is required for rules of type distinct")
		}
		r.maxEvents = max(2*r.threshold, minEventsPerGroup)
		if r.kind == kindDistinct {
			if v, ok := f["distinct"]; ok {
				if l := d.attrList(v, join(key, "distinct")); len(l) == 1 {
					r.distinct = l[0]
				} else if len(l) > 1 {
					d.errorf(v, join(key, "distinct"), "must name one attribute")
				}
			} else {
				d.errorf(n, join(key, "distinct"), "is required for rules of type distinct")
			}
		}
		if r.kind == kindTravel {
			r.maxEvents = travelEventsPerGroup
			r.maxSpeed, r.minDist = defaultMaxSpeedKmh, defaultMinDistanceKm
			if v, ok := f["max_speed_kmh"]; ok {
				r.maxSpeed = d.positiveFloat(v, join(key, "max_speed_kmh"))
			}
			if v, ok := f["min_distance_km"]; ok {
				r.minDist = d.nonNegativeFloat(v, join(key, "min_distance_km"))
			}
			r.latAttr, r.lonAttr = a.GeoLocationLat, a.GeoLocationLon
			if v, ok := f["latitude"]; ok {
				if l := d.attrList(v, join(key, "latitude")); len(l) == 1 {
					r.latAttr = l[0]
				}
			}
			if v, ok := f["longitude"]; ok {
				if l := d.attrList(v, join(key, "longitude")); len(l) == 1 {
					r.lonAttr = l[0]
				}
			}
		}
	case kindSequence:
		v, ok := f["steps"]
		if !ok {
			d.errorf(n, join(key, "steps"), "is required for rules of type sequence")
			break
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) < 2 {
			d.errorf(v, join(key, "steps"), "must be a list of at least two steps")
			break
		}
		for i, sn := range v.Content {
			skey := fmt.Sprintf("%s.steps[%d]", key, i)
			sf := map[string]*yaml.Node{}
			for _, kv := range d.mapPairs(sn, skey) {
				switch kv[0].Value {
				case "where", "any_of", "count":
					sf[kv[0].Value] = kv[1]
				default:
					d.errorf(kv[0], join(skey, kv[0].Value), "is not a known step key (where, any_of, count)")
				}
			}
			st := step{match: d.condSet(sf, skey, sn), count: 1}
			if c, ok := sf["count"]; ok {
				st.count = d.positiveInt(c, join(skey, "count"))
			}
			r.steps = append(r.steps, st)
			r.stepCaps = append(r.stepCaps, max(2*st.count, minEventsPerGroup))
			r.gate.addSet(&st.match)
		}
	case kindJoin:
		for _, side := range []string{"left", "right"} {
			v, ok := f[side]
			if !ok {
				d.errorf(n, join(key, side), "is required for rules of type join")
				continue
			}
			skey := join(key, side)
			sf := map[string]*yaml.Node{}
			for _, kv := range d.mapPairs(v, skey) {
				switch kv[0].Value {
				case "select", "where":
					sf[kv[0].Value] = kv[1]
				default:
					d.errorf(kv[0], join(skey, kv[0].Value), "is not a known key (select, where)")
				}
			}
			var js joinSide
			if s, ok := sf["select"]; ok {
				js.sel = condSet{all: d.conds(s, join(skey, "select"))}
			} else if v.Kind == yaml.MappingNode {
				d.errorf(v, join(skey, "select"), "is required: the records that describe this side")
			}
			if w, ok := sf["where"]; ok {
				js.where = condSet{all: d.conds(w, join(skey, "where"))}
			}
			r.gate.addSet(&js.sel)
			if side == "left" {
				r.left = js
			} else {
				r.right = js
			}
		}
	}
	if r.window <= 0 || len(d.errs) > errsBefore {
		return nil, false
	}
	return r, enabled
}

var kindNames = map[ruleKind]string{
	kindThreshold: "threshold", kindDistinct: "distinct", kindSequence: "sequence", kindJoin: "join", kindTravel: "travel",
}

// condSet reads `where` (a mapping: attribute → matcher, all must hold) and `any_of` (a list of such
// mappings, one must hold).
func (d *yamlDoc) condSet(f map[string]*yaml.Node, key string, parent *yaml.Node) condSet {
	var c condSet
	_, hasWhere := f["where"]
	_, hasAny := f["any_of"]
	if !hasWhere && !hasAny {
		d.errorf(parent, join(key, "where"), "conditions are required (`where` or `any_of`)")
		return c
	}
	if w, ok := f["where"]; ok {
		c.all = d.conds(w, join(key, "where"))
	}
	if an, ok := f["any_of"]; ok {
		if an.Kind != yaml.SequenceNode || len(an.Content) == 0 {
			d.errorf(an, join(key, "any_of"), "must be a non-empty list of conditions")
		} else {
			for i, b := range an.Content {
				c.any = append(c.any, d.conds(b, fmt.Sprintf("%s.any_of[%d]", key, i)))
			}
		}
	}
	return c
}

// conds reads a mapping of attribute → matcher. A matcher is a scalar (equals), a list (any of) or a
// mapping of operators: equals, not_equals, in, not_in, exists, prefix, matches.
func (d *yamlDoc) conds(n *yaml.Node, key string) []cond {
	var out []cond
	for _, kv := range d.mapPairs(n, key) {
		attr := kv[0].Value
		ckey := join(key, attr)
		if !attrNamePattern.MatchString(attr) {
			d.errorf(kv[0], ckey, "is not an attribute name")
			continue
		}
		v := kv[1]
		switch v.Kind {
		case yaml.ScalarNode:
			out = append(out, cond{attr: attr, op: opEquals, lits: []literal{d.literal(v, ckey)}})
		case yaml.SequenceNode:
			out = append(out, cond{attr: attr, op: opIn, lits: d.literals(v, ckey)})
		case yaml.MappingNode:
			for _, op := range d.mapPairs(v, ckey) {
				okey := join(ckey, op[0].Value)
				c := cond{attr: attr}
				switch op[0].Value {
				case "equals":
					c.op, c.lits = opEquals, []literal{d.literal(op[1], okey)}
				case "not_equals":
					c.op, c.lits = opNotEquals, []literal{d.literal(op[1], okey)}
				case "in":
					c.op, c.lits = opIn, d.literals(op[1], okey)
				case "not_in":
					c.op, c.lits = opNotIn, d.literals(op[1], okey)
				case "exists":
					c.op = opExists
					s, _ := d.scalar(op[1], okey)
					b, err := strconv.ParseBool(s)
					if err != nil {
						d.errorf(op[1], okey, "must be true or false, got %q", s)
					}
					c.exists = b
				case "prefix":
					c.op = opPrefix
					c.prefix, _ = d.scalar(op[1], okey)
				case "matches":
					c.op = opMatches
					s, _ := d.scalar(op[1], okey)
					re, err := regexp.Compile(s)
					if err != nil {
						d.errorf(op[1], okey, "is not a valid regular expression: %v", err)
						continue
					}
					c.re = re
				default:
					d.errorf(op[0], okey, "is not an operator (equals, not_equals, in, not_in, exists, prefix, matches)")
					continue
				}
				out = append(out, c)
			}
		default:
			d.errorf(v, ckey, "must be a value, a list of values or a mapping of operators")
		}
	}
	return out
}

func (d *yamlDoc) literal(n *yaml.Node, key string) literal {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, key, "must be a value, got %s", kindName(n))
		return literal{}
	}
	return newLiteral(n)
}

func (d *yamlDoc) literals(n *yaml.Node, key string) []literal {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.errorf(n, key, "must be a non-empty list of values")
		return nil
	}
	out := make([]literal, 0, len(n.Content))
	for i, e := range n.Content {
		out = append(out, d.literal(e, fmt.Sprintf("%s[%d]", key, i)))
	}
	return out
}

func (d *yamlDoc) attrList(n *yaml.Node, key string) []string {
	var nodes []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		nodes = []*yaml.Node{n}
	case yaml.SequenceNode:
		nodes = n.Content
	default:
		d.errorf(n, key, "must be an attribute name or a list of them")
		return nil
	}
	var out []string
	for _, e := range nodes {
		s, ok := d.scalar(e, key)
		if !ok {
			continue
		}
		if !attrNamePattern.MatchString(s) {
			d.errorf(e, key, "%q is not an attribute name", s)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *yamlDoc) duration(n *yaml.Node, key string) time.Duration {
	before := len(d.errs)
	v := d.durationAllowZero(n, key)
	if v == 0 && len(d.errs) == before {
		d.errorf(n, key, "must be positive")
	}
	return v
}

func (d *yamlDoc) durationAllowZero(n *yaml.Node, key string) time.Duration {
	s, ok := d.scalar(n, key)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, key, "must be a duration such as 15m or 24h, got %q", s)
		return 0
	}
	if v < 0 {
		d.errorf(n, key, "must not be negative")
		return 0
	}
	return v
}

func (d *yamlDoc) positiveInt(n *yaml.Node, key string) int {
	s, ok := d.scalar(n, key)
	if !ok {
		return 1
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 100000 {
		d.errorf(n, key, "must be an integer between 1 and 100000, got %q", s)
		return 1
	}
	return v
}

func (d *yamlDoc) positiveFloat(n *yaml.Node, key string) float64 {
	before := len(d.errs)
	v := d.nonNegativeFloat(n, key)
	if v == 0 && len(d.errs) == before {
		d.errorf(n, key, "must be positive")
	}
	return v
}

func (d *yamlDoc) nonNegativeFloat(n *yaml.Node, key string) float64 {
	s, ok := d.scalar(n, key)
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		d.errorf(n, key, "must be a non-negative number, got %q", s)
		return 0
	}
	return v
}
