package graphsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testAnchor = time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)

func testStream(t *testing.T, dataset string, spec DatasetSpec) *stream {
	t.Helper()
	def := datasetsByName[dataset]
	require.NotNil(t, def, dataset)
	if spec.PerTimestamp <= 0 {
		spec.PerTimestamp = 1
	}
	td := newTenantData(Tenant{ID: "11111111-2222-4333-8444-555555555555", Name: "Contoso"}, 42)
	return newStream(def, spec, 4242, testAnchor, td)
}

type walked struct {
	id string
	at time.Time
}

func decodeRecord(t *testing.T, st *stream, raw json.RawMessage) walked {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	id, _ := m["id"].(string)
	ts, _ := m[st.def.timeField].(string)
	at, err := time.Parse(time.RFC3339Nano, ts)
	require.NoError(t, err, "record %s has a bad %s %q", id, st.def.timeField, ts)
	require.NotEmpty(t, id)
	return walked{id: id, at: at}
}

// walk lists b in the given order as a client would: page after page, each cursor passing through its
// $skiptoken text form, until no cursor is returned. between runs after every page but the last.
func walk(t *testing.T, st *stream, b bounds, desc bool, top int, now time.Time, between func(page int)) ([]walked, int) {
	t.Helper()
	var out []walked
	var cur *cursor
	pages := 0
	for {
		recs, next := st.page(b, desc, top, cur, now)
		pages++
		require.LessOrEqual(t, len(recs), top, "page %d is larger than $top", pages)
		for _, r := range recs {
			out = append(out, decodeRecord(t, st, r))
		}
		if next == nil {
			return out, pages
		}
		require.Less(t, pages, 100_000, "the walk does not end")
		c, err := parseCursor(next.token())
		require.NoError(t, err)
		require.Equal(t, *next, c, "the cursor does not survive its token")
		cur = &c
		if between != nil {
			between(pages)
		}
	}
}

func idsOf(ws []walked) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.id
	}
	return out
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func requireTimeOrder(t *testing.T, ws []walked, desc bool) {
	t.Helper()
	for i := 1; i < len(ws); i++ {
		if desc {
			require.False(t, ws[i].at.After(ws[i-1].at), "desc walk out of order at %d: %s after %s", i, ws[i].at, ws[i-1].at)
		} else {
			require.False(t, ws[i].at.Before(ws[i-1].at), "asc walk out of order at %d: %s before %s", i, ws[i].at, ws[i-1].at)
		}
	}
}

func requireUnique(t *testing.T, ids []string) {
	t.Helper()
	seen := map[string]int{}
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			t.Fatalf("id %s listed twice (positions %d and %d)", id, j, i)
		}
		seen[id] = i
	}
}

func ptr[T any](v T) *T { return &v }

func TestStreamPagingVisitsEveryRecordOnce(t *testing.T) {
	cases := []struct {
		name         string
		dataset      string
		count, perTS int
		top          int
	}{
		{"signins, 3 per timestamp, pages of 7", "signins", 100, 3, 7},
		{"audits, 4 per timestamp, pages of 4", "directory_audits", 61, 4, 4},
		{"5 per timestamp, pages of 1", "signins", 23, 5, 1},
		{"a page size dividing the count: no empty last page", "signins", 60, 4, 6},
		{"one page holds all", "directory_audits", 10, 2, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			span := 10 * time.Minute
			st := testStream(t, c.dataset, DatasetSpec{Count: c.count, Span: span, PerTimestamp: c.perTS})
			from, to := testAnchor.Add(-span-time.Second), testAnchor
			want := st.ids(from, to)
			require.Len(t, want, c.count)
			requireUnique(t, want)

			for _, b := range []bounds{{from: &from, to: &to}, {}} {
				asc, pages := walk(t, st, b, false, c.top, testAnchor, nil)
				assert.Equal(t, want, idsOf(asc), "asc walk")
				assert.Equal(t, (c.count+c.top-1)/c.top, pages, "pages")
				requireTimeOrder(t, asc, false)

				desc, pages := walk(t, st, b, true, c.top, testAnchor, nil)
				assert.Equal(t, reversed(idsOf(asc)), idsOf(desc), "desc walk is the asc walk reversed")
				assert.Equal(t, (c.count+c.top-1)/c.top, pages, "pages")
				requireTimeOrder(t, desc, true)

				// PerTimestamp records share each timestamp (the last group may be partial).
				perTime := map[time.Time]int{}
				for _, w := range asc {
					perTime[w.at]++
					assert.True(t, w.at.Before(testAnchor), "historical record at %s is not before the anchor", w.at)
					assert.False(t, w.at.Before(testAnchor.Add(-span)), "historical record at %s is before anchor-span", w.at)
				}
				assert.Len(t, perTime, (c.count+c.perTS-1)/c.perTS, "distinct timestamps")
				partial := 0
				for _, n := range perTime {
					if n != c.perTS {
						partial++
						assert.Equal(t, c.count%c.perTS, n)
					}
				}
				assert.LessOrEqual(t, partial, 1)
			}
		})
	}
}

