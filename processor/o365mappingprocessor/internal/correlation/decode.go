package correlation

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/yamlfile"
)

// Strict decoding of correlation.yml. Every rule kind has its own config struct; decodeStruct takes
// each key of a mapping to the struct field of that `yaml` tag (fields of an embedded struct tagged
// `yaml:",inline"` too), and the field's type decodes and checks its value. Every error names the file,
// the line and the key; no key goes unnoticed.

// field is a config value that decodes itself.
type field interface {
	decode(d *yamlfile.Doc, n *yaml.Node, key string)
}

type fieldInfo struct {
	name     string
	required bool
	index    []int
}

var fieldCache sync.Map // reflect.Type → []fieldInfo

// fieldsOf lists the yaml fields of a config struct type.
func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for _, sub := range fieldsOf(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		out = append(out, fieldInfo{name: name, required: opts == "required", index: []int{i}})
	}
	fieldCache.Store(t, out)
	return out
}

// knownKeys lists a config struct's keys.
func knownKeys(cfg any) []string {
	var out []string
	for _, f := range fieldsOf(reflect.TypeOf(cfg).Elem()) {
		out = append(out, f.name)
	}
	return out
}

// decodeStruct decodes the pairs of mapping node n into out, a pointer to a config struct. A key no field
// takes goes to unknown; a missing required field is reported at n's line, with note(field) appended
// when note is set ("for rules of type distinct"). It returns the keys present.
func decodeStruct(d *yamlfile.Doc, n *yaml.Node, pairs [][2]*yaml.Node, key string, out any, note func(string) string,
	unknown func(k *yaml.Node)) map[string]bool {
	v := reflect.ValueOf(out).Elem()
	fields := fieldsOf(v.Type())
	present := map[string]bool{}
	for _, kv := range pairs {
		found := false
		for _, f := range fields {
			if f.name == kv[0].Value {
				v.FieldByIndex(f.index).Addr().Interface().(field).decode(d, kv[1], yamlfile.Join(key, f.name))
				present[f.name], found = true, true
				break
			}
		}
		if !found && unknown != nil {
			unknown(kv[0])
		}
	}
	for _, f := range fields {
		if f.required && !present[f.name] {
			msg := "is required"
			if note != nil {
				msg += note(f.name)
			}
			d.Errorf(n, yamlfile.Join(key, f.name), "%s", msg)
		}
	}
	return present
}

// decodeMapping decodes a nested mapping (a step, a join side) strictly: unknown keys are errors that
// list the known ones.
func decodeMapping(d *yamlfile.Doc, n *yaml.Node, key string, out any) map[string]bool {
	pairs := d.MapPairs(n, key)
	if n.Kind != yaml.MappingNode {
		return map[string]bool{}
	}
	known := strings.Join(knownKeys(out), ", ")
	return decodeStruct(d, n, pairs, key, out, nil, func(k *yaml.Node) {
		d.Errorf(k, yamlfile.Join(key, k.Value), "is not a known key (%s)", known)
	})
}

// ---- field types ----

// text is any scalar.
type text string

func (t *text) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	s, _ := d.Scalar(n, key)
	*t = text(s)
}

// word is a non-empty single-line scalar.
type word string

func (w *word) decode(d *yamlfile.Doc, n *yaml.Node, key string) { *w = word(d.Str(n, key)) }

// flag is true or false.
type flag struct{ v, set bool }

func (f *flag) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	s, ok := d.Scalar(n, key)
	if !ok {
		return
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		d.Errorf(n, key, "must be true or false, got %q", s)
		return
	}
	f.v, f.set = b, true
}

// duration is a positive Go duration; optDuration may be zero.
type (
	duration    time.Duration
	optDuration struct {
		v   time.Duration
		set bool
	}
)

func (t *duration) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	var o optDuration
	if o.decode(d, n, key); o.set && o.v == 0 {
		d.Errorf(n, key, "must be positive")
	}
	*t = duration(o.v)
}

func (t *optDuration) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	s, ok := d.Scalar(n, key)
	if !ok {
		return
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.Errorf(n, key, "must be a duration such as 15m or 24h, got %q", s)
	case v < 0:
		d.Errorf(n, key, "must not be negative")
	default:
		t.v, t.set = v, true
	}
}

// count is an integer between 1 and 100000.
type count int

func (c *count) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	s, ok := d.Scalar(n, key)
	if !ok {
		return
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > 100000 {
		d.Errorf(n, key, "must be an integer between 1 and 100000, got %q", s)
		return
	}
	*c = count(v)
}

// positive is a positive number, nonNegative a number ≥ 0.
type (
	positive    struct{ v float64 }
	nonNegative struct{ v float64 }
)

func (p *positive) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	var o nonNegative
	before := d.Count()
	o.decode(d, n, key)
	if o.v == 0 && d.Count() == before {
		d.Errorf(n, key, "must be positive")
	}
	p.v = o.v
}

func (p *nonNegative) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	s, ok := d.Scalar(n, key)
	if !ok {
		return
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		d.Errorf(n, key, "must be a non-negative number, got %q", s)
		return
	}
	p.v = v
}

var attrNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)

// attrs is an attribute name or a list of them; attr is exactly one.
type (
	attrs []string
	attr  string
)

func (l *attrs) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	nodes := []*yaml.Node{n}
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.SequenceNode:
		nodes = n.Content
	default:
		d.Errorf(n, key, "must be an attribute name or a list of them")
		return
	}
	for _, e := range nodes {
		s, ok := d.Scalar(e, key)
		if !ok {
			continue
		}
		if !attrNamePattern.MatchString(s) {
			d.Errorf(e, key, "%q is not an attribute name", s)
			continue
		}
		*l = append(*l, s)
	}
}

func (a *attr) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	var l attrs
	l.decode(d, n, key)
	switch {
	case len(l) == 1:
		*a = attr(l[0])
	case len(l) > 1:
		d.Errorf(n, key, "must name one attribute")
	}
}

// where is a mapping of attribute → matcher, all of which must hold. A matcher is a value (equals), a
// list (any of) or a mapping of operators: equals, not_equals, in, not_in, exists, prefix, matches.
type where []cond

// anyOf is a non-empty list of `where` mappings, one of which must hold.
type anyOf [][]cond

func (w *where) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	for _, kv := range d.MapPairs(n, key) {
		attrName := kv[0].Value
		ckey := yamlfile.Join(key, attrName)
		if !attrNamePattern.MatchString(attrName) {
			d.Errorf(kv[0], ckey, "is not an attribute name")
			continue
		}
		v := kv[1]
		switch v.Kind {
		case yaml.ScalarNode:
			*w = append(*w, cond{attr: attrName, op: opEquals, lits: []literal{literalOf(d, v, ckey)}})
		case yaml.SequenceNode:
			*w = append(*w, cond{attr: attrName, op: opIn, lits: literalsOf(d, v, ckey)})
		case yaml.MappingNode:
			for _, op := range d.MapPairs(v, ckey) {
				if c, ok := operator(d, attrName, op[0], op[1], yamlfile.Join(ckey, op[0].Value)); ok {
					*w = append(*w, c)
				}
			}
		default:
			d.Errorf(v, ckey, "must be a value, a list of values or a mapping of operators")
		}
	}
}

func operator(d *yamlfile.Doc, attrName string, opNode, v *yaml.Node, key string) (cond, bool) {
	c := cond{attr: attrName}
	switch opNode.Value {
	case "equals":
		c.op, c.lits = opEquals, []literal{literalOf(d, v, key)}
	case "not_equals":
		c.op, c.lits = opNotEquals, []literal{literalOf(d, v, key)}
	case "in":
		c.op, c.lits = opIn, literalsOf(d, v, key)
	case "not_in":
		c.op, c.lits = opNotIn, literalsOf(d, v, key)
	case "exists":
		var f flag
		f.decode(d, v, key)
		c.op, c.exists = opExists, f.v
	case "prefix":
		c.op = opPrefix
		c.prefix, _ = d.Scalar(v, key)
	case "matches":
		c.op = opMatches
		s, _ := d.Scalar(v, key)
		re, err := regexp.Compile(s)
		if err != nil {
			d.Errorf(v, key, "is not a valid regular expression: %v", err)
			return c, false
		}
		c.re = re
	default:
		d.Errorf(opNode, key, "is not an operator (equals, not_equals, in, not_in, exists, prefix, matches)")
		return c, false
	}
	return c, true
}

func (o *anyOf) decode(d *yamlfile.Doc, n *yaml.Node, key string) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.Errorf(n, key, "must be a non-empty list of conditions")
		return
	}
	for i, b := range n.Content {
		var w where
		w.decode(d, b, fmt.Sprintf("%s[%d]", key, i))
		*o = append(*o, w)
	}
}

func literalOf(d *yamlfile.Doc, n *yaml.Node, key string) literal {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.Errorf(n, key, "must be a value, got %s", yamlfile.KindName(n))
		return literal{}
	}
	return newLiteral(n)
}

func literalsOf(d *yamlfile.Doc, n *yaml.Node, key string) []literal {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.Errorf(n, key, "must be a non-empty list of values")
		return nil
	}
	out := make([]literal, 0, len(n.Content))
	for i, e := range n.Content {
		out = append(out, literalOf(d, e, fmt.Sprintf("%s[%d]", key, i)))
	}
	return out
}

// Match is the `where` + `any_of` pair of a rule or a step; at least one must be given.
type Match struct {
	Where where `yaml:"where"`
	AnyOf anyOf `yaml:"any_of"`
}

// set returns the conditions, reporting at n when neither `where` nor `any_of` was given.
func (m *Match) set(d *yamlfile.Doc, n *yaml.Node, key string, present map[string]bool) condSet {
	if !present["where"] && !present["any_of"] {
		d.Errorf(n, yamlfile.Join(key, "where"), "conditions are required (`where` or `any_of`)")
	}
	return condSet{all: m.Where, any: m.AnyOf}
}
