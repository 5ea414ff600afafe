package o365receiver

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
	"github.com/otelcol-o365/otelcol-o365/internal/o365status"
)

// StateStandby: another collector replica holds the tenant's lease and polls it.
const StateStandby = o365status.StateStandby

// leaseCoordinator splits the tenants between the collector replicas that share a storage extension
// offering leases (sql_storage): every replica holds a membership lease, takes a fair share of the
// tenants (ceil(tenants / replicas), preferring tenants by rendezvous hashing so the split is stable),
// releases what exceeds its share when replicas join, and takes over the tenants of replicas whose
// leases expire. A tenant is polled only while its lease is held: its tasks deliver nothing once the
// lease's local deadline passed (task.mayDeliver), and its checkpoints are written through a fenced
// client, so a replica paused past its lease can neither deliver nor commit over the new owner.
//
// The coordinator renews every lease it holds before it does anything else in a round, and tenures end
// in the background (stopTenure): the page in hand of a tenant being handed over may take up to
// shutdownGrace to finish, during which the other leases keep being renewed, and the handed-over one
// too, until it is released.
type leaseCoordinator struct {
	r       *o365Receiver
	lp      leasing.Provider
	prefix  string // o365/<receiver id>/
	member  string // this replica's membership resource
	tenants []*tenantLease
	logger  *zap.Logger
}

// tenantLease is one tenant's tenure on this replica. Its fields are the coordinator goroutine's,
// except fence, which the tenant's tasks read.
type tenantLease struct {
	tenant   *TenantConfig
	tasks    []*task
	resource string
	base     *zap.Logger // the receiver's: logger adds the tenant
	fence    fence

	lease  leasing.Lease
	client storage.Client
	cancel context.CancelFunc        // set while polling
	runs   map[*task]<-chan struct{} // the tasks of the tenure, while polling
	// stopping is set while a tenure ends in the background; it yields the runs that did not return.
	stopping <-chan map[*task]<-chan struct{}
	// stuck holds runs of an ended tenure still blocked in the next consumer: the tenant is not polled
	// again on this replica until they have returned.
	stuck map[*task]<-chan struct{}
	// stoppedGeneration is the generation of the tenure that stopped last (0 = none): a new tenure of the
	// same generation continues it (nobody else held the lease in between, so the tasks' positions and
	// their commits not yet written are still the truth).
	stoppedGeneration int64
}

// fence is the lease as the tenant's tasks see it: they may deliver while it holds.
type fence struct {
	mu    sync.Mutex
	lease leasing.Lease // zero: not held
}

func (f *fence) set(l leasing.Lease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lease = l
}

func (f *fence) holds() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lease.Held(time.Now())
}

// errNotLeased refuses a delivery of a tenant whose lease ran out.
var errNotLeased = fmt.Errorf("%w: this replica's lease on the tenant ran out (its deadline passed without a renewal), so it delivers nothing more for it",
	leasing.ErrLeaseLost)

func newLeaseCoordinator(r *o365Receiver, lp leasing.Provider) *leaseCoordinator {
	prefix := "o365/" + r.set.ID.String() + "/"
	c := &leaseCoordinator{r: r, lp: lp, prefix: prefix, member: prefix + "member/" + uuid.NewString(), logger: r.set.Logger}
	for i := range r.cfg.Tenants {
		t := &r.cfg.Tenants[i]
		tl := &tenantLease{tenant: t, resource: prefix + "tenant/" + t.TenantID,
			base: r.set.Logger}
		for _, tk := range r.tasks {
			if tk.tenant == t {
				tl.tasks = append(tl.tasks, tk)
				tk.mayDeliver = tl.fence.holds
				tk.update(func(st *StreamStatus) { st.State = StateStandby })
			}
		}
		c.tenants = append(c.tenants, tl)
	}
	return c
}