func TestStreamBoundsAtTies(t *testing.T) {
	const count, perTS = 40, 4
	st := testStream(t, "signins", DatasetSpec{Count: count, Span: 10 * time.Minute, PerTimestamp: perTS})
	t1, t2 := st.timeAt(8), st.timeAt(27) // groups 2 and 6
	tied := 0
	for i := range int64(count) {
		if st.timeAt(i).Equal(t1) {
			tied++
		}
	}
	require.Equal(t, perTS, tied, "records sharing the bound's timestamp")

	f := func(op string, at time.Time) string { return "createdDateTime " + op + " " + FormatTime(at) }
	cases := []struct {
		filter string
		keep   func(time.Time) bool
	}{
		{f("ge", t1) + " and " + f("le", t2), func(x time.Time) bool { return !x.Before(t1) && !x.After(t2) }},
		{f("gt", t1) + " and " + f("le", t2), func(x time.Time) bool { return x.After(t1) && !x.After(t2) }},
		{f("ge", t1) + " and " + f("lt", t2), func(x time.Time) bool { return !x.Before(t1) && x.Before(t2) }},
		{f("gt", t1) + " and " + f("lt", t2), func(x time.Time) bool { return x.After(t1) && x.Before(t2) }},
		{f("eq", t1), func(x time.Time) bool { return x.Equal(t1) }},
		{f("ge", t2), func(x time.Time) bool { return !x.Before(t2) }},
		{f("lt", t1), func(x time.Time) bool { return x.Before(t1) }},
		{f("le", t1), func(x time.Time) bool { return !x.After(t1) }},
		{f("gt", t1.Add(-graphTimeUnit)) + " and " + f("lt", t1.Add(graphTimeUnit)), func(x time.Time) bool { return x.Equal(t1) }},
		{f("gt", t2) + " and " + f("lt", t1), func(time.Time) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			b, err := parseTimeFilter(c.filter, "createdDateTime")
			require.NoError(t, err)
			want := []string{}
			for i := range int64(count) {
				if c.keep(st.timeAt(i)) {
					want = append(want, st.def.id(st, i))
				}
			}
			for _, top := range []int{1, 3, 4, 1000} {
				asc, _ := walk(t, st, b, false, top, testAnchor, nil)
				assert.Equal(t, want, idsOf(asc), "asc, top %d", top)
				desc, _ := walk(t, st, b, true, top, testAnchor, nil)
				assert.Equal(t, reversed(want), idsOf(desc), "desc, top %d", top)
			}
		})
	}
}

