package sqlstorageextension

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/otelcol-o365/otelcol-o365/internal/leasing"
)

// TryAcquire implements leasing.Provider: one atomic statement inserts, takes over (new generation) or
// renews (same generation) the lease, with the expiry on the database's clock.
func (e *sqlStorage) TryAcquire(ctx context.Context, resource string) (lease leasing.Lease, ok bool, err error) {
	start := time.Now()
	defer func() {
		e.observe(ctx, "lease_acquire", start, err)
		if err != nil {
			err = e.opError(fmt.Sprintf("acquire lease %q", resource), err)
		}
	}()
	db, err := e.database()
	if err != nil {
		return leasing.Lease{}, false, err
	}
	opCtx, cancel := e.withTimeout(ctx)
	defer cancel()
	// The local deadline is taken before the statement is sent: the database computes the expiry from
	// a later instant, so the holder stops before anyone else can take over. The margin (1% + 1 ms)
	// absorbs the database's millisecond rounding and clock rate drift.
	deadline := time.Now().Add(e.cfg.Lease.TTL - e.cfg.Lease.TTL/100 - time.Millisecond)
	var expires int64
	var fresh bool
	err = db.QueryRowContext(opCtx, e.q.leaseAcquire, resource, e.replicaID, e.cfg.Lease.TTL.Milliseconds()).
		Scan(&lease.Generation, &expires, &fresh)
	switch {
	case err == nil:
		lease.Resource, lease.Owner = resource, e.replicaID
		lease.Expires, lease.Deadline = time.UnixMilli(expires), deadline
		if fresh {
			e.leaseEvent(ctx, "acquired")
			e.logger.Info("Lease acquired", zap.String("resource", resource), zap.Int64("generation", lease.Generation),
				zap.String("replica_id", e.replicaID))
		} else {
			e.leaseEvent(ctx, "renewed")
		}
		return lease, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return leasing.Lease{}, false, err
	}
	// Held by someone else: say who, for the caller's status.
	e.leaseEvent(ctx, "refused")
	lease.Resource = resource
	err = db.QueryRowContext(opCtx, e.q.leaseHolder, resource).Scan(&lease.Owner, &lease.Generation, &expires)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return leasing.Lease{}, false, fmt.Errorf("reading the holder: %w", err)
	}
	lease.Expires = time.UnixMilli(expires)
	return lease, false, nil
}

// Release implements leasing.Provider. The row is kept (owner emptied, expired) so that generations keep
// increasing.
func (e *sqlStorage) Release(ctx context.Context, l leasing.Lease) (err error) {
	start := time.Now()
	defer func() {
		e.observe(ctx, "lease_release", start, err)
		if err != nil {
			err = e.opError(fmt.Sprintf("release lease %q", l.Resource), err)
		}
	}()
	db, err := e.database()
	if err != nil {
		return err
	}
	opCtx, cancel := e.withTimeout(ctx)
	defer cancel()
	res, err := db.ExecContext(opCtx, e.q.leaseRelease, l.Resource, l.Owner, l.Generation)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w (generation %d, owner %q)", leasing.ErrLeaseLost, l.Generation, l.Owner)
	}
	e.leaseEvent(ctx, "released")
	e.logger.Info("Lease released", zap.String("resource", l.Resource), zap.Int64("generation", l.Generation),
		zap.String("replica_id", e.replicaID))
	return nil
}

// FencedClient implements leasing.Provider.
func (e *sqlStorage) FencedClient(_ context.Context, kind component.Kind, id component.ID, name string, l leasing.Lease) (storage.Client, error) {
	if _, err := e.database(); err != nil {
		return nil, err
	}
	if l.Owner != e.replicaID || l.Resource == "" {
		return nil, fmt.Errorf("%w: lease on %q is owned by %q, this replica is %q", errNotOurLease, l.Resource, l.Owner, e.replicaID)
	}
	fence := l
	return e.newClient(kind, id, name, &fence), nil
}

// Holders implements leasing.Provider: the unexpired leases whose resource starts with prefix.
func (e *sqlStorage) Holders(ctx context.Context, prefix string) (leases []leasing.Lease, err error) {
	start := time.Now()
	defer func() {
		e.observe(ctx, "lease_list", start, err)
		if err != nil {
			err = e.opError(fmt.Sprintf("list leases %q", prefix), err)
		}
	}()
	db, err := e.database()
	if err != nil {
		return nil, err
	}
	opCtx, cancel := e.withTimeout(ctx)
	defer cancel()
	pattern := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(prefix) + "%"
	rows, err := db.QueryContext(opCtx, e.q.leaseList, pattern)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var l leasing.Lease
		var expires int64
		if err := rows.Scan(&l.Resource, &l.Owner, &l.Generation, &expires); err != nil {
			return nil, err
		}
		if strings.HasPrefix(l.Resource, prefix) { // SQLite's LIKE ignores ASCII case
			l.Expires = time.UnixMilli(expires)
			leases = append(leases, l)
		}
	}
	return leases, rows.Err()
}

// RenewInterval implements leasing.Provider: `lease.renew_interval`.
func (e *sqlStorage) RenewInterval() time.Duration { return e.cfg.Lease.RenewInterval }

// ReplicaID is this replica's lease owner identity.
func (e *sqlStorage) ReplicaID() string { return e.replicaID }
