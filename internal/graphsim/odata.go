package graphsim

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listQuery is a parsed OData list request.
type listQuery struct {
	// Event streams.
	bounds bounds            // on the time field
	alt    map[string]bounds // on the dataset's alternative time properties
	// eventType is the value of a beta `signInEventTypes/any(t: t eq '…')` clause ("" = none).
	eventType string
	desc      bool
	cursor    *cursor
	skip      int // $skip: matching records passed over before the page begins

	top int

	// Snapshots.
	expand []string    // navigation properties to expand, in the order asked
	snap   *snapCursor // position of the next page
}

var eventTypes = []string{"interactiveUser", "nonInteractiveUser", "servicePrincipal", "managedIdentity"}

// eventTypeClause matches beta's lambda filter on signInEventTypes, the one form Graph documents.
var eventTypeClause = regexp.MustCompile(`(?i)^signInEventTypes/any\(\s*(\w+)\s*:\s*(\w+)\s+eq\s+'([^']*)'\s*\)$`)

// sniffEventType finds the signInEventTypes value a filter asks for, leniently: it only routes the
// request to a sign-in kind; parseQuery then checks the filter properly.
func sniffEventType(filter string) string {
	for _, c := range splitAnd(filter) {
		c = strings.TrimSpace(c)
		for {
			inner, ok := stripParens(c)
			if !ok {
				break
			}
			c = strings.TrimSpace(inner)
		}
		if m := eventTypeClause.FindStringSubmatch(c); m != nil {
			return m[3]
		}
	}
	return ""
}

// parseListQuery parses a v1.0 list request of def (see parseQuery).
func parseListQuery(q url.Values, def *datasetDef, capTop int) (listQuery, error) {
	return parseQuery(q, def, capTop, false)
}

// parseQuery parses the query options Graph accepts on def's collection. Event streams: $filter on the
// time field (and the dataset's alternative time properties; on beta sign-ins a signInEventTypes
// clause), $orderby on the time field where supported, $top, $skiptoken. Snapshots: $top, $skiptoken.
// Both: $expand of the navigation properties the dataset has. Any other $ option is refused, as Graph refuses
// what an API does not support; options without $ are ignored.
func parseQuery(q url.Values, def *datasetDef, capTop int, beta bool) (listQuery, error) {
	defTop, maxTop := def.pageSizes(capTop)
	lq := listQuery{desc: true, top: defTop} // Graph lists newest first by default
	allowed := map[string]bool{"$top": true, "$skiptoken": true}
	if def.kind == kindStream {
		allowed["$filter"] = true
		allowed["$orderby"] = def.orderable
		allowed["$skip"] = def.skippable
	}
	allowed["$expand"] = len(def.expandable) > 0
	for key := range q {
		if strings.HasPrefix(key, "$") && !allowed[key] {
			return lq, fmt.Errorf("query option '%s' is not supported", key)
		}
	}
	if f := q.Get("$filter"); f != "" {
		fs := filterSpec{field: def.timeField, alt: def.altTimes, eventTypes: def.eventType != "", beta: beta}
		if err := applyFilter(&lq, f, fs); err != nil {
			return lq, err
		}
	}
	if def.eventType != "" && lq.eventType != "" && !strings.EqualFold(lq.eventType, def.eventType) {
		return lq, fmt.Errorf("invalid filter: signInEventTypes '%s' and '%s' cannot both match", lq.eventType, def.eventType)
	}
	if def.betaOnly && !beta {
		return lq, fmt.Errorf("signInEventTypes '%s' is available on the beta endpoint only", def.eventType)
	}
	if o := q.Get("$orderby"); o != "" {
		parts := strings.Fields(o)
		if len(parts) == 0 || len(parts) > 2 || !strings.EqualFold(parts[0], def.timeField) {
			return lq, fmt.Errorf("$orderby is only supported on '%s'", def.timeField)
		}
		lq.desc = false
		if len(parts) == 2 {
			switch strings.ToLower(parts[1]) {
			case "asc":
			case "desc":
				lq.desc = true
			default:
				return lq, fmt.Errorf("invalid $orderby direction '%s'", parts[1])
			}
		}
	}
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > maxTop {
			return lq, fmt.Errorf("invalid page size specified: '%s'; must be between 1 and %d", t, maxTop)
		}
		lq.top = n
	}
	if v := q.Get("$skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return lq, fmt.Errorf("invalid $skip value '%s'", v)
		}
		lq.skip = n
	}
	if e := q.Get("$expand"); e != "" {
		for _, p := range strings.Split(e, ",") {
			p = strings.TrimSpace(p)
			name := ""
			for _, x := range def.expandable {
				if strings.EqualFold(p, x) {
					name = x
				}
			}
			if name == "" {
				return lq, fmt.Errorf("Could not find a navigation property named '%s' to expand", p) //nolint:staticcheck // Graph's own message
			}
			if !slices.Contains(lq.expand, name) {
				lq.expand = append(lq.expand, name)
			}
		}
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		if def.kind == kindSnapshot {
			c, err := parseSnapCursor(tok)
			if err != nil {
				return lq, err
			}
			lq.snap = &c
		} else {
			c, err := parseCursor(tok)
			if err != nil {
				return lq, err
			}
			lq.cursor = &c
		}
	}
	return lq, nil
}

