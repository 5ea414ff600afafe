package graph

import (
	"fmt"
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

// A parked page — its parse tree dropped while it waits — emits the same records as one emitted at
// once, from its own copy of the body (the caller's buffer is overwritten meanwhile), and keeps its
// length and nextLink.
func TestParkedPageEmitsTheSameRecords(t *testing.T) {
	body := samplePage(t)
	want, wantNext, err := decodeAll(t, FastDecoder{}, string(body))
	require.NoError(t, err)

	buf := append([]byte(nil), body...)
	pg, err := FastDecoder{}.Parse(buf)
	require.NoError(t, err)
	clear(buf)
	pg.Park()
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
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, fastNext, fastErr := decodeAll(t, FastDecoder{}, string(body))
		if fastErr != nil {
			return
		}
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
