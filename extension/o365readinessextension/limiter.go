package o365readinessextension

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterSet is one token bucket (golang.org/x/time/rate) per key, a tenant: up to burst requests at
// once, refilled at burst per period. Keys are configured tenants, so the set stays bounded.
type limiterSet struct {
	burst int
	every rate.Limit
	now   func() time.Time

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func newLimiterSet(burst int, period time.Duration, now func() time.Time) *limiterSet {
	return &limiterSet{burst: burst, every: rate.Every(period / time.Duration(burst)), now: now, limiters: map[string]*rate.Limiter{}}
}

// allow takes a token for key; when none is left it returns false and how long until one is.
func (l *limiterSet) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	lim := l.limiters[key]
	if lim == nil {
		lim = rate.NewLimiter(l.every, l.burst)
		l.limiters[key] = lim
	}
	l.mu.Unlock()
	now := l.now()
	r := lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return false, wait
	}
	return true, 0
}
