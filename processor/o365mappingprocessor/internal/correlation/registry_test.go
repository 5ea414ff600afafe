package correlation

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// everyConfig is a rule kind made for the test: it fires on every record its `where` matches. It is
// all a new kind needs: a config type, a running kind, and one registry line.
type everyConfig struct {
	Common `yaml:",inline"`
	Match  `yaml:",inline"`
	Label  word `yaml:"label,required"`
}

func (c *everyConfig) build(b *builder) kind {
	k := &everyKind{match: c.set(b.d, b.n, b.key, b.present)}
	b.admit(&k.match)
	return k
}

type everyKind struct{ match condSet }

func (k *everyKind) newState() state { return new(events) }

func (k *everyKind) observe(s *scope, rec *Record) *fire {
	if !k.match.matches(rec.Attrs) {
		return nil
	}
	g := s.group(rec, true)
	if g == nil {
		return nil
	}
	g.touch(rec.Time)
	return &fire{g: g, start: rec.Time, end: rec.Time, ids: []string{rec.ID}}
}

func TestRegistryTakesANewKind(t *testing.T) {
	kinds["every"] = func() kindConfig { return new(everyConfig) }
	t.Cleanup(func() { delete(kinds, "every") })
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "r.yml")
		require.NoError(t, os.WriteFile(p, []byte("version: 1\nrules:\n"+body), 0o600))
		return p
	}

	_, err := Load(write("  - {name: e, severity: low, type: every, window: 1m, where: {k: v}, labell: x}\n"), "", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "r.yml:3: `rules[0](e).label`: is required for rules of type every")
	assert.Contains(t, err.Error(), "r.yml:3: `rules[0](e).labell`: is not a known rule key")
	_, err = Load(write("  - {name: e, severity: low, type: every, window: 1m, where: {k: v}, label: x, steps: []}\n"), "", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "`rules[0](e).steps`: does not apply to rules of type every")

	rules, err := Load(write("  - {name: e, severity: low, type: every, window: 1m, where: {k: v}, label: x}\n"), "", nil)
	require.NoError(t, err)
	ts := New(rules, 100).Tenant("t", "t")
	attrs := plog.NewLogRecord().Attributes()
	attrs.PutStr("k", "v")
	now := time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)
	got := ts.Observe(Record{Attrs: attrs, ID: "1", Time: now}, now, nil)
	require.Len(t, got, 1)
	assert.Equal(t, []string{"1"}, got[0].RecordIDs)
	assert.Equal(t, 1, ts.size()) // the group, its state empty
}
