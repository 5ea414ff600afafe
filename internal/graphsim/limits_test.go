package graphsim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRateLimiterWindows(t *testing.T) {
	t0 := time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)
	ms := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }
	type step struct {
		tenant, app string
		at          time.Time
		throttled   bool
		retryAfter  time.Duration
		violation   bool
	}
	cases := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{
			name:  "3 per 500 ms per app per tenant; throttled requests count",
			limit: Limit{TenantRequests: 3, Window: 500 * time.Millisecond},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"a", "x", ms(10), false, 0, false},
				{"a", "x", ms(20), false, 0, false},
				// another app of the same tenant has its own window
				{"a", "y", ms(25), false, 0, false},
				// 4 inside the window: free once the 2nd (10 ms) leaves it, the 4th itself counting
				{"a", "x", ms(30), true, 480 * time.Millisecond, false},
				// early: a violation, throttled again, and the window now holds 0,10,20,30,100
				{"a", "x", ms(100), true, 420 * time.Millisecond, true},
				// exactly when told: 0, 10 and 20 have left the window
				{"a", "x", ms(520), false, 0, false},
				{"a", "x", ms(521), true, 79 * time.Millisecond, false},
			},
		},
		{
			name:  "with a limit of 1 a throttled request restarts the whole wait",
			limit: Limit{TenantRequests: 1, Window: time.Second},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"a", "x", ms(0.4), true, 1000 * time.Millisecond, false},
				{"a", "x", ms(1000.4), false, 0, false},
			},
		},
		{
			name:  "Retry-After is rounded up: a request at the advertised time is admitted",
			limit: Limit{TenantRequests: 2, Window: 300 * time.Millisecond},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"a", "x", ms(0.3), false, 0, false},
				{"a", "x", ms(1.2), true, 300 * time.Millisecond, false}, // 299.1 ms remain
				{"a", "x", ms(1.2 + 300), false, 0, false},
			},
		},
		{
			name:  "app-wide limit across tenants",
			limit: Limit{TenantRequests: 100, AppRequests: 3, Window: 10 * time.Second},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"b", "x", ms(1), false, 0, false},
				{"b", "y", ms(1.5), false, 0, false}, // another app: not in x's app-wide window
				{"a", "x", ms(2), false, 0, false},
				{"b", "x", ms(3), true, 10*time.Second - 2*time.Millisecond, false},
				// tenant a was never told to wait: no violation, but the app window is full
				{"a", "x", ms(5), true, 10*time.Second - 3*time.Millisecond, false},
				// tenant b was told to wait until 10.001 s
				{"b", "x", ms(6), true, 10*time.Second - 3*time.Millisecond, true},
			},
		},
		{
			name:  "tenant-wide: every app of the tenant shares the window (identity protection)",
			limit: Limit{TenantRequests: 1, Window: time.Second, OmitRetryAfter: true, TenantWide: true},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"a", "y", ms(1), true, time.Second - 0, false}, // x's request holds the slot; y's counts too
				{"b", "y", ms(2), false, 0, false},              // another tenant has its own
				{"a", "x", ms(1001), false, 0, false},
			},
		},
		{
			// A handler held up after its arrival reaches the limiter after later arrivals: it is
			// counted at its arrival, and the later ones are not in its window.
			name:  "counted at arrival, whatever the order requests reach the limiter",
			limit: Limit{TenantRequests: 2, Window: time.Second},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"a", "x", ms(300), false, 0, false},                      // reaches the limiter before the one of 200 ms
				{"a", "x", ms(200), false, 0, false},                      // 0 and 200 in its window: 2, not 3
				{"a", "x", ms(1250), false, 0, false},                     // 300 and itself
				{"a", "x", ms(1260), true, 990 * time.Millisecond, false}, // throttled ones count: free when 1250 leaves
			},
		},
		{
			name:  "without Retry-After nothing is a violation",
			limit: Limit{TenantRequests: 1, Window: time.Second, OmitRetryAfter: true},
			steps: []step{
				{"a", "x", ms(0), false, 0, false},
				{"a", "x", ms(1), true, time.Second, false},
				{"a", "x", ms(2), true, time.Second, false},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newRateLimiter()
			cfg := RateLimits{Enforce: true, Families: map[string]Limit{"reports": c.limit}}
			for i, s := range c.steps {
				ra, throttled, violation := l.admit(cfg, s.tenant, s.app, "reports", s.at)
				assert.Equal(t, s.throttled, throttled, "step %d throttled", i)
				assert.Equal(t, s.retryAfter, ra, "step %d Retry-After", i)
				assert.Equal(t, s.violation, violation, "step %d violation", i)
			}
		})
	}
}

func TestRateLimiterUnenforced(t *testing.T) {
	t0 := time.Date(2024, 3, 13, 12, 0, 0, 0, time.UTC)
	l := newRateLimiter()
	limits := map[string]Limit{"reports": {TenantRequests: 1, Window: time.Hour}}

	// Not enforced, or a family without a limit: never throttled...
	for i := range 5 {
		_, throttled, _ := l.admit(RateLimits{Enforce: false, Families: limits}, "a", "x", "reports", t0.Add(time.Duration(i)))
		assert.False(t, throttled)
		_, throttled, _ = l.admit(RateLimits{Enforce: true, Families: limits}, "a", "x", "security", t0.Add(time.Duration(i)))
		assert.False(t, throttled)
	}
	// ...but a Retry-After given by an injected fault is still watched, per tenant and family.
	l.block("a", "reports", t0.Add(time.Second))
	l.block("a", "reports", t0.Add(time.Millisecond)) // an earlier end does not shorten it
	for _, c := range []struct {
		tenant, family string
		at             time.Time
		want           bool
	}{
		{"a", "reports", t0.Add(999 * time.Millisecond), true},
		{"a", "reports", t0.Add(time.Second), false},
		{"b", "reports", t0, false},
		{"a", "security", t0, false},
	} {
		_, _, violation := l.admit(RateLimits{Families: limits}, c.tenant, "x", c.family, c.at)
		assert.Equal(t, c.want, violation, "%s %s at %s", c.tenant, c.family, c.at)
	}
}
