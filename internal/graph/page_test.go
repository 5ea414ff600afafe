package graph

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func decodeAll(t testing.TB, d PageDecoder, body string) ([]map[string]any, string, error) {
	t.Helper()
	var maps []pcommon.Map
	next, err := d.Decode([]byte(body), func() pcommon.Map {
		m := pcommon.NewMap()
		maps = append(maps, m)
		return m
	})
	out := make([]map[string]any, 0, len(maps))
	for _, m := range maps {
		out = append(out, m.AsRaw())
	}
	return out, next, err
}

func TestDecodePage(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		records  []map[string]any
		nextLink string
		err      string
	}{
		{
			name: "verbatim values, nextLink last",
			body: `{"@odata.context":"x","value":[{"id":"a","n":50126,"f":1.5,"b":true,"nil":null,"arr":["x",{"k":1}],"obj":{"unknownField":"kept"}}],"@odata.nextLink":"https://g/next"}`,
			records: []map[string]any{{"id": "a", "n": int64(50126), "f": 1.5, "b": true, "nil": nil,
				"arr": []any{"x", map[string]any{"k": int64(1)}}, "obj": map[string]any{"unknownField": "kept"}}},
			nextLink: "https://g/next",
		},
		{name: "nextLink first", body: `{"@odata.nextLink":"n","value":[{"id":"a"},{"id":"b"}]}`,
			records: []map[string]any{{"id": "a"}, {"id": "b"}}, nextLink: "n"},
		{name: "empty page with a nextLink", body: `{"value":[],"@odata.nextLink":"n"}`, records: []map[string]any{}, nextLink: "n"},
		{name: "last page", body: `{"value":[{"id":"a"}]}`, records: []map[string]any{{"id": "a"}}},
		{name: "unknown annotations skipped", body: `{"@odata.count":3,"@odata.deltaLink":{"x":[1]},"value":[]}`, records: []map[string]any{}},
		{name: "truncated", body: `{"value":[{"id":"a"},{"id":"b`, err: ""},
		{name: "missing value", body: `{"@odata.context":"x"}`, err: `page has no "value" array`},
		{name: "value not an array", body: `{"value":{}}`, err: `"value"`},
		{name: "element not an object", body: `{"value":[1]}`, err: `"value" element`},
		{name: "trailing data", body: `{"value":[]} {}`, err: ""},
		{name: "not JSON", body: `<html>`, err: ""},
		{name: "invalid UTF-8 replaced as encoding/json does", body: "{\"value\":[{\"s\":\"a\xffb\"}]}",
			records: []map[string]any{{"s": "a\uFFFDb"}}},
		{name: "big numbers", body: `{"value":[{"i":9223372036854775807,"j":-12,"f":1e3,"g":1.0,"h":12345678901234567890}]}`,
			records: []map[string]any{{"i": int64(9223372036854775807), "j": int64(-12), "f": 1000.0, "g": 1.0, "h": 12345678901234567890.0}}},
		{name: "nextLink not a string", body: `{"value":[],"@odata.nextLink":5}`, err: "not a string"},
	}
	for _, d := range []PageDecoder{FastDecoder{}, StdDecoder{}} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%T/%s", d, tt.name), func(t *testing.T) {
				recs, next, err := decodeAll(t, d, tt.body)
				if tt.err != "" || tt.records == nil {
					require.Error(t, err)
					assert.Contains(t, err.Error(), tt.err)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tt.records, recs)
				assert.Equal(t, tt.nextLink, next)
			})
		}
	}
}

// TestDecodersAgree checks the fast decoder against the encoding/json oracle on a real page.
func TestDecodersAgree(t *testing.T) {
	body := string(samplePage(t))
	fast, fastNext, err := decodeAll(t, FastDecoder{}, body)
	require.NoError(t, err)
	std, stdNext, err := decodeAll(t, StdDecoder{}, body)
	require.NoError(t, err)
	require.Len(t, fast, 1000)
	require.Equal(t, std, fast)
	require.Equal(t, stdNext, fastNext)
}

// A page that waits for its turn emits the same records as one emitted at once, from its own copy of
// the body (the caller's buffer is overwritten meanwhile), and keeps its length and nextLink.
func TestWaitingPageEmitsTheSameRecords(t *testing.T) {
	body := samplePage(t)
	want, wantNext, err := decodeAll(t, FastDecoder{}, string(body))
	require.NoError(t, err)

	buf := append([]byte(nil), body...)
	pg, err := FastDecoder{}.Parse(buf)
	require.NoError(t, err)
	clear(buf)
	assert.Equal(t, len(want), pg.Len())
	assert.Equal(t, wantNext, pg.NextLink())
	var got []map[string]any
	var maps []pcommon.Map
	require.NoError(t, pg.Emit(func() pcommon.Map { m := pcommon.NewMap(); maps = append(maps, m); return m }))
	for _, m := range maps {
		got = append(got, m.AsRaw())
	}
	require.Equal(t, want, got)
}

