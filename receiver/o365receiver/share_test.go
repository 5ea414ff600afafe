package o365receiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim"
	"github.com/otelcol-o365/otelcol-o365/internal/graphsim/graphsimtest"
	"github.com/otelcol-o365/otelcol-o365/internal/pgtest"
)

// TestAppShareFollowsTheTenantsHeld: a replica's share of an app-wide window is the limit × the
// app's tenants it holds / the app's tenants, at least 1; it shrinks at once and grows a window (plus
// the margin) after it was first wanted — at start-up too, since a tenant found free may just have been
// released by a peer whose requests still count.
func TestAppShareFollowsTheTenantsHeld(t *testing.T) {
	const margin = 250 * time.Millisecond
	b := graph.NewBudget(margin)
	a := newAppShares(b, margin)
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5", "t6"} {
		a.add("app", graph.Window{Requests: 12, Per: time.Second}, id)
	}
	a.add("other", graph.Window{Requests: 10, Per: time.Minute}, "t1")
	a.add("unlimited", graph.Window{Per: time.Second}, "t1")
	held := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	limit := func(key string) int {
		w, ok := b.Limit(key)
		require.True(t, ok, key)
		require.Equal(t, map[string]time.Duration{"app": time.Second, "other": time.Minute}[key], w.Per)
		return w.Requests
	}
	a.start()
	require.Equal(t, 1, limit("app"), "a replica starts at the minimum share")
	require.Equal(t, 1, limit("other"))
	_, defined := b.Limit("unlimited")
	require.False(t, defined, "no app-wide limit, nothing to share")
	t0 := time.Now()
	a.divide(held("t1", "t2", "t3"), t0)
	require.Equal(t, 1, limit("app"), "the first division grows a window later too")
	a.divide(held("t1", "t2", "t3"), t0.Add(time.Second+margin))
	require.Equal(t, 6, limit("app"))
	a.divide(held("t1", "t2", "t3"), t0.Add(time.Minute+margin))
	require.Equal(t, 10, limit("other"))

	a.divide(held("t2"), t0.Add(time.Minute+margin+time.Second))
	require.Equal(t, 2, limit("app"), "a share shrinks at once")
	require.Equal(t, 1, limit("other"), "at least one request")

	grown := t0.Add(time.Minute + margin + 2*time.Second)
	a.divide(held("t1", "t2", "t3", "t4"), grown)
	require.Equal(t, 2, limit("app"), "a share grows a window later")
	a.divide(held("t1", "t2", "t3", "t4"), grown.Add(time.Second+margin-time.Millisecond))
	require.Equal(t, 2, limit("app"))
	a.divide(held("t1", "t2", "t3", "t4"), grown.Add(time.Second+margin))
	require.Equal(t, 8, limit("app"))
	require.Equal(t, 1, limit("other"), "its window is a minute")
	a.divide(held("t1", "t2", "t3", "t4"), grown.Add(time.Minute+margin))
	require.Equal(t, 10, limit("other"))
}

// TestReplicasShareTheAppBudget: two replicas split six tenants of one app; each replica's app-wide
// window is half the app's limit, so that together they stay within it.
func TestReplicasShareTheAppBudget(t *testing.T) {
	dsn := pgtest.DSN(t)
	prefix := pgtest.TablePrefix(t, dsn, "o365share")
	const tenants = 6
	var specs []graphsim.Tenant
	var ids []int
	for n := 1; n <= tenants; n++ {
		specs = append(specs, graphsimtest.Tenant(n, map[string]graphsim.DatasetSpec{"signins": {Count: 50, Span: time.Hour}}))
		ids = append(ids, n)
	}
	sim := graphsimtest.Start(t, graphsim.Config{Seed: 74, Tenants: specs})
	cfg := simConfig(sim, ids...)
	cfg.RateLimits = map[string]RateLimit{"reports": {TenantRequests: 5, AppRequests: 12, Window: time.Second}}
	for i := range cfg.Tenants {
		cfg.Tenants[i].Datasets = map[string]DatasetConfig{"signins": {Kinds: []string{"interactive"}}}
	}
	a := startReplica(t, "replica-a", dsn, prefix, cfg)
	defer a.stop(t)
	b := startReplica(t, "replica-b", dsn, prefix, cfg)
	bRunning := true
	defer func() {
		if bRunning {
			b.stop(t)
		}
	}()
	appWindow := func(rp *replica) int {
		tk := rp.recv.tasks[0]
		w, ok := rp.recv.shares.budget.Limit(tk.budgetKeys[1])
		require.True(t, ok)
		return w.Requests
	}
	require.Eventually(t, func() bool {
		return polling(a) == 3 && polling(b) == 3 && appWindow(a) == 6 && appWindow(b) == 6
	}, 30*time.Second, 10*time.Millisecond, "each replica polls 3 tenants with 6 of the app's 12 requests per window")

	b.stop(t)
	bRunning = false
	require.Eventually(t, func() bool { return polling(a) == 6 && appWindow(a) == 12 }, 30*time.Second, 10*time.Millisecond,
		"a takes every tenant and the whole window")
}
