package o365receiver

import (
	"context"
	"errors"
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
// leases expire. A tenant is polled only while its lease is held, and its checkpoints are written
// through a fenced client, so a replica paused past its lease cannot commit over the new owner.
type leaseCoordinator struct {
	r       *o365Receiver
	lp      leasing.Provider
	prefix  string // o365/<receiver id>/
	member  string // this replica's membership resource
	tenants []*tenantLease
	logger  *zap.Logger
}

// tenantLease is one tenant's tenure on this replica.
type tenantLease struct {
	tenant   *TenantConfig
	tasks    []*task
	resource string
	lease    leasing.Lease
	client   storage.Client
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	logger   *zap.Logger
	// stoppedGeneration is the generation of the tenure that stopped last (0 = none): a new tenure of the
	// same generation continues it (nobody else held the lease in between, so the tasks' positions and
	// their commits not yet written are still the truth).
	stoppedGeneration int64
}

func newLeaseCoordinator(r *o365Receiver, lp leasing.Provider) *leaseCoordinator {
	prefix := "o365/" + r.set.ID.String() + "/"
	c := &leaseCoordinator{r: r, lp: lp, prefix: prefix, member: prefix + "member/" + uuid.NewString(), logger: r.set.Logger}
	for i := range r.cfg.Tenants {
		t := &r.cfg.Tenants[i]
		tl := &tenantLease{tenant: t, resource: prefix + "tenant/" + t.TenantID,
			logger: r.set.Logger.With(zap.String("tenant", t.label()))}
		for _, tk := range r.tasks {
			if tk.tenant == t {
				tl.tasks = append(tl.tasks, tk)
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
	now := time.Now()
	for _, tl := range c.tenants { // a tenure whose deadline passed without renewal ends now
		if tl.running() && !tl.lease.Held(now) {
			tl.stop("the lease deadline passed without a renewal")
		}
	}
	if _, ok, err := c.lp.TryAcquire(ctx, c.member); err != nil || !ok {
		c.warn(ctx, "Cannot renew this replica's membership lease; keeping current tenants until their deadlines", err)
		return
	}
	members, err := c.lp.Holders(ctx, c.prefix+"member/")
	if err != nil || len(members) == 0 {
		c.warn(ctx, "Cannot list the replicas; keeping current tenants until their deadlines", err)
		return
	}
	share := (len(c.tenants) + len(members) - 1) / len(members)

	held := 0
	for _, tl := range c.tenants { // renew what we hold
		if !tl.running() {
			continue
		}
		lease, ok, err := c.lp.TryAcquire(ctx, tl.resource)
		switch {
		case err != nil:
			c.warn(ctx, "Cannot renew a tenant lease; polling stops at its deadline unless a renewal succeeds", err)
			held++
		case !ok || lease.Generation != tl.lease.Generation:
			tl.stop("the lease was taken over by replica " + lease.Owner)
		default:
			tl.lease = lease
			held++
		}
	}
	byPreference := c.byPreference()
	for i := len(byPreference) - 1; i >= 0 && held > share; i-- { // give back the least preferred
		if tl := byPreference[i]; tl.running() {
			tl.stop("another replica joined: handing the tenant over")
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.lp.Release(rctx, tl.lease)
			cancel()
			tl.lease = leasing.Lease{}
			held--
		}
	}
	for _, tl := range byPreference { // take free ones, most preferred first
		if held >= share {
			break
		}
		if tl.running() {
			continue
		}
		lease, ok, err := c.lp.TryAcquire(ctx, tl.resource)
		if err != nil || !ok {
			continue
		}
		tl.lease = lease
		if err := tl.start(ctx, c.r, c.lp); err != nil {
			tl.logger.Error("Cannot open fenced storage for the tenant; retrying at the next renewal", zap.Error(err))
			continue
		}
		held++
	}
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

func (c *leaseCoordinator) releaseAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tl := range c.tenants {
		if tl.running() {
			tl.stop("shutting down")
			_ = c.lp.Release(ctx, tl.lease) // let another replica take over at once
		}
	}
	if l, ok, err := c.lp.TryAcquire(ctx, c.member); err == nil && ok {
		_ = c.lp.Release(ctx, l)
	}
}

func (c *leaseCoordinator) warn(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		c.logger.Warn(msg, zap.Error(err))
	}
}

func (tl *tenantLease) running() bool { return tl.cancel != nil }

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
	tl.logger.Info("Polling the tenant: this replica holds its lease", zap.Int64("generation", tl.lease.Generation),
		zap.Bool("same_tenure", resume))
	tctx, cancel := context.WithCancel(context.Background())
	tl.cancel = cancel
	for _, tk := range tl.tasks {
		if !resume {
			tk.reset() // reload from storage: another owner may have moved on
		}
		tk.useStorage(client)
		tl.wg.Go(func() { tk.run(tctx) })
	}
	return nil
}

// stop ends the tenure: tasks stop. What they have not committed is dropped if another replica takes
// the tenant (it fetches it again); if this replica renews the same generation, they continue from it.
func (tl *tenantLease) stop(why string) {
	if tl.cancel == nil {
		return
	}
	tl.cancel()
	tl.wg.Wait()
	tl.cancel = nil
	tl.stoppedGeneration = tl.lease.Generation
	_ = tl.client.Close(context.Background())
	for _, tk := range tl.tasks {
		tk.update(func(st *StreamStatus) { st.State = StateStandby })
	}
	tl.logger.Info("Stopped polling the tenant", zap.String("reason", why))
}

// isLeaseLost reports a commit refused because another replica took the tenant over.
func isLeaseLost(err error) bool { return errors.Is(err, leasing.ErrLeaseLost) }
