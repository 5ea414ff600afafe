package graph

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock advances only when asked, so budget decisions are checked without real waiting.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestBudgetNeverOverrunsAnyWindow(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	b := NewBudget(100 * time.Millisecond)
	b.now = clock.Now
	b.Define("tenant", Window{Requests: 5, Per: 10 * time.Second})
	b.Define("app", Window{Requests: 7, Per: 10 * time.Second})

	var sends []time.Time
	for len(sends) < 40 {
		if wait := b.tryAcquire([]string{"tenant", "app"}); wait > 0 {
			clock.Advance(wait)
			continue
		}
		sends = append(sends, clock.Now())
		clock.Advance(10 * time.Millisecond)
	}
	for i := range sends {
		n := 0
		for j := i; j < len(sends) && sends[j].Sub(sends[i]) < 10*time.Second+100*time.Millisecond; j++ {
			n++
		}
		require.LessOrEqual(t, n, 5, "window starting at send %d holds %d requests", i, n)
	}
	// The budget is used, not just respected: 40 requests need 7 full windows, not many more.
	require.Less(t, sends[len(sends)-1].Sub(sends[0]), 8*(10*time.Second+100*time.Millisecond))
}

func TestBudgetAppWindowIsShared(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	b := NewBudget(0)
	b.now = clock.Now
	b.Define("t1", Window{Requests: 5, Per: time.Second})
	b.Define("t2", Window{Requests: 5, Per: time.Second})
	b.Define("app", Window{Requests: 6, Per: time.Second})
	admitted := 0
	for i := range 10 {
		tenant := []string{"t1", "t2"}[i%2]
		if b.tryAcquire([]string{tenant, "app"}) == 0 {
			admitted++
		}
	}
	require.Equal(t, 6, admitted, "two tenants together get the app's 6, not 5+5")
}

func TestBudgetPauseBlocksUntilRetryAfter(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	b := NewBudget(0)
	b.now = clock.Now
	b.Define("tenant", Window{Requests: 100, Per: time.Second})
	b.Pause("tenant", clock.Now().Add(2*time.Second))
	require.Equal(t, 2*time.Second, b.tryAcquire([]string{"tenant"}))
	clock.Advance(1999 * time.Millisecond)
	require.Equal(t, time.Millisecond, b.tryAcquire([]string{"tenant"}))
	clock.Advance(time.Millisecond)
	require.Zero(t, b.tryAcquire([]string{"tenant"}))
}

func TestBudgetAcquireHonoursContext(t *testing.T) {
	b := NewBudget(0)
	b.Pause("k", time.Now().Add(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, b.Acquire(ctx, "k"), context.Canceled)
}

// TestBudgetServesWaitersInOrder: requests of one tenant leave in the order they asked, whatever their
// timers do; another tenant sharing only the app's window is not held up by them.
func TestBudgetServesWaitersInOrder(t *testing.T) {
	b := NewBudget(0)
	b.Define("tenant-a", Window{Requests: 1, Per: 200 * time.Millisecond})
	b.Define("tenant-b", Window{Requests: 100, Per: time.Second})
	b.Define("app", Window{Requests: 100, Per: time.Second})
	require.NoError(t, b.Acquire(context.Background(), "tenant-a", "app")) // tenant-a's window is now full

	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			require.NoError(t, b.Acquire(context.Background(), "tenant-a", "app"))
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
		time.Sleep(10 * time.Millisecond) // arrival order 0, 1, 2, 3, 4
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond) // tenant-a's queue needs 800 ms more
	defer cancel()
	require.NoError(t, b.Acquire(ctx, "tenant-b", "app"), "another tenant does not queue behind tenant-a")
	wg.Wait()
	require.Equal(t, []int{0, 1, 2, 3, 4}, order)
}

// A request counts from when it was written to the connection: the delay after its admission (a TLS
// handshake, a busy scheduler) must not bring the next request closer to it at Graph than the window.
func TestBudgetCountsARequestFromItsSend(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	b := NewBudget(0)
	b.now = clock.Now
	b.Define("tenant", Window{Requests: 2, Per: time.Second})
	first, wait := b.tryAcquireAt([]string{"tenant"})
	require.Zero(t, wait)
	clock.Advance(100 * time.Millisecond)
	second, wait := b.tryAcquireAt([]string{"tenant"})
	require.Zero(t, wait)
	clock.Advance(300 * time.Millisecond) // the first request is written 400 ms after its admission
	b.Sent(first, "tenant")
	b.Sent(first, "tenant") // a second write of it (a redirect) moves nothing more
	clock.Advance(200 * time.Millisecond)
	b.Sent(second, "tenant")
	// At admission + 1 s the first would have left the window; written at +400 ms, it leaves at +1.4 s.
	clock.Advance(400 * time.Millisecond)
	_, wait = b.tryAcquireAt([]string{"tenant"})
	require.Equal(t, 400*time.Millisecond, wait)
}

// A 429 to a request the windows had room for shows jitter beyond the margin: the margin of its
// windows doubles (once per window length), up to MaxMargin and half the window, and shrinks back after
// quiet windows.
func TestBudgetMarginWidensAfterAnOverrun(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	b := NewBudget(100 * time.Millisecond)
	b.MaxMargin = 2 * time.Second
	b.now = clock.Now
	b.Define("tenant", Window{Requests: 1, Per: 10 * time.Second})
	b.Define("short", Window{Requests: 1, Per: time.Second})
	b.Define("unlimited", Window{Per: time.Second})
	waitAfterOne := func(key string) time.Duration {
		_, wait := b.tryAcquireAt([]string{key})
		require.Zero(t, wait)
		_, wait = b.tryAcquireAt([]string{key})
		return wait
	}
	require.Equal(t, 10*time.Second+100*time.Millisecond, waitAfterOne("tenant"))

	clock.Advance(time.Minute)
	m, widened := b.Overrun("tenant", "unlimited")
	require.True(t, widened)
	require.Equal(t, 200*time.Millisecond, m)
	_, widened = b.Overrun("tenant")
	require.False(t, widened, "the 429s of one jitter event widen once per window")
	for range 4 {
		clock.Advance(10 * time.Second)
		b.Overrun("tenant")
	}
	m, widened = b.Overrun("tenant")
	require.False(t, widened, "at MaxMargin")
	require.Equal(t, 2*time.Second, m)
	clock.Advance(15 * time.Second) // the window is empty again, not yet quiet for ten windows
	require.Equal(t, 12*time.Second, waitAfterOne("tenant"))

	for range 5 {
		b.Overrun("short")
		clock.Advance(time.Second)
	}
	clock.Advance(time.Second)
	require.Equal(t, 1500*time.Millisecond, waitAfterOne("short"), "at most half the window")

	// Quiet for ten windows: a quarter less; and again, down to the configured margin.
	clock.Advance(100 * time.Second)
	require.Equal(t, 11500*time.Millisecond, waitAfterOne("tenant"))
	for range 20 {
		clock.Advance(100 * time.Second)
		b.tryAcquireAt([]string{"tenant"})
	}
	clock.Advance(time.Minute)
	require.Equal(t, 10*time.Second+100*time.Millisecond, waitAfterOne("tenant"))

	b.MaxMargin = 0
	_, widened = b.Overrun("tenant")
	require.False(t, widened, "MaxMargin at or below Margin: fixed")
}
