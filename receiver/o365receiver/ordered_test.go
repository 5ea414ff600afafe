package o365receiver

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gatedFetches is a fetch function whose calls wait for the test to release them, and counts what is
// fetching or fetched but not yet emitted.
type gatedFetches struct {
	mu               sync.Mutex
	started, emitted int
	maxHeld          int // largest started − emitted seen when a fetch started
	running          int // fetch calls not returned
	release          []chan struct{}
	starts           chan int
}

func newGatedFetches(n int) *gatedFetches {
	g := &gatedFetches{starts: make(chan int, n)}
	for range n {
		g.release = append(g.release, make(chan struct{}))
	}
	return g
}

func (g *gatedFetches) fetch(ctx context.Context, i int) int {
	g.mu.Lock()
	g.started++
	g.running++
	g.maxHeld = max(g.maxHeld, g.started-g.emitted)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	g.starts <- i
	select {
	case <-g.release[i]:
		return i * 10
	case <-ctx.Done():
		return -1
	}
}

// run runs fetchInOrder over g's fetches in the background, counting each emit before calling emit, and
// returns its result's channel.
func (g *gatedFetches) run(n, limit int, emit func(i, v int) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- fetchInOrder(context.Background(), n, limit, g.fetch, func(i, v int) error {
			g.mu.Lock()
			g.emitted++
			g.mu.Unlock()
			return emit(i, v)
		})
	}()
	return done
}

func (g *gatedFetches) waitStart(t *testing.T) int {
	t.Helper()
	select {
	case i := <-g.starts:
		return i
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch started")
		return -1
	}
}

// Items are fetched `limit` at a time — fetching, or fetched and waiting for an earlier item — and
// emitted in order whatever order their fetches finish in.
func TestFetchInOrderBoundsAndOrders(t *testing.T) {
	const n, limit = 10, 4
	g := newGatedFetches(n)
	var got []int
	done := g.run(n, limit, func(_, v int) error {
		got = append(got, v)
		return nil
	})
	var first []int
	for range limit {
		first = append(first, g.waitStart(t))
	}
	require.ElementsMatch(t, []int{0, 1, 2, 3}, first, "the first items start together")
	for _, i := range []int{3, 2, 1} { // done before item 0: they wait, holding their places
		close(g.release[i])
	}
	select {
	case i := <-g.starts:
		t.Fatalf("item %d started while four items were held", i)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.release[0])
	for i := limit; i < n; i++ {
		g.waitStart(t)
		close(g.release[i])
	}
	require.NoError(t, <-done)
	require.Equal(t, []int{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}, got)
	require.LessOrEqual(t, g.maxHeld, limit)
}

// The first emit error stops the work: it is returned, no item after the held ones starts, and the
// fetches under way are cancelled and have returned when fetchInOrder does.
func TestFetchInOrderStopsAtTheFirstError(t *testing.T) {
	const n, limit = 20, 4
	g := newGatedFetches(n)
	boom := errors.New("consumer refused")
	var emitted []int
	done := g.run(n, limit, func(i, _ int) error {
		if i == 2 {
			return boom
		}
		emitted = append(emitted, i)
		return nil
	})
	for range limit {
		g.waitStart(t)
	}
	for i := range 3 {
		close(g.release[i])
	}
	require.ErrorIs(t, <-done, boom)
	require.Equal(t, []int{0, 1}, emitted)
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Zero(t, g.running, "every fetch returned")
	require.LessOrEqual(t, g.started, 3+limit, "nothing beyond the held items started")
}
