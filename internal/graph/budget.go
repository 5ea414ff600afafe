package graph

import (
	"context"
	"sync"
	"time"
)

// Window is a sliding-window request limit: at most Requests in any interval of length Per.
type Window struct {
	Requests int
	Per      time.Duration
}

// Budget enforces Graph's request limits. Each request acquires a slot in one or more windows at once
// (e.g. per app per tenant and per app across tenants), so it is recorded at its real send time in all
// of them and no window is ever overrun. Windows are identified by key; a Retry-After pauses a key.
type Budget struct {
	// Margin is added to every window so that network jitter between our send times and Graph's
	// arrival times cannot push a request into a window Graph still counts as full.
	Margin time.Duration
	// MaxMargin bounds how far a window's margin grows after Graph answered 429 to a request the
	// window had room for (Overrun): the jitter was larger than the margin. A window's margin is also at
	// most half its length. At or below Margin the margin stays fixed.
	MaxMargin time.Duration

	mu      sync.Mutex
	windows map[string]*window
	now     func() time.Time
	// waiting holds the requests waiting for a slot, in arrival order: among requests with the same
	// first key (the tenant's window), the earliest goes first, so a catch-up's earliest page leaves
	// first instead of whichever timer fires first. Only the first key orders: ordering on a key shared
	// by every tenant (the app's window) would let one tenant's pause hold up all the others.
	waiting []*waiter
}

type waiter struct {
	keys []string
	turn chan struct{} // signalled when a waiter ahead of it leaves
}

type window struct {
	limit       Window
	sent        []time.Time // send times inside the window, oldest first
	pausedUntil time.Time
	margin      time.Duration // Margin, grown by overruns and shrinking back while none come
	marginAt    time.Time     // when margin last changed
}

// Growth and decay of a window's margin: doubled (at least marginStep more) at an overrun, at most once
// per window length; a quarter
// less after every marginQuietWindows windows without one, down to Margin again.
const (
	marginStep         = 50 * time.Millisecond
	marginQuietWindows = 10
)

// NewBudget returns an empty budget with the given safety margin.
func NewBudget(margin time.Duration) *Budget {
	return &Budget{Margin: margin, windows: map[string]*window{}, now: time.Now}
}

// Define sets (or replaces) the limit of a key. A key with Requests <= 0 is unlimited.
func (b *Budget) Define(key string, limit Window) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w, ok := b.windows[key]; ok {
		w.limit = limit
		return
	}
	b.windows[key] = &window{limit: limit}
}

// Limit returns the limit of a key, and whether the key is defined.
func (b *Budget) Limit(key string) (Window, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.windows[key]
	if !ok {
		return Window{}, false
	}
	return w.limit, true
}

// Acquire blocks until every key has a free slot and no pause, then records the send in all of them.
// Waiters with the same first key are served in arrival order.
func (b *Budget) Acquire(ctx context.Context, keys ...string) error {
	_, err := b.admit(ctx, keys...)
	return err
}

