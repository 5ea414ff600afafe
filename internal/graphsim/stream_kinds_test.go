package graphsim

import (
	"encoding/json"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamTimeUnits(t *testing.T) {
	cases := []struct {
		dataset string
		unit    time.Duration
		pattern string
	}{
		{"signins", 100 * time.Nanosecond, `\.\d{7}Z$`},
		{"directory_audits", 100 * time.Nanosecond, `\.\d{7}Z$`},
		{"risk_detections", time.Microsecond, `\.\d{6}Z$`},
		{"security_alerts", time.Millisecond, `\.\d{3}Z$`},
	}
	for _, c := range cases {
		t.Run(c.dataset, func(t *testing.T) {
			// A rate and span that do not divide into whole units: steps and jitter are still multiples of
			// the unit, so the rendered time is the record's exact time (filters and rendering agree).
			st := testStream(t, c.dataset, DatasetSpec{Count: 50, Span: 7*time.Minute + 3*time.Nanosecond, RatePerSecond: 3})
			now := testAnchor.Add(10 * time.Second)
			recs, _ := st.page(bounds{}, false, 1000, nil, now)
			happened := 0
			for i := range st.syntheticTotal(now) {
				if !st.timeAt(i).After(now) {
					happened++
				}
			}
			require.Greater(t, happened, 50+20, "history and live records")
			require.Equal(t, happened, len(recs))
			for i, raw := range recs {
				var m map[string]any
				require.NoError(t, json.Unmarshal(raw, &m))
				ts := m[st.def.timeField].(string)
				assert.Regexp(t, regexp.MustCompile(c.pattern), ts)
				at, err := time.Parse(time.RFC3339Nano, ts)
				require.NoError(t, err)
				assert.True(t, at.Equal(st.timeAt(int64(i))), "record %d renders %s, is at %s", i, ts, st.timeAt(int64(i)))
				assert.Zero(t, st.timeAt(int64(i)).Sub(testAnchor)%c.unit)
			}
		})
	}
}

func TestStreamVersionsAndKeys(t *testing.T) {
	for _, dataset := range []string{"security_alerts", "risk_detections"} {
		t.Run(dataset, func(t *testing.T) {
			st := testStream(t, dataset, DatasetSpec{Count: 20, Span: time.Hour, Versions: 4})
			from, to := testAnchor.Add(-2*time.Hour), testAnchor
			ids, keys := st.ids(from, to), st.keys(from, to)
			require.Len(t, ids, 20)
			require.Len(t, keys, 20)
			for i := range ids {
				assert.Equal(t, ids[i/4*4], ids[i], "record %d is version %d of item %d", i, i%4, i/4)
				if i%4 != 0 {
					assert.NotEqual(t, keys[i-1], keys[i])
				} else if i > 0 {
					assert.NotEqual(t, ids[i-1], ids[i])
				}
				assert.Equal(t, ids[i]+"@"+st.def.formatTime(st.timeAt(int64(i))), keys[i])
			}
			// Keys match what the records carry.
			recs, _ := st.page(bounds{from: &from, to: &to}, false, 100, nil, testAnchor)
			for i, raw := range recs {
				var m map[string]any
				require.NoError(t, json.Unmarshal(raw, &m))
				assert.Equal(t, keys[i], m["id"].(string)+"@"+m[st.def.timeField].(string))
			}
			// Injected records' keys use the time as given.
			st.inject([]injectedRecord{{at: testAnchor.Add(-time.Minute), visibleAt: testAnchor, id: "inj", ts: "2024-03-13T11:59:00Z"}})
			assert.Equal(t, "inj@2024-03-13T11:59:00Z", st.keys(from, to)[20])
		})
	}
}

// TestStreamAltTimeFilters checks a filter on an alternative time property against a brute-force scan,
// for bounds of every kind, in both orders and across page boundaries, with live records.
func TestStreamAltTimeFilters(t *testing.T) {
	cases := []struct {
		dataset, field string
		versions       int
	}{
		{"risk_detections", "activityDateTime", 1},
		{"risk_detections", "activityDateTime", 3},
		{"risk_detections", "detectedDateTime", 2},
		{"security_alerts", "createdDateTime", 1},
		{"security_alerts", "createdDateTime", 4},
	}
	for _, c := range cases {
		t.Run(c.dataset+"/"+c.field, func(t *testing.T) {
			st := testStream(t, c.dataset, DatasetSpec{Count: 300, Span: 72 * time.Hour, RatePerSecond: 0.5, Versions: c.versions})
			now := testAnchor.Add(10 * time.Minute)
			alt := st.def.altTimes[c.field]
			total := st.syntheticTotal(now)
			for i := range total {
				at := alt.at(st, i)
				require.False(t, at.After(st.timeAt(i)), "%s is never after the time field", c.field)
				require.LessOrEqual(t, st.timeAt(i).Sub(at), alt.maxLead(st), "maxLead bounds the lead")
			}
			mid := st.timeAt(150)
			for _, b := range []bounds{
				{from: ptr(mid.Add(-20 * time.Hour)), to: ptr(mid)},
				{from: ptr(mid), fromOpen: true},
				{to: ptr(mid.Add(-30 * time.Hour)), toOpen: true},
				{from: ptr(alt.at(st, 77)), to: ptr(alt.at(st, 77))}, // eq
			} {
				var want []int64
				for i := range total {
					if !st.timeAt(i).After(now) && b.contains(alt.at(st, i)) { // the last group may not have happened yet
						want = append(want, i)
					}
				}
				require.NotEmpty(t, want)
				for _, desc := range []bool{false, true} {
					var got []int64
					var cur *cursor
					for pages := 0; ; pages++ {
						require.Less(t, pages, 1000)
						recs, next := st.query(listQuery{alt: map[string]bounds{c.field: b}, desc: desc, top: 13, cursor: cur}, now, false)
						for _, raw := range recs {
							var m map[string]any
							require.NoError(t, json.Unmarshal(raw, &m))
							ts, err := time.Parse(time.RFC3339Nano, m[c.field].(string))
							require.NoError(t, err)
							require.True(t, b.contains(ts), "%s %s is outside the filter", c.field, ts)
							got = append(got, st.indexOf(t, m, now))
						}
						if next == nil {
							break
						}
						cur = next
					}
					if desc {
						got = reversedInts(got)
					}
					assert.Equal(t, want, got, "desc=%v", desc)
				}
			}
		})
	}
}

// indexOf finds the synthetic index of a rendered record by its time field.
func (s *stream) indexOf(t *testing.T, m map[string]any, now time.Time) int64 {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, m[s.def.timeField].(string))
	require.NoError(t, err)
	for i := range s.syntheticTotal(now) {
		if s.timeAt(i).Equal(ts) && s.def.id(s, i) == m["id"] {
			return i
		}
	}
	t.Fatalf("no record at %s", ts)
	return -1
}

