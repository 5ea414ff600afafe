package o365receiver

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/graph"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// task is one tenant × dataset × source: its schedule, cool-down and status. The collection itself is
// an eventStream or a snapshotStream.
type task struct {
	r          *o365Receiver
	tenant     *TenantConfig
	ds         *dataset
	src        source
	interval   time.Duration
	lookback   time.Duration // event streams: how late a record may arrive and still be collected
	client     *graph.Client
	graphURL   string // Graph endpoint without the version segment
	budgetKeys []string
	pauseKey   string
	attrs      metric.MeasurementOption
	resource   pcommon.Resource
	// stateKey is the storage key that exists once the stream has committed (empty: none to look at);
	// it tells a restarted stream from a new one (scheduler.firstPoll).
	stateKey string
	// overdue (optional) says whether a stream's stored state is more than an interval behind now: its
	// first poll after a restart is then due at once rather than at its place in the interval.
	overdue func(stored []byte, now time.Time) bool
	// store holds the task's checkpoint: the receiver's storage client, or a tenant lease's fenced one.
	store storage.Client
	// mayDeliver says whether records may be handed to the next consumer now; deliver asks it before
	// every attempt. Always true, unless tenants are leased: then while this replica's lease on the
	// tenant holds (its local deadline has not passed), so a replica paused past its lease delivers
	// nothing once it wakes up.
	mayDeliver func() bool
	// poll collects once and returns the number of records emitted; reset forgets the loaded state;
	// rebind (optional) moves loaded state to a new storage client of the same data; flush (optional)
	// writes what the consumer accepted but could not be committed yet.
	poll   func(ctx context.Context) (int, error)
	reset  func()
	rebind func(storage.Client)
	flush  func(ctx context.Context) error
	// probe (optional) replaces the readiness probe's one-record GET of the source.
	probe func(ctx context.Context) error

	// current is the task's latest run, triggered a trigger not answered yet: the scheduler's, under
	// its mu.
	current   *run
	triggered bool

	mu     sync.Mutex
	status StreamStatus
}

// Stream states reported in StreamStatus.State.
const (
	StateStarting    = o365status.StateStarting
	StateOK          = o365status.StateOK
	StateFailing     = o365status.StateFailing
	StateCoolingDown = o365status.StateCoolingDown
)

// coolDownAfter is the number of consecutive failures after which a stream cools down.
const coolDownAfter = o365status.CoolDownAfter

// StreamStatus is what the receiver knows about one tenant × dataset (× source).
type StreamStatus = o365status.StreamStatus

func newTask(r *o365Receiver, t *TenantConfig, set datasetSettings, src source, client *graph.Client,
	graphURL string, budgetKeys []string, pauseKey string,
) *task {
	ds := set.dataset
	res := pcommon.NewResource()
	a := res.Attributes()
	a.PutStr("cloud.provider", "azure")
	a.PutStr("azure.tenant.id", t.TenantID)
	a.PutStr("o365.tenant.name", t.label())
	a.PutStr("o365.dataset", ds.Name)
	return &task{
		r: r, tenant: t, ds: ds, src: src, interval: set.pollInterval, lookback: set.lookback, client: client, graphURL: graphURL,
		budgetKeys: budgetKeys, pauseKey: pauseKey,
		attrs: metricAttrs(t.label(), ds.Name), resource: res,
		mayDeliver: func() bool { return true },
		status: StreamStatus{Tenant: t.label(), Dataset: ds.Name, Variant: src.Variant, State: StateStarting, BackfillProgress: 1,
			Lookback: set.lookback},
	}
}

// logger names the stream in its log lines. It is made for each line rather than kept: a logger with
// fields costs kilobytes, thousands of streams log rarely.
func (t *task) logger() *zap.Logger {
	l := t.r.set.Logger.With(zap.String("tenant", t.tenant.label()), zap.String("dataset", t.ds.Name))
	if t.src.Variant != "" {
		l = l.With(zap.String("source", t.src.Variant))
	}
	return l
}

// metricAttrs identify the stream's gauges: tenant, dataset and, for multi-source datasets, kind.
func (t *task) metricAttrs() metric.MeasurementOption {
	if t.src.Variant == "" {
		return t.attrs
	}
	return metric.WithAttributes(attrTenant.String(t.tenant.label()), attrDataset.String(t.ds.Name), attrSource.String(t.src.Variant))
}

// name identifies the stream in logs and status: tenant/dataset[/variant].
func (t *task) name() string {
	n := t.tenant.label() + "/" + t.ds.Name
	if t.src.Variant != "" {
		n += "/" + t.src.Variant
	}
	return n
}

// checkpointPrefix keys the stream's state by tenant id (stable across renames of the label).
func (t *task) checkpointPrefix() string {
	p := "o365/" + t.tenant.TenantID + "/" + t.ds.Name
	if t.src.Variant != "" && t.src.Variant != "interactive" { // interactive sign-ins keep the original key
		p += "/" + t.src.Variant
	}
	return p
}

// start queues the task in the scheduler until ctx ends; the channel is closed once it has stopped
// and its poll in progress, if any, has returned.
func (t *task) start(ctx context.Context) <-chan struct{} { return t.r.sched.start(ctx, t) }

// stopGrace bounds how long stopping tasks (their context cancelled) are waited for: the page in hand
// has shutdownGrace to be delivered and committed, and a little more to return.
const stopGrace = shutdownGrace + time.Second

// flushTimeout bounds the last attempts to commit what stopped tasks' consumers accepted: all of them
// together, so that a storage that hangs delays a shutdown by flushTimeout, not by flushTimeout per
// stream.
const flushTimeout = 5 * time.Second