func TestStreamLiveRecords(t *testing.T) {
	const count, perTS, rate = 5, 2, 4.0 // a group of 2 every 500 ms
	st := testStream(t, "signins", DatasetSpec{Count: count, Span: time.Minute, PerTimestamp: perTS, RatePerSecond: rate})
	step := time.Duration(float64(perTS) / rate * float64(time.Second))
	require.Equal(t, step, st.liveStep)

	prev := []string(nil)
	for _, dt := range []time.Duration{-time.Millisecond, 0, time.Millisecond, 499 * time.Millisecond, step, 2 * time.Second, 10*time.Second + 250*time.Millisecond} {
		t.Run(dt.String(), func(t *testing.T) {
			now := testAnchor.Add(dt)
			asc, _ := walk(t, st, bounds{}, false, 4, now, nil)
			n := 0
			for !st.timeAt(int64(n)).After(now) {
				n++
			}
			require.GreaterOrEqual(t, n, count, "historical records are all visible")
			var want []string
			for i := range n {
				want = append(want, st.def.id(st, int64(i)))
			}
			assert.Equal(t, want, idsOf(asc), "exactly the records whose time has come")
			for _, w := range asc {
				assert.False(t, w.at.After(now), "record at %s listed at %s", w.at, now)
			}
			assert.True(t, st.timeAt(int64(n)).After(now), "the next record is in the future")
			live := n - count
			// Group g starts at anchor + g·step plus a jitter below half a step.
			sure, possible := 0, 0
			for g := time.Duration(0); g*step <= dt; g++ {
				possible++
				if g*step+step/2 <= dt {
					sure++
				}
			}
			assert.GreaterOrEqual(t, live, perTS*sure)
			assert.LessOrEqual(t, live, perTS*possible)
			assert.True(t, slices.Equal(prev, idsOf(asc)[:min(len(prev), len(asc))]), "later listings extend earlier ones")
			prev = idsOf(asc)

			desc, _ := walk(t, st, bounds{}, true, 3, now, nil)
			assert.Equal(t, reversed(idsOf(asc)), idsOf(desc))
		})
	}

	// ids covers records that have not happened yet: it is the ground truth of an interval.
	from, to := testAnchor, testAnchor.Add(3*time.Second)
	future := st.ids(from, to)
	assert.Len(t, future, perTS*int(3*time.Second/step), "groups 0..5 start before anchor+3s")
	visibleNow, _ := walk(t, st, bounds{from: &from, to: &to}, false, 10, testAnchor, nil)
	assert.Less(t, len(visibleNow), len(future))
	later, _ := walk(t, st, bounds{from: &from, to: &to}, false, 10, to.Add(time.Second), nil)
	assert.Equal(t, future, idsOf(later))
}

func TestStreamLateRecords(t *testing.T) {
	const count = 300
	delay := 2 * time.Minute
	st := testStream(t, "signins", DatasetSpec{Count: count, Span: 10 * time.Minute, PerTimestamp: 2, LateFraction: 0.3, LateDelay: delay})
	from, to := testAnchor.Add(-11*time.Minute), testAnchor
	all := st.ids(from, to)
	require.Len(t, all, count)
	index := map[string]int64{}
	late := map[int64]bool{}
	for i := range int64(count) {
		index[st.def.id(st, i)] = i
		if v := st.visibleAt(i); !v.Equal(st.timeAt(i)) {
			require.Equal(t, st.timeAt(i).Add(delay), v)
			late[i] = true
		}
	}
	assert.InDelta(t, 0.3*count, len(late), 0.1*count, "late fraction")

	b := bounds{from: &from, to: &to}
	got, _ := walk(t, st, b, false, 16, testAnchor, nil)
	requireUnique(t, idsOf(got))
	requireTimeOrder(t, got, false)
	listed := map[string]bool{}
	for _, w := range got {
		listed[w.id] = true
	}
	var missing []int64
	for _, id := range all {
		i := index[id]
		hidden := late[i] && st.timeAt(i).Add(delay).After(testAnchor)
		assert.Equal(t, !hidden, listed[id], "record %d (late %v, at %s)", i, late[i], st.timeAt(i))
		if hidden {
			missing = append(missing, i)
		}
	}
	require.NotEmpty(t, missing, "some late records are still hidden at the anchor")

	// A late record appears exactly at its time + delay, in its time slot.
	i := missing[len(missing)/2]
	at := st.timeAt(i)
	eq := bounds{from: &at, to: &at}
	before, _ := walk(t, st, eq, false, 10, at.Add(delay-time.Nanosecond), nil)
	after, _ := walk(t, st, eq, false, 10, at.Add(delay), nil)
	assert.NotContains(t, idsOf(before), st.def.id(st, i))
	assert.Contains(t, idsOf(after), st.def.id(st, i))

	// Once every delay has passed, the walk is the full ground truth, in order.
	final, _ := walk(t, st, b, false, 16, testAnchor.Add(delay), nil)
	assert.Equal(t, all, idsOf(final))
	finalDesc, _ := walk(t, st, b, true, 16, testAnchor.Add(delay), nil)
	assert.Equal(t, reversed(all), idsOf(finalDesc))
}