func reversedInts(s []int64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func TestParseQueryKinds(t *testing.T) {
	at := "2024-03-13T10:00:00Z"
	cases := []struct {
		name    string
		dataset string
		beta    bool
		query   string
		wantErr string
		check   func(t *testing.T, lq listQuery)
	}{
		{name: "risk: default and max page", dataset: "risk_detections", check: func(t *testing.T, lq listQuery) { assert.Equal(t, 20, lq.top) }},
		{name: "risk: $top 500", dataset: "risk_detections", query: "$top=500", check: func(t *testing.T, lq listQuery) { assert.Equal(t, 500, lq.top) }},
		{name: "risk: $top 501", dataset: "risk_detections", query: "$top=501", wantErr: "between 1 and 500"},
		{name: "risk: alternative fields", dataset: "risk_detections",
			query: "$filter=" + url.QueryEscape("activityDateTime ge "+at+" and (detectedDateTime lt "+at+") and lastUpdatedDateTime le "+at),
			check: func(t *testing.T, lq listQuery) {
				require.Contains(t, lq.alt, "activityDateTime")
				require.Contains(t, lq.alt, "detectedDateTime")
				assert.NotNil(t, lq.alt["activityDateTime"].from)
				assert.True(t, lq.alt["detectedDateTime"].toOpen)
				assert.NotNil(t, lq.bounds.to)
			}},
		{name: "risk: alternative field names are case-insensitive", dataset: "risk_detections", query: "$filter=" + url.QueryEscape("ActivityDateTime eq "+at),
			check: func(t *testing.T, lq listQuery) { assert.Contains(t, lq.alt, "activityDateTime") }},
		{name: "alerts: $orderby refused", dataset: "security_alerts", query: "$orderby=lastUpdateDateTime", wantErr: "'$orderby' is not supported"},
		{name: "alerts: createdDateTime", dataset: "security_alerts", query: "$filter=" + url.QueryEscape("createdDateTime gt "+at),
			check: func(t *testing.T, lq listQuery) { assert.True(t, lq.alt["createdDateTime"].fromOpen) }},
		{name: "audits: no alternative field", dataset: "directory_audits", query: "$filter=" + url.QueryEscape("createdDateTime ge "+at), wantErr: "not supported"},
		{name: "beta sign-in kind", dataset: "signins_service_principal", beta: true,
			query: "$filter=" + url.QueryEscape("signInEventTypes/any(t:t eq 'servicePrincipal') and createdDateTime ge "+at),
			check: func(t *testing.T, lq listQuery) { assert.Equal(t, "servicePrincipal", lq.eventType) }},
		{name: "beta kind on v1.0", dataset: "signins_non_interactive", query: "", wantErr: "beta endpoint only"},
		{name: "event type case-insensitive", dataset: "signins_managed_identity", beta: true,
			query: "$filter=" + url.QueryEscape("signineventtypes/any(x: x eq 'ManagedIdentity')"),
			check: func(t *testing.T, lq listQuery) { assert.Equal(t, "managedIdentity", lq.eventType) }},
		{name: "event type on audits", dataset: "directory_audits", beta: true,
			query: "$filter=" + url.QueryEscape("signInEventTypes/any(t: t eq 'servicePrincipal')"), wantErr: "invalid filter clause"},
		{name: "snapshot: default 100", dataset: "role_assignments", check: func(t *testing.T, lq listQuery) { assert.Equal(t, 100, lq.top) }},
		{name: "snapshot: $top 999", dataset: "mfa_coverage", query: "$top=999", check: func(t *testing.T, lq listQuery) { assert.Equal(t, 999, lq.top) }},
		{name: "snapshot: expand kept in order, deduplicated", dataset: "role_eligibility_schedules", query: "$expand=roleDefinition,principal,roleDefinition",
			check: func(t *testing.T, lq listQuery) { assert.Equal(t, []string{"roleDefinition", "principal"}, lq.expand) }},
		{name: "snapshot: skiptoken", dataset: "conditional_access_policies", query: "$skiptoken=" + snapCursor{offset: 12, lastID: "a/b+c"}.token(),
			check: func(t *testing.T, lq listQuery) {
				assert.Equal(t, &snapCursor{offset: 12, lastID: "a/b+c"}, lq.snap)
			}},
		{name: "snapshot: stream skiptoken refused", dataset: "conditional_access_policies", query: "$skiptoken=" + cursor{syn: 1}.token(), wantErr: "invalid $skiptoken"},
		{name: "snapshot: expand on policies", dataset: "conditional_access_policies", query: "$expand=principal", wantErr: "'$expand' is not supported"},
		{name: "snapshot: select", dataset: "mfa_coverage", query: "$select=id", wantErr: "'$select' is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			require.NoError(t, err)
			lq, err := parseQuery(q, datasetsByName[c.dataset], 1000, c.beta)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
				return
			}
			require.NoError(t, err)
			c.check(t, lq)
		})
	}
}

func TestSniffEventType(t *testing.T) {
	for in, want := range map[string]string{
		"": "",
		"createdDateTime ge 2024-01-01T00:00:00Z":                                                          "",
		"signInEventTypes/any(t: t eq 'nonInteractiveUser') and createdDateTime ge 2024-01-01T00:00:00Z":   "nonInteractiveUser",
		"(createdDateTime ge 2024-01-01T00:00:00Z) and ((signInEventTypes/any(t:t eq 'managedIdentity')))": "managedIdentity",
		"signInEventTypes/any(t: t eq 'bogus')":                                                            "bogus",
	} {
		assert.Equal(t, want, sniffEventType(in), in)
	}
}

func TestSnapCursorToken(t *testing.T) {
	for _, c := range []snapCursor{{0, ""}, {7, "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1"}, {255, "a.b.c"}} {
		got, err := parseSnapCursor(c.token())
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}
	for _, bad := range []string{"", "zz.", "1", "-1.", "1.***", "01." + "YQ"} {
		_, err := parseSnapCursor(bad)
		assert.Error(t, err, bad)
	}
}
