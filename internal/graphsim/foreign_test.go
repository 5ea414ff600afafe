package graphsim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

// In ForeignNextLinks mode every nextLink points at the simulator's second listener, on another host
// and port, which serves the same pages and records the Authorization header of every request — so a
// client that follows such a link still pages through, and the tokens it gave away are on record.
func TestForeignNextLinks(t *testing.T) {
	sim := graphsimtest.Start(t, graphsim.Config{ForeignNextLinks: true, Tenants: []graphsim.Tenant{
		graphsimtest.Tenant(1, map[string]graphsim.DatasetSpec{"signins": {Count: 25, Span: time.Hour}}),
	}})
	foreign, err := url.Parse(sim.ForeignURL())
	require.NoError(t, err)
	own, err := url.Parse(sim.URL())
	require.NoError(t, err)
	assert.Equal(t, "localhost", foreign.Hostname(), "another host name")
	assert.NotEqual(t, own.Port(), foreign.Port(), "and another port")

	c := graphsimtest.NewClient(t, sim, tenant1) // follows every nextLink, token and all
	query := url.Values{"$top": {"10"}}
	pages := c.Pages(t, "v1.0", "/auditLogs/signIns", query)
	require.Len(t, pages, 3, "the foreign host serves the same pages")
	var ids []string
	for i, p := range pages {
		var page struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		require.NoError(t, json.Unmarshal(p, &page))
		for _, v := range page.Value {
			ids = append(ids, v.ID)
		}
		if i < len(pages)-1 {
			assert.True(t, strings.HasPrefix(page.NextLink, sim.ForeignURL()+"/v1.0/auditLogs/signIns?"), page.NextLink)
		}
	}
	assert.ElementsMatch(t, sim.IDs(tenant1, "signins", sim.Anchor().Add(-2*time.Hour), sim.Anchor()), ids)
	recs := sim.ForeignRequests()
	require.Len(t, recs, 2, "the two nextLinks")
	for _, r := range recs {
		assert.Equal(t, "/v1.0/auditLogs/signIns", r.Path)
		assert.True(t, strings.HasPrefix(r.Authorization, "Bearer ey"), "the token is on record")
	}

	require.NoError(t, sim.SetForeignNextLinks(false))
	pages = c.Pages(t, "v1.0", "/auditLogs/signIns", query)
	require.Len(t, pages, 3)
	assert.Contains(t, string(pages[0]), `"@odata.nextLink":"`+sim.URL()+"/v1.0/auditLogs/signIns?", "back on its own host")
	assert.Len(t, sim.ForeignRequests(), 2, "nothing more reached the foreign host")
}

// With RetryAfterHTTPDate, Retry-After is an HTTP-date, rounded up to the second, that the request log's
// Retry-After end never passes.
func TestRetryAfterHTTPDate(t *testing.T) {
	cfg := smallTenants(1, withData)
	cfg.RetryAfterHTTPDate = true
	e := start(t, cfg)
	e.sim.FailNext(graphsim.Fault{Kind: "status", Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond})
	r := e.get(signInsPath, e.token(tenant1))
	requireGraphError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	v := r.Header.Get("Retry-After")
	date, err := http.ParseTime(v)
	require.NoError(t, err, "Retry-After %q is an HTTP-date", v)
	assert.True(t, strings.HasSuffix(v, " GMT"), v)
	log := e.sim.Requests()
	require.Len(t, log, 1)
	end := log[0].At.Add(1500 * time.Millisecond)
	assert.False(t, date.Before(end), "the date %s is not before the end %s", date, end)
	assert.Less(t, date.Sub(end), time.Second+time.Millisecond, "rounded up to the next second, no more")
}