func injectedJSON(st *stream, id string, at time.Time) injectedRecord {
	raw, _ := json.Marshal(map[string]any{"id": id, st.def.timeField: FormatTime(at), "userDisplayName": "Injected"})
	return injectedRecord{at: at, visibleAt: at, id: id, raw: raw}
}

func TestStreamInjectedMergeInTimeOrder(t *testing.T) {
	const count, perTS = 12, 3
	st := testStream(t, "signins", DatasetSpec{Count: count, Span: time.Minute, PerTimestamp: perTS})
	tie := st.timeAt(3) // group 1
	between := st.timeAt(6).Add(st.timeAt(9).Sub(st.timeAt(6)) / 2)
	now := testAnchor
	hidden := injectedJSON(st, "inj-hidden", st.timeAt(6))
	hidden.visibleAt = now.Add(time.Hour)
	// injected out of time order, over several calls
	st.inject([]injectedRecord{injectedJSON(st, "inj-last", testAnchor.Add(-graphTimeUnit)), injectedJSON(st, "inj-tie", tie)})
	st.inject([]injectedRecord{injectedJSON(st, "inj-between", between), hidden, injectedJSON(st, "inj-outside", testAnchor.Add(time.Hour))})
	st.inject([]injectedRecord{injectedJSON(st, "inj-tie-2", tie), injectedJSON(st, "inj-first", st.timeAt(0).Add(-time.Second))})

	// Oracle: by time; at equal times synthetic records first, then injected in the order injected.
	type entry struct {
		id   string
		at   time.Time
		kind int
		seq  int
	}
	var oracle []entry
	for i := range int64(count) {
		oracle = append(oracle, entry{st.def.id(st, i), st.timeAt(i), 0, int(i)})
	}
	for seq, e := range []struct {
		id string
		at time.Time
	}{{"inj-last", testAnchor.Add(-graphTimeUnit)}, {"inj-tie", tie}, {"inj-between", between}, {"inj-tie-2", tie}, {"inj-first", st.timeAt(0).Add(-time.Second)}} {
		oracle = append(oracle, entry{e.id, e.at, 1, seq})
	}
	sort.Slice(oracle, func(a, b int) bool {
		x, y := oracle[a], oracle[b]
		if !x.at.Equal(y.at) {
			return x.at.Before(y.at)
		}
		if x.kind != y.kind {
			return x.kind < y.kind
		}
		return x.seq < y.seq
	})
	var want []string
	for _, e := range oracle {
		want = append(want, e.id)
	}
	require.Equal(t, "inj-first", want[0])
	require.Equal(t, []string{st.def.id(st, 3), st.def.id(st, 4), st.def.id(st, 5), "inj-tie", "inj-tie-2"}, want[4:9], "ties: synthetic first in asc")

	from, to := testAnchor.Add(-2*time.Minute), testAnchor
	b := bounds{from: &from, to: &to}
	for _, top := range []int{1, 2, 5, 100} {
		asc, _ := walk(t, st, b, false, top, now, nil)
		assert.Equal(t, want, idsOf(asc), "asc, top %d", top)
		desc, _ := walk(t, st, b, true, top, now, nil)
		assert.Equal(t, reversed(want), idsOf(desc), "desc, top %d", top)
	}
	// The injected JSON is served as given.
	asc, _ := walk(t, st, bounds{from: &tie, to: &tie}, false, 10, now, nil)
	assert.Equal(t, want[4:9], idsOf(asc))

	// ids: everything with a timestamp in range, visible or not; nothing outside it.
	ids := st.ids(from, to)
	assert.ElementsMatch(t, append(slices.Clone(want), "inj-hidden"), ids)
	assert.NotContains(t, ids, "inj-outside")

	// Once visible, the hidden record takes its time slot (after the synthetic records of its time).
	later, _ := walk(t, st, b, false, 4, now.Add(2*time.Hour), nil)
	pos := slices.Index(idsOf(later), "inj-hidden")
	require.Positive(t, pos)
	assert.Equal(t, st.def.id(st, 8), later[pos-1].id)
	assert.ElementsMatch(t, ids, idsOf(later), "ids equals a full walk once everything is visible")
}

