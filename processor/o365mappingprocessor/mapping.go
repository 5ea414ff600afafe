package o365mappingprocessor

import (
	_ "embed"
	"regexp"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-o365/otelcol-o365/processor/o365mappingprocessor/internal/yamlfile"
)

//go:embed mapping.yml
var defaultMappingYAML []byte

// mappingEntry is what one normalized event type maps to.
type mappingEntry struct {
	Domain      string
	Control     string
	Metric      string
	Description string
	pattern     string
}

// mappingTable resolves a normalized event type to its entry: an exact key first, then the longest
// `prefix.*` pattern, then `*`. Lookups allocate nothing.
type mappingTable struct {
	exact    map[string]*mappingEntry
	prefixes map[string]*mappingEntry // "directory_audit.role_management." for "directory_audit.role_management.*"
	fallback *mappingEntry
}

func (t *mappingTable) lookup(eventType string) *mappingEntry {
	if e, ok := t.exact[eventType]; ok {
		return e
	}
	if len(t.prefixes) > 0 {
		for i := len(eventType) - 1; i > 0; i-- {
			if eventType[i] == '.' {
				if e, ok := t.prefixes[eventType[:i+1]]; ok {
					return e
				}
			}
		}
	}
	return t.fallback
}

// patterns lists the table's keys, sorted (documentation, tests).
func (t *mappingTable) patterns() []string {
	var out []string
	for k := range t.exact {
		out = append(out, k)
	}
	for k := range t.prefixes {
		out = append(out, k+"*")
	}
	if t.fallback != nil {
		out = append(out, "*")
	}
	sort.Strings(out)
	return out
}

var (
	eventTypePattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$`)
	mappingName      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)
)

// loadMapping reads path, or the embedded mapping.yml when path is empty, and validates it.
//
// Schema:
//
//	version: 1
//	mappings:
//	  <event type | prefix.* | *>:
//	    domain: <name>        # required
//	    control: <text>       # required
//	    metric: <name>        # required
//	    description: <text>   # optional
func loadMapping(path string) (*mappingTable, error) {
	root, doc, err := yamlfile.Read(path, "mapping.yml", defaultMappingYAML)
	if err != nil {
		return nil, err
	}
	top := map[string]*yaml.Node{}
	for _, kv := range doc.MapPairs(root, "") {
		switch kv[0].Value {
		case "version", "mappings":
			top[kv[0].Value] = kv[1]
		default:
			doc.Errorf(kv[0], kv[0].Value, "is not a known key (version, mappings)")
		}
	}
	if root.Kind == yaml.MappingNode {
		doc.CheckVersion(root, top)
	}
	t := &mappingTable{exact: map[string]*mappingEntry{}, prefixes: map[string]*mappingEntry{}}
	mappings, ok := top["mappings"]
	if !ok {
		if root.Kind == yaml.MappingNode {
			doc.Errorf(root, "mappings", "is required")
		}
		return nil, doc.Err()
	}
	for _, kv := range doc.MapPairs(mappings, "mappings") {
		pattern := kv[0].Value
		key := yamlfile.Join("mappings", pattern)
		if pattern != "*" && !eventTypePattern.MatchString(pattern) {
			doc.Errorf(kv[0], key, "is not an event type (lower-case words joined by '.'), a `prefix.*` pattern or `*`")
			continue
		}
		e := &mappingEntry{pattern: pattern}
		fields := map[string]*yaml.Node{}
		for _, f := range doc.MapPairs(kv[1], key) {
			switch f[0].Value {
			case "domain", "control", "metric", "description":
				fields[f[0].Value] = f[1]
			default:
				doc.Errorf(f[0], yamlfile.Join(key, f[0].Value), "is not a known key (domain, control, metric, description)")
			}
		}
		if kv[1].Kind != yaml.MappingNode {
			continue
		}
		for _, name := range []string{"domain", "control", "metric"} {
			n, ok := fields[name]
			if !ok {
				doc.Errorf(kv[1], yamlfile.Join(key, name), "is required")
				continue
			}
			s := doc.Str(n, yamlfile.Join(key, name))
			if s == "" {
				continue
			}
			if len(s) > 128 {
				doc.Errorf(n, yamlfile.Join(key, name), "must be at most 128 characters")
				continue
			}
			if name != "control" && !mappingName.MatchString(s) {
				doc.Errorf(n, yamlfile.Join(key, name), "must be a name (letters, digits, '_', '.', ':', '-'), got %q", s)
				continue
			}
			switch name {
			case "domain":
				e.Domain = s
			case "control":
				e.Control = s
			case "metric":
				e.Metric = s
			}
		}
		if n, ok := fields["description"]; ok {
			e.Description, _ = doc.Scalar(n, yamlfile.Join(key, "description"))
		}
		switch {
		case pattern == "*":
			t.fallback = e
		case len(pattern) > 2 && pattern[len(pattern)-2:] == ".*":
			t.prefixes[pattern[:len(pattern)-1]] = e
		default:
			t.exact[pattern] = e
		}
	}
	if err := doc.Err(); err != nil {
		return nil, err
	}
	return t, nil
}