// FuzzDecodePage feeds arbitrary bytes to the fast decoder: it must never panic, and whenever it
// accepts a page, the encoding/json oracle must accept it too and decode the same records.
func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"value":[{"id":"a","n":1,"x":null,"y":[1.5,"s",{"z":false}]}],"@odata.nextLink":"n"}`))
	f.Add([]byte(`{"value":[]}`))
	f.Add([]byte(`{"value":[{"id":"a"`))
	f.Add([]byte(`{"value":[{"s":"\u00e9\ud83d\ude00","n":-0,"e":1E-7}]}`))
	f.Add([]byte(`{"valu\u0065":[{"k\"ey":"a\\b\/\u00e9","id":"x","id":1,"n":[-0,-0.0,1e400,9223372036854775808]}]}`))
	f.Add([]byte(`{"value":[{"a":[[[[{"b":[]}]]]],"t":"2026-01-01T00:00:01Z"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, fastNext, fastErr := decodeAll(t, FastDecoder{}, string(body))
		if fastErr != nil {
			return
		}
		pg, err := FastDecoder{}.Parse(body) // the readers of a record's fields must not panic either
		require.NoError(t, err)
		for i := range pg.Len() {
			pg.StringField(i, "id")
		}
		pg.TimeSpan("t")
		pg.Release()
		std, stdNext, stdErr := decodeAll(t, StdDecoder{}, string(body))
		require.NoError(t, stdErr, "accepted by FastDecoder only: %q", body)
		require.Equal(t, std, fast, "%q", body)
		require.Equal(t, stdNext, fastNext)
	})
}

func TestTimeSpanShowsThePageOrder(t *testing.T) {
	page := func(times ...string) TimeSpan {
		t.Helper()
		body := `{"value":[`
		for i, ts := range times {
			if i > 0 {
				body += ","
			}
			if ts == "" {
				body += `{"id":"x"}`
			} else {
				body += fmt.Sprintf(`{"id":"%d","t":%q}`, i, ts)
			}
		}
		pg, err := FastDecoder{}.Parse([]byte(body + `]}`))
		require.NoError(t, err)
		defer pg.Release()
		return pg.TimeSpan("t")
	}
	a, b, c := "2026-01-01T00:00:01Z", "2026-01-01T00:00:02.5Z", "2026-01-01T00:00:03.0000001Z"
	for name, tc := range map[string]struct {
		times      []string
		asc, desc  bool
		oldest, nw string
	}{
		"ascending":        {[]string{a, b, b, c}, true, false, a, c},
		"newest first":     {[]string{c, b, a}, false, true, a, c},
		"no order":         {[]string{b, a, c}, false, false, a, c},
		"one instant":      {[]string{b, b, b}, true, true, b, b},
		"a record no time": {[]string{a, "", c}, false, false, a, c},
	} {
		t.Run(name, func(t *testing.T) {
			ts := page(tc.times...)
			assert.Equal(t, tc.asc, ts.Ascending, "ascending")
			assert.Equal(t, tc.desc, ts.Descending, "descending")
			assert.Equal(t, tc.oldest, ts.Oldest.Format(time.RFC3339Nano))
			assert.Equal(t, tc.nw, ts.Newest.Format(time.RFC3339Nano))
		})
	}
}

// A relative nextLink resolves against the page's @odata.context, or without one against the request's
// URL (OData JSON Format 4.01, "Relative URLs"); an absolute one, foreign hosts included, is returned as
// written, for the client's origin check to judge.
func TestNextURLResolvesRelativeLinks(t *testing.T) {
	const req = "https://graph.microsoft.com/v1.0/auditLogs/signIns?$filter=x"
	const ctx = `"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",`
	for _, c := range []struct{ name, body, want string }{
		{"absolute", `{` + ctx + `"value":[],"@odata.nextLink":"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=a"}`,
			"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=a"},
		{"absolute, another host", `{"value":[],"@odata.nextLink":"https://evil.example/v1.0/x?$skiptoken=a"}`,
			"https://evil.example/v1.0/x?$skiptoken=a"},
		{"path, context", `{` + ctx + `"value":[],"@odata.nextLink":"/v1.0/auditLogs/signIns?$skiptoken=b"}`,
			"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=b"},
		{"relative to the context", `{` + ctx + `"value":[],"@odata.nextLink":"auditLogs/signIns?$skiptoken=c"}`,
			"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=c"},
		{"relative, no context: the request's URL", `{"value":[],"@odata.nextLink":"signIns?$skiptoken=d"}`,
			"https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=d"},
		{"relative, relative context: the request's URL", `{"@odata.context":"$metadata#x","value":[],"@odata.nextLink":"/v1.0/y?$skiptoken=e"}`,
			"https://graph.microsoft.com/v1.0/y?$skiptoken=e"},
		{"last page", `{` + ctx + `"value":[]}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			pg, err := FastDecoder{}.Parse([]byte(c.body))
			require.NoError(t, err)
			defer pg.Release()
			assert.Equal(t, c.want, pg.NextURL(req))
		})
	}
}

// A page Parse refuses emits nothing: every check — syntax, shape, numbers, strings — is made before
// the first record is copied, wherever on the page the fault is.
func TestParseRefusesBeforeEmitting(t *testing.T) {
	const good = `{"id":"a","n":1}`
	for name, bad := range map[string]string{
		"invalid number":             `{"n":01}`,
		"number cut short":           `{"n":1.}`,
		"number exponent cut short":  `{"n":1e+}`,
		"NaN":                        `{"n":NaN}`,
		"invalid escape":             `{"s":"\x"}`,
		"lone high surrogate":        `{"s":"\ud83d"}`,
		"lone low surrogate":         `{"s":"\ude00"}`,
		"high surrogate, no low one": `{"s":"\ud83d\u0041"}`,
		"control character":          "{\"s\":\"a\tb\"}",
		"not an object":              `"x"`,
		"bad literal":                `{"b":tru}`,
		"missing colon":              `{"b" 1}`,
		"trailing comma":             `{"b":1,}`,
		"unterminated":               `{"s":"abc`,
	} {
		t.Run(name, func(t *testing.T) {
			emitted := 0
			body := `{"value":[` + good + `,` + bad + `,` + good + `]}`
			_, err := FastDecoder{}.Decode([]byte(body), func() pcommon.Map { emitted++; return pcommon.NewMap() })
			require.Error(t, err)
			assert.Zero(t, emitted)
			_, err = FastDecoder{}.Parse([]byte(body))
			require.Error(t, err)
		})
	}
}

// Nesting is bounded: a page as deep as maxDepth decodes, one level more is refused, and a hostile
// page of a million brackets fails without exhausting the stack.
func TestNestingDepthIsBounded(t *testing.T) {
	nested := func(depth int) string { // the page object, "value" and its element are 3 levels
		return `{"value":[{"a":` + strings.Repeat("[", depth-3) + strings.Repeat("]", depth-3) + `}]}`
	}
	recs, _, err := decodeAll(t, FastDecoder{}, nested(maxDepth))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	depth := 3
	for v := recs[0]["a"]; len(v.([]any)) > 0; v = v.([]any)[0] {
		depth++
	}
	assert.Equal(t, maxDepth, depth+1)

	_, _, err = decodeAll(t, FastDecoder{}, nested(maxDepth+1))
	require.ErrorContains(t, err, "nested deeper than")
	_, _, err = decodeAll(t, FastDecoder{}, `{"value":[{"a":`+strings.Repeat(`[{"b":`, 500000))
	require.ErrorContains(t, err, "nested deeper than")
}

// Duplicate members: within a record the last value wins, in the first one's place (pcommon.Map.PutEmpty);
// on the page the first "value" and the first "@odata.nextLink" count, as they did with fastjson.
func TestDuplicateMembers(t *testing.T) {
	recs, next, err := decodeAll(t, FastDecoder{},
		`{"value":[{"a":1,"b":2,"a":"x"}],"@odata.nextLink":"n1","value":[{"c":3}],"@odata.nextLink":5}`)
	require.NoError(t, err)
	assert.Equal(t, []map[string]any{{"a": "x", "b": int64(2)}}, recs)
	assert.Equal(t, "n1", next)

	// In nested objects too, the members in order and each key once, with objects after the repeated
	// one still filled where they are (the emitter appends members and falls back on a repeated key).
	m := pcommon.NewMap()
	_, err = FastDecoder{}.Decode([]byte(`{"value":[{"o":{"k":1,"j":{"x":1,"y":2},"k":{"z":[{"q":1,"q":2}]}},"after":{"m":1}}]}`),
		func() pcommon.Map { return m })
	require.NoError(t, err)
	var keys []string
	var walk func(prefix string, m pcommon.Map)
	walk = func(prefix string, m pcommon.Map) {
		for k, v := range m.All() {
			keys = append(keys, prefix+k)
			switch v.Type() {
			case pcommon.ValueTypeMap:
				walk(prefix+k+".", v.Map())
			case pcommon.ValueTypeSlice:
				for i := 0; i < v.Slice().Len(); i++ {
					walk(fmt.Sprintf("%s%s[%d].", prefix, k, i), v.Slice().At(i).Map())
				}
			}
		}
	}
	walk("", m)
	assert.Equal(t, []string{"o", "o.k", "o.k.z", "o.k.z[0].q", "o.j", "o.j.x", "o.j.y", "after", "after.m"}, keys)
	assert.Equal(t, map[string]any{"o": map[string]any{"k": map[string]any{"z": []any{map[string]any{"q": int64(2)}}},
		"j": map[string]any{"x": int64(1), "y": int64(2)}}, "after": map[string]any{"m": int64(1)}}, m.AsRaw())
}

// Numbers keep their kind: integer literals that fit int64 are Int, others Double (-0.0 keeps its sign).
func TestNumberKinds(t *testing.T) {
	m := pcommon.NewMap()
	_, err := FastDecoder{}.Decode([]byte(`{"value":[{"n":[-0,-0.0,0,1E2,1e-2,-9223372036854775808,`+
		`9223372036854775807,9223372036854775808,-9223372036854775809,123456789012345678,1e400]}]}`),
		func() pcommon.Map { return m })
	require.NoError(t, err)
	v, _ := m.Get("n")
	want := []any{int64(0), math.Copysign(0, -1), int64(0), 100.0, 0.01, int64(math.MinInt64),
		int64(math.MaxInt64), 9223372036854775808.0, -9223372036854775809.0, int64(123456789012345678), math.Inf(1)}
	require.Equal(t, len(want), v.Slice().Len())
	for i, w := range want {
		assert.Equal(t, w, v.Slice().At(i).AsRaw(), "value %d", i)
	}
	assert.True(t, math.Signbit(v.Slice().At(1).Double()), "-0.0 keeps its sign")
}

// Keys and strings with escapes are unescaped; page-level keys are compared unescaped too; keys that
// fall into the same slot of the interner's recent-key table stay distinct.
func TestEscapesAndKeys(t *testing.T) {
	recs, next, err := decodeAll(t, FastDecoder{},
		`{"valu\u0065":[{"k\"ey":"a\\b\/\n\u00e9\ud83d\ude00","axmyb":1,"azmwb":2,"axmyb2":3},{"axmyb":4,"azmwb":5}],"@odata.nextLink":"n\u0031"}`)
	require.NoError(t, err)
	assert.Equal(t, keyHash([]byte("axmyb")), keyHash([]byte("azmwb")), "the test's keys must share a slot")
	assert.Equal(t, []map[string]any{
		{"k\"ey": "a\\b/\n\u00e9\U0001F600", "axmyb": int64(1), "azmwb": int64(2), "axmyb2": int64(3)},
		{"axmyb": int64(4), "azmwb": int64(5)},
	}, recs)
	assert.Equal(t, "n1", next)
}

// StringField and TimeSpan read a record's top-level member by scanning it: the first of its name,
// unescaped, "" when absent, not a string, or nested deeper.
func TestStringField(t *testing.T) {
	pg, err := FastDecoder{}.Parse([]byte(`{"value":[` +
		`{"x":{"id":"nested"},"arr":["id"],"i\u0064":"a\"1","id":"second"},` +
		`{"id":5},{},{"t":"2026-01-01T00:00:01Z"}]}`))
	require.NoError(t, err)
	defer pg.Release()
	assert.Equal(t, `a"1`, pg.StringField(0, "id"))
	assert.Empty(t, pg.StringField(1, "id"))
	assert.Empty(t, pg.StringField(2, "id"))
	assert.Empty(t, pg.StringField(4, "id"))
	assert.Empty(t, pg.StringField(-1, "id"))
	ts := pg.TimeSpan("t")
	assert.Equal(t, "2026-01-01T00:00:01Z", ts.Newest.Format(time.RFC3339Nano))
	assert.False(t, ts.Ascending)
}

// A page that is not valid JSON fails as such ("invalid page"), wherever the fault lies, even when it
// is of the wrong shape too; valid JSON of the wrong shape says what is wrong with it.
func TestSyntaxErrorsBeforeShapeErrors(t *testing.T) {
	for body, want := range map[string]string{
		`[1]`:                              "a page must be a JSON object",
		`[1`:                               "invalid page: ",
		`[1] 2`:                            "invalid page: trailing data",
		`{"value":5,"x":[}`:                "invalid page: ",
		`{"value":5,"x":[]}`:               `"value" is not an array`,
		`{"value":[1,{"a":01}]}`:           "invalid page: invalid number",
		`{"value":[1,{"a":1}]}`:            `"value" element is not an object`,
		`{"@odata.nextLink":1,"value":[}`:  "invalid page: ",
		`{"@odata.nextLink":1,"value":[]}`: `"@odata.nextLink" is not a string`,
		`{"x":1}`:                          `page has no "value" array`,
		``:                                 "invalid page: ",
	} {
		_, err := FastDecoder{}.Parse([]byte(body))
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), want, body)
		if !strings.HasPrefix(want, "invalid page") {
			assert.NotContains(t, err.Error(), "invalid page", body)
		}
	}
}
