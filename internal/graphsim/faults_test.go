package graphsim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
)

var withData = map[string]graphsim.DatasetSpec{
	"signins":          {Count: 30, Span: time.Hour, PerTimestamp: 2},
	"directory_audits": {Count: 10, Span: time.Hour},
}

// sleepUntil waits until t has passed (the simulator's clock is the same wall clock).
func sleepUntil(t time.Time) { time.Sleep(time.Until(t) + time.Millisecond) }

func TestFailNextRetryAfterAndViolations(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter time.Duration
		header     string
		code       string
	}{
		{http.StatusTooManyRequests, 1200 * time.Millisecond, "1.2", "TooManyRequests"},
		{http.StatusServiceUnavailable, 700 * time.Millisecond, "0.7", "serviceNotAvailable"},
	}
	for _, c := range cases {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			t.Parallel()
			e := start(t, smallTenants(1, withData))
			tok := e.token(tenant1)
			e.sim.FailNext(graphsim.Fault{Kind: "status", Status: c.status, RetryAfter: c.retryAfter})

			r := e.get(signInsPath, tok)
			requireGraphError(t, r, c.status, c.code)
			assert.Equal(t, c.header, r.Header.Get("Retry-After"))
			assert.Equal(t, c.retryAfter, retryAfter(t, r.Header))

			early := e.get(auditsPath, tok) // same family: the wait applies to it too
			assert.Equal(t, http.StatusOK, early.Status, "a fault is used once")
			log := e.sim.Requests()
			require.Len(t, log, 2)
			deadline := log[0].At.Add(c.retryAfter)
			assert.Equal(t, c.retryAfter, log[0].RetryAfter)
			assert.Equal(t, c.status, log[0].Status)
			assert.False(t, log[0].Violation)
			// Sent at once, it arrives before the deadline on any sane machine; either way the flag must
			// match the arrival time.
			assert.Equal(t, log[1].At.Before(deadline), log[1].Violation, "a request before Retry-After elapsed")

			sleepUntil(deadline)
			assert.Equal(t, http.StatusOK, e.get(signInsPath, tok).Status)
			log = e.sim.Requests()
			require.Len(t, log, 3)
			assert.False(t, log[2].At.Before(deadline))
			assert.False(t, log[2].Violation, "a request after Retry-After elapsed")

			st := e.sim.Stats()
			assert.Equal(t, map[bool]int64{true: 1}[log[1].Violation], st.Violations)
			assert.Equal(t, int64(1), st.Faults)
			assert.Equal(t, int64(0), st.Throttled, "an injected fault is not a throttle")
			assert.Equal(t, int64(3), st.GraphRequests)
		})
	}
}

func TestFailNextOrderAndPath(t *testing.T) {
	e := start(t, smallTenants(1, withData))
	tok := e.token(tenant1)
	e.sim.FailNext(
		graphsim.Fault{Kind: "status", Status: 504, Path: "directoryAudits"},
		graphsim.Fault{Kind: "status", Status: 500},
		graphsim.Fault{Kind: "status", Status: 503},
	)
	// The first request to signIns skips the audits-only fault and takes the next one.
	requireGraphError(t, e.get(signInsPath, tok), 500, "generalException")
	requireGraphError(t, e.get(auditsPath, tok), 504, "gatewayTimeout")
	r := e.get(auditsPath, tok)
	requireGraphError(t, r, 503, "serviceNotAvailable")
	assert.Empty(t, r.Header.Get("Retry-After"), "no RetryAfter, no header")
	assert.Equal(t, http.StatusOK, e.get(auditsPath, tok).Status, "all faults used")
	assert.Equal(t, int64(3), e.sim.Stats().Faults)
	// Faults do not apply to requests that fail authentication.
	e.sim.FailNext(graphsim.Fault{Kind: "status", Status: 500})
	requireGraphError(t, e.get(signInsPath, ""), http.StatusUnauthorized, "InvalidAuthenticationToken")
	requireGraphError(t, e.get(signInsPath, tok), 500, "generalException")
}