// stopTasks waits, at most stopGrace, for runs whose context was cancelled, then (with flush) makes one
// last attempt to commit, for each task that returned, what its consumer accepted but a failed write
// left uncommitted, within flushTimeout for all of them. It returns the runs still going: blocked in a
// next consumer that does not return, they are abandoned (nothing they do afterwards can commit: their
// storage is closed or fenced off).
func stopTasks(runs map[*task]<-chan struct{}, flush bool) map[*task]<-chan struct{} {
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	stuck := map[*task]<-chan struct{}{}
	expired := false
	for tk, done := range runs {
		if !expired {
			select {
			case <-done:
				continue
			case <-grace.C:
				expired = true // for every run not done yet
			}
		}
		select {
		case <-done:
		default:
			stuck[tk] = done
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	for tk := range runs {
		if _, ok := stuck[tk]; ok || !flush || tk.flush == nil {
			continue
		}
		if err := tk.flush(ctx); err != nil {
			tk.logger().Error("Cannot commit what the next consumer accepted; it is collected again after the restart", zap.Error(err))
		}
	}
	for tk := range stuck {
		tk.logger().Error("The next consumer has not returned within the shutdown grace; its page is abandoned uncommitted",
			zap.Duration("grace", stopGrace))
	}
	if len(stuck) == 0 {
		return nil
	}
	return stuck
}

// Trigger asks for a poll now; it reports false when one is already pending.
func (t *task) Trigger() bool { return t.r.sched.trigger(t) }

// pollAndReport polls once, records the outcome and returns the delay until the next poll.
func (t *task) pollAndReport(ctx context.Context) time.Duration {
	start := time.Now()
	t.mu.Lock()
	t.status.LastPollStart = start
	t.mu.Unlock()
	n, err := 0, errNotLeased
	if t.mayDeliver() { // no request for a tenant this replica may not deliver
		n, err = t.poll(ctx)
	}
	if ctx.Err() != nil {
		return 0 // shutting down: the position is kept, nothing to report
	}
	kind := ""
	if err != nil {
		kind = errorKind(err)
		t.r.tb.O365PollErrors.Add(ctx, 1, metric.WithAttributes(attrTenant.String(t.tenant.label()),
			attrDataset.String(t.ds.Name), attrKind.String(kind)))
	}
	t.mu.Lock()
	t.status.LastPollEnd = time.Now()
	t.status.RecordsLastPoll = n
	if err != nil {
		t.status.LastError, t.status.LastErrorKind = err.Error(), kind
		t.status.ConsecutiveFailures++
	} else {
		t.status.LastError, t.status.LastErrorKind = "", ""
		t.status.ConsecutiveFailures = 0
		t.status.LastSuccess = t.status.LastPollEnd
	}
	delay, state := t.schedule(kind, t.status.ConsecutiveFailures)
	t.status.State = state
	t.status.NextPoll = time.Now().Add(delay)
	failures := t.status.ConsecutiveFailures
	t.mu.Unlock()
	if err != nil {
		fields := []zap.Field{zap.String("kind", kind), zap.Error(err), zap.Int("records_emitted", n),
			zap.Int("consecutive_failures", failures), zap.String("state", state), zap.Duration("next_poll_in", delay)}
		var ge *graph.Error
		if errors.As(err, &ge) { // what to quote to Microsoft support, as fields of their own
			fields = append(fields, zap.Int("status", ge.Status), zap.String("code", ge.Code),
				zap.String("request_id", ge.RequestID), zap.String("client_request_id", ge.ClientReqID))
		}
		t.logger().Warn("Poll failed; the position is kept and the next poll resumes from it", fields...)
	}
	t.r.health.update(t.name(), kind, err)
	return delay
}

// schedule is the delay before the next poll and the resulting state: the interval after a success;
// after failures, the interval doubling from the coolDownAfter-th failure on up to max_cooldown; after
// a 403 (permission or licence), forbidden_retry_interval — retrying sooner cannot help.
func (t *task) schedule(kind string, failures int) (time.Duration, string) {
	switch {
	case failures == 0:
		return t.interval, StateOK
	case kind == o365status.ErrorPermission || kind == o365status.ErrorLicence || kind == o365status.ErrorAuditingDisabled:
		return max(t.interval, t.r.cfg.ForbiddenRetryInterval), StateCoolingDown
	case failures < coolDownAfter:
		return t.interval, StateFailing
	}
	d := t.interval
	for i := coolDownAfter; i <= failures && d < t.r.cfg.MaxCooldown; i++ {
		d *= 2
	}
	return min(d, max(t.r.cfg.MaxCooldown, t.interval)), StateCoolingDown
}

// useStorage sets the client the task keeps its checkpoint in.
func (t *task) useStorage(c storage.Client) {
	t.store = c
	if t.rebind != nil {
		t.rebind(c)
	}
}

// Status returns a snapshot of the stream's status.
func (t *task) Status() StreamStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

func (t *task) update(f func(*StreamStatus)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.status)
}

// errStorage marks failures to read or write the checkpoint.
var errStorage = errors.New("storage")

func errorKind(err error) string {
	if isLeaseLost(err) {
		return o365status.ErrorLeaseLost
	}
	if errors.Is(err, errStorage) {
		return o365status.ErrorStorage
	}
	if errors.Is(err, o365status.ErrAuditingDisabled) {
		return o365status.ErrorAuditingDisabled
	}
	return graph.KindOf(err).String()
}

// graphRequest is a GET of link within the task's budget.
func (t *task) graphRequest(link string) graph.Request {
	return graph.Request{URL: link, Dataset: t.ds.Name, BudgetKeys: t.budgetKeys, PauseKey: t.pauseKey, OnPause: t.savePause}
}
