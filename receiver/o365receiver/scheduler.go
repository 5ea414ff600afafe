package o365receiver

import (
	"container/heap"
	"context"
	"hash/fnv"
	"sync"
	"time"
)

// scheduler runs the receiver's streams: one heap of runs by the time their next poll is due, and at
// most `poll_workers` polls at once, each in a goroutine that ends with the poll. A collector of
// 10 000 tenants so holds a goroutine per poll in progress, not one per stream.
//
// A poll holds its worker while it waits for the request budget or for the next consumer. Streams
// whose budget is paused (a Retry-After, kept or restored) are not dispatched until the pause ends, so
// throttled tenants do not hold workers that others could use; what remains able to block a worker is
// a full budget window, shared by every stream of its family, and a next consumer that pushes back on
// the whole pipeline.
type scheduler struct {
	workers chan struct{} // one token per poll in progress
	spread  bool          // spread_first_polls
	// ahead bounds the pages event streams catching up fetch ahead of the one they emit, across all
	// polls: each holds one token until emitted. A poll without a token reads one page at a time, so
	// tenants catching up together share the fan-out instead of multiplying the pages held in memory.
	ahead chan struct{}

	mu   sync.Mutex
	due  dueHeap
	seq  uint64
	wake chan struct{} // the head of due changed
}

// run is one start of a task, until its context ends. Its fields other than ctx and done are the
// scheduler's, guarded by its mu.
type run struct {
	tk      *task
	ctx     context.Context
	done    chan struct{} // closed once the run has stopped and no poll of it is in progress
	began   time.Time
	at      time.Time // when the next poll is due; zero: at once, ahead of the others (a trigger)
	seq     uint64    // FIFO among runs due at the same time
	index   int       // in due; -1 when not queued
	first   bool      // nothing done yet: restore the pause, then place the first poll
	running bool
	stopped bool
}

func newScheduler(cfg *Config) *scheduler {
	return &scheduler{workers: make(chan struct{}, cfg.PollWorkers), spread: cfg.SpreadFirstPolls,
		ahead: make(chan struct{}, aheadPerStream*cfg.MaxConcurrentRequests), wake: make(chan struct{}, 1)}
}

// aheadPerStream sizes the receiver's pages fetched ahead: as many as this many streams catching up at
// full width (max_concurrent_requests each) hold.
const aheadPerStream = 4

// takeAhead takes a token for a page fetched ahead, if one is free.
func (s *scheduler) takeAhead() bool {
	select {
	case s.ahead <- struct{}{}:
		return true
	default:
		return false
	}
}

// returnAhead gives back n tokens of takeAhead.
func (s *scheduler) returnAhead(n int) {
	for range n {
		<-s.ahead
	}
}

// start queues a run of tk until ctx ends; the channel is closed once the run has stopped and its poll
// in progress, if any, has returned.
func (s *scheduler) start(ctx context.Context, tk *task) <-chan struct{} {
	rn := &run{tk: tk, ctx: ctx, done: make(chan struct{}), began: time.Now(), index: -1, first: true}
	s.mu.Lock()
	tk.current = rn
	s.push(rn, rn.began)
	s.mu.Unlock()
	context.AfterFunc(ctx, func() { s.stop(rn) })
	return rn.done
}

// stop takes a run out of the heap; a poll in progress finishes first (finish closes done then).
func (s *scheduler) stop(rn *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rn.stopped {
		return
	}
	rn.stopped = true
	if rn.index >= 0 {
		heap.Remove(&s.due, rn.index)
	}
	if !rn.running {
		close(rn.done)
	}
}

// trigger makes tk's next poll due at once, ahead of the queue; a poll in progress is followed by
// another at once. It reports false when a trigger is pending already. Before the task is started
// (a standby tenant), the trigger waits for the start.
func (s *scheduler) trigger(tk *task) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tk.triggered {
		return false
	}
	tk.triggered = true
	if rn := tk.current; rn != nil && rn.index >= 0 {
		rn.at = time.Time{}
		heap.Fix(&s.due, rn.index)
		s.signal()
	}
	return true
}

// run dispatches due runs to workers until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	for {
		select {
		case s.workers <- struct{}{}:
		case <-ctx.Done():
			return
		}
		rn := s.next(ctx)
		if rn == nil {
			return
		}
		go s.work(rn)
	}
}