func TestFaultKinds(t *testing.T) {
	cases := []struct {
		name  string
		fault graphsim.Fault
		check func(t *testing.T, e *env, r response, err error)
	}{
		{"500", graphsim.Fault{Kind: "status", Status: 500}, func(t *testing.T, _ *env, r response, err error) {
			require.NoError(t, err)
			requireGraphError(t, r, 500, "generalException")
			assert.Empty(t, r.Header.Get("Retry-After"))
		}},
		{"503 with fractional Retry-After", graphsim.Fault{Kind: "status", Status: 503, RetryAfter: 2128 * time.Millisecond}, func(t *testing.T, _ *env, r response, err error) {
			require.NoError(t, err)
			requireGraphError(t, r, 503, "serviceNotAvailable")
			assert.Equal(t, "2.128", r.Header.Get("Retry-After"))
		}},
		{"504", graphsim.Fault{Kind: "status", Status: 504}, func(t *testing.T, _ *env, r response, err error) {
			require.NoError(t, err)
			requireGraphError(t, r, 504, "gatewayTimeout")
		}},
		{"429 without Retry-After", graphsim.Fault{Kind: "status", Status: 429}, func(t *testing.T, _ *env, r response, err error) {
			require.NoError(t, err)
			requireGraphError(t, r, 429, "TooManyRequests")
			assert.Empty(t, r.Header.Get("Retry-After"))
		}},
		{"truncate", graphsim.Fault{Kind: "truncate"}, func(t *testing.T, e *env, r response, err error) {
			require.NoError(t, err, "a truncated body is complete at the HTTP level")
			assert.Equal(t, http.StatusOK, r.Status)
			assert.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"))
			assert.False(t, json.Valid(r.Body), "the body is valid JSON")
			full := e.get(signInsPath+"?$top=7&$orderby=createdDateTime", e.token(tenant1))
			require.Equal(t, http.StatusOK, full.Status)
			require.True(t, json.Valid(full.Body))
			assert.Equal(t, string(full.Body[:len(full.Body)/2]), string(r.Body), "the first half of the real page")
		}},
		{"reset", graphsim.Fault{Kind: "reset"}, func(t *testing.T, _ *env, _ response, err error) {
			require.Error(t, err, "the connection drop must reach the client")
		}},
		{"invalid_json", graphsim.Fault{Kind: "invalid_json"}, func(t *testing.T, e *env, r response, err error) {
			require.NoError(t, err, "an invalid body is complete at the HTTP level")
			assert.Equal(t, http.StatusOK, r.Status)
			assert.False(t, json.Valid(r.Body), "the body is not valid JSON")
			full := e.get(signInsPath+"?$top=7&$orderby=createdDateTime", e.token(tenant1))
			assert.Equal(t, len(full.Body)+1, len(r.Body), "the real page with one stray byte")
			assert.Zero(t, e.sim.Requests()[0].Records)
		}},
		{"no_value", graphsim.Fault{Kind: "no_value"}, func(t *testing.T, e *env, r response, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, r.Status)
			var top map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(r.Body, &top), "valid JSON: %s", r.Body)
			assert.Equal(t, []string{"@odata.context", "@odata.nextLink"}, keysOf(top), "everything but value")
			assert.Zero(t, e.sim.Requests()[0].Records)
		}},
		{"empty_next", graphsim.Fault{Kind: "empty_next"}, func(t *testing.T, e *env, r response, err error) {
			require.NoError(t, err)
			p := decodePage(t, r)
			require.NotNil(t, p.Value)
			assert.Empty(t, p.Value)
			assert.Contains(t, p.NextLink, "simEmptyPage=1")
			// The nextLink continues the same query: it yields the page the request would have got.
			tok := e.token(tenant1)
			want := decodePage(t, e.get(signInsPath+"?$top=7&$orderby=createdDateTime", tok))
			got := decodePage(t, e.get(p.NextLink, tok))
			assert.Equal(t, want.Value, got.Value)
			assert.NotEmpty(t, got.NextLink)
			assert.Zero(t, e.sim.Requests()[0].Records)
		}},
		{"next_loop", graphsim.Fault{Kind: "next_loop"}, func(t *testing.T, e *env, r response, err error) {
			require.NoError(t, err)
			p := decodePage(t, r)
			assert.Equal(t, e.sim.URL()+signInsPath+"?$top=7&$orderby=createdDateTime", p.NextLink, "the nextLink is the page itself")
			want := decodePage(t, e.get(signInsPath+"?$top=7&$orderby=createdDateTime", e.token(tenant1)))
			assert.Equal(t, want.Value, p.Value, "the real records")
			assert.Len(t, p.Value, 7)
			assert.Equal(t, 7, e.sim.Requests()[0].Records)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := start(t, smallTenants(1, withData))
			tok := e.token(tenant1)
			e.sim.FailNext(c.fault)
			r, err := e.do(signInsPath+"?$top=7&$orderby=createdDateTime", tok, nil)
			c.check(t, e, r, err)
			log := e.sim.Requests()
			require.NotEmpty(t, log)
			assert.Equal(t, int64(1), e.sim.Stats().Faults)
			// The next request is served normally.
			assert.Equal(t, http.StatusOK, e.get(signInsPath, tok).Status)
		})
	}
}

