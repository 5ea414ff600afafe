package o365receiver

import (
	"context"
	"sync"
)

// fetchInOrder fetches items 0…n-1 concurrently and emits them in order: at most limit items are being
// fetched or wait, fetched, for their turn (which bounds the memory held), and emit sees item i only
// after every item before it. The first emit error, or ctx ending, stops it: no further fetch starts,
// those under way are cancelled, and fetchInOrder returns once they have returned.
func fetchInOrder[T any](ctx context.Context, n, limit int, fetch func(ctx context.Context, i int) T, emit func(i int, v T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make([]chan T, n)
	for i := range results {
		results[i] = make(chan T, 1) // a fetch never waits for its emit
	}
	slots := make(chan struct{}, max(limit, 1))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] <- fetch(ctx, i)
			}()
		}
	}()
	for i := range n {
		var v T
		select {
		case v = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-slots
		if err := emit(i, v); err != nil {
			return err
		}
	}
	return nil
}
