package o365mappingprocessor

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxRuleFileBytes bounds mapping.yml and correlation.yml.
const maxRuleFileBytes = 4 << 20

// yamlDoc is a parsed rule file and the errors found in it; every error names the file, the line and
// the key path (`mappings.signin.success.domain`).
type yamlDoc struct {
	file string
	errs []lineError
}

type lineError struct {
	line int
	err  error
}

// readYAML reads path, or the embedded default when path is empty, into a document node.
func readYAML(path, embeddedName string, embedded []byte) (*yaml.Node, *yamlDoc, error) {
	doc := &yamlDoc{file: embeddedName + " (embedded)"}
	raw := embedded
	if path != "" {
		doc.file = path
		st, err := os.Stat(path)
		if err != nil {
			return nil, doc, err
		}
		if st.Size() > maxRuleFileBytes {
			return nil, doc, fmt.Errorf("%s: larger than %d bytes", path, maxRuleFileBytes)
		}
		if raw, err = os.ReadFile(path); err != nil {
			return nil, doc, err
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, doc, fmt.Errorf("%s: %w", doc.file, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, doc, fmt.Errorf("%s: empty document", doc.file)
	}
	return root.Content[0], doc, nil
}

func (d *yamlDoc) errorf(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, lineError{line, fmt.Errorf("%s:%d: `%s`: %s", d.file, line, key, fmt.Sprintf(format, args...))})
}

// err joins the errors in line order.
func (d *yamlDoc) err() error {
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].line < d.errs[j].line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e.err
	}
	return errors.Join(errs...)
}

// mapPairs returns the key/value pairs of a mapping node, reporting a non-mapping node, non-scalar keys
// and duplicate keys.
func (d *yamlDoc) mapPairs(n *yaml.Node, key string) [][2]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "must be a mapping, got %s", kindName(n))
		return nil
	}
	seen := map[string]int{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, key, "keys must be scalars")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, join(key, k.Value), "is defined twice (first on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

// scalar returns the value of a scalar node, reporting anything else.
func (d *yamlDoc) scalar(n *yaml.Node, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, key, "must be a scalar, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// str returns a non-empty single-line string.
func (d *yamlDoc) str(n *yaml.Node, key string) string {
	s, ok := d.scalar(n, key)
	if !ok {
		return ""
	}
	if strings.TrimSpace(s) == "" {
		d.errorf(n, key, "must not be empty")
		return ""
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		d.errorf(n, key, "must be a single line")
		return ""
	}
	return s
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("the scalar %q", n.Value)
	default:
		return "an alias"
	}
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// checkVersion reports a missing or unsupported `version`.
func (d *yamlDoc) checkVersion(n *yaml.Node, pairs map[string]*yaml.Node) {
	v, ok := pairs["version"]
	if !ok {
		d.errorf(n, "version", "is required (version: 1)")
		return
	}
	if s, ok := d.scalar(v, "version"); ok && s != "1" {
		d.errorf(v, "version", "must be 1, got %q", s)
	}
}