// Following every nextLink through pages damaged by empty_next faults lists each record exactly once,
// for an event stream and for a snapshot; a next_loop page points back at itself.
func TestPageFaultsKeepThePaging(t *testing.T) {
	spec := map[string]graphsim.DatasetSpec{"signins": {Count: 30, Span: time.Hour}, "role_assignments": {Count: 12}}
	for _, path := range []string{signInsPath + "?$top=5&$orderby=createdDateTime", "/v1.0/roleManagement/directory/roleAssignments?$top=5"} {
		e := start(t, smallTenants(1, spec))
		tok := e.token(tenant1)
		want, _ := e.listAll(path, tok)
		e.sim.FailNext(graphsim.Fault{Kind: "empty_next"}, graphsim.Fault{Kind: "empty_next"})
		got, pages := e.listAll(path, tok)
		assert.Equal(t, want, got, "%s: the same records, in the same order", path)
		assert.Empty(t, pages[0].Value)
		assert.Empty(t, pages[1].Value)
		assert.NotEqual(t, pages[0].NextLink, pages[1].NextLink, "each empty page has its own nextLink")
		assert.Equal(t, int64(2), e.sim.Stats().Faults)
	}
}

// A snapshot listing that goes wrong half-way: a scripted fault with After spares the first pages and
// fails the next one; no_next ends the listing early as if it were complete; drop_items serves a page
// missing some of its items, the paging going on after them.
func TestSnapshotListingFaults(t *testing.T) {
	const path = "/v1.0/roleManagement/directory/roleAssignments?$top=5"
	spec := map[string]graphsim.DatasetSpec{"role_assignments": {Count: 23}}
	e := start(t, smallTenants(1, spec))
	tok := e.token(tenant1)
	all, pages := e.listAll(path, tok)
	require.Len(t, all, 23)
	require.Len(t, pages, 5)

	t.Run("fails at the third page", func(t *testing.T) {
		e.sim.FailNext(graphsim.Fault{Kind: "status", Status: 500, Path: "roleAssignments", After: 2})
		p1 := decodePage(t, e.get(path, tok))
		p2 := decodePage(t, e.get(p1.NextLink, tok))
		requireGraphError(t, e.get(p2.NextLink, tok), 500, "generalException")
		got, _ := e.listAll(path, tok)
		assert.Equal(t, all, got, "the fault is used once")
	})
	t.Run("ends early without nextLink", func(t *testing.T) {
		e.sim.FailNext(graphsim.Fault{Kind: "no_next", Path: "roleAssignments", After: 1})
		got, pages := e.listAll(path, tok)
		assert.Equal(t, all[:10], got, "two pages, the second without a nextLink")
		assert.Len(t, pages, 2)
		got, _ = e.listAll(path, tok)
		assert.Equal(t, all, got)
	})
	t.Run("drops a share of a page", func(t *testing.T) {
		e.sim.FailNext(graphsim.Fault{Kind: "drop_items", Share: 0.5, Path: "roleAssignments"})
		got, pages := e.listAll(path, tok)
		assert.Equal(t, append(append([]string(nil), all[:2]...), all[5:]...), got, "the last 3 of the first 5 items are missing")
		assert.Len(t, pages, 5, "the paging goes on")
		assert.Equal(t, 2, e.sim.Requests()[len(e.sim.Requests())-5].Records)
	})
}

