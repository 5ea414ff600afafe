package o365eventsexporter

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/sqldb"
)

// Every statement the query API and the retention run is, on SQLite, one search of an index that
// starts with the tenant, in the order the answer needs: no scan of the table, no sort.
func TestQueryPlansSearchAnIndexWithoutSorting(t *testing.T) {
	ctx := context.Background()
	h := startHarness(t, testConfig(t, sqldb.DriverSQLite))
	s := h.e.currentStore()
	after := &position{time: 1, seq: 1}
	type stmt struct {
		name  string
		query string
		args  []any
	}
	var stmts []stmt
	for _, q := range []query{
		{view: viewRaw},
		{view: viewRaw, dataset: "signins"},
		{view: viewRaw, dataset: "signins", hasSince: true, since: 1},
		{view: viewRaw, hasSince: true, since: 1, hasUntil: true, until: 2},
		{view: viewRaw, dataset: "signins", after: after},
		{view: viewRaw, after: after, hasUntil: true, until: 2},
		{view: viewNormalized},
		{view: viewNormalized, eventType: "signin.failure"},
		{view: viewNormalized, eventType: "signin.failure", hasSince: true, since: 1},
		{view: viewNormalized, eventType: "signin.failure", after: after},
		{view: viewNormalized, hasSince: true, since: 1},
		{view: viewNormalized, after: after},
	} {
		q.tenant, q.limit = "contoso", 100
		text, args := q.sql(s.prefix)
		stmts = append(stmts, stmt{text, text, args})
	}
	stmts = append(stmts,
		stmt{"retention: max_age", s.q.deleteBefore, []any{"contoso", 1, 10}},
		stmt{"retention: max_records_per_tenant", s.q.deleteBeyond, []any{"contoso", 1, 10}})
	for _, st := range stmts {
		rs, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+st.query, st.args...)
		require.NoError(t, err)
		var plan []string
		for rs.Next() {
			var id, parent, notUsed int
			var detail string
			require.NoError(t, rs.Scan(&id, &parent, &notUsed, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rs.Err())
		require.NoError(t, rs.Close())
		t.Logf("%s\n\t%s", st.name, strings.Join(plan, "\n\t"))
		joined := strings.Join(plan, "; ")
		assert.Contains(t, joined, "INDEX "+s.prefix+"records_", st.name)
		assert.Contains(t, joined, "(tenant=?", st.name)
		assert.NotContains(t, joined, "TEMP B-TREE", st.name)
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN "+s.prefix+"records") {
				assert.Contains(t, step, "USING", "%s: a scan of the table itself: %s", st.name, step)
			}
		}
	}
}
