package correlation

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/yamlfile"
)

// kinds are the rule types, by their `type` value. A rule kind is a file with its config type (which
// embeds Common and implements kindConfig) and its running kind; adding one takes that file and a line
// here.
var kinds = map[string]func() kindConfig{
	"threshold": func() kindConfig { return new(thresholdConfig) },
	"distinct":  func() kindConfig { return new(distinctConfig) },
	"sequence":  func() kindConfig { return new(sequenceConfig) },
	"join":      func() kindConfig { return new(joinConfig) },
	"travel":    func() kindConfig { return new(travelConfig) },
}

// kindConfig is one rule kind's configuration, decoded strictly from its rule's mapping.
type kindConfig interface {
	base() *Common
	// build checks what the field types cannot (cross-field rules), widens the rule's gate by the
	// records it can concern, and returns the running kind.
	build(b *builder) kind
}

// kind is a running rule kind. The engine hands it the records the rule's gate admits; it keeps its
// state in groups (scope.group), and returns what completes an incident.
type kind interface {
	newState() state
	observe(s *scope, rec *Record) *fire
}

// state is a kind's state of one group. size is the entries it holds: the engine accounts for them in
// one place, after every observation, sweep or eviction.
type state interface {
	size() int
}

// Common are the keys every rule has.
type Common struct {
	Name        word        `yaml:"name,required"`
	Description text        `yaml:"description"`
	Enabled     flag        `yaml:"enabled"`
	Severity    word        `yaml:"severity,required"`
	Type        word        `yaml:"type,required"`
	Window      duration    `yaml:"window,required"`
	Suppression optDuration `yaml:"suppression"`
	GroupBy     attrs       `yaml:"group_by"`
	Context     attrs       `yaml:"context"`
}

func (c *Common) base() *Common { return c }

// Rule is one validated correlation rule.
type Rule struct {
	Name        string
	Description string
	Severity    string
	Window      time.Duration
	Suppression time.Duration
	GroupBy     []string
	Context     []string
	// EventType is the incident's o365.event.type: incident_candidate.<name>.
	EventType string

	idx  int
	gate typeGate // which normalized records can concern the rule
	kind kind
}

// Severities maps a rule severity to the log record severity of its incidents.
var Severities = map[string]plog.SeverityNumber{
	"low": plog.SeverityNumberInfo, "medium": plog.SeverityNumberWarn, "high": plog.SeverityNumberError,
	"critical": plog.SeverityNumberFatal,
}

var ruleNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// builder gives a kindConfig's build what it needs to report errors and widen the gate.
type builder struct {
	d       *yamlfile.Doc
	n       *yaml.Node
	key     string
	kind    string
	present map[string]bool
	rule    *Rule
}

// require reports a key the kind needs that the rule does not give.
func (b *builder) require(key string) {
	if !b.present[key] {
		b.d.Errorf(b.n, yamlfile.Join(b.key, key), "is required for rules of type %s", b.kind)
	}
}

// admit widens the rule's gate by what a condition set can match.
func (b *builder) admit(c *condSet) { b.rule.gate.addSet(c) }

