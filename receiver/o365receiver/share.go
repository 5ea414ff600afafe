package o365receiver

import (
	"sync"
	"time"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
)

// appShares divides Graph's app-wide budgets (per app × throttling family, across tenants) between
// the collector replicas that split the tenants by lease: each replica may send its share of the
// app's window, limit × tenants it holds / tenants configured for the app (at least 1 request), so
// that together they send no more than the app may.
//
// A share shrinks at once and grows only one window (plus the margin) after the growth was first
// wanted: the tenants a replica takes over may just have been given up by another replica (or by this
// replica's previous process), whose requests still count in Graph's window. That holds at start-up
// too: a replica starts at the minimum share (start) and grows into its tenants a window later, since
// a tenant found free in its first pass may have been released a moment before by a peer that is
// still inside the window.
type appShares struct {
	budget *graph.Budget
	margin time.Duration

	mu   sync.Mutex
	apps map[string]*appShare // by budget key
}

// appShare is one app-wide window and the replica's share of it.
type appShare struct {
	limit   graph.Window
	tenants map[string]bool // tenant ids configured for the app
	current int             // requests per window this replica may send now
	want    int             // a larger share, pending since wantedAt
	wanted  time.Time
}

func newAppShares(b *graph.Budget, margin time.Duration) *appShares {
	return &appShares{budget: b, margin: margin, apps: map[string]*appShare{}}
}

// add records that tenantID uses the app-wide window key of limit.
func (a *appShares) add(key string, limit graph.Window, tenantID string) {
	if limit.Requests <= 0 { // no app-wide limit to share
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	app := a.apps[key]
	if app == nil {
		app = &appShare{limit: limit, tenants: map[string]bool{}, current: limit.Requests} // no replicas: all of it
		a.apps[key] = app
	}
	app.tenants[tenantID] = true
}

// start sets every app-wide window to the minimum share, before a replica polls any tenant: divide
// then grows it by the tenants the replica holds.
func (a *appShares) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, app := range a.apps {
		app.current, app.want = 1, 0
		a.budget.Define(key, graph.Window{Requests: app.current, Per: app.limit.Per})
	}
}

// divide sets every app-wide window to this replica's share, held being the tenant ids it polls.
func (a *appShares) divide(held map[string]bool, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, app := range a.apps {
		n := 0
		for id := range app.tenants {
			if held[id] {
				n++
			}
		}
		share := max(1, app.limit.Requests*n/len(app.tenants))
		switch {
		case share <= app.current:
			app.current, app.want = share, 0
		case share != app.want:
			app.want, app.wanted = share, now
		case !now.Before(app.wanted.Add(app.limit.Per + a.margin)):
			app.current, app.want = share, 0
		}
		a.budget.Define(key, graph.Window{Requests: app.current, Per: app.limit.Per})
	}
}