// next waits for a run whose poll is due and whose budget is not paused, and marks it running.
func (s *scheduler) next(ctx context.Context) *run {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Duration(-1)
		s.mu.Lock()
		for len(s.due) > 0 {
			rn, now := s.due[0], time.Now()
			if rn.at.After(now) {
				wait = rn.at.Sub(now)
				break
			}
			if until := rn.tk.pausedUntil(); !rn.first && until.After(now) {
				rn.at = until // not before the pause ends: a worker would only wait in the budget
				heap.Fix(&s.due, 0)
				continue
			}
			heap.Pop(&s.due)
			rn.running = true
			if !rn.first {
				rn.tk.triggered = false // this poll answers it
			}
			s.mu.Unlock()
			return rn
		}
		s.mu.Unlock()
		var fire <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-s.wake:
		case <-fire:
		case <-ctx.Done():
			return nil
		}
		timer.Stop()
	}
}

// work polls rn once (the first time: restores its pause and places its first poll) and queues its
// next poll.
func (s *scheduler) work(rn *run) {
	defer func() { <-s.workers }()
	tk := rn.tk
	if rn.first {
		tk.restorePause(rn.ctx)
		at := s.firstPoll(rn)
		if until := tk.pausedUntil(); until.After(at) {
			at = until
		}
		later := at.After(time.Now())
		s.mu.Lock()
		rn.first = false
		if !later {
			tk.triggered = false // this poll answers it
		}
		s.mu.Unlock()
		if later {
			tk.update(func(st *StreamStatus) { st.NextPoll = at })
			s.finish(rn, at)
			return
		}
	}
	delay := tk.pollAndReport(rn.ctx)
	s.finish(rn, time.Now().Add(delay))
}

// firstPoll is when a run's first poll is due. A stream that has collected before (a restart, a tenant
// taken over from another replica) and is less than an interval behind polls at a fixed offset into
// its interval, a hash of its name, so that thousands of streams restarted together spread their polls
// over the interval as they were before; a new stream (no stored position: a tenant just added), one
// whose stored position is more than an interval old (stopped while catching up, or down for longer
// than the interval: its records are overdue) and a triggered one poll at once.
func (s *scheduler) firstPoll(rn *run) time.Time {
	tk := rn.tk
	s.mu.Lock()
	triggered := tk.triggered
	s.mu.Unlock()
	if !s.spread || triggered || tk.stateKey == "" {
		return rn.began
	}
	raw, err := tk.store.Get(rn.ctx, tk.stateKey)
	if err != nil || raw == nil { // a failing storage fails the poll, which reports it
		return rn.began
	}
	if tk.overdue != nil && tk.overdue(raw, rn.began) {
		return rn.began
	}
	return rn.began.Add(spreadOffset(tk.name(), tk.interval))
}

// spreadOffset is a stream's fixed place in its poll interval.
func spreadOffset(name string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// finish ends a poll of rn: the run stops if its context ended, or is queued for at.
func (s *scheduler) finish(rn *run, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rn.running = false
	if rn.stopped || rn.ctx.Err() != nil { // stop, if it has not run yet, finds the run stopped
		rn.stopped = true
		close(rn.done)
		return
	}
	if rn.tk.triggered {
		at = time.Time{}
	}
	s.push(rn, at)
}

// push queues rn for at; the caller holds mu.
func (s *scheduler) push(rn *run, at time.Time) {
	s.seq++
	rn.at, rn.seq = at, s.seq
	heap.Push(&s.due, rn)
	if rn.index == 0 {
		s.signal()
	}
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pausedUntil is the end of the latest Retry-After pause on the task's budget (zero if none).
func (t *task) pausedUntil() time.Time {
	var until time.Time
	for _, k := range t.budgetKeys {
		if u := t.r.budget.PausedUntil(k); u.After(until) {
			until = u
		}
	}
	return until
}

// dueHeap orders runs by due time, then by when they were queued.
type dueHeap []*run

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *dueHeap) Push(x any) {
	rn := x.(*run)
	rn.index = len(*h)
	*h = append(*h, rn)
}

func (h *dueHeap) Pop() any {
	old := *h
	rn := old[len(old)-1]
	old[len(old)-1] = nil
	rn.index = -1
	*h = old[:len(old)-1]
	return rn
}