// filterSpec says what a $filter may compare.
type filterSpec struct {
	field      string             // the time field
	alt        map[string]altTime // alternative time properties
	eventTypes bool               // the collection is sign-ins: signInEventTypes is a property (on beta)
	beta       bool
}

// parseTimeFilter parses a conjunction of comparisons of field.
func parseTimeFilter(f, field string) (bounds, error) {
	var lq listQuery
	err := applyFilter(&lq, f, filterSpec{field: field})
	return lq.bounds, err
}

// applyFilter narrows lq by every clause of the conjunction f; parentheses may enclose a single clause or
// a whole conjunction, at any depth. The grammar is the subset Graph documents for these collections:
// comparisons of a time property with `eq`, `ge`, `le`, `gt`, `lt` joined by `and`, and on beta sign-ins
// `signInEventTypes/any(t: t eq '<type>')`.
func applyFilter(lq *listQuery, f string, fs filterSpec) error {
	clauses := splitAnd(f)
	if len(clauses) > 1 {
		for _, c := range clauses {
			if err := applyFilter(lq, c, fs); err != nil {
				return err
			}
		}
		return nil
	}
	c := strings.TrimSpace(clauses[0])
	if inner, ok := stripParens(c); ok {
		return applyFilter(lq, inner, fs)
	}
	if fs.eventTypes && strings.HasPrefix(strings.ToLower(c), "signineventtypes/") {
		if !fs.beta {
			return errors.New("Could not find a property named 'signInEventTypes' on type 'microsoft.graph.signIn'.") //nolint:staticcheck // Graph's own message
		}
		m := eventTypeClause.FindStringSubmatch(c)
		if m == nil || m[1] != m[2] {
			return fmt.Errorf("invalid filter clause '%s'", c)
		}
		value := ""
		for _, et := range eventTypes {
			if strings.EqualFold(et, m[3]) {
				value = et
			}
		}
		if value == "" {
			return fmt.Errorf("'%s' is not a valid signInEventTypes value", m[3])
		}
		if lq.eventType != "" && lq.eventType != value {
			return fmt.Errorf("invalid filter: signInEventTypes '%s' and '%s' cannot both match", lq.eventType, value)
		}
		lq.eventType = value
		return nil
	}
	parts := strings.Fields(c)
	if len(parts) != 3 {
		return fmt.Errorf("invalid filter clause '%s'", c)
	}
	target := &lq.bounds
	if !strings.EqualFold(parts[0], fs.field) {
		var name string
		for k := range fs.alt {
			if strings.EqualFold(parts[0], k) {
				name = k
			}
		}
		if name == "" {
			return fmt.Errorf("filter on property '%s' is not supported; use '%s'", parts[0], fs.field)
		}
		if lq.alt == nil {
			lq.alt = map[string]bounds{}
		}
		b := lq.alt[name]
		defer func() { lq.alt[name] = b }()
		target = &b
	}
	t, err := time.Parse(time.RFC3339Nano, strings.Trim(parts[2], "'"))
	if err != nil {
		return fmt.Errorf("invalid DateTimeOffset literal '%s'", parts[2])
	}
	// Comparisons are intersected, whatever their order.
	switch op := strings.ToLower(parts[1]); op {
	case "ge", "gt":
		target.narrowFrom(t, op == "gt")
	case "le", "lt":
		target.narrowTo(t, op == "lt")
	case "eq":
		target.narrowFrom(t, false)
		target.narrowTo(t, false)
	default:
		return fmt.Errorf("operator '%s' is not supported on '%s'", parts[1], parts[0])
	}
	return nil
}

func (b *bounds) narrowFrom(t time.Time, open bool) {
	if b.from == nil || t.After(*b.from) || (t.Equal(*b.from) && open) {
		b.from, b.fromOpen = &t, open
	}
}

func (b *bounds) narrowTo(t time.Time, open bool) {
	if b.to == nil || t.Before(*b.to) || (t.Equal(*b.to) && open) {
		b.to, b.toOpen = &t, open
	}
}

// stripParens returns what is inside c when one pair of parentheses encloses all of it.
func stripParens(c string) (string, bool) {
	if !strings.HasPrefix(c, "(") {
		return "", false
	}
	depth := 0
	for i := 0; i < len(c); i++ {
		switch c[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				if i != len(c)-1 {
					return "", false // "(a) and (b)" or "(a) x"
				}
				return c[1:i], true
			}
		}
	}
	return "", false // unbalanced
}

// splitAnd splits on the `and` keyword outside parentheses.
func splitAnd(f string) []string {
	var out []string
	depth, start := 0, 0
	lower := strings.ToLower(f)
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ' ':
			if depth == 0 && strings.HasPrefix(lower[i:], " and ") {
				out = append(out, f[start:i])
				start = i + len(" and ")
				i = start - 1
			}
		}
	}
	return append(out, f[start:])
}