// run rebalances every RenewInterval until ctx ends, then stops and releases everything.
func (c *leaseCoordinator) run(ctx context.Context) {
	tick := time.NewTicker(c.lp.RenewInterval())
	defer tick.Stop()
	defer c.releaseAll()
	for {
		c.rebalance(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *leaseCoordinator) rebalance(ctx context.Context) {
	defer c.divideBudget()
	c.reap()
	// Renew first: nothing below may make a held lease miss its renewal.
	_, memberOK, memberErr := c.lp.TryAcquire(ctx, c.member)
	for _, tl := range c.tenants {
		if !tl.polling() {
			continue
		}
		lease, ok, err := c.lp.TryAcquire(ctx, tl.resource)
		switch {
		case err != nil:
			c.warn(ctx, "Cannot renew a tenant lease; polling stops at its deadline unless a renewal succeeds", err)
		case !ok || lease.Generation != tl.lease.Generation:
			c.stopTenure(tl, "the lease was taken over by replica "+lease.Owner, false)
		default:
			tl.lease = lease
			tl.fence.set(lease)
		}
	}
	now := time.Now()
	for _, tl := range c.tenants { // a tenure whose deadline passed without renewal ends now
		if tl.polling() && !tl.lease.Held(now) {
			c.stopTenure(tl, "the lease deadline passed without a renewal", false)
		}
	}
	if memberErr != nil || !memberOK {
		c.warn(ctx, "Cannot renew this replica's membership lease; keeping current tenants until their deadlines", memberErr)
		return
	}
	members, err := c.lp.Holders(ctx, c.prefix+"member/")
	if err != nil || len(members) == 0 {
		c.warn(ctx, "Cannot list the replicas; keeping current tenants until their deadlines", err)
		return
	}
	share := (len(c.tenants) + len(members) - 1) / len(members)

	held := 0
	for _, tl := range c.tenants {
		if tl.polling() {
			held++
		}
	}
	byPreference := c.byPreference()
	for i := len(byPreference) - 1; i >= 0 && held > share; i-- { // give back the least preferred
		if tl := byPreference[i]; tl.polling() {
			c.stopTenure(tl, "another replica joined: handing the tenant over", true)
			held--
		}
	}
	for _, tl := range byPreference { // take free ones, most preferred first
		if held >= share {
			break
		}
		if tl.polling() || tl.busy() {
			continue
		}
		lease, ok, err := c.lp.TryAcquire(ctx, tl.resource)
		if err != nil || !ok {
			continue
		}
		tl.lease = lease
		if err := tl.start(ctx, c.r, c.lp); err != nil {
			tl.logger().Error("Cannot open fenced storage for the tenant; retrying at the next renewal", zap.Error(err))
			continue
		}
		held++
	}
}

// divideBudget gives this replica its share of every app-wide request budget, by the tenants it polls.
func (c *leaseCoordinator) divideBudget() {
	held := map[string]bool{}
	for _, tl := range c.tenants {
		if tl.polling() {
			held[tl.tenant.TenantID] = true
		}
	}
	c.r.shares.divide(held, time.Now())
}

// byPreference orders tenants by this replica's rendezvous score: each replica prefers different
// tenants, so replicas converge on a split without talking to each other.
func (c *leaseCoordinator) byPreference() []*tenantLease {
	out := append([]*tenantLease(nil), c.tenants...)
	score := func(tl *tenantLease) uint64 {
		h := fnv.New64a()
		_, _ = h.Write([]byte(tl.resource + "|" + c.member))
		return h.Sum64()
	}
	sort.Slice(out, func(i, j int) bool { return score(out[i]) > score(out[j]) })
	return out
}

// releaseAll ends every tenure, concurrently, and releases the leases — with contexts of their own,
// made after the tasks stopped, so that a peer takes the tenants over at once.
func (c *leaseCoordinator) releaseAll() {
	for _, tl := range c.tenants {
		if tl.polling() {
			c.stopTenure(tl, "shutting down", true)
		}
	}
	for _, tl := range c.tenants {
		if tl.stopping != nil {
			tl.stuck = <-tl.stopping
			tl.stopping = nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if l, ok, err := c.lp.TryAcquire(ctx, c.member); err == nil && ok {
		_ = c.lp.Release(ctx, l)
	}
}

// releaseTimeout bounds one lease operation made after the run context ended (a release).
const releaseTimeout = 5 * time.Second

// reap completes the tenures that have ended in the background.
func (c *leaseCoordinator) reap() {
	for _, tl := range c.tenants {
		if tl.stopping == nil {
			continue
		}
		select {
		case tl.stuck = <-tl.stopping:
			tl.stopping = nil
		default:
		}
	}
}

func (c *leaseCoordinator) warn(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		c.logger.Warn(msg, zap.Error(err))
	}
}

// logger names the tenant in its log lines; made for each line, not kept (see task.logger).
func (tl *tenantLease) logger() *zap.Logger {
	return tl.base.With(zap.String("tenant", tl.tenant.label()))
}

// polling reports a tenure under way (not ending).
func (tl *tenantLease) polling() bool { return tl.cancel != nil }

// busy reports a tenant that cannot be polled again yet: its last tenure is still ending, or left runs
// blocked in the next consumer.
func (tl *tenantLease) busy() bool {
	if tl.stopping != nil {
		return true
	}
	for tk, done := range tl.stuck {
		select {
		case <-done:
			delete(tl.stuck, tk)
		default:
			return true
		}
	}
	return false
}

// start opens the tenure's fenced storage and runs the tenant's tasks: from their stored positions, or,
// when the lease was renewed in the generation of the tenure that stopped last (its deadline passed
// while storage was unreachable, and nobody took it over), from where they stopped — their positions
// in memory and the commits they could not write, which they write first.
func (tl *tenantLease) start(ctx context.Context, r *o365Receiver, lp leasing.Provider) error {
	client, err := lp.FencedClient(ctx, component.KindReceiver, r.set.ID, "", tl.lease)
	if err != nil {
		return err
	}
	tl.client = client
	resume := tl.stoppedGeneration != 0 && tl.stoppedGeneration == tl.lease.Generation
	tl.logger().Info("Polling the tenant: this replica holds its lease", zap.Int64("generation", tl.lease.Generation),
		zap.Bool("same_tenure", resume))
	tl.fence.set(tl.lease)
	tctx, cancel := context.WithCancel(context.Background())
	tl.cancel = cancel
	tl.runs = map[*task]<-chan struct{}{}
	for _, tk := range tl.tasks {
		if !resume {
			tk.reset() // reload from storage: another owner may have moved on
		}
		tk.useStorage(client)
		tk.update(func(st *StreamStatus) { st.State = StateStarting })
		tl.runs[tk] = tk.start(tctx)
	}
	return nil
}

// stopTenure ends a tenure: the tasks deliver nothing more and stop at once; the rest happens in the
// background — waiting for the pages in hand (stopTasks), closing the fenced client and, when the
// lease is still ours to give (release: a hand-over, a shutdown), keeping it renewed meanwhile,
// committing what the consumer accepted and releasing it so that another replica takes over at once.
// What the tasks have not committed is dropped if another replica takes the tenant (it fetches it
// again); if this replica renews the same generation, they continue from it.
func (c *leaseCoordinator) stopTenure(tl *tenantLease, why string, release bool) {
	tl.fence.set(leasing.Lease{})
	tl.cancel()
	tl.cancel = nil
	tl.stoppedGeneration = tl.lease.Generation
	for _, tk := range tl.tasks {
		tk.update(func(st *StreamStatus) { st.State = StateStandby })
	}
	tl.logger().Info("Stopping polling the tenant", zap.String("reason", why))
	runs, client, lease := tl.runs, tl.client, tl.lease
	tl.runs, tl.client, tl.lease = nil, nil, leasing.Lease{}
	stopped := make(chan map[*task]<-chan struct{}, 1)
	tl.stopping = stopped
	go func() {
		var stuck map[*task]<-chan struct{}
		if release {
			stuck = c.renewWhile(lease, func() map[*task]<-chan struct{} { return stopTasks(runs, true) })
		} else {
			stuck = stopTasks(runs, false) // the lease is gone: commits would be refused
		}
		_ = client.Close(context.Background())
		for _, tk := range tl.tasks { // a poll that ended as the tenure stopped may have said otherwise
			tk.update(func(st *StreamStatus) { st.State = StateStandby })
		}
		if release {
			ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			if err := c.lp.Release(ctx, lease); err != nil {
				tl.logger().Warn("Cannot release the tenant lease; another replica takes over once it expires", zap.Error(err))
			}
			cancel()
		}
		tl.logger().Info("Stopped polling the tenant", zap.String("reason", why), zap.Int("streams_blocked_in_consumer", len(stuck)))
		stopped <- stuck
	}()
}

// renewWhile keeps lease renewed while f runs (a tenure ending that still commits through it).
func (c *leaseCoordinator) renewWhile(lease leasing.Lease, f func() map[*task]<-chan struct{}) map[*task]<-chan struct{} {
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(c.lp.RenewInterval())
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
			l, ok, err := c.lp.TryAcquire(ctx, lease.Resource)
			cancel()
			if err == nil && (!ok || l.Generation != lease.Generation) {
				return // lost after all: its fenced writes fail, nothing to keep
			}
		}
	}()
	defer func() { close(done); <-renewed }()
	return f()
}

// isLeaseLost reports a commit refused because another replica took the tenant over.
func isLeaseLost(err error) bool { return errors.Is(err, leasing.ErrLeaseLost) }