func TestFaultKindsValidated(t *testing.T) {
	cfg := smallTenants(1, withData)
	for _, kind := range []string{"status", "truncate", "reset", "invalid_json", "no_value", "empty_next", "next_loop", "no_next", "drop_items"} {
		cfg.Faults = []graphsim.Fault{{Kind: kind, Status: 500, Probability: 0.5, Share: 0.2}}
		srv, err := graphsim.Start(cfg)
		require.NoError(t, err, kind)
		require.NoError(t, srv.Close())
	}
	for fault, want := range map[graphsim.Fault]string{
		{Kind: "gremlins"}:               `faults[0].kind "gremlins" is not one of status, truncate, reset, invalid_json, no_value, empty_next, next_loop, no_next, drop_items`,
		{Kind: "drop_items"}:             "faults[0].share must be in (0, 1] for kind drop_items",
		{Kind: "no_next", After: 2}:      "faults[0].after applies to scripted faults (FailNext) only",
		{Kind: "drop_items", Share: 1.5}: "faults[0].share must be in (0, 1] for kind drop_items",
	} {
		cfg.Faults = []graphsim.Fault{fault}
		_, err := graphsim.Start(cfg)
		require.ErrorContains(t, err, want)
	}
}

func TestRandomFaultsAreSeeded(t *testing.T) {
	pattern := func(seed uint64) []int {
		cfg := smallTenants(1, withData)
		cfg.Seed = seed
		cfg.Faults = []graphsim.Fault{
			{Kind: "status", Status: 500, Probability: 0.3, Path: "signIns"},
			{Kind: "status", Status: 503, Probability: 0.3, Path: "signIns"},
			{Kind: "status", Status: 504, Probability: 1, Path: "nowhere"},
		}
		e := start(t, cfg)
		tok := e.token(tenant1)
		var out []int
		for range 40 {
			out = append(out, e.get(signInsPath, tok).Status)
			require.Equal(t, http.StatusOK, e.get(auditsPath, tok).Status, "the faults are restricted to signIns")
		}
		faults := 0
		for _, s := range out {
			if s != http.StatusOK {
				faults++
			}
		}
		assert.Equal(t, int64(faults), e.sim.Stats().Faults)
		return out
	}
	a, b, other := pattern(7), pattern(7), pattern(8)
	assert.Equal(t, a, b, "the same seed gives the same faults")
	assert.NotEqual(t, a, other, "another seed gives other faults")
	for _, want := range []int{200, 500, 503} {
		assert.Contains(t, a, want)
	}
	assert.NotContains(t, a, 504)
}

