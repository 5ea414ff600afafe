package graphsim

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// rateLimiter enforces sliding-window request limits per app per tenant and per app across tenants,
// and remembers each tenant's Retry-After so that early requests are recorded as violations.
type rateLimiter struct {
	mu           sync.Mutex
	arrivals     map[string][]time.Time // key → arrival times inside the window, oldest first
	blockedUntil map[string]time.Time   // tenant|family → end of the last Retry-After given
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{arrivals: map[string][]time.Time{}, blockedUntil: map[string]time.Time{}}
}

// admit records a request arriving at now and reports whether it is throttled (with the Retry-After to
// send) and whether it violated an earlier Retry-After. Throttled requests count against the limit, as
// Graph documents, so Retry-After is the time until a slot frees with them counted.
func (l *rateLimiter) admit(cfg RateLimits, tenant, app, family string, now time.Time) (time.Duration, bool, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	violation := now.Before(l.blockedUntil[tenant+"|"+family])
	limit, ok := cfg.Families[family]
	if !cfg.Enforce || !ok {
		return 0, false, violation
	}
	var retryAfter time.Duration
	tenantKey := tenant + "|" + app + "|" + family
	if limit.TenantWide {
		tenantKey = tenant + "|*|" + family
	}
	for _, w := range []struct {
		key string
		max int
	}{{tenantKey, limit.TenantRequests}, {app + "|" + family, limit.AppRequests}} {
		if w.max <= 0 {
			continue
		}
		times := l.arrivals[w.key]
		cut := 0
		for cut < len(times) && !times[cut].After(now.Add(-limit.Window)) {
			cut++
		}
		times = times[cut:]
		// Requests reach the limiter in a different order than they arrived (a handler can be held up
		// between its arrival and here, e.g. verifying the token): each is counted at its arrival, in
		// order, and only the arrivals up to its own count in its window.
		at := sort.Search(len(times), func(i int) bool { return times[i].After(now) })
		times = slices.Insert(times, at, now)
		l.arrivals[w.key] = times
		if inWindow := at + 1; inWindow > w.max {
			// Free when at most max-1 earlier arrivals remain inside the window.
			free := times[inWindow-w.max].Add(limit.Window)
			retryAfter = max(retryAfter, free.Sub(now))
		}
	}
	if retryAfter > 0 {
		// Round up: a client that waits exactly the advertised time must find the slot free.
		retryAfter = (retryAfter + time.Millisecond - 1).Truncate(time.Millisecond)
		if !limit.OmitRetryAfter { // without a Retry-After there is nothing for a client to violate
			l.blockedUntil[tenant+"|"+family] = now.Add(retryAfter)
		}
		return retryAfter, true, violation
	}
	return 0, false, violation
}

// block records a Retry-After given to a tenant by an injected fault.
func (l *rateLimiter) block(tenant, family string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.blockedUntil[tenant+"|"+family]) {
		l.blockedUntil[tenant+"|"+family] = until
	}
}
