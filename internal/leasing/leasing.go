// Package leasing is the optional interface a storage extension offers when several collector replicas
// share one store and must split work (tenants) between them, so that each resource is worked on by
// exactly one replica at a time and a replica that lost its lease cannot commit.
//
// A component type-asserts its storage extension:
//
//	if lp, ok := ext.(leasing.Provider); ok { ... split tenants by lease ... } else { ... poll everything ... }
//
// # Leases
//
// A lease is held on a resource (any string; callers pick globally unique names such as
// "o365/<receiver id>/<tenant>", since all components sharing the database share one lease namespace)
// by an owner (the replica identity) until an expiry computed on the database's clock, so that replicas
// with skewed clocks agree. The holder renews it by calling [Provider.TryAcquire] again, every
// [Provider.RenewInterval]; a replica that stops renewing (dead, paused, partitioned) loses the lease
// once it expires, and the next TryAcquire by another replica takes it over.
//
// Every change of owner — takeover of an expired lease, acquisition after a release — increments the
// lease's Generation; a renewal by the current owner keeps it. A generation therefore identifies one
// uninterrupted tenure of one owner.
//
// # Fencing
//
// Expiry alone cannot stop a replica that was paused (GC, SIGSTOP, a VM migration) between checking its
// lease and writing: it would wake up and commit an older watermark over the new owner's. Writes through
// a [Provider.FencedClient] are therefore checked inside the same database transaction: they commit only
// while the lease row still names the same owner and generation, and fail with [ErrLeaseLost] otherwise,
// changing nothing. The check also locks the lease row against a concurrent takeover until the write has
// committed, so the new owner always reads state that includes every write the old owner managed to
// commit. A fenced write by the current tenure succeeds even slightly after expiry as long as nobody has
// taken the lease over: that is safe, since nobody else can have written.
//
// # Stopping in time
//
// To stop working before another replica starts, a holder stops at [Lease.Deadline]: a local-clock
// (monotonic) instant taken before the acquiring statement was sent, plus the TTL less a small margin
// for rounding and clock rate drift. The database computes the expiry from a later instant, so the
// deadline is always earlier than the moment another replica can take over. A holder whose deadline
// passed may resume if a later TryAcquire renews the same generation: nobody else can have written.
// Fencing guards only the writes: a holder checks [Lease.Held] before everything else it does on the
// resource that others can see (handing data on, calling out), and renews its leases before work that may
// take time, so that a slow step cannot make a renewal late.
package leasing

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// ErrLeaseLost is returned (wrapped; test with errors.Is) by writes through a fenced client and by
// [Provider.Release] when the lease is no longer held by the same owner and generation: another
// replica took it over, or it was released. Nothing was changed. The caller must stop working on the
// resource, drop what it has not committed, and try to acquire the lease again (reloading its state
// from storage if it succeeds).
var ErrLeaseLost = errors.New("lease lost: the resource is now leased by another owner or generation")

// Lease is one owner's tenure on a resource.
type Lease struct {
	// Resource the lease is on.
	Resource string
	// Owner is the replica identity holding the lease.
	Owner string
	// Generation increments each time ownership changes hands; renewals keep it.
	Generation int64
	// Expires is when the lease expires, on the database's clock (informational: compare with the
	// database's clock, not the local one).
	Expires time.Time
	// Deadline is the local-clock instant (with a monotonic reading) after which the holder must stop
	// working on the resource unless it renewed the lease. Zero when the lease is not ours.
	Deadline time.Time
}

// Held reports whether the lease is ours and may still be worked on at now (a local time).
func (l Lease) Held(now time.Time) bool {
	return !l.Deadline.IsZero() && now.Before(l.Deadline)
}

// Provider is implemented by storage extensions that can lease resources to one replica at a time.
type Provider interface {
	// TryAcquire takes the lease on resource if it is free, released or expired (a new generation), or
	// renews it if it is already ours — even past its expiry, as long as nobody took it over — (same
	// generation, later expiry and deadline), and returns it with ok=true. If another owner
	// holds an unexpired lease it returns that owner's lease with ok=false and no error. An error means
	// the database could not be asked: the caller keeps nothing new, and stops at the Deadline of the
	// lease it already had.
	TryAcquire(ctx context.Context, resource string) (lease Lease, ok bool, err error)

	// Release gives the lease up so another replica can take it at once. It returns ErrLeaseLost if l
	// is no longer the current tenure (nothing is changed then).
	Release(ctx context.Context, l Lease) error

	// FencedClient returns a storage client on the same data as the extension's GetClient(kind, id,
	// name), whose writes (Set, Delete, Batch, and Walk's operations) commit only while l is still the
	// current tenure of l.Resource, checked inside the same transaction; otherwise they fail with
	// ErrLeaseLost and change nothing. Get is not fenced. The client stays valid across renewals.
	FencedClient(ctx context.Context, kind component.Kind, id component.ID, name string, l Lease) (storage.Client, error)

	// Holders lists the unexpired leases whose resource starts with prefix (other owners' too), e.g. to
	// count the replicas that hold a membership lease and take a fair share of the work.
	Holders(ctx context.Context, prefix string) ([]Lease, error)

	// RenewInterval is how often a holder should call TryAcquire to renew its leases (and how often a
	// replica may try to take free ones): well below the lease TTL.
	RenewInterval() time.Duration
}