// TestStreamIDsMatchesFullWalk mixes every source of records: historical, live, late and injected.
func TestStreamIDsMatchesFullWalk(t *testing.T) {
	st := testStream(t, "directory_audits", DatasetSpec{Count: 150, Span: 5 * time.Minute, PerTimestamp: 3,
		RatePerSecond: 6, LateFraction: 0.25, LateDelay: 30 * time.Second})
	var inj []injectedRecord
	for k := range 20 {
		at := testAnchor.Add(time.Duration(k-10) * 17 * time.Second)
		r := injectedJSON(st, fmt.Sprintf("Directory_injected_%d", k), at)
		r.visibleAt = at.Add(time.Duration(k) * time.Second)
		inj = append(inj, r)
	}
	st.inject(inj)
	from, to := testAnchor.Add(-4*time.Minute), testAnchor.Add(40*time.Second)
	b := bounds{from: &from, to: &to}
	want := st.ids(from, to)
	requireUnique(t, want)

	for _, now := range []time.Time{testAnchor, to, to.Add(30 * time.Second)} {
		asc, _ := walk(t, st, b, false, 9, now, nil)
		requireUnique(t, idsOf(asc))
		requireTimeOrder(t, asc, false)
		assert.Subset(t, want, idsOf(asc), "everything listed is in ids")
		desc, _ := walk(t, st, b, true, 9, now, nil)
		assert.Equal(t, reversed(idsOf(asc)), idsOf(desc))
	}
	everything, _ := walk(t, st, b, false, 9, to.Add(time.Minute), nil)
	assert.ElementsMatch(t, want, idsOf(everything))
}

// TestStreamCursorSurvivesInjection injects a record between two pages of a walk: the walk must list
// every record it would have listed without it exactly once.
func TestStreamCursorSurvivesInjection(t *testing.T) {
	st0 := testStream(t, "signins", DatasetSpec{Count: 10, Span: 100 * time.Second})
	s := func(i int64) time.Time { return st0.timeAt(i) }
	us := time.Microsecond
	from, to := s(0), s(9)
	pre := []struct {
		id string
		at time.Time
	}{{"below", s(0).Add(-time.Second)}, {"in-2", s(2).Add(us)}, {"in-5", s(5).Add(us)}, {"in-7", s(7).Add(us)}, {"above", s(9).Add(time.Second)}}

	cases := []struct {
		name    string
		desc    bool
		top     int // first page size; later pages are of 2
		at      time.Time
		wantNew *bool // nil: either (the record lands at the walk's position)
	}{
		{"asc, below the range at the cursor", false, 3, s(0).Add(-time.Second / 2), ptr(false)},
		{"asc, below the range before everything", false, 3, s(0).Add(-2 * time.Second), ptr(false)},
		{"asc, in range behind the cursor", false, 5, s(1).Add(us), ptr(false)},
		{"asc, ahead of the cursor", false, 5, s(6).Add(us), ptr(true)},
		{"asc, last in range", false, 5, s(9).Add(-us), ptr(true)},
		{"asc, above the range", false, 5, s(9).Add(2 * time.Second), ptr(false)},
		{"asc, at the cursor", false, 5, s(4).Add(us), nil},
		{"desc, above the range at the cursor", true, 2, s(9).Add(time.Second / 2), ptr(false)},
		{"desc, ahead of the cursor", true, 5, s(3).Add(us), ptr(true)},
		{"desc, first in range", true, 5, s(0).Add(us), ptr(true)},
		{"desc, behind the cursor", true, 5, s(8).Add(us), ptr(false)},
		{"desc, below the range", true, 5, s(0).Add(-2 * time.Second), ptr(false)},
		{"desc, between the last passed and the cursor", true, 5, s(6).Add(us), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := testStream(t, "signins", DatasetSpec{Count: 10, Span: 100 * time.Second})
			for _, p := range pre {
				st.inject([]injectedRecord{injectedJSON(st, p.id, p.at)})
			}
			b := bounds{from: &from, to: &to}
			baseline, _ := walk(t, st, b, c.desc, 100, testAnchor, nil)
			require.Len(t, baseline, 13)

			var got []walked
			var cur *cursor
			for page := 0; ; page++ {
				top := 2
				if page == 0 {
					top = c.top
				}
				recs, next := st.page(b, c.desc, top, cur, testAnchor)
				for _, r := range recs {
					got = append(got, decodeRecord(t, st, r))
				}
				if next == nil {
					break
				}
				if page == 0 {
					st.inject([]injectedRecord{injectedJSON(st, "new", c.at)})
				}
				parsed, err := parseCursor(next.token())
				require.NoError(t, err)
				cur = &parsed
			}
			ids := idsOf(got)
			requireUnique(t, ids)
			assert.Equal(t, idsOf(baseline), slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "new" }),
				"records present before the injection: each once, in order")
			if c.wantNew != nil {
				assert.Equal(t, *c.wantNew, slices.Contains(ids, "new"), "the injected record listed")
			}
			if c.wantNew != nil && *c.wantNew {
				requireTimeOrder(t, got, c.desc)
			}
		})
	}
}

