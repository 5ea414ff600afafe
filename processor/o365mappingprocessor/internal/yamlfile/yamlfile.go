// Package yamlfile reads the processor's rule files (mapping.yml, correlation.yml) and collects their
// errors, each naming the file, the line and the key path (`rules[1](spray).threshold`).
package yamlfile

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxBytes bounds mapping.yml and correlation.yml.
const MaxBytes = 4 << 20

// Doc is a parsed rule file and the errors found in it; every error names the file, the line and
// the key path (`mappings.signin.success.domain`).
type Doc struct {
	File string
	errs []lineError
}

type lineError struct {
	line int
	err  error
}

// Read reads path, or the embedded default when path is empty, into a document node.
func Read(path, embeddedName string, embedded []byte) (*yaml.Node, *Doc, error) {
	doc := &Doc{File: embeddedName + " (embedded)"}
	raw := embedded
	if path != "" {
		doc.File = path
		st, err := os.Stat(path)
		if err != nil {
			return nil, doc, err
		}
		if st.Size() > MaxBytes {
			return nil, doc, fmt.Errorf("%s: larger than %d bytes", path, MaxBytes)
		}
		if raw, err = os.ReadFile(path); err != nil {
			return nil, doc, err
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, doc, fmt.Errorf("%s: %w", doc.File, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, doc, fmt.Errorf("%s: empty document", doc.File)
	}
	return root.Content[0], doc, nil
}

// Errorf records an error at n's line for key.
func (d *Doc) Errorf(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, lineError{line, fmt.Errorf("%s:%d: `%s`: %s", d.File, line, key, fmt.Sprintf(format, args...))})
}

// Err joins the errors in line order.
func (d *Doc) Err() error {
	sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].line < d.errs[j].line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e.err
	}
	return errors.Join(errs...)
}

// MapPairs returns the key/value pairs of a mapping node, reporting a non-mapping node, non-scalar keys
// and duplicate keys.
func (d *Doc) MapPairs(n *yaml.Node, key string) [][2]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, key, "must be a mapping, got %s", KindName(n))
		return nil
	}
	seen := map[string]int{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Errorf(k, key, "keys must be scalars")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.Errorf(k, Join(key, k.Value), "is defined twice (first on line %d)", line)
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

// Scalar returns the value of a scalar node, reporting anything else.
func (d *Doc) Scalar(n *yaml.Node, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, key, "must be a scalar, got %s", KindName(n))
		return "", false
	}
	return n.Value, true
}

// Str returns a non-empty single-line string.
func (d *Doc) Str(n *yaml.Node, key string) string {
	s, ok := d.Scalar(n, key)
	if !ok {
		return ""
	}
	if strings.TrimSpace(s) == "" {
		d.Errorf(n, key, "must not be empty")
		return ""
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		d.Errorf(n, key, "must be a single line")
		return ""
	}
	return s
}

// KindName describes a node for an error message.
func KindName(n *yaml.Node) string {
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

// Join appends key to a key path.
func Join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// CheckVersion reports a missing or unsupported `version`.
func (d *Doc) CheckVersion(n *yaml.Node, pairs map[string]*yaml.Node) {
	v, ok := pairs["version"]
	if !ok {
		d.Errorf(n, "version", "is required (version: 1)")
		return
	}
	if s, ok := d.Scalar(v, "version"); ok && s != "1" {
		d.Errorf(v, "version", "must be 1, got %q", s)
	}
}

// Count is the number of errors found so far.
func (d *Doc) Count() int { return len(d.errs) }
