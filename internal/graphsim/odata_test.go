package graphsim

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTimeFilter(t *testing.T) {
	a := time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC)
	b := a.Add(time.Hour)
	as, bs := FormatTime(a), FormatTime(b)
	ns := time.Nanosecond
	// probes are checked against the parsed interval: every instant listed in in must pass, every one
	// in out must not.
	cases := []struct {
		name    string
		filter  string
		in, out []time.Time
	}{
		{"ge is inclusive", "createdDateTime ge " + as, []time.Time{a, a.Add(ns), b}, []time.Time{a.Add(-ns)}},
		{"gt is exclusive", "createdDateTime gt " + as, []time.Time{a.Add(ns)}, []time.Time{a, a.Add(-ns)}},
		{"le is inclusive", "createdDateTime le " + bs, []time.Time{b, b.Add(-ns), a}, []time.Time{b.Add(ns)}},
		{"lt is exclusive", "createdDateTime lt " + bs, []time.Time{b.Add(-ns)}, []time.Time{b, b.Add(ns)}},
		{"eq is one instant", "createdDateTime eq " + as, []time.Time{a}, []time.Time{a.Add(-ns), a.Add(ns)}},
		{"ge and le", "createdDateTime ge " + as + " and createdDateTime le " + bs,
			[]time.Time{a, b, a.Add(time.Minute)}, []time.Time{a.Add(-ns), b.Add(ns)}},
		{"gt and lt", "createdDateTime gt " + as + " and createdDateTime lt " + bs,
			[]time.Time{a.Add(ns), b.Add(-ns)}, []time.Time{a, b}},
		{"AND and operators in capitals", "createdDateTime GE " + as + " AND createdDateTime LT " + bs,
			[]time.Time{a, b.Add(-ns)}, []time.Time{a.Add(-ns), b}},
		{"each clause parenthesised", "(createdDateTime ge " + as + ") and (createdDateTime le " + bs + ")",
			[]time.Time{a, b}, []time.Time{a.Add(-ns), b.Add(ns)}},
		{"whole conjunction parenthesised", "(createdDateTime ge " + as + " and createdDateTime le " + bs + ")",
			[]time.Time{a, b}, []time.Time{a.Add(-ns), b.Add(ns)}},
		{"nested parentheses", "((createdDateTime ge " + as + ") and ((createdDateTime le " + bs + ")))",
			[]time.Time{a, b}, []time.Time{a.Add(-ns), b.Add(ns)}},
		{"property name is case-insensitive", "CreatedDateTime ge " + as, []time.Time{a}, []time.Time{a.Add(-ns)}},
		{"the tighter lower bound wins", "createdDateTime ge " + bs + " and createdDateTime ge " + as,
			[]time.Time{b}, []time.Time{b.Add(-ns), a}},
		{"gt wins over ge at the same instant", "createdDateTime ge " + as + " and createdDateTime gt " + as,
			[]time.Time{a.Add(ns)}, []time.Time{a}},
		{"gt wins over ge at the same instant, in either order", "createdDateTime GT " + as + " and createdDateTime ge " + as,
			[]time.Time{a.Add(ns)}, []time.Time{a}},
		{"GT in capitals after ge at the same instant", "createdDateTime ge " + as + " and createdDateTime GT " + as,
			[]time.Time{a.Add(ns)}, []time.Time{a}},
		{"lt wins over le at the same instant", "createdDateTime LT " + bs + " and createdDateTime le " + bs,
			[]time.Time{b.Add(-ns)}, []time.Time{b}},
		{"eq intersects an earlier bound", "createdDateTime ge " + bs + " and createdDateTime eq " + as,
			nil, []time.Time{a, b}},
		{"eq intersects a later bound", "createdDateTime eq " + as + " and createdDateTime ge " + bs,
			nil, []time.Time{a, b}},
		{"eq inside a range", "createdDateTime ge " + as + " and createdDateTime eq " + bs,
			[]time.Time{b}, []time.Time{a, b.Add(ns)}},
		{"offset literal", "createdDateTime ge 2024-03-13T12:00:00+02:00", []time.Time{a}, []time.Time{a.Add(-ns)}},
		{"literal without fraction", "createdDateTime le 2024-03-13T10:00:00Z", []time.Time{a}, []time.Time{a.Add(ns)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseTimeFilter(c.filter, "createdDateTime")
			require.NoError(t, err)
			for _, p := range c.in {
				assert.True(t, got.contains(p), "%s should pass", FormatTime(p))
			}
			for _, p := range c.out {
				assert.False(t, got.contains(p), "%s should not pass", FormatTime(p))
			}
		})
	}
}

