package correlation

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

func TestConditions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yml")
	require.NoError(t, os.WriteFile(p, []byte(`version: 1
rules:
  - name: r
    severity: low
    type: threshold
    window: 1m
    where:
      s: x
      i: [1, 2]
      b: true
      missing: { not_in: [x] }
      pre: { prefix: "ab" }
      re: { matches: "^c+$" }
      list: y
      ex: { exists: true }
      absent: { exists: false }
      f: 1.5
      ne: { not_equals: 3 }
`), 0o600))
	rules, err := Load(p, "", nil)
	require.NoError(t, err)
	m := func(edit func(map[string]any)) bool {
		raw := map[string]any{"s": "x", "i": int64(2), "b": true, "pre": "abc", "re": "ccc", "list": []any{"x", "y"}, "ex": "", "f": 1.5, "ne": int64(4)}
		edit(raw)
		attrs := plog.NewLogRecord().Attributes()
		require.NoError(t, attrs.FromRaw(raw))
		return rules[0].kind.(*thresholdKind).match.matches(attrs)
	}
	assert.True(t, m(func(map[string]any) {}))
	assert.False(t, m(func(r map[string]any) { r["s"] = "y" }))
	assert.True(t, m(func(r map[string]any) { r["i"] = "1" })) // a string attribute equal to the literal's text
	assert.False(t, m(func(r map[string]any) { r["i"] = int64(3) }))
	assert.False(t, m(func(r map[string]any) { r["b"] = false }))
	assert.False(t, m(func(r map[string]any) { r["missing"] = "x" }))
	assert.False(t, m(func(r map[string]any) { r["pre"] = "xab" }))
	assert.False(t, m(func(r map[string]any) { r["re"] = "cd" }))
	assert.False(t, m(func(r map[string]any) { r["list"] = []any{"x"} }))
	assert.False(t, m(func(r map[string]any) { delete(r, "ex") }))
	assert.False(t, m(func(r map[string]any) { r["absent"] = 1 }))
	assert.False(t, m(func(r map[string]any) { r["f"] = 2.5 }))
	assert.False(t, m(func(r map[string]any) { r["ne"] = int64(3) }))
	assert.True(t, m(func(r map[string]any) { delete(r, "ne") }))
}

// TestStateExpires drops groups once the tenant's clock is past their window, and counts state in one
// place.
func TestStateExpires(t *testing.T) {
	rules, err := Load("../../correlation.yml", "", nil)
	require.NoError(t, err)
	e := New(rules, 1000)
	ts := e.Tenant("t", "t")
	attrs := plog.NewLogRecord().Attributes()
	require.NoError(t, attrs.FromRaw(map[string]any{a.EventType: "signin.failure", a.SignInErrorCode: int64(50126),
		a.UserName: "u", a.ClientAddress: "ip"}))
	t0 := time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)
	ts.Observe(Record{Attrs: attrs, EventType: "signin.failure", LogType: a.LogTypeSignIn, ID: "1", Time: t0}, t0, nil)
	assert.Equal(t, 4, ts.size()) // brute force and spray: a group and an event each
	// Much later: the next record's time moves the tenant's clock; the sweep drops the old groups.
	later := t0.Add(3 * time.Hour)
	ts.Observe(Record{Attrs: attrs, EventType: "signin.failure", LogType: a.LogTypeSignIn, ID: "2", Time: later}, later, nil)
	assert.Equal(t, 4, ts.size()) // only the new record's
	assert.Equal(t, map[string]int{"t": 4}, e.Entries())
}