func TestLatencyAndCancellation(t *testing.T) {
	cfg := smallTenants(1, withData)
	e := start(t, cfg)
	tok := e.token(tenant1)
	e.sim.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.sim.URL()+signInsPath, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	done := make(chan error, 1)
	go func() {
		resp, err := e.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Cancel once the simulator holds the request.
	require.Eventually(t, func() bool { return e.sim.Stats().GraphRequests == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.Error(t, <-done)
	require.Eventually(t, func() bool {
		log := e.sim.Requests()
		return len(log) == 1 && log[0].Status == 499
	}, 10*time.Second, time.Millisecond, "the abandoned request is logged as 499")

	e.sim.SetLatency(0)
	assert.Equal(t, http.StatusOK, e.get(signInsPath, tok).Status)
}

func TestRateLimitRetryAfterAdmits(t *testing.T) {
	const window = time.Second
	cfg := smallTenants(2, withData)
	cfg.RateLimits = graphsim.RateLimits{Enforce: true, Families: map[string]graphsim.Limit{
		"reports": {TenantRequests: 3, AppRequests: 100, Window: window},
	}}
	e := start(t, cfg)
	ceilMS := func(d time.Duration) time.Duration { return (d + time.Millisecond - 1).Truncate(time.Millisecond) }

	// Tenant 1: the 4th request in the window is throttled; waiting its Retry-After is enough.
	tok1 := e.token(tenant1)
	for i := range 3 {
		require.Equal(t, http.StatusOK, e.get(signInsPath, tok1).Status, "request %d", i+1)
	}
	r := e.get(auditsPath, tok1) // the family shares one window
	requireGraphError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	assert.Contains(t, r.Header.Get("x-ms-throttle-scope"), tenant1)
	ra := retryAfter(t, r.Header)
	log := e.sim.Requests()
	require.Len(t, log, 4)
	assert.Equal(t, ceilMS(log[1].At.Add(window).Sub(log[3].At)), ra, "free when the 2nd request leaves the window")
	assert.Equal(t, ra, log[3].RetryAfter)
	sleepUntil(log[3].At.Add(ra))
	r = e.get(signInsPath, tok1)
	assert.Equal(t, http.StatusOK, r.Status, "a request sent after Retry-After is admitted: %s", r.Body)
	log = e.sim.Requests()
	assert.False(t, log[4].Violation)

	// Tenant 2: throttled requests count. The 6th is told to wait until the 4th, itself throttled, leaves
	// the window (were throttled requests free, the 2nd would be the one).
	tok2 := e.token(tenant2)
	for i := range 6 {
		r := e.get(signInsPath, tok2)
		if i < 3 {
			require.Equal(t, http.StatusOK, r.Status, "request %d", i+1)
		} else {
			requireGraphError(t, r, http.StatusTooManyRequests, "TooManyRequests")
		}
	}
	log = e.sim.Requests()[5:]
	require.Len(t, log, 6)
	assert.Equal(t, ceilMS(log[3].At.Add(window).Sub(log[5].At)), log[5].RetryAfter)
	assert.Equal(t, []bool{false, false, false, false, true, true}, violations(log))
	for i, rec := range log {
		assert.Equal(t, "reports", rec.Family)
		assert.Equal(t, tenant2, rec.TenantID)
		assert.Equal(t, map[bool]int{true: 429, false: 200}[i >= 3], rec.Status)
	}
	st := e.sim.Stats()
	assert.Equal(t, int64(4), st.Throttled)
	assert.Equal(t, int64(2), st.Violations)
}

func violations(log []graphsim.RequestRecord) []bool {
	out := make([]bool, len(log))
	for i, r := range log {
		out[i] = r.Violation
	}
	return out
}

func TestRateLimitPerAppAcrossTenants(t *testing.T) {
	cfg := smallTenants(2, withData)
	cfg.Tenants[1].Apps = append(cfg.Tenants[1].Apps, graphsim.App{ClientID: "cccccccc-0000-4000-8000-000000000003", Secret: "other", Roles: []string{"AuditLog.Read.All"}})
	cfg.RateLimits = graphsim.RateLimits{Enforce: true, Families: map[string]graphsim.Limit{
		"reports": {TenantRequests: 100, AppRequests: 3, Window: time.Minute},
	}}
	e := start(t, cfg)
	t1, t2 := e.token(tenant1), e.token(tenant2)
	status, body := e.rawToken(tenant2, "cccccccc-0000-4000-8000-000000000003", "other", graphsimtest.Scope)
	require.Equal(t, http.StatusOK, status, "%v", body)
	otherApp := body["access_token"].(string)

	steps := []struct {
		tok, path string
		want      int
	}{
		{t1, signInsPath, 200},
		{t2, auditsPath, 200}, // the whole "reports" family shares the limit
		{t1, auditsPath, 200},
		{t2, signInsPath, 429}, // 4th request of the app across tenants
		{otherApp, signInsPath, 200},
		{t1, signInsPath, 429},
	}
	for i, s := range steps {
		r := e.get(s.path, s.tok)
		require.Equal(t, s.want, r.Status, "step %d: %s", i, r.Body)
		if s.want == 429 {
			ra := retryAfter(t, r.Header)
			assert.Greater(t, ra, 50*time.Second, "the app window frees a minute after its oldest request")
		}
	}
	assert.Equal(t, int64(2), e.sim.Stats().Throttled)

	// Not enforced: the same traffic passes.
	cfg.RateLimits.Enforce = false
	e2 := start(t, cfg)
	tok := e2.token(tenant1)
	for range 10 {
		require.Equal(t, http.StatusOK, e2.get(signInsPath, tok).Status)
	}
	assert.Zero(t, e2.sim.Stats().Throttled)
}

func TestRateLimitWithoutRetryAfter(t *testing.T) {
	cfg := smallTenants(1, withData)
	cfg.RateLimits = graphsim.RateLimits{Enforce: true, Families: map[string]graphsim.Limit{
		"reports": {TenantRequests: 1, Window: time.Minute, OmitRetryAfter: true},
	}}
	e := start(t, cfg)
	tok := e.token(tenant1)
	require.Equal(t, http.StatusOK, e.get(signInsPath, tok).Status)
	for range 2 {
		r := e.get(signInsPath, tok)
		requireGraphError(t, r, http.StatusTooManyRequests, "TooManyRequests")
		_, has := r.Header["Retry-After"]
		assert.False(t, has, "identity-protection style 429 carries no Retry-After")
	}
	assert.Zero(t, e.sim.Stats().Violations, "no Retry-After was given, so none was violated")
	assert.Equal(t, int64(2), e.sim.Stats().Throttled)
}