func TestParseTimeFilterErrors(t *testing.T) {
	as := FormatTime(time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC))
	cases := []struct {
		name, filter, field, wantErr string
	}{
		{"wrong field", "activityDateTime ge " + as, "createdDateTime", "not supported"},
		{"wrong field for audits", "createdDateTime ge " + as, "activityDateTime", "not supported"},
		{"wrong field in the second clause", "createdDateTime ge " + as + " and userId eq " + as, "createdDateTime", "not supported"},
		{"bad literal", "createdDateTime ge yesterday", "createdDateTime", "invalid DateTimeOffset literal"},
		{"month 13", "createdDateTime ge 2024-13-01T00:00:00Z", "createdDateTime", "invalid DateTimeOffset literal"},
		{"date without time", "createdDateTime ge 2024-03-13", "createdDateTime", "invalid DateTimeOffset literal"},
		{"unsupported operator", "createdDateTime ne " + as, "createdDateTime", "operator 'ne' is not supported"},
		{"or is not supported", "createdDateTime ge " + as + " or createdDateTime le " + as, "createdDateTime", "invalid filter clause"},
		{"missing operand", "createdDateTime ge", "createdDateTime", "invalid filter clause"},
		{"dangling and", "createdDateTime ge " + as + " and", "createdDateTime", "invalid filter clause"},
		{"unbalanced parenthesis", "(createdDateTime ge " + as, "createdDateTime", "'(createdDateTime' is not supported"},
		{"empty parentheses", "()", "createdDateTime", "invalid filter clause"},
		{"beta lambda", "signInEventTypes/any(t: t eq 'nonInteractiveUser')", "createdDateTime", "invalid filter clause"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseTimeFilter(c.filter, c.field)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wantErr)
		})
	}
}

func TestParseListQuery(t *testing.T) {
	signIns := datasetsByName["signins"]
	audits := datasetsByName["directory_audits"]
	tok := cursor{syn: 0x2a, inj: 3, nInj: 5}.token()
	cases := []struct {
		name     string
		def      *datasetDef
		query    string
		wantErr  string // "" = no error
		wantDesc bool
		wantTop  int
		wantCur  *cursor
	}{
		{name: "defaults: newest first, max page", def: signIns, query: "", wantDesc: true, wantTop: 1000},
		{name: "orderby without direction is ascending", def: signIns, query: "$orderby=createdDateTime", wantTop: 1000},
		{name: "orderby asc", def: signIns, query: "$orderby=createdDateTime%20asc", wantTop: 1000},
		{name: "orderby desc", def: signIns, query: "$orderby=createdDateTime%20desc", wantDesc: true, wantTop: 1000},
		{name: "orderby direction in capitals", def: signIns, query: "$orderby=createdDateTime+DESC", wantDesc: true, wantTop: 1000},
		{name: "orderby audits", def: audits, query: "$orderby=activityDateTime+asc", wantTop: 1000},
		{name: "orderby other property", def: signIns, query: "$orderby=userId", wantErr: "$orderby is only supported on 'createdDateTime'"},
		{name: "orderby audits on the sign-in field", def: audits, query: "$orderby=createdDateTime", wantErr: "only supported on 'activityDateTime'"},
		{name: "orderby bad direction", def: signIns, query: "$orderby=createdDateTime+sideways", wantErr: "invalid $orderby direction"},
		{name: "orderby too many words", def: signIns, query: "$orderby=createdDateTime+desc+asc", wantErr: "only supported"},
		{name: "top 1", def: signIns, query: "$top=1", wantDesc: true, wantTop: 1},
		{name: "top max", def: signIns, query: "$top=1000", wantDesc: true, wantTop: 1000},
		{name: "top 0", def: signIns, query: "$top=0", wantErr: "invalid page size"},
		{name: "top over max", def: signIns, query: "$top=1001", wantErr: "invalid page size"},
		{name: "top negative", def: signIns, query: "$top=-5", wantErr: "invalid page size"},
		{name: "top not a number", def: signIns, query: "$top=ten", wantErr: "invalid page size"},
		{name: "select is rejected", def: signIns, query: "$select=id", wantErr: "query option '$select' is not supported"},
		{name: "count is rejected", def: signIns, query: "$count=true", wantErr: "'$count'"},
		{name: "skip is rejected", def: signIns, query: "$skip=10", wantErr: "'$skip'"},
		{name: "expand is rejected", def: audits, query: "$expand=initiatedBy", wantErr: "'$expand'"},
		{name: "options without $ are ignored", def: signIns, query: "api-version=1&foo=bar", wantDesc: true, wantTop: 1000},
		{name: "bad filter is reported", def: signIns, query: "$filter=" + url.QueryEscape("userId eq 'x'"), wantErr: "not supported"},
		{name: "skiptoken round trip", def: signIns, query: "$skiptoken=" + tok, wantDesc: true, wantTop: 1000, wantCur: &cursor{syn: 0x2a, inj: 3, nInj: 5}},
		{name: "skiptoken of a desc walk past its start", def: signIns, query: "$skiptoken=" + url.QueryEscape(cursor{syn: -1, inj: -1, nInj: 0}.token()),
			wantDesc: true, wantTop: 1000, wantCur: &cursor{syn: -1, inj: -1}},
		{name: "skiptoken garbage", def: signIns, query: "$skiptoken=zz", wantErr: "invalid $skiptoken"},
		{name: "skiptoken trailing garbage", def: signIns, query: "$skiptoken=" + tok + "zz", wantErr: "invalid $skiptoken"},
		{name: "skiptoken too short", def: signIns, query: "$skiptoken=2a.3", wantErr: "invalid $skiptoken"},
		{name: "skiptoken not canonical", def: signIns, query: "$skiptoken=2A.3.5", wantErr: "invalid $skiptoken"},
		{name: "skiptoken negative count", def: signIns, query: "$skiptoken=1.1.-1", wantErr: "invalid $skiptoken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			require.NoError(t, err)
			lq, err := parseListQuery(q, c.def, 1000)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.wantDesc, lq.desc, "desc")
			assert.Equal(t, c.wantTop, lq.top, "top")
			assert.Equal(t, c.wantCur, lq.cursor, "cursor")
		})
	}
}

