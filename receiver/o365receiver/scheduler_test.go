package o365receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-o365/otelcol-o365/internal/catalog"
	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/checkpoint"
	"github.com/otelcol-o365/otelcol-o365/receiver/o365receiver/internal/metadata"
)

// schedHarness is a receiver that has a scheduler and no Graph: its tasks' polls are the test's.
type schedHarness struct {
	r *o365Receiver

	mu    sync.Mutex
	polls []string // task names, in the order their polls began
}

func newSchedHarness(t *testing.T, workers int, spread bool) *schedHarness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.PollWorkers, cfg.SpreadFirstPolls = workers, spread
	tb, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	require.NoError(t, err)
	r := &o365Receiver{cfg: cfg, set: receivertest.NewNopSettings(NewFactory().Type()), tb: tb,
		budget: graph.NewBudget(0), pauses: newPauseLedger(), health: newHealthReporter(componenttest.NewNopHost())}
	r.sched = newScheduler(r.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { r.sched.run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return &schedHarness{r: r}
}

// task is a stream named name whose polls are recorded, then run poll (nil: return at once).
func (h *schedHarness) task(name string, interval time.Duration, poll func(ctx context.Context) error) *task {
	tk := &task{r: h.r, tenant: &TenantConfig{Name: name, TenantID: name}, ds: catalog.SignIns, interval: interval,
		store: newMemoryClient(), stateKey: "o365/" + name + "/state", mayDeliver: func() bool { return true },
		budgetKeys: []string{"tenant|" + name}, pauseKey: "tenant|" + name}
	tk.poll = func(ctx context.Context) (int, error) {
		h.mu.Lock()
		h.polls = append(h.polls, name)
		h.mu.Unlock()
		if poll != nil {
			return 0, poll(ctx)
		}
		return 0, nil
	}
	return tk
}

func (h *schedHarness) polled() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.polls...)
}

func (h *schedHarness) count(name string) int {
	n := 0
	for _, p := range h.polled() {
		if p == name {
			n++
		}
	}
	return n
}

// blocker is a poll that waits until released (or its context ends).
type blocker struct {
	release chan struct{}
	running atomic.Int32
	most    atomic.Int32
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) poll(ctx context.Context) error {
	n := b.running.Add(1)
	defer b.running.Add(-1)
	for m := b.most.Load(); n > m && !b.most.CompareAndSwap(m, n); m = b.most.Load() {
	}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestSchedulerDispatchesInDueOrderAndTriggersJumpAhead(t *testing.T) {
	h := newSchedHarness(t, 1, false)
	ctx := t.Context()
	hold := newBlocker()
	h.task("hold", time.Hour, hold.poll).start(ctx)
	require.Eventually(t, func() bool { return hold.running.Load() == 1 }, 10*time.Second, time.Millisecond)
	// The only worker is busy: these fall due in order and wait.
	var tasks []*task
	for _, name := range []string{"a", "b", "c", "d"} {
		tk := h.task(name, time.Hour, nil)
		tk.start(ctx)
		tasks = append(tasks, tk)
	}
	require.True(t, tasks[2].Trigger(), "c is asked for a poll now")
	require.False(t, tasks[2].Trigger(), "one trigger pending at a time")
	close(hold.release)
	require.Eventually(t, func() bool { return len(h.polled()) == 5 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"hold", "c", "a", "b", "d"}, h.polled(), "a trigger first, then in the order they fell due")
	require.True(t, tasks[2].Trigger(), "the trigger was answered")
}

func TestSchedulerTriggerPollsAtOnceAndAfterAPollInProgress(t *testing.T) {
	h := newSchedHarness(t, 4, false)
	b := newBlocker()
	tk := h.task("a", time.Hour, b.poll)
	tk.start(t.Context())
	require.Eventually(t, func() bool { return b.running.Load() == 1 }, 10*time.Second, time.Millisecond)
	require.True(t, tk.Trigger(), "asked while its poll is in progress")
	b.release <- struct{}{}
	require.Eventually(t, func() bool { return h.count("a") == 2 }, 10*time.Second, time.Millisecond,
		"a trigger during a poll polls again right after it, not after the interval")
	b.release <- struct{}{}
	require.Eventually(t, func() bool { return b.running.Load() == 0 }, 10*time.Second, time.Millisecond)
	require.True(t, tk.Trigger())
	require.Eventually(t, func() bool { return h.count("a") == 3 }, 10*time.Second, time.Millisecond)
	require.Equal(t, int32(1), b.most.Load(), "a task's polls never overlap")
	close(b.release)
}

func TestSchedulerBoundsPollsInProgress(t *testing.T) {
	const workers, tasks = 3, 20
	h := newSchedHarness(t, workers, false)
	b := newBlocker()
	for i := range tasks {
		h.task(fmt.Sprint("t", i), time.Hour, b.poll).start(t.Context())
	}
	require.Eventually(t, func() bool { return b.running.Load() == workers }, 10*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond) // room for a poll beyond the bound to begin, if one could
	require.Equal(t, int32(workers), b.most.Load())
	close(b.release)
	require.Eventually(t, func() bool { return len(h.polled()) == tasks }, 10*time.Second, time.Millisecond,
		"every task polls once the workers are free")
	require.Equal(t, int32(workers), b.most.Load())
}

func TestSchedulerGoroutinesDoNotGrowWithStreams(t *testing.T) {
	h := newSchedHarness(t, 8, false)
	before := runtime.NumGoroutine()
	const tasks = 2000
	for i := range tasks {
		h.task(fmt.Sprint("t", i), time.Hour, nil).start(t.Context())
	}
	require.Eventually(t, func() bool { return len(h.polled()) == tasks }, 30*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+8 }, 10*time.Second, time.Millisecond,
		"idle streams hold no goroutine: %d before, %d after", before, runtime.NumGoroutine())
}