// Load reads path, or the embedded default when path is empty, and validates it. The schema is in the
// processor's README ("correlation.yml").
func Load(path, embeddedName string, embedded []byte) ([]*Rule, error) {
	root, d, err := yamlfile.Read(path, embeddedName, embedded)
	if err != nil {
		return nil, err
	}
	top := map[string]*yaml.Node{}
	for _, kv := range d.MapPairs(root, "") {
		switch kv[0].Value {
		case "version", "rules":
			top[kv[0].Value] = kv[1]
		default:
			d.Errorf(kv[0], kv[0].Value, "is not a known key (version, rules)")
		}
	}
	if root.Kind != yaml.MappingNode {
		return nil, d.Err()
	}
	d.CheckVersion(root, top)
	rulesNode, ok := top["rules"]
	if !ok {
		d.Errorf(root, "rules", "is required")
		return nil, d.Err()
	}
	if rulesNode.Kind != yaml.SequenceNode {
		d.Errorf(rulesNode, "rules", "must be a list, got %s", yamlfile.KindName(rulesNode))
		return nil, d.Err()
	}
	var rules []*Rule
	names := map[string]int{}
	for i, rn := range rulesNode.Content {
		r, enabled := parseRule(d, rn, fmt.Sprintf("rules[%d]", i))
		if r == nil {
			continue
		}
		if line, dup := names[r.Name]; dup {
			d.Errorf(rn, fmt.Sprintf("rules[%d].name", i), "%q is already used by the rule on line %d", r.Name, line)
			continue
		}
		names[r.Name] = rn.Line
		if enabled {
			r.idx = len(rules)
			rules = append(rules, r)
		}
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return rules, nil
}

// kindNames lists the rule types, sorted.
func kindNames() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ruleKeys maps every key some rule kind takes to the kinds that take it.
var ruleKeys = func() map[string][]string {
	m := map[string][]string{}
	for _, k := range kindNames() {
		for _, key := range knownKeys(kinds[k]()) {
			m[key] = append(m[key], k)
		}
	}
	return m
}()

func parseRule(d *yamlfile.Doc, n *yaml.Node, key string) (*Rule, bool) {
	pairs := d.MapPairs(n, key)
	if n.Kind != yaml.MappingNode {
		return nil, false
	}
	// The name goes into every later key path; the type picks the config struct.
	var name, typ string
	for _, kv := range pairs {
		switch kv[0].Value {
		case "name":
			name = kv[1].Value
		case "type":
			typ = kv[1].Value
		}
	}
	nameKey := yamlfile.Join(key, "name")
	if name != "" {
		key = fmt.Sprintf("%s(%s)", key, name)
	}
	before := d.Count()
	newCfg, known := kinds[typ]
	var cfg kindConfig
	c, target := new(Common), any(nil)
	if known {
		cfg = newCfg()
		c, target = cfg.base(), cfg
	} else {
		target = c // the Common keys are still checked
	}
	note := func(field string) string {
		if slices.Contains(knownKeys(new(Common)), field) {
			return ""
		}
		return " for rules of type " + typ
	}
	present := decodeStruct(d, n, pairs, key, target, note, func(k *yaml.Node) {
		switch takers := ruleKeys[k.Value]; {
		case len(takers) == 0:
			d.Errorf(k, yamlfile.Join(key, k.Value), "is not a known rule key")
		case known:
			d.Errorf(k, yamlfile.Join(key, k.Value), "does not apply to rules of type %s", typ)
		}
	})
	if c.Name != "" && !ruleNamePattern.MatchString(string(c.Name)) {
		d.Errorf(nodeOf(pairs, "name", n), nameKey, "must be lower-case letters, digits and '_', starting with a letter, got %q", c.Name)
	}
	if _, ok := Severities[string(c.Severity)]; c.Severity != "" && !ok {
		d.Errorf(nodeOf(pairs, "severity", n), yamlfile.Join(key, "severity"), "must be low, medium, high or critical, got %q", c.Severity)
	}
	if c.Type != "" && !known {
		d.Errorf(nodeOf(pairs, "type", n), yamlfile.Join(key, "type"), "must be one of %s, got %q", strings.Join(kindNames(), ", "), c.Type)
	}
	if !known {
		return nil, false
	}
	r := &Rule{Name: string(c.Name), Description: string(c.Description), Severity: string(c.Severity),
		Window: time.Duration(c.Window), Suppression: time.Duration(c.Window), GroupBy: c.GroupBy, Context: c.Context,
		EventType: "incident_candidate." + string(c.Name),
		gate:      typeGate{types: map[string]bool{}, logTypes: map[string]bool{}}}
	if c.Suppression.set {
		r.Suppression = c.Suppression.v
	}
	r.kind = cfg.build(&builder{d: d, n: n, key: key, kind: typ, present: present, rule: r})
	if r.Window <= 0 || d.Count() > before {
		return nil, false
	}
	return r, !c.Enabled.set || c.Enabled.v
}

// nodeOf returns the value node of key among pairs, else def.
func nodeOf(pairs [][2]*yaml.Node, key string, def *yaml.Node) *yaml.Node {
	for _, kv := range pairs {
		if kv[0].Value == key {
			return kv[1]
		}
	}
	return def
}