func TestStreamEmptyAndDegenerate(t *testing.T) {
	empty := testStream(t, "signins", DatasetSpec{})
	recs, next := empty.page(bounds{}, true, 10, nil, testAnchor)
	assert.Empty(t, recs)
	assert.Nil(t, next)
	assert.Empty(t, empty.ids(testAnchor.Add(-time.Hour), testAnchor.Add(time.Hour)))

	// A span too short for the count still yields distinct, increasing 100 ns steps.
	dense := testStream(t, "signins", DatasetSpec{Count: 50, Span: time.Microsecond})
	all, _ := walk(t, dense, bounds{}, false, 7, testAnchor, nil)
	require.Len(t, all, 50)
	requireTimeOrder(t, all, false)
	for i := 1; i < len(all); i++ {
		assert.True(t, all[i].at.After(all[i-1].at))
	}

	// A cursor from elsewhere (out of the range) ends the walk without a panic.
	st := testStream(t, "signins", DatasetSpec{Count: 5, Span: time.Minute})
	for _, c := range []cursor{{syn: 1 << 40}, {syn: -7, inj: -3}, {syn: 2, inj: 99, nInj: 1000}} {
		recs, next := st.page(bounds{}, false, 10, &c, testAnchor)
		assert.LessOrEqual(t, len(recs), 5)
		assert.Nil(t, next)
	}
}

// $skip passes over the first matching records of the query in its order; a nextLink's cursor continues
// after what the first page skipped.
func TestStreamSkip(t *testing.T) {
	st := testStream(t, "security_alerts", DatasetSpec{Count: 60, Span: time.Hour, PerTimestamp: 20, Versions: 1})
	now := testAnchor.Add(time.Hour)
	from, to := testAnchor.Add(-2*time.Hour), testAnchor
	all, _ := st.query(listQuery{bounds: bounds{from: &from, to: &to}, desc: true, top: 1000}, now, false)
	require.Len(t, all, 60)
	page, cur := st.query(listQuery{bounds: bounds{from: &from, to: &to}, desc: true, top: 10, skip: 25}, now, false)
	require.Equal(t, all[25:35], page)
	require.NotNil(t, cur)
	rest, _ := st.query(listQuery{bounds: bounds{from: &from, to: &to}, desc: true, top: 100, skip: 25, cursor: cur}, now, false)
	require.Equal(t, all[35:], rest)
}