func TestSchedulerSpreadsFirstPollsOfStoredStreams(t *testing.T) {
	h := newSchedHarness(t, 8, true)
	const interval = time.Hour
	var stored, fresh []*task
	for i := range 100 {
		tk := h.task(fmt.Sprint("stored", i), interval, nil)
		require.NoError(t, tk.store.Set(t.Context(), tk.stateKey, []byte(`{}`)))
		stored = append(stored, tk)
		fresh = append(fresh, h.task(fmt.Sprint("new", i), interval, nil))
	}
	began := time.Now()
	for i := range stored {
		stored[i].start(t.Context())
		fresh[i].start(t.Context())
	}
	require.Eventually(t, func() bool { return len(h.polled()) == len(fresh) }, 10*time.Second, time.Millisecond,
		"streams without a stored position poll at once")
	for _, name := range h.polled() {
		require.Regexp(t, "^new", name)
	}
	var earliest, latest time.Duration = interval, 0
	for _, tk := range stored {
		next := tk.Status().NextPoll
		require.False(t, next.IsZero(), tk.name())
		offset := next.Sub(began)
		require.Less(t, offset, interval+time.Second, tk.name())
		h.r.sched.mu.Lock()
		start := tk.current.began
		h.r.sched.mu.Unlock()
		require.Equal(t, start.Add(spreadOffset(tk.name(), interval)), next, "a fixed place in the interval, the same after every restart")
		earliest, latest = min(earliest, offset), max(latest, offset)
	}
	require.Less(t, earliest, interval/4, "spread over the interval")
	require.Greater(t, latest, interval*3/4, "spread over the interval")
	require.True(t, stored[0].Trigger())
	require.Eventually(t, func() bool { return h.count("stored0") == 1 }, 10*time.Second, time.Millisecond,
		"a trigger does not wait for the stream's place")
}

func TestSchedulerHoldsPausedStreamsBack(t *testing.T) {
	h := newSchedHarness(t, 1, false)
	paused := h.task("paused", 20*time.Millisecond, nil)
	until := time.Now().Add(time.Hour)
	h.r.budget.Pause(paused.pauseKey, until)
	other := h.task("other", 20*time.Millisecond, nil)
	paused.start(t.Context())
	other.start(t.Context())
	require.True(t, paused.Trigger())
	require.Eventually(t, func() bool { return h.count("other") >= 5 }, 10*time.Second, time.Millisecond,
		"the only worker keeps polling the stream that is not paused")
	require.Zero(t, h.count("paused"), "a paused stream is not dispatched, triggered or not")
	require.Equal(t, until, paused.Status().NextPoll)
}

func TestSchedulerStopWaitsForThePollInProgress(t *testing.T) {
	h := newSchedHarness(t, 2, false)
	b := newBlocker()
	defer close(b.release)
	ctx, cancel := context.WithCancel(t.Context())
	running := h.task("running", time.Hour, func(context.Context) error {
		<-b.release // ignores its context: a next consumer that takes its time
		return nil
	})
	queued := h.task("queued", time.Hour, nil)
	runDone := running.start(ctx)
	require.Eventually(t, func() bool { return h.count("running") == 1 }, 10*time.Second, time.Millisecond)
	queuedDone := queued.start(ctx)
	require.Eventually(t, func() bool { return h.count("queued") == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	select {
	case <-queuedDone:
	case <-time.After(10 * time.Second):
		t.Fatal("a stopped run waiting for its next poll is done at once")
	}
	select {
	case <-runDone:
		t.Fatal("a run is done only once its poll in progress has returned")
	case <-time.After(50 * time.Millisecond):
	}
	b.release <- struct{}{}
	select {
	case <-runDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the run is done once its poll returned")
	}
	require.True(t, running.Trigger(), "kept for the next start")
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, 1, h.count("running"), "a stopped task polls no more, triggered or not")

	running.start(t.Context()) // a new tenure
	require.Eventually(t, func() bool { return h.count("running") == 2 }, 10*time.Second, time.Millisecond)
}

func TestSchedulerPollsOverdueStoredStreamsAtOnce(t *testing.T) {
	h := newSchedHarness(t, 8, true)
	const interval = time.Hour
	stored := func(name string, readTo time.Time) *task {
		tk := h.task(name, interval, nil)
		var cp *checkpoint.Stream
		tk.bindCheckpoint(&cp) // as an event stream: its state key, and overdue from the stored position
		raw, err := json.Marshal(checkpoint.State{Version: 2, Start: readTo.Add(-24 * time.Hour), ReadTo: readTo})
		require.NoError(t, err)
		require.NoError(t, tk.store.Set(t.Context(), tk.stateKey, raw))
		return tk
	}
	require.Greater(t, spreadOffset("caught-up", interval), time.Minute, "the test needs a place well into the interval")
	now := time.Now()
	behind := stored("behind", now.Add(-2*interval))       // stopped while catching up, or down for longer
	caughtUp := stored("caught-up", now.Add(-interval/10)) // restarted within its interval
	behind.start(t.Context())
	caughtUp.start(t.Context())
	require.Eventually(t, func() bool { return h.count("behind") == 1 }, 10*time.Second, time.Millisecond,
		"a stream more than an interval behind polls at once")
	require.Zero(t, h.count("caught-up"))
	h.r.sched.mu.Lock()
	start := caughtUp.current.began
	h.r.sched.mu.Unlock()
	require.Equal(t, start.Add(spreadOffset(caughtUp.name(), interval)), caughtUp.Status().NextPoll,
		"a stream less than an interval behind keeps its place in the interval")
}