func TestParseListQueryFilterBounds(t *testing.T) {
	a := time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC)
	f := "activityDateTime gt " + FormatTime(a) + " and activityDateTime le " + FormatTime(a.Add(time.Minute))
	lq, err := parseListQuery(url.Values{"$filter": {f}, "$orderby": {"activityDateTime"}, "$top": {"7"}}, datasetsByName["directory_audits"], 1000)
	require.NoError(t, err)
	require.NotNil(t, lq.bounds.from)
	require.NotNil(t, lq.bounds.to)
	assert.True(t, lq.bounds.from.Equal(a))
	assert.True(t, lq.bounds.fromOpen)
	assert.True(t, lq.bounds.to.Equal(a.Add(time.Minute)))
	assert.False(t, lq.bounds.toOpen)
	assert.False(t, lq.desc)
	assert.Equal(t, 7, lq.top)
}

func TestSplitAnd(t *testing.T) {
	cases := map[string][]string{
		"a":                   {"a"},
		"a and b":             {"a", "b"},
		"a AND b and c":       {"a", "b", "c"},
		"(a and b) and c":     {"(a and b)", "c"},
		"(a and b)":           {"(a and b)"},
		"brand and candle":    {"brand", "candle"},
		"a  and b":            {"a ", "b"},
		"operand and (x and)": {"operand", "(x and)"},
	}
	for in, want := range cases {
		assert.Equal(t, want, splitAnd(in), in)
	}
	_, ok := stripParens("(a) and (b)")
	assert.False(t, ok, "two groups are not one enclosing pair")
	inner, ok := stripParens("((a) and (b))")
	assert.True(t, ok)
	assert.Equal(t, "(a) and (b)", inner)
}

func TestSkipIsAcceptedWhereGraphDocumentsIt(t *testing.T) {
	_, err := parseListQuery(url.Values{"$skip": {"100"}}, datasetsByName["security_alerts"], 1000)
	require.NoError(t, err)
	_, err = parseListQuery(url.Values{"$skip": {"100"}}, datasetsByName["signins"], 1000)
	require.ErrorContains(t, err, "query option '$skip' is not supported")
	_, err = parseListQuery(url.Values{"$skip": {"-1"}}, datasetsByName["security_alerts"], 1000)
	require.ErrorContains(t, err, "invalid $skip value")
}