// admit is Acquire, returning the instant the request was admitted: read under the budget's lock, so it
// is ordered exactly with every Pause.
func (b *Budget) admit(ctx context.Context, keys ...string) (time.Time, error) {
	w := &waiter{keys: keys, turn: make(chan struct{}, 1)}
	b.mu.Lock()
	b.waiting = append(b.waiting, w)
	b.mu.Unlock()
	defer b.leave(w)
	for {
		at, wait, first := b.tryAcquireFor(w)
		if wait <= 0 {
			return at, nil
		}
		var timer *time.Timer
		var timeout <-chan time.Time
		if first { // only the first waiter of its queue watches the clock; the others wait their turn
			timer = time.NewTimer(wait)
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return time.Time{}, ctx.Err()
		case <-timeout:
		case <-w.turn:
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// leave removes w and tells the next waiter with the same first key that its turn may have come.
func (b *Budget) leave(w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.waiting {
		if x == w {
			b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
			break
		}
	}
	for _, x := range b.waiting {
		if sameQueue(x, w) {
			select {
			case x.turn <- struct{}{}:
			default:
			}
			return
		}
	}
}

// tryAcquireFor takes a slot for w, at the returned instant, if it is the earliest waiter of its queue
// (then first is true).
func (b *Budget) tryAcquireFor(w *waiter) (at time.Time, wait time.Duration, first bool) {
	b.mu.Lock()
	for _, x := range b.waiting {
		if x == w {
			break
		}
		if sameQueue(x, w) {
			b.mu.Unlock()
			return time.Time{}, time.Hour, false // woken by leave when the earlier waiter is served
		}
	}
	b.mu.Unlock()
	at, wait = b.tryAcquireAt(w.keys)
	return at, wait, true
}

// sameQueue: waiters are ordered by their first key.
func sameQueue(a, b *waiter) bool {
	return len(a.keys) > 0 && len(b.keys) > 0 && a.keys[0] == b.keys[0]
}

// tryAcquire records a send and returns 0, or returns how long to wait before trying again.
func (b *Budget) tryAcquire(keys []string) time.Duration {
	_, wait := b.tryAcquireAt(keys)
	return wait
}

// tryAcquireAt is tryAcquire, also returning the instant it looked at the windows.
func (b *Budget) tryAcquireAt(keys []string) (time.Time, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var wait time.Duration
	for _, k := range keys {
		w := b.windows[k]
		if w == nil {
			continue
		}
		if d := w.pausedUntil.Sub(now); d > wait {
			wait = d
		}
		if w.limit.Requests <= 0 {
			continue
		}
		span := w.limit.Per + b.marginOf(w, now)
		cut := 0
		for cut < len(w.sent) && !w.sent[cut].After(now.Add(-span)) {
			cut++
		}
		w.sent = w.sent[cut:]
		if len(w.sent) >= w.limit.Requests {
			// The oldest send that must leave the window before one more fits.
			if d := w.sent[len(w.sent)-w.limit.Requests].Add(span).Sub(now); d > wait {
				wait = d
			}
		}
	}
	if wait > 0 {
		return now, max(wait, time.Millisecond)
	}
	for _, k := range keys {
		if w := b.windows[k]; w != nil && w.limit.Requests > 0 {
			w.sent = append(w.sent, now)
		}
	}
	return now, 0
}

// marginOf is the window's margin at now, shrunk back toward Margin if it has been quiet.
func (b *Budget) marginOf(w *window, now time.Time) time.Duration {
	if w.margin <= b.Margin {
		w.margin = b.Margin
		return w.margin
	}
	if quiet := marginQuietWindows * w.limit.Per; now.Sub(w.marginAt) >= quiet {
		w.margin, w.marginAt = max(b.Margin, w.margin*3/4), now
	}
	return w.margin
}

// Overrun widens the margin of every window of keys after Graph answered 429 to a request they had
// admitted: Graph counts arrivals, and more than the margin must have come between this client's send
// times and Graph's arrival times (a queue, a retransmission, a busy server) — or another client of
// the app registration sent too. It returns the widest margin now in force among keys, and whether
// one widened.
func (b *Budget) Overrun(keys ...string) (widest time.Duration, widened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, k := range keys {
		w := b.windows[k]
		if w == nil || w.limit.Requests <= 0 {
			continue
		}
		m := b.marginOf(w, now)
		// One jitter event draws a 429 for every request it held up: the margin grows once per window.
		recent := m > b.Margin && now.Sub(w.marginAt) < w.limit.Per
		if bound := min(b.MaxMargin, w.limit.Per/2); m < bound && !recent {
			w.margin, w.marginAt, widened = min(bound, max(2*m, m+marginStep)), now, true
		}
		widest = max(widest, w.margin)
	}
	return widest, widened
}

// Sent moves a request admitted at admitted to the instant it was written to the connection, in every
// window of keys: the time between the two (connection set-up, TLS, a busy scheduler) is jitter that
// would otherwise bring requests closer together at Graph than the windows counted them. Every send
// time a window holds is no later than now, so the moved one goes last and the order stays.
func (b *Budget) Sent(admitted time.Time, keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, k := range keys {
		w := b.windows[k]
		if w == nil {
			continue
		}
		for i := len(w.sent) - 1; i >= 0; i-- {
			if w.sent[i].Equal(admitted) {
				copy(w.sent[i:], w.sent[i+1:])
				w.sent[len(w.sent)-1] = now
				break
			}
		}
	}
}

type admittedKey struct{}

// AdmittedAt is the instant the client's request budget admitted the Graph request whose http.Request
// context ctx is. An HTTP middleware can so tell the requests the client decided to send before a
// Retry-After pause took effect (in flight) from any it admitted after one (none, by construction).
func AdmittedAt(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(admittedKey{}).(time.Time)
	return t, ok
}

// Pause blocks every request that needs key until the given time (a Retry-After).
func (b *Budget) Pause(key string, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.windows[key]
	if w == nil {
		w = &window{}
		b.windows[key] = w
	}
	if until.After(w.pausedUntil) {
		w.pausedUntil = until
	}
}

// PausedUntil reports the end of a key's current pause (zero if none).
func (b *Budget) PausedUntil(key string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.windows[key]; w != nil && w.pausedUntil.After(b.now()) {
		return w.pausedUntil
	}
	return time.Time{}
}
